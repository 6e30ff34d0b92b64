"""``python -m inference serve``: a warm worker that keeps its models loaded between requests.

Importing torch and transformers and loading the models costs seconds; a worker that
stays up pays that once per Blender session instead of once per reconstruction.

Requests, one JSON object per line on stdin:

- ``{"id": "7", "args": ["run", "--image", "...", "--out", "...", "--engine", "transformers"]}``:
  ``args`` is exactly the command line of a one-shot ``python -m inference`` (``run``, ``refine``,
  ``load``, ``engines``, ``models``, ``download``). Requests run one after another.
- ``{"id": "8", "cancel": "7"}``: stop request 7 at its next progress step (or skip it if queued).
  Only a queued or running request can be cancelled: a cancel for any other id is answered with a
  ``cancel_unknown`` warning and forgotten.
- ``{"id": "9", "shutdown": true}``: answer ``done`` and exit.

An id is a string, a finite number or null. A line that is not a JSON object, is not UTF-8, is longer
than ``MAX_LINE`` bytes or has another kind of id is answered with a ``bad_request`` error whose id is null.

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
import logging
import math
import os
import queue
import threading
import time
from typing import IO, Any, Callable, Iterator

from .protocol import EXIT_BAD_INPUT, EXIT_INTERNAL, Emitter, WorkerError

PROTOCOL = 1
ONE_SHOT_COMMANDS = ("run", "refine", "load", "engines", "models", "download")
MAX_LINE = 1 << 20  # a request is a short command line; a longer line is refused unread

Handler = Callable[[list[str], Emitter], int]
RequestId = str | int | float | None

log = logging.getLogger(__name__)


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
    from .engines import moge
    from .engines.hf import RUNTIME

    return RUNTIME.loads + moge.session_loads()


class _Active:
    """Requests queued or running, by id: the only ones a cancel can reach."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, list[threading.Event]] = {}

    def add(self, request_id: RequestId) -> threading.Event:
        event = threading.Event()
        with self._lock:
            self._events.setdefault(_id_key(request_id), []).append(event)
        return event

    def remove(self, request_id: RequestId, event: threading.Event) -> None:
        with self._lock:
            events = self._events.get(_id_key(request_id), [])
            if event in events:
                events.remove(event)
            if not events:
                self._events.pop(_id_key(request_id), None)

    def cancel(self, request_id: RequestId) -> bool:
        """Cancel every queued or running request with this id; False when there is none (nothing is kept)."""
        with self._lock:
            events = list(self._events.get(_id_key(request_id), []))
        for event in events:
            event.set()
        return bool(events)


def _id_key(request_id: RequestId) -> str:
    return json.dumps(request_id)  # "7" and 7 are different ids


def valid_id(value: Any) -> bool:
    """A request id is a string, a finite number or null: anything else could not be echoed back as JSON."""
    if value is None or isinstance(value, str):
        return True
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _read_lines(stdin: IO[str]) -> Iterator[str | None]:
    """The lines of ``stdin``; None for a line too long or not UTF-8 (the rest of it is skipped)."""
    source: Any = getattr(stdin, "buffer", None) or stdin  # bytes when possible: a bad byte is one bad request
    newline = b"\n" if source is not stdin else "\n"
    while True:
        line = source.readline(MAX_LINE)
        if not line:
            return
        if len(line) >= MAX_LINE and not line.endswith(newline):
            while (rest := source.readline(MAX_LINE)) and not rest.endswith(newline):
                pass
            yield None
            continue
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError:
                yield None
                continue
        yield line


def _parse_request(line: str) -> tuple[str, Any, Any]:
    """One request line as (kind, id, payload): kind is "request", "cancel" or "bad" (payload: the message)."""
    try:
        request = json.loads(line)
    except (ValueError, RecursionError):
        return "bad", None, f"A serve request must be one JSON object per line; got {line[:200]!r}."
    if not isinstance(request, dict):
        return "bad", None, f"A serve request must be one JSON object per line; got {line[:200]!r}."
    request_id = request.get("id")
    if not valid_id(request_id):
        return "bad", None, "A request id must be a string, a finite number or null."
    if "cancel" in request:
        if not valid_id(request["cancel"]):
            return "bad", request_id, "A cancel must name a request id: a string, a finite number or null."
        return "cancel", request_id, request["cancel"]
    return "request", request_id, request


class _Intake:
    """Reads the requests from stdin on its own thread: a cancel is acted on at once (even while
    a request runs); requests, unreadable lines and the end of stdin are queued on ``inbox``."""

    def __init__(self, stdin: IO[str], stdout: IO[str], lock: Any, active: _Active) -> None:
        self.stdin, self.stdout, self.lock, self.active = stdin, stdout, lock, active
        self.inbox: queue.Queue[tuple[str, Any, Any]] = queue.Queue()
        self.closed = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._read, name="monocle-serve-stdin", daemon=True).start()

    def _take(self, line: str | None) -> None:
        if line is None:
            message = f"A serve request must be one line of UTF-8 JSON of at most {MAX_LINE} bytes."
            self.inbox.put(("bad", None, message))
            return
        line = line.strip()
        if not line:
            return
        kind, request_id, payload = _parse_request(line)
        if kind == "cancel":  # acted on at once, even while a request runs
            if not self.active.cancel(payload):
                RequestEmitter(self.stdout, self.lock, request_id, threading.Event(), self.closed).warning(
                    "cancel_unknown", f"There is no queued or running request {payload!r} to cancel."
                )
            return
        if kind == "request":
            payload = (payload, self.active.add(request_id))
        self.inbox.put((kind, request_id, payload))

    def _read(self) -> None:
        try:
            for line in _read_lines(self.stdin):
                try:
                    self._take(line)
                except Exception:  # one request must never silence the worker
                    log.exception("serve: could not take a request")
                    self.inbox.put(("bad", None, "The serve worker could not read this request."))
        except Exception:
            log.exception("serve: reading stdin failed")
        self.closed.set()
        self.inbox.put(("eof", None, None))


def serve(stdin: IO[str], stdout: IO[str], handler: Handler, idle_timeout: float = 600.0) -> int:
    """Answer requests from ``stdin`` until idle, shut down or stdin closes; returns the exit code (0)."""
    base = Emitter(stdout)
    lock = base._lock
    active = _Active()
    intake = _Intake(stdin, stdout, lock, active)
    intake.start()
    base.emit("ready", protocol=PROTOCOL, pid=os.getpid())
    served = 0
    timeout = idle_timeout if idle_timeout and idle_timeout > 0 else None
    while True:
        try:
            kind, request_id, payload = intake.inbox.get(timeout=timeout)
        except queue.Empty:
            base.emit("exit", reason="idle")
            return 0
        if kind == "eof":
            base.emit("exit", reason="stdin_closed")
            return 0
        if kind == "bad":
            base.emit("error", id=request_id, code="bad_request", message=payload)
            continue
        request, cancelled = payload
        emit = RequestEmitter(stdout, lock, request_id, cancelled, intake.closed)
        if request.get("shutdown"):
            emit.emit("done", exit_code=0, seconds=0.0, loaded=0, model_loads=_model_loads(), requests=served)
            base.emit("exit", reason="shutdown")
            return 0
        served = _answer(request, emit, handler, active, served)


def _answer(request: dict[str, Any], emit: RequestEmitter, handler: Handler, active: _Active, served: int) -> int:
    """Run one request and report it done (with its time and model loads); returns the count served."""
    t = time.perf_counter()
    before = _model_loads()
    try:
        code = _handle(request, emit, handler)
    finally:
        active.remove(emit.request_id, emit.cancelled)
    served += 1
    after = _model_loads()
    emit.emit("done", exit_code=code, seconds=round(time.perf_counter() - t, 4), loaded=after - before,
              model_loads=after, requests=served)
    return served


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
