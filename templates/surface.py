"""Points spread evenly over a triangle mesh's surface (pure numpy): the one sampler the pose
refinement, the benchmark's metrics and the tests share."""

from __future__ import annotations

import numpy as np


def sample_surface(vertices: np.ndarray, triangles: np.ndarray, n: int,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points on the triangles (T, 3), area-weighted and uniform on each, and the unit normals
    of their triangles (zero on a degenerate one); deterministic for a ``seed``. Raises ValueError
    for a mesh without area."""
    v = np.asarray(vertices, np.float64)
    t = np.asarray(triangles, np.int64).reshape(-1, 3)
    a, b, c = v[t[:, 0]], v[t[:, 1]], v[t[:, 2]]
    cross = np.cross(b - a, c - a)
    area = np.linalg.norm(cross, axis=1)
    total = area.sum()
    if not total > 0:
        raise ValueError("mesh has no surface area")
    rng = np.random.default_rng(seed)
    face = rng.choice(len(t), n, p=area / total)
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)  # (1 - s, s (1 - r2), s r2): uniform barycentric coordinates
    pts = (1 - s)[:, None] * a[face] + (s * (1 - r2))[:, None] * b[face] + (s * r2)[:, None] * c[face]
    return pts, cross[face] / np.maximum(area[face], 1e-30)[:, None]
