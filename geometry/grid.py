"""Separable bilinear sampling of an image on a regular grid of points."""

from __future__ import annotations

import numpy as np


def grid_axis(coords: np.ndarray, origin: float, step: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per grid line: the index of the sample before it (at most ``size - 2``) and the float32
    fraction of the way to the next one, clamped to the image."""
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
    r0, tr = grid_axis(ys, oy, step, h)
    c0, tc = grid_axis(xs, ox, step, w)
    r1, c1 = np.minimum(r0 + 1, h - 1), np.minimum(c0 + 1, w - 1)
    top = img[r0]
    rows = top + tr[:, None] * (img[r1] - top)
    left = rows[:, c0]
    return left + tc[None, :] * (rows[:, c1] - left)
