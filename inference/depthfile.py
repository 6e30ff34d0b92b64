"""The depth file of a worker result: written by ``run.py``, read by the Blender side and the benchmarks.

Depth is stored zipped (``depth.npz``, array ``depth``). An estimated map is stored as
float16 when that is exact enough: every value keeps its finiteness and rounds by at most
``HALF_TOLERANCE`` of the depth span inside the objects (float16 keeps about three
significant digits, so a map whose objects sit in a thin slice of a large value range
fails the test). A map the user supplied, and any map that fails the test, is stored as
float32, bit for bit. Results of older versions hold a plain float32 ``depth.npy``;
:func:`load_depth_file` reads both.
"""

from __future__ import annotations

import os
import zipfile

import numpy as np

DEPTH_FILE = "depth.npz"
DEPTH_ARRAY = "depth"
HALF_TOLERANCE = 1e-3


def storable_depth(depth: np.ndarray, objects: np.ndarray, exact: bool) -> np.ndarray:
    """``depth`` as it is stored: float32 when ``exact``, else float16 when that keeps it within
    tolerance (``objects``, bool of the same shape, marks the pixels whose span sets it)."""
    depth = np.asarray(depth, dtype=np.float32)
    if exact:
        return depth
    with np.errstate(invalid="ignore", over="ignore"):
        lo = np.fmin.reduce(depth, axis=None, where=objects, initial=np.inf)  # fmin/fmax skip NaN
        hi = np.fmax.reduce(depth, axis=None, where=objects, initial=-np.inf)
        span = float(hi) - float(lo)
        if not np.isfinite(span):
            return depth
        half = depth.astype(np.float16)
        # a value beyond float16's range becomes inf and its error with it; NaN stays NaN, skipped
        error = half.astype(np.float32)
        np.abs(np.subtract(error, depth, out=error), out=error)
        ok = np.fmax.reduce(error, axis=None) <= HALF_TOLERANCE * span
    return half if ok else depth


def save_depth_file(path: str | os.PathLike, depth: np.ndarray) -> None:
    """Write a depth map (as :func:`storable_depth` made it) zipped."""
    np.savez_compressed(path, **{DEPTH_ARRAY: depth})


def load_depth_file(path: str | os.PathLike) -> np.ndarray:
    """A result's depth map as float32, from a ``.npz`` (any float dtype) or an older ``.npy``.
    Raises OSError or ValueError when the file cannot be read."""
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.lib.npyio.NpzFile):
            with data:
                if DEPTH_ARRAY not in data.files:
                    raise ValueError(f"it holds no {DEPTH_ARRAY!r} array")
                data = data[DEPTH_ARRAY]
    except (zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None
    return np.asarray(data, dtype=np.float32)
