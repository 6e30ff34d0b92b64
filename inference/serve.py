"""``python -m inference serve``: a warm worker that keeps its models loaded between requests.

Importing torch and transformers and loading the models costs seconds; a worker that
stays up pays that once per Blender session instead of once per reconstruction.

Requests, one JSON object per line on stdin:

- ``{"id": "7", "args": ["run", "--image", "...", "--out", "...", "--engine", "transformers"]}``:
  ``args`` is exactly the command line of a one-shot ``python -m inference`` (``run``,
  ``load``, ``engines``, ``models``, ``download``). Requests run one after another.
- ``{"id": "8", "cancel": "7"}``: stop request 7 at its next progress step (or skip it if queued).
- ``{"id": "9", "shutdown": true}``: answer ``done`` and exit.

Events on stdout, one JSON object per line:

- ``{"event": "ready", "protocol": 1, "pid": N}`` once, when requests are accepted;
- every event of the one-shot command, each with the request's ``"id"``;
- ``{"event": "done", "id": "7", "exit_code": 0, "seconds": 1.2, "loaded": 0, "model_loads": 2,
  "requests": 3}`` after each request: ``loaded`` models this request loaded, ``model_loads``
  since the worker started;
- ``{"event": "exit", "reason": "idle" | "stdin_closed" | "shutdown"}`` last.

The worker exits after ``--idle-timeout`` seconds without a request, or as soon as stdin
closes (Blender quit or crashed); a request running when stdin closes is cancelled.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from typing import IO, Any, Callable

from .protocol import EXIT_BAD_INPUT, EXIT_INTERNAL, Emitter, WorkerError

PROTOCOL = 1
ONE_SHOT_COMMANDS = ("run", "load", "engines", "models", "download")

Handler = Callable[[list[str], Emitter], int]


class RequestEmitter(Emitter):
    """Events of one request: tagged with its id; progress steps are where cancellation lands."""

    def __init__(
        self, stream: IO[str], lock: Any, request_id: Any, cancelled: threading.Event, closed: threading.Event
    ) -> None:
        super().__init__(stream)
        self._lock = lock  # one lock for every writer of the shared stdout
        self.request_id = request_id
        self.cancelled = cancelled
        self.closed = closed

    def emit(self, event: str, **fields: Any) -> None:
        super().emit(event, id=self.request_id, **fields)

    def progress(self, stage: str, fraction: float, message: str = "") -> None:
        if self.cancelled.is_set() or self.closed.is_set():
            raise WorkerError("cancelled", "The reconstruction was cancelled.")
        super().progress(stage, fraction, message)


def _model_loads() -> int:
    from .engines.hf import RUNTIME

    return RUNTIME.loads


def serve(stdin: IO[str], stdout: IO[str], handler: Handler, idle_timeout: float = 600.0) -> int:
    """Answer requests from ``stdin`` until idle, shut down or stdin closes; returns the exit code (0)."""
    base = Emitter(stdout)
    lock = base._lock
    inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
    cancels: dict[str, threading.Event] = {}
    cancels_lock = threading.Lock()
    closed = threading.Event()

    def cancel_event(request_id: Any) -> threading.Event:
        with cancels_lock:
            return cancels.setdefault(str(request_id), threading.Event())

    def read() -> None:
        for line in stdin:
            line = line.strip()
            if not line:
                continue
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError
            except ValueError:
                inbox.put(("bad", line[:200]))
                continue
            if "cancel" in request:  # acted on at once, even while a request runs
                cancel_event(request["cancel"]).set()
                continue
            inbox.put(("request", request))
        closed.set()
        inbox.put(("eof", None))

    threading.Thread(target=read, name="monocle-serve-stdin", daemon=True).start()
    base.emit("ready", protocol=PROTOCOL, pid=os.getpid())
    served = 0
    while True:
        try:
            kind, payload = inbox.get(timeout=idle_timeout if idle_timeout and idle_timeout > 0 else None)
        except queue.Empty:
            base.emit("exit", reason="idle")
            return 0
        if kind == "eof":
            base.emit("exit", reason="stdin_closed")
            return 0
        if kind == "bad":
            base.error("bad_request", f"A serve request must be one JSON object per line; got {payload!r}.")
            continue
        request: dict[str, Any] = payload
        request_id = request.get("id")
        emit = RequestEmitter(stdout, lock, request_id, cancel_event(request_id), closed)
        if request.get("shutdown"):
            emit.emit("done", exit_code=0, seconds=0.0, loaded=0, model_loads=_model_loads(), requests=served)
            base.emit("exit", reason="shutdown")
            return 0
        t = time.perf_counter()
        before = _model_loads()
        code = _handle(request, emit, handler)
        served += 1
        after = _model_loads()
        emit.emit("done", exit_code=code, seconds=round(time.perf_counter() - t, 4), loaded=after - before,
                  model_loads=after, requests=served)
        with cancels_lock:
            cancels.pop(str(request_id), None)


def _handle(request: dict[str, Any], emit: RequestEmitter, handler: Handler) -> int:
    args = request.get("args")
    if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
        emit.error("bad_request", "A serve request needs \"args\": the command line as a list of strings.")
        return EXIT_BAD_INPUT
    if args[0] not in ONE_SHOT_COMMANDS:
        emit.error("bad_request", f"The serve worker runs {', '.join(ONE_SHOT_COMMANDS)}; not {args[0]!r}.")
        return EXIT_BAD_INPUT
    if emit.cancelled.is_set():
        emit.error("cancelled", "The reconstruction was cancelled.")
        return EXIT_INTERNAL
    try:
        return handler(args, emit)
    except SystemExit as exc:  # argparse reported bad usage already
        return int(exc.code) if isinstance(exc.code, int) else EXIT_BAD_INPUT
