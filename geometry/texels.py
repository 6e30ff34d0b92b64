"""The relief texture's layout: one texel per vertex, in vertex order.

Blender's Displace modifier reads the texel under each vertex's relief UV. Giving every
vertex a texel of its own, in vertex order, makes the texture exactly as large as the
mesh (never the object's bounding box: a thin diagonal object would need ~60 texels per
vertex that way), makes the values a plain copy of the relief rows (no scatter), and
makes every UV a function of the vertex index alone.
"""

from __future__ import annotations

import math

import numpy as np


def texel_grid(count: int) -> tuple[int, int]:
    """(height, width) of the near-square texture holding ``count`` texels (at least 1 x 1)."""
    width = max(1, math.ceil(math.sqrt(count)))
    return max(1, math.ceil(count / width)), width


def texel_texture(count: int) -> tuple[np.ndarray, np.ndarray]:
    """An empty texture for ``count`` texels and a view of its first ``count`` texels' RGB.

    Returns the (h, w, 4) float32 texture in Blender's pixel order, alpha 1 and texels past
    ``count`` zero, and its (count, 3) rows: values written into the rows are laid out, with no
    copy (the geometry writes the relief there directly; at 1M vertices a copy and its fresh
    12 MB cost ~10 ms).
    """
    h, w = texel_grid(count)
    texture = np.empty((h * w, 4), dtype=np.float32)
    texture[count:, :3] = 0.0
    texture[:, 3] = 1.0
    return texture.reshape(h, w, 4), texture[:count, :3]


def texel_uvs(count: int) -> np.ndarray:
    """The (count, 2) float32 UVs of the first ``count`` texel centres of ``texel_texture(count)``
    (exact under nearest and bilinear sampling)."""
    h, w = texel_grid(count)
    uvs = np.empty((h, w, 2), dtype=np.float32)
    uvs[:, :, 0] = ((np.arange(w) + 0.5) / w)[None, :]
    uvs[:, :, 1] = ((np.arange(h) + 0.5) / h)[:, None]
    return uvs.reshape(-1, 2)[:count]


def written_layout(texture: np.ndarray, rows: np.ndarray, nonzero: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The layout of values written into ``rows`` of ``texture`` (both from ``texel_texture``):
    the texture and the (N, 2) UVs of its first N texel centres, or, when every value is zero
    (a flat depth), a single zero texel that serves all N vertices. ``nonzero``, when the caller
    knows it, says whether any value is non-zero (saves a pass over the strided rows)."""
    n = rows.shape[0]
    if not (rows.any() if nonzero is None else nonzero):
        return np.array([[[0.0, 0.0, 0.0, 1.0]]], dtype=np.float32), np.full((n, 2), 0.5, dtype=np.float32)
    return texture, texel_uvs(n)


def texel_layout(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Texel ``k`` holds ``values[k]`` (an (N, 3) vector per vertex).

    Returns the texture as Blender's image pixels want it, (h, w, 4) float32 with row 0
    at v = 0 (the bottom) and alpha 1, and the (N, 2) float32 UVs of the texel centres
    (exact under nearest and bilinear sampling). Texels past ``N`` hold zero; all-zero
    values get a single texel.
    """
    values = np.asarray(values, dtype=np.float32).reshape(-1, 3)
    texture, rows = texel_texture(values.shape[0])
    rows[...] = values
    return written_layout(texture, rows)
