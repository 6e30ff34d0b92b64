"""The depth file of a worker result: written by ``run.py``, read by the Blender side and the benchmarks.

Depth is stored zipped (``depth.npz``). A map the user supplied is stored as float32 in the
array ``depth``, bit for bit. An estimated map is stored as float16 when that is exact
enough: ``depth`` then holds the difference from ``offset`` (the middle of the objects'
depth span, so float16's relative precision is spent on the objects' relief, not on the
map's level), and every object pixel must come back within ``HALF_TOLERANCE`` of that span
with every value keeping its finiteness; otherwise it is stored as float32 like a user's
map. Results of older versions hold a plain float32 ``depth.npy``; :func:`load_depth_file`
reads every form.
"""

from __future__ import annotations

import os
import zipfile

import numpy as np

DEPTH_FILE = "depth.npz"
DEPTH_ARRAY = "depth"
OFFSET_ARRAY = "offset"
HALF_TOLERANCE = 1e-3


def storable_depth(depth: np.ndarray, objects: np.ndarray, exact: bool) -> dict[str, np.ndarray]:
    """The arrays that store ``depth``: float32 when ``exact``, else float16 about an offset when
    that keeps it within tolerance (``objects``, bool of the same shape, marks the pixels that
    must keep their depth and whose span sets the tolerance)."""
    depth = np.asarray(depth, dtype=np.float32)
    if exact:
        return {DEPTH_ARRAY: depth}
    with np.errstate(invalid="ignore", over="ignore"):
        lo = float(np.fmin.reduce(depth, axis=None, where=objects, initial=np.inf))  # fmin/fmax skip NaN
        hi = float(np.fmax.reduce(depth, axis=None, where=objects, initial=-np.inf))
        if not np.isfinite(hi - lo):
            return {DEPTH_ARRAY: depth}
        # a float16 offset: a value equal to it, 0 included, comes back exactly
        offset = np.float32(np.float16(0.5 * (lo + hi)))
        if not np.isfinite(offset):
            return {DEPTH_ARRAY: depth}
        half = (depth - offset).astype(np.float16)
        if np.count_nonzero(np.isfinite(half)) != np.count_nonzero(np.isfinite(depth)):
            return {DEPTH_ARRAY: depth}  # a value beyond float16's range around the offset
        error = half.astype(np.float32)
        error += offset
        np.abs(np.subtract(error, depth, out=error), out=error)
        worst = np.fmax.reduce(error, axis=None, where=objects, initial=0.0)
    if not worst <= HALF_TOLERANCE * (hi - lo):
        return {DEPTH_ARRAY: depth}
    return {DEPTH_ARRAY: half, OFFSET_ARRAY: np.array(offset, dtype=np.float32)}


def save_depth_file(path: str | os.PathLike, arrays: dict[str, np.ndarray], compress: bool = True) -> None:
    """Write :func:`storable_depth`'s arrays zipped, as ``np.savez_compressed`` does (or stored, as
    ``np.savez`` does, where speed matters more than size); the archive is closed even when a
    write fails (a full disk)."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        for name, values in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(values), allow_pickle=False)


def load_depth_file(path: str | os.PathLike) -> np.ndarray:
    """A result's depth map as float32, from a ``.npz`` (any float dtype) or an older ``.npy``.
    Raises OSError or ValueError when the file cannot be read."""
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.lib.npyio.NpzFile):
            with data:
                if DEPTH_ARRAY not in data.files:
                    raise ValueError(f"it holds no {DEPTH_ARRAY!r} array")
                depth = np.asarray(data[DEPTH_ARRAY], dtype=np.float32)
                if OFFSET_ARRAY in data.files:
                    depth += np.float32(data[OFFSET_ARRAY])
                return depth
    except (zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None
    return np.asarray(data, dtype=np.float32)
