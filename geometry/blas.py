"""One BLAS thread for the template step's small dense algebra.

OpenBLAS splits every call over its threads, and for the lattice fit's systems (tens to a couple of
hundred unknowns, ten solves an object) handing the work out costs far more than the arithmetic: a
192 x 192 solve took 17 ms with OpenBLAS's two threads on a busy two-core machine and 0.3 ms with
one (``bench/bench_retrieval.py`` measures the whole step both ways). ``single_threaded()`` sets the
OpenBLAS libraries that numpy and scipy loaded to one thread for a block and puts back what they had
after. Where none is found (another BLAS, a numpy built without one) it does nothing.
"""

from __future__ import annotations

import ctypes
import functools
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# The exported names of OpenBLAS's thread count, as numpy's (64-bit integer) and scipy's builds spell them.
_SUFFIXES = ("64_", "_64_", "")
_PREFIXES = ("openblas", "scipy_openblas")
_PATTERNS = ("*openblas*.so*", "*openblas*.dylib", "*openblas*.dll")

_lock = threading.Lock()
_depth = 0
_saved: list[int] = []


def _library_files() -> list[Path]:
    """The OpenBLAS files bundled with the numpy and scipy this process imported (wheels keep them in
    ``<package>.libs``, ``<package>/.libs`` or ``<package>/.dylibs``)."""
    found: list[Path] = []
    for name in ("numpy", "scipy"):
        origin = getattr(sys.modules.get(name), "__file__", None)
        if not origin:
            continue
        here = Path(origin).resolve().parent
        for folder in (here.parent / f"{name}.libs", here / ".libs", here / ".dylibs"):
            if folder.is_dir():
                found += sorted(p for pattern in _PATTERNS for p in folder.glob(pattern))
    return list(dict.fromkeys(found))


def _thread_functions(lib: ctypes.CDLL) -> tuple[Any, Any] | None:
    """(set, get) thread-count functions of one OpenBLAS library, under any of its builds' names."""
    for prefix in _PREFIXES:
        for suffix in _SUFFIXES:
            setter = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            getter = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            if setter is not None and getter is not None:
                setter.argtypes, setter.restype = [ctypes.c_int], None
                getter.argtypes, getter.restype = [], ctypes.c_int
                return setter, getter
    return None


@functools.lru_cache(maxsize=1)
def controls() -> tuple[tuple[Any, Any], ...]:
    """(set, get) thread-count functions of each OpenBLAS found (empty where there is none)."""
    pairs = []
    for path in _library_files():
        try:
            lib = ctypes.CDLL(str(path))  # already loaded by numpy/scipy: the same library, not a copy
        except OSError:
            continue
        found = _thread_functions(lib)
        if found is not None:
            pairs.append(found)
    return tuple(pairs)


def thread_counts() -> list[int]:
    """The thread count of each OpenBLAS found."""
    return [int(get()) for _, get in controls()]


@contextmanager
def single_threaded() -> Iterator[None]:
    """The block runs with one OpenBLAS thread; nested blocks and other Python threads share the
    outermost block's setting, which is undone when the last block ends."""
    global _depth
    with _lock:
        if _depth == 0:
            _saved[:] = thread_counts()
            for setter, _ in controls():
                setter(1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for (setter, _), count in zip(controls(), _saved):
                    setter(max(int(count), 1))
