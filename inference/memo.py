"""Decoded files kept between the requests of a warm worker, keyed by the file's identity on disk
(device, inode, size, modification time), so a rewritten or replaced file is never served stale.

A correction of a large photo spends most of its time decoding the photo and the masks; the
``run`` that made the result puts its photo here, so the first correction finds it decoded.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

MAX_ITEMS = 24  # masks are one bit per pixel on disk but a byte in memory: about 12 MB each at 12 MP
_ITEMS: OrderedDict[tuple, Any] = OrderedDict()


def identity(path: str | os.PathLike) -> tuple:
    st = Path(path).stat()
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def remember(path: str | os.PathLike, kind: str, value: Any) -> None:
    _ITEMS[(kind, *identity(path))] = value
    _ITEMS.move_to_end((kind, *identity(path)))
    while len(_ITEMS) > MAX_ITEMS:
        _ITEMS.popitem(last=False)


def cached(path: str | os.PathLike, kind: str, load: Callable[[Path], Any]) -> Any:
    """``load(path)``, remembered while the file is the same one on disk."""
    key = (kind, *identity(path))
    if key in _ITEMS:
        _ITEMS.move_to_end(key)
        return _ITEMS[key]
    value = load(Path(path))
    remember(path, kind, value)
    return value
