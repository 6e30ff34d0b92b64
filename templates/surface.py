"""Points spread evenly over a triangle mesh's surface (pure numpy): the one sampler the pose
refinement, the benchmark's metrics and the tests share."""

from __future__ import annotations

import numpy as np


def sample_faces(vertices: np.ndarray, triangles: np.ndarray, n: int,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The triangle (n,) and barycentric coordinates (n, 3) of ``n`` points spread over the triangles
    (T, 3), area-weighted and uniform on each; deterministic for a ``seed``. Raises ValueError for a
    mesh without area."""
    v = np.asarray(vertices, np.float64)
    t = np.asarray(triangles, np.int64).reshape(-1, 3)
    area = np.linalg.norm(np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]]), axis=1)
    total = area.sum()
    if not total > 0:
        raise ValueError("mesh has no surface area")
    rng = np.random.default_rng(seed)
    face = rng.choice(len(t), n, p=area / total)
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)  # (1 - s, s (1 - r2), s r2): uniform barycentric coordinates
    return face, np.stack([1 - s, s * (1 - r2), s * r2], axis=1)


def sample_surface(vertices: np.ndarray, triangles: np.ndarray, n: int,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points on the triangles (T, 3), area-weighted and uniform on each (``sample_faces``), and
    the unit normals of their triangles (zero on a degenerate one); deterministic for a ``seed``.
    Raises ValueError for a mesh without area."""
    v = np.asarray(vertices, np.float64)
    t = np.asarray(triangles, np.int64).reshape(-1, 3)
    face, bary = sample_faces(v, t, n, seed)
    corners = v[t[face]]  # (n, 3 corners, 3)
    pts = np.einsum("nc,ncj->nj", bary, corners)
    cross = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    return pts, cross / np.maximum(np.linalg.norm(cross, axis=1), 1e-30)[:, None]
