"""Separable bilinear sampling of an image on a regular grid of points."""

from __future__ import annotations

import numpy as np


def _axis(coords: np.ndarray, origin: float, step: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    f = np.clip((np.asarray(coords, dtype=np.float64) - origin) / step, 0.0, size - 1.0)
    i0 = np.minimum(f.astype(np.int64), max(size - 2, 0))
    return i0, (f - i0).astype(np.float32)


def grid_bilinear(image: np.ndarray, ox: float, oy: float, step: float, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Values of ``image`` (pixel ``(r, c)`` centred at ``(ox + c * step, oy + r * step)``)
    at every point of the grid ``ys x xs``, bilinear, clamped at the edges; (len(ys), len(xs)) float32.

    Two 1D passes instead of a gather per point: several times faster on large grids.
    """
    img = np.asarray(image, dtype=np.float32)
    h, w = img.shape
    r0, tr = _axis(ys, oy, step, h)
    c0, tc = _axis(xs, ox, step, w)
    r1, c1 = np.minimum(r0 + 1, h - 1), np.minimum(c0 + 1, w - 1)
    rows = img[r0] + tr[:, None] * (img[r1] - img[r0])
    return rows[:, c0] + tc[None, :] * (rows[:, c1] - rows[:, c0])


def grid_cells(ox: float, oy: float, step: float, shape: tuple[int, int], xs: np.ndarray,
               ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column index of the image cell (between four pixel centres) holding each grid line."""
    h, w = shape
    r0, _ = _axis(ys, oy, step, h)
    c0, _ = _axis(xs, ox, step, w)
    return r0, c0
