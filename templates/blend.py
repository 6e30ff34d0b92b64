"""The numpy half of the template blend: which template vertices the camera sees, and how much.

The Blender half (``scene/template_blend.py``) pulls those vertices onto the reconstruction with
a Shrinkwrap modifier weighted by these values; the rest of the template keeps its own shape; how
much the slider lets the template take the seen side over is ``templates.policy``.
"""

from __future__ import annotations

import numpy as np

from . import render
from .match import Camera, Pose
from .mesh import vertex_normals

FACING_LOW = 0.05  # cosine of the view angle where a vertex starts to follow the photo
FACING_HIGH = 0.35  # ... and where it follows it fully
VISIBILITY_GRID = 256
DEPTH_TOLERANCE = 0.01  # fraction of the object's size a vertex may lie behind the visible surface


def _smoothstep(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def visibility_weights(vertices: np.ndarray, triangles: np.ndarray, pose: Pose, camera: Camera,
                       trust: float = 0.0) -> np.ndarray:
    """Per-vertex weight in [0, 1]: 1 where the camera sees the posed template's surface head-on,
    easing to 0 towards grazing angles, 0 where hidden (behind the camera or by the template itself).

    The easing band narrows as the depth's ``trust`` grows; with fully trusted depth every seen vertex
    weighs 1, the rim included, so the whole seen side lands on the reconstruction."""
    v = np.asarray(vertices, dtype=np.float64)
    tris = np.asarray(triangles, dtype=np.int64)
    p = pose.apply(v)
    normals = np.einsum("ij,nj->ni", pose.rotation, vertex_normals(v, tris))
    dist = np.linalg.norm(p, axis=1)
    facing = np.einsum("ni,ni->n", normals, -p / np.maximum(dist, 1e-12)[:, None])
    f = float(camera.focal_px)
    xy, z = render.project_perspective(p, f, 0.5 * camera.width, 0.5 * camera.height)
    front = z > 1e-9
    if not front.any():
        return np.zeros(len(v))
    lo, hi = xy[front].min(axis=0), xy[front].max(axis=0)
    side = float(max(hi - lo)) * 1.02 + 1e-9
    n = VISIBILITY_GRID
    origin = 0.5 * (lo + hi) - 0.5 * side
    gxy = (xy - origin) * (n / side)
    ras = render.rasterize(gxy, z, tris, (n, n))
    zbuf = np.where(np.isfinite(ras.depth), ras.depth, -np.inf)
    # the farthest visible depth around each pixel: a vertex between pixel centres still counts
    pad = np.pad(zbuf, 1, constant_values=-np.inf)
    around = np.max([pad[i:i + n, j:j + n] for i in range(3) for j in range(3)], axis=0)
    col = np.clip(np.floor(gxy[:, 0]).astype(np.int64), 0, n - 1)
    row = np.clip(np.floor(gxy[:, 1]).astype(np.int64), 0, n - 1)
    size = float(np.linalg.norm(np.ptp(p, axis=0)))
    seen = front & (z <= around[row, col] + DEPTH_TOLERANCE * size)
    if trust >= 1.0:
        return seen.astype(np.float64)
    keep = 1.0 - max(float(trust), 0.0)
    return np.where(seen, _smoothstep(FACING_LOW * keep, FACING_HIGH * keep + 1e-3, facing), 0.0)
