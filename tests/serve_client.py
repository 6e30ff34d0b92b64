"""A ``python -m inference serve`` process driven the way the Blender side drives it."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from conftest import worker_env


def strict_json(line: str) -> dict:
    """Parse one stdout line as standard JSON: NaN and Infinity are not JSON."""

    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON: {line!r}")

    return json.loads(line, parse_constant=refuse)


class Worker:
    """A serve process; ``events()`` collects stdout events up to a predicate."""

    def __init__(self, ext_dir: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "inference", "serve", *args], cwd=ext_dir, env=worker_env(ext_dir),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def send(self, obj: dict | str) -> None:
        self.proc.stdin.write((obj if isinstance(obj, str) else json.dumps(obj)) + "\n")
        self.proc.stdin.flush()

    def send_bytes(self, data: bytes) -> None:
        self.proc.stdin.flush()
        self.proc.stdin.buffer.write(data)
        self.proc.stdin.buffer.flush()

    def events(self, until, timeout: float = 300) -> list[dict]:
        """Events up to and including the first for which ``until(event)`` is true."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, "worker exited early:\n" + "".join(self.stderr)
            event = strict_json(line)  # anything but JSON on stdout is a protocol bug
            out.append(event)
            if until(event):
                return out

    def request(self, request_id: str | float | None, args: list[str], timeout: float = 300) -> list[dict]:
        self.send({"id": request_id, "args": args})
        return self.events(lambda e: e["event"] == "done" and e.get("id") == request_id, timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


@contextmanager
def started_workers(ext_dir: Path, ready_timeout: float | None = None) -> Iterator[Callable[..., Worker]]:
    """``start(*args)`` starts a serve worker (and waits for its ``ready`` when given a timeout);
    every worker started is killed on leaving."""
    workers: list[Worker] = []

    def start(*args: str) -> Worker:
        w = Worker(ext_dir, *args)
        workers.append(w)
        if ready_timeout is not None:
            w.events(lambda e: e["event"] == "ready", ready_timeout)
        return w

    try:
        yield start
    finally:
        for w in workers:
            w.close()
