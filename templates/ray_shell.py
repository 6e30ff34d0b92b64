"""The fitted template resampled on the reconstruction's camera rays: the numpy half of a blend
whose visible side is the reconstruction itself and whose hidden side is the fitted template.

Every vertex of a reconstruction (front, closed back, seam) lies on the camera ray through its
pixel, a front vertex and its back copy on the same ray. Casting each ray into the fitted, posed
template gives the template's nearest surface point along it (for the front) and its farthest (for
the back). Each hit is returned in the template's *rest* model space (the same barycentric point of
the undeformed template), so the template's lattice maps it back onto the fitted surface and the
Fit slider and lattice edits keep working on the resampled mesh.

Rays that miss the template, back hits in front of the reconstruction's own surface, and the seam
keep the reconstruction's vertex: they are reported as misses.
"""

from __future__ import annotations

import numpy as np

from . import render

# longest side of the raster that picks each ray's triangle; the hit itself is exact on that triangle's
# plane (768 gave the same category-bench scores at 1.6x the template step's time)
GRID = 384
MIN_GAP = 0.002  # a back hit must lie this far (fraction of the object's size) behind the front


def _layer(xy: np.ndarray, z: np.ndarray, tris: np.ndarray, grid_xy: np.ndarray, n: tuple[int, int],
           far: bool) -> np.ndarray:
    """Triangle index per query point (-1: none) of the nearest (or farthest) surface."""
    depth = -z if far else z
    ras = render.rasterize(xy, depth, tris, n, perspective=False)
    col = np.clip(np.floor(grid_xy[:, 0]).astype(np.int64), 0, n[1] - 1)
    row = np.clip(np.floor(grid_xy[:, 1]).astype(np.int64), 0, n[0] - 1)
    return ras.tri[row, col]


def _intersect(rays: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance along unit ``rays`` (from the origin) to the planes of triangles ``a b c`` and the
    hit's barycentric coordinates in them (slightly outside [0, 1] where the raster's pixel and the
    exact ray disagree, by a fraction of a raster pixel)."""
    e1, e2 = b - a, c - a
    normal = np.cross(e1, e2)
    denom = np.einsum("ij,ij->i", normal, rays)
    safe = np.where(np.abs(denom) > 1e-15, denom, 1e-15)
    t = np.einsum("ij,ij->i", normal, a) / safe
    p = rays * t[:, None] - a
    d11, d12, d22 = (np.einsum("ij,ij->i", e1, e1), np.einsum("ij,ij->i", e1, e2), np.einsum("ij,ij->i", e2, e2))
    p1, p2 = np.einsum("ij,ij->i", p, e1), np.einsum("ij,ij->i", p, e2)
    det = np.where(np.abs(d11 * d22 - d12 * d12) > 1e-30, d11 * d22 - d12 * d12, 1e-30)
    u = (d22 * p1 - d12 * p2) / det
    v = (d11 * p2 - d12 * p1) / det
    return t, np.stack([1.0 - u - v, u, v], axis=1)


def resample(points: np.ndarray, front: np.ndarray, back: np.ndarray, fitted: np.ndarray, rest: np.ndarray,
             triangles: np.ndarray, floor: np.ndarray | None = None,
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The template on the rays of a reconstruction's vertices.

    ``points`` (N, 3): the reconstruction's vertices in camera space (camera at the origin, looking
    down -Z); ``front`` / ``back`` (N,) bool: which take the template's nearest / farthest hit
    (others, e.g. the seam, keep their point); ``fitted`` (V, 3): the fitted template's vertices
    posed in camera space; ``rest`` (V, 3): the same vertices in rest model space; ``triangles``;
    ``floor`` (N,): the distance along its ray a back hit must exceed (the reconstruction's front
    on that ray; default: the point's own distance).

    Returns (rest-space points (N, 3), hit (N,) bool, hit triangle (N,) int, -1 for misses, the
    hit's distance from the camera (N,)); a miss's rows are undefined (the caller keeps the
    reconstruction there).
    """
    pts = np.asarray(points, np.float64)
    tris = np.asarray(triangles, np.int64)
    fit = np.asarray(fitted, np.float64)
    n = len(pts)
    out = np.zeros((n, 3))
    hit = np.zeros(n, bool)
    tri_of = np.full(n, -1, np.int64)
    distance = np.zeros(n)
    want = np.asarray(front, bool) | np.asarray(back, bool)
    if not want.any() or tris.size == 0:
        return out, hit, tri_of, distance
    # one pinhole for both: unit focal length, the rays' directions as image coordinates
    zt = -fit[:, 2]
    zp = -pts[:, 2]
    ok_t = zt > 1e-9
    if not ok_t.all():
        tris = tris[ok_t[tris].all(axis=1)]
    xy_t = fit[:, :2] / np.where(ok_t, zt, 1.0)[:, None] * np.array([1.0, -1.0])
    xy_p = pts[:, :2] / np.where(zp > 1e-9, zp, 1.0)[:, None] * np.array([1.0, -1.0])
    lo, hi = xy_t[ok_t].min(axis=0), xy_t[ok_t].max(axis=0)
    side = float(max(hi - lo)) * 1.02 + 1e-12
    origin = 0.5 * (lo + hi) - 0.5 * side
    scale = GRID / side
    shape = (GRID, GRID)
    gt, gp = (xy_t - origin) * scale, (xy_p - origin) * scale
    inside = want & (zp > 1e-9) & np.all((gp >= 0) & (gp < GRID), axis=1)
    rays = pts / np.maximum(np.linalg.norm(pts, axis=1, keepdims=True), 1e-30)
    size = float(np.linalg.norm(np.ptp(fit, axis=0)))
    rest = np.asarray(rest, np.float64)
    for sel, far in ((inside & np.asarray(front, bool), False), (inside & np.asarray(back, bool), True)):
        idx = np.nonzero(sel)[0]
        if idx.size == 0:
            continue
        t = _layer(gt, zt, tris, gp[idx], shape, far)
        got = t >= 0
        idx, t = idx[got], t[got]
        tri = tris[t]
        dist, bary = _intersect(rays[idx], fit[tri[:, 0]], fit[tri[:, 1]], fit[tri[:, 2]])
        good = np.isfinite(dist) & (dist > 0) & np.all(bary > -0.5, axis=1)
        if far:  # the back must stay behind the reconstruction's own point on that ray
            least = np.linalg.norm(pts[idx], axis=1) if floor is None else np.asarray(floor, np.float64)[idx]
            good &= dist > least + MIN_GAP * size
        idx, tri, bary = idx[good], tri[good], np.clip(bary[good], 0.0, None)
        distance[idx] = dist[good]
        bary /= np.maximum(bary.sum(axis=1, keepdims=True), 1e-12)  # onto the triangle: the pixel's, not the ray's
        out[idx] = np.einsum("ij,ijk->ik", bary, rest[tri])
        hit[idx] = True
        tri_of[idx] = t[good]
    return out, hit, tri_of, distance
