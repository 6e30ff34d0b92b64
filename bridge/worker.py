"""Run ``python -m inference`` as a subprocess and follow its JSON events.

A reader thread turns stdout lines into events on a queue (it never touches
``bpy``); Blender polls :meth:`WorkerJob.poll` from a timer, or a script calls
:meth:`WorkerJob.wait` to block.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

EXTENSION_DIR = Path(__file__).resolve().parent.parent
CANCEL_GRACE_S = 0.5


@dataclass
class WorkerRunError(Exception):
    """The worker did not produce a result: a stable code and one plain sentence."""

    code: str
    message: str
    detail: str = ""

    def __str__(self) -> str:
        return self.message


@dataclass
class WorkerState:
    stage: str = "start"
    fraction: float = 0.0
    message: str = "Starting"
    warnings: list[dict[str, Any]] = field(default_factory=list)
    result_path: str | None = None
    error: WorkerRunError | None = None
    done: bool = False


def worker_command(interpreter: str, args: list[str]) -> list[str]:
    return [interpreter or sys.executable, "-m", "inference", *args]


def worker_env(extra_paths: list[str] | None = None, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for the worker: the extension on PYTHONPATH, nothing from the user's site."""
    env = dict(os.environ)
    paths = [str(EXTENSION_DIR), *(extra_paths or [])]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONNOUSERSITE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    env.pop("PYTHONHOME", None)
    env.update(extra_env or {})
    return env


class WorkerJob:
    """One worker process and the state its events describe."""

    def __init__(
        self,
        args: list[str],
        *,
        interpreter: str = "",
        extra_paths: list[str] | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.args = args
        self.cmd = worker_command(interpreter, args)
        self.env = worker_env(extra_paths, extra_env)
        self.state = WorkerState()
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._stderr: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        self._threads: list[threading.Thread] = []
        self._garbage: list[str] = []
        self.started_at = 0.0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> WorkerJob:
        self.started_at = time.perf_counter()
        try:
            self._proc = subprocess.Popen(
                self.cmd,
                cwd=str(EXTENSION_DIR),
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                errors="replace",
                bufsize=1,
            )
        except OSError as exc:
            raise WorkerRunError(
                "worker_not_found",
                f"Could not start the inference interpreter {self.cmd[0]!r}; check Monocle's preferences.",
                str(exc),
            ) from None
        self._threads = [
            threading.Thread(target=self._read_stdout, name="monocle-worker-out", daemon=True),
            threading.Thread(target=self._read_stderr, name="monocle-worker-err", daemon=True),
        ]
        for t in self._threads:
            t.start()
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def _read_stdout(self) -> None:
        assert self._proc and self._proc.stdout
        for line in self._proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                event = json.loads(line)
                if not isinstance(event, dict) or "event" not in event:
                    raise ValueError
            except ValueError:
                self._garbage.append(line[:200])
                continue
            self._events.put(event)
        self._events.put(None)  # end of stream

    def _read_stderr(self) -> None:
        assert self._proc and self._proc.stderr
        for line in self._proc.stderr:
            self._stderr.append(line)
            log.debug("worker: %s", line.rstrip())

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def cancel(self) -> None:
        """Stop the worker now: terminate, then kill if it does not exit quickly."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=CANCEL_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        self.state.error = WorkerRunError("cancelled", "Reconstruction cancelled.")
        self.state.done = True

    # -- progress ----------------------------------------------------------------------------
    def poll(self) -> WorkerState:
        """Apply every event received so far; never blocks."""
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return self.state
            if event is None:
                self._finish()
                return self.state
            self._apply(event)

    def wait(self, on_event: Callable[[WorkerState], None] | None = None, timeout: float | None = None) -> str:
        """Block until the worker ends; returns the result.json path or raises WorkerRunError."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.state.done:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if remaining == 0.0:
                self.cancel()
                raise WorkerRunError("timeout", "The inference worker took too long and was stopped.")
            try:
                event = self._events.get(timeout=remaining)
            except queue.Empty:
                continue
            if event is None:
                self._finish()
            else:
                self._apply(event)
                if on_event:
                    on_event(self.state)
        if self.state.error:
            raise self.state.error
        assert self.state.result_path
        return self.state.result_path

    def _apply(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "progress":
            self.state.stage = str(event.get("stage", self.state.stage))
            self.state.fraction = float(event.get("fraction", 0.0))
            self.state.message = str(event.get("message", ""))
        elif kind == "warning":
            self.state.warnings.append(event)
        elif kind == "error":
            self.state.error = WorkerRunError(str(event.get("code", "internal")), str(event.get("message", "")))
        elif kind == "result":
            self.state.result_path = str(event.get("path"))

    def _finish(self) -> None:
        assert self._proc
        try:
            code = self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = self._proc.wait()
        for t in self._threads:
            t.join(timeout=2)
        self.state.done = True
        if self.state.error and self.state.error.code == "cancelled":
            return
        if code == 0 and self.state.result_path and Path(self.state.result_path).is_file():
            return
        if self.state.error is None:
            tail = self.stderr.strip().splitlines()[-1:] or [""]
            if code is not None and code < 0:
                msg = f"The inference worker was killed (signal {-code}) before it finished."
                self.state.error = WorkerRunError("worker_crashed", msg, self.stderr)
            elif self._garbage and not self.state.result_path:
                self.state.error = WorkerRunError(
                    "worker_protocol",
                    "The inference worker sent output Monocle cannot understand; see the system console.",
                    "\n".join(self._garbage),
                )
            elif "No module named" in self.stderr:
                self.state.error = WorkerRunError(
                    "dependencies_missing",
                    "The inference interpreter is missing Python packages Monocle needs; see the system console.",
                    self.stderr,
                )
            else:
                self.state.error = WorkerRunError(
                    "worker_crashed",
                    f"The inference worker stopped unexpectedly (exit code {code}).",
                    tail[0] + "\n" + self.stderr,
                )
        else:
            self.state.error.detail = self.stderr
        log.info("worker failed: %s\n%s", self.state.error.message, self.state.error.detail)
