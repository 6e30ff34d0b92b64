"""Asking whether another process of this machine still runs (for cleaning up what dead runs left)."""

from __future__ import annotations

import os
import sys


def pid_alive(pid: int) -> bool | None:
    """Whether process ``pid`` runs on this machine; None where that cannot be asked safely
    (on Windows ``os.kill(pid, 0)`` terminates the process instead of probing it)."""
    if sys.platform == "win32":
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but is someone else's
        return True
    return True
