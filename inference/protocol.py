"""The worker's stdout protocol: one JSON object per line, nothing else.

Events:
  progress  {"event": "progress", "stage": str, "fraction": 0..1, "message": str}
  warning   {"event": "warning", "code": str, "message": str}
  error     {"event": "error", "code": str, "message": str}
  result    {"event": "result", "path": str}

Everything human-oriented (logs, tracebacks) goes to stderr.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import sys
import threading
from typing import IO, Any

log = logging.getLogger(__name__)

# Exit codes of ``python -m inference run``.
EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2

# Stable error codes: the Blender side and the CLI report map on these.
BAD_INPUT_CODES = frozenset(
    {
        "image_missing",
        "image_unreadable",
        "image_unsupported",
        "image_too_small",
        "image_too_large",
        "mask_empty",
        "mask_unreadable",
        "depth_unreadable",
        "no_object",
        "bad_argument",
        "corrections_unreadable",
        "result_unreadable",
        "no_object_there",
    }
)

# The disk (or the user's quota) has no room for the results: neither bad input nor a bug.
DISK_FULL = "disk_full"
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


class WorkerError(Exception):
    """An error with a stable machine code and one plain sentence for the user."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def exit_code(self) -> int:
        return EXIT_BAD_INPUT if self.code in BAD_INPUT_CODES else EXIT_INTERNAL


class Emitter:
    """Writes protocol events to a stream (stdout by default), one per line."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._lock = threading.Lock()

    def emit(self, event: str, **fields: Any) -> None:
        payload = {"event": event, **fields}
        try:
            line = json.dumps(payload, separators=(",", ":"), allow_nan=False)
        except ValueError:  # NaN or infinity somewhere: JSON has no such numbers, so they go out as null
            log.warning("non-finite number in a %r event, sent as null", event)
            line = json.dumps(_finite(payload), separators=(",", ":"), allow_nan=False)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def progress(self, stage: str, fraction: float, message: str = "") -> None:
        fraction = min(max(fraction, 0.0), 1.0) if math.isfinite(fraction) else 0.0
        self.emit("progress", stage=stage, fraction=round(fraction, 4), message=message)

    def warning(self, code: str, message: str) -> None:
        self.emit("warning", code=code, message=message)

    def error(self, code: str, message: str) -> None:
        self.emit("error", code=code, message=message)

    def result(self, path: str) -> None:
        self.emit("result", path=path)


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def parse_event(line: str) -> dict[str, Any]:
    """Parse one stdout line of the worker; raises ValueError on anything else."""
    obj = json.loads(line)
    if not isinstance(obj, dict) or not isinstance(obj.get("event"), str):
        raise ValueError("not a worker event")
    return obj
