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


def texel_layout(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Texel ``k`` holds ``values[k]`` (an (N, 3) vector per vertex).

    Returns the texture as Blender's image pixels want it, (h, w, 4) float32 with row 0
    at v = 0 (the bottom) and alpha 1, and the (N, 2) float32 UVs of the texel centres
    (exact under nearest and bilinear sampling). Texels past ``N`` hold zero; all-zero
    values get a single texel.
    """
    values = np.asarray(values, dtype=np.float32).reshape(-1, 3)
    n = values.shape[0]
    if not values.any():  # no relief (a flat depth): one zero texel serves every vertex
        return np.array([[[0.0, 0.0, 0.0, 1.0]]], dtype=np.float32), np.full((n, 2), 0.5, dtype=np.float32)
    h, w = texel_grid(n)
    texture = np.empty((h * w, 4), dtype=np.float32)
    texture[:n, :3] = values
    texture[n:, :3] = 0.0
    texture[:, 3] = 1.0
    uvs = np.empty((h, w, 2), dtype=np.float32)
    uvs[:, :, 0] = ((np.arange(w) + 0.5) / w)[None, :]
    uvs[:, :, 1] = ((np.arange(h) + 0.5) / h)[:, None]
    return texture.reshape(h, w, 4), uvs.reshape(-1, 2)[:n]
