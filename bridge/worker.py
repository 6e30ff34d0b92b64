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
from typing import Any, Callable, Iterable, Iterator

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


class EventJob:
    """A worker request seen through its events: progress, warnings, the result or an error.

    Subclasses feed ``_events`` (``None`` marks the end of the request) and say in
    ``_finish`` how the request ended; ``poll`` and ``wait`` are shared.
    """

    def __init__(self) -> None:
        self.state = WorkerState()
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.started_at = 0.0

    @property
    def pid(self) -> int | None:
        raise NotImplementedError

    @property
    def stderr(self) -> str:
        raise NotImplementedError

    def cancel(self) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        raise NotImplementedError

    # -- progress ----------------------------------------------------------------------------
    def poll(self) -> WorkerState:
        """Apply every event received so far; never blocks."""
        while not self.state.done:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return self.state
            if event is None:
                self._finish()
            else:
                self._apply(event)
        return self.state

    def wait(self, on_event: Callable[[WorkerState], None] | None = None, timeout: float | None = None) -> str:
        """Block until the request ends; returns the result.json path or raises WorkerRunError."""
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

    def _conclude(self, exit_code: int | None, garbage: list[str]) -> None:
        """Set the final state from how the request ended (``exit_code`` None: no answer at all)."""
        self.state.done = True
        if self.state.error and self.state.error.code == "cancelled":
            return
        if exit_code == 0 and self.state.result_path and Path(self.state.result_path).is_file():
            return
        if self.state.error is None:
            self.state.error = classify_failure(exit_code, garbage, self.stderr)
        else:
            self.state.error.detail = self.stderr
        log.info("worker failed: %s\n%s", self.state.error.message, self.state.error.detail)


def classify_failure(exit_code: int | None, garbage: list[str], stderr: str) -> WorkerRunError:
    """One plain sentence for a worker that ended without reporting an error of its own."""
    tail = stderr.strip().splitlines()[-1:] or [""]
    if exit_code is not None and exit_code < 0:
        msg = f"The inference worker was killed (signal {-exit_code}) before it finished."
        return WorkerRunError("worker_crashed", msg, stderr)
    if garbage:
        return WorkerRunError(
            "worker_protocol",
            "The inference worker sent output Monocle cannot understand; see the system console.",
            "\n".join(garbage),
        )
    if "No module named" in stderr:
        return WorkerRunError(
            "dependencies_missing",
            "The inference interpreter is missing Python packages Monocle needs; see the system console.",
            stderr,
        )
    code = "unknown" if exit_code is None else exit_code
    return WorkerRunError(
        "worker_crashed", f"The inference worker stopped unexpectedly (exit code {code}).", tail[0] + "\n" + stderr
    )


def read_events(stream: Iterable[str], garbage: list[str]) -> Iterator[dict[str, Any]]:
    """The protocol events in a worker's stdout; any other non-empty line goes to ``garbage``."""
    for line in stream:
        line = line.strip()
        if not line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if isinstance(event, dict) and "event" in event:
            yield event
        else:
            garbage.append(line[:200])


def start_process(cmd: list[str], env: dict[str, str], *, stdin: Any = subprocess.DEVNULL) -> subprocess.Popen[str]:
    """Start a worker process with text pipes; a missing interpreter is a WorkerRunError."""
    try:
        return subprocess.Popen(
            cmd,
            cwd=str(EXTENSION_DIR),
            env=env,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            # a terminal's Ctrl-C reaches Blender alone, which cancels its workers in order
            start_new_session=os.name == "posix",
        )
    except OSError as exc:
        raise WorkerRunError(
            "worker_not_found",
            f"Could not start the inference interpreter {cmd[0]!r}; check Monocle's preferences.",
            str(exc),
        ) from None


def stop_process(proc: subprocess.Popen[str], grace: float = CANCEL_GRACE_S) -> None:
    """Terminate, then kill if it does not exit within ``grace`` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


class WorkerJob(EventJob):
    """One one-shot worker process (``python -m inference ARGS``) and the state its events describe."""

    def __init__(
        self,
        args: list[str],
        *,
        interpreter: str = "",
        extra_paths: list[str] | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.args = args
        self.cmd = worker_command(interpreter, args)
        self.env = worker_env(extra_paths, extra_env)
        self._stderr: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        self._threads: list[threading.Thread] = []
        self._garbage: list[str] = []

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> WorkerJob:
        self.started_at = time.perf_counter()
        self._proc = start_process(self.cmd, self.env)
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
        for event in read_events(self._proc.stdout, self._garbage):
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
        stop_process(proc)
        self.state.error = WorkerRunError("cancelled", "Reconstruction cancelled.")
        self.state.done = True

    def _finish(self) -> None:
        assert self._proc
        try:
            code = self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = self._proc.wait()
        for t in self._threads:
            t.join(timeout=2)
        garbage = self._garbage if not self.state.result_path else []
        self._conclude(code, garbage)
