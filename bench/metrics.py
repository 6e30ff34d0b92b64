"""Quality metrics for the benchmark: meshes, depth maps and masks (numpy + scipy only, no Blender).

Conventions follow ../shared/bench-data/METRICS.md:

* shapes are normalised so the ground truth's longest bounding-box edge is 10, centred on the
  GT bbox centre (Mesh R-CNN "gt-10"), so F-score at tau = 0.1 means 1 % of the object's size;
* Chamfer-L1 is the ONet one, 0.5 * (accuracy + completeness) with plain distances; Chamfer-L2 is
  the Mesh R-CNN one, the *sum* of both mean squared distances;
* normal consistency uses |cos| (flipped normals are not penalised), averaged over both directions;
* depth: AbsRel and delta1, for relative (inverse-depth) predictions after a least-squares scale
  and shift fitted in inverse-depth space (Marigold-style ``lstsq``, clamped to 1e-3 before
  inverting).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # geometry/ and templates/ are self-contained numpy: imported from the source tree
from geometry.check import is_closed as _closed  # noqa: E402
from geometry.mesh import fan_triangles  # noqa: E402
from templates.pose_fit import umeyama as _similarity  # noqa: E402
from templates.render import project_perspective, rasterize  # noqa: E402
from templates.surface import sample_surface as _sample_triangles  # noqa: E402

TAUS = (0.1, 0.3, 0.5)
LEAF_SIZE = 64  # kd-tree leaves: distances from a far-off surface (a raw, unaligned prediction) visit far fewer nodes


def kdtree(points: np.ndarray) -> cKDTree:
    """The kd-tree every metric here searches (build one with this to pass as ``gt_tree`` / ``dst_tree``)."""
    return cKDTree(points, leafsize=LEAF_SIZE)


# --------------------------------------------------------------------------- meshes


def triangulate(faces: np.ndarray | Sequence[Sequence[int]]) -> np.ndarray:
    """Fan-triangulate polygons (an (M, k) array or a list of index lists) into (T, 3) int64."""
    if isinstance(faces, np.ndarray) and faces.ndim == 2:
        groups = [faces.astype(np.int64)]
    else:
        polys = [np.asarray(f, np.int64) for f in faces]
        sizes = np.array([len(p) for p in polys])
        groups = [np.stack([polys[i] for i in np.nonzero(sizes == k)[0]]) for k in np.unique(sizes) if k >= 3]
    tris = []
    for g in groups:
        k = g.shape[1]
        if k < 3:
            continue
        j = np.arange(1, k - 1)
        tris.append(np.stack([np.repeat(g[:, :1], k - 2, 1), g[:, j], g[:, j + 1]], -1).reshape(-1, 3))
    return np.concatenate(tris) if tris else np.zeros((0, 3), np.int64)


def triangulate_flat(sizes: np.ndarray, loops: np.ndarray) -> np.ndarray:
    """Fan-triangulate polygons given Blender's way, as face sizes and the flat corner list, into (T, 3)
    int64: the product's fans (``templates.mesh.fan_triangles``)."""
    return fan_triangles(sizes, loops).astype(np.int64)


def is_closed(sizes: np.ndarray, loops: np.ndarray) -> bool:
    """Whether every edge of the polygons (face sizes + flat corner list) is used by exactly two faces,
    i.e. the surface is closed and edge-manifold (what ray-parity occupancy needs): the product's test
    (``geometry.check.is_closed``) without its orientation check; an empty mesh is not closed."""
    return len(sizes) > 0 and _closed(sizes, loops, oriented=False)


def face_normals_areas(vertices: np.ndarray, tris: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit normals (T, 3) and areas (T,) of triangles; degenerate ones get a zero normal."""
    v = np.asarray(vertices, np.float64)
    cross = np.cross(v[tris[:, 1]] - v[tris[:, 0]], v[tris[:, 2]] - v[tris[:, 0]])
    norm = np.linalg.norm(cross, axis=1)
    return cross / np.maximum(norm, 1e-30)[:, None], 0.5 * norm


def sample_surface(
    vertices: np.ndarray, faces: np.ndarray | Sequence[Sequence[int]], n: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points uniformly distributed over the surface of polygons (area-weighted) and their face
    normals: the product's sampler (``templates.surface``) on the fanned triangles."""
    return _sample_triangles(vertices, triangulate(faces), n, seed)


def gt10_transform(gt_vertices: np.ndarray) -> tuple[float, np.ndarray]:
    """(scale, centre) that map the GT onto a frame whose longest bbox edge is 10, centred at 0."""
    v = np.asarray(gt_vertices, np.float64)
    lo, hi = v.min(0), v.max(0)
    return 10.0 / float((hi - lo).max()), 0.5 * (lo + hi)


def normalise(points: np.ndarray, scale: float, centre: np.ndarray) -> np.ndarray:
    """Apply a :func:`gt10_transform` to points (GT and prediction get the same one)."""
    return (np.asarray(points, np.float64) - centre) * scale


def surface_metrics(
    pred_pts: np.ndarray, pred_normals: np.ndarray | None, gt_pts: np.ndarray, gt_normals: np.ndarray | None,
    taus: Sequence[float] = TAUS, gt_tree: cKDTree | None = None, max_queries: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Chamfer-L1 (ONet), Chamfer-L2 (Mesh R-CNN sum), F-score / precision / recall at each tau and
    absolute normal consistency between two point samples (already in the same, normalised frame).

    ``gt_tree`` (``kdtree(gt_pts)``) may be passed when one GT sample is scored many times.
    ``max_queries``: average over a random subset of this many points in each direction; the
    nearest neighbours are still searched among *all* points of the other set, so its density (what
    decides whether a distance is under tau) is unchanged and the means stay unbiased; distances from
    a far-off surface are the slow queries of a kd-tree."""
    tree = gt_tree if gt_tree is not None else kdtree(gt_pts)
    qp, qg = _subset(len(pred_pts), max_queries, seed), _subset(len(gt_pts), max_queries, seed + 1)
    d_pg, i_pg = tree.query(pred_pts[qp], workers=-1)  # accuracy: prediction -> GT
    d_gp, i_gp = kdtree(pred_pts).query(gt_pts[qg], workers=-1)  # completeness: GT -> prediction
    out = {
        "accuracy": float(d_pg.mean()),
        "completeness": float(d_gp.mean()),
        "chamfer_l1": float(0.5 * (d_pg.mean() + d_gp.mean())),
        "chamfer_l2": float((d_pg**2).mean() + (d_gp**2).mean()),
    }
    for tau in taus:
        p = float((d_pg < tau).mean())
        r = float((d_gp < tau).mean())
        out[f"precision@{tau:g}"] = p
        out[f"recall@{tau:g}"] = r
        out[f"f@{tau:g}"] = 0.0 if p + r == 0 else 2 * p * r / (p + r)
    if pred_normals is not None and gt_normals is not None:
        c1 = np.abs((pred_normals[qp] * gt_normals[i_pg]).sum(1))
        c2 = np.abs((gt_normals[qg] * pred_normals[i_gp]).sum(1))
        out["normal_consistency"] = float(0.5 * (c1.mean() + c2.mean()))
    return out


def _subset(n: int, size: int | None, seed: int) -> np.ndarray:
    """Indices of ``size`` of ``n`` points drawn without replacement (all of them when size is None or >= n)."""
    if size is None or size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def visible_mask(
    points_cam: np.ndarray, depth: np.ndarray, focal_px: float, tol: float,
    principal: tuple[float, float] | None = None,
) -> np.ndarray:
    """Which camera-space points (Blender convention: the camera looks down -Z, +Y up) are seen.

    ``depth`` (H, W) is the axial depth of the first surface per pixel (a Z pass; <= 0, NaN or
    huge on the background). A point is visible when it projects inside the image and its own
    axial depth is within ``tol`` of the depth map there, i.e. nothing nearer hides it.
    """
    h, w = depth.shape
    cx, cy = principal if principal is not None else (w / 2.0, h / 2.0)
    z = -points_cam[:, 2]
    ok = z > 1e-9
    zs = np.where(ok, z, 1.0)
    x = cx + focal_px * points_cam[:, 0] / zs
    y = cy - focal_px * points_cam[:, 1] / zs
    col, row = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    ok &= (col >= 0) & (col < w) & (row >= 0) & (row < h)
    d = np.full(len(z), np.nan)
    d[ok] = depth[row[ok], col[ok]]
    with np.errstate(invalid="ignore"):
        return ok & np.isfinite(d) & (np.abs(z - d) <= tol)


def _expand(counts: np.ndarray, budget: int):
    """For items with ``counts[t]`` pairs each: (item, rank of the pair within its item) for every pair,
    in chunks of about ``budget`` pairs (whole items per chunk) so memory stays bounded."""
    cum = np.cumsum(counts)
    start = 0
    while start < len(counts):
        base = cum[start - 1] if start else 0
        end = max(int(np.searchsorted(cum, base + budget, "right")), start + 1)
        cnt = counts[start:end]
        item = np.repeat(np.arange(start, end), cnt)
        yield item, np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        start = end


def _cell_pairs(i0: np.ndarray, i1: np.ndarray, j0: np.ndarray, j1: np.ndarray,
                budget: int = 2_000_000):
    """Every (triangle, i, j) with i0 <= i <= i1 and j0 <= j <= j1 (inclusive integer ranges per triangle),
    yielded in chunks of about ``budget`` pairs so memory stays bounded."""
    nj = np.maximum(j1 - j0 + 1, 0)
    for tri, k in _expand(np.maximum(i1 - i0 + 1, 0) * nj, budget):
        width = np.maximum(nj[tri], 1)
        yield tri, i0[tri] + k // width, j0[tri] + k % width


def _barycentric_2d(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, ...]:
    """(inside, wa, wb, wc): barycentric weights of 2-D points ``p`` in triangles (a, b, c), all (N, 2);
    points on an edge count as inside."""
    e1, e2, q = b - a, c - a, p - a
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    good = np.abs(det) > 1e-20
    det = np.where(good, det, 1.0)
    wb = (q[:, 0] * e2[:, 1] - q[:, 1] * e2[:, 0]) / det
    wc = (e1[:, 0] * q[:, 1] - e1[:, 1] * q[:, 0]) / det
    wa = 1.0 - wb - wc
    return good & (wa >= 0) & (wb >= 0) & (wc >= 0), wa, wb, wc


def rasterize_depth(
    points_cam: np.ndarray, tris: np.ndarray, focal_px: float, width: int, height: int,
    principal: tuple[float, float] | None = None,
) -> np.ndarray:
    """Z-buffer (H, W) of a triangle mesh in camera space (Blender convention: looking down -Z, +Y up):
    the axial depth of the nearest triangle through each pixel centre, ``inf`` where none is.

    The same sampling as Cycles' Z pass (one ray through each pixel centre), so the prediction's
    visible part is judged exactly as the ground truth's; depth is interpolated perspective-correctly
    (1/z is linear across a triangle on screen). Triangles reaching behind the camera are skipped.
    The product's z-buffer (``templates.render``).
    """
    cx, cy = principal if principal is not None else (width / 2.0, height / 2.0)
    xy, z = project_perspective(points_cam, focal_px, cx, cy)
    return rasterize(xy, z, tris, (height, width)).depth


def umeyama(src: np.ndarray, dst: np.ndarray, with_scale: bool = True) -> np.ndarray:
    """4x4 similarity (scale * R, t) minimising sum |s R src + t - dst|^2 (Umeyama 1991): the pose
    refinement's solver (``templates.pose_fit.umeyama``); ``with_scale=False`` keeps s = 1."""
    scale, rot, t = _similarity(src, dst)
    if not with_scale:
        scale, t = 1.0, dst.mean(0) - rot @ src.mean(0)
    m = np.eye(4)
    m[:3, :3] = scale * rot
    m[:3, 3] = t
    return m


def apply(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 affine matrix to (N, 3) points."""
    return points @ m[:3, :3].T + m[:3, 3]


def icp(src: np.ndarray, dst: np.ndarray, iterations: int = 30, with_scale: bool = True,
        trim: float = 0.9, max_points: int | None = None, seed: int = 0,
        dst_tree: cKDTree | None = None, tol: float = 1e-7) -> np.ndarray:
    """Scale + rigid ICP of ``src`` onto ``dst``: nearest neighbours, then Umeyama on the closest
    ``trim`` fraction of pairs, repeated. Returns the accumulated 4x4 similarity.

    ``max_points``: fit on a random subset of ``src`` of this size (a similarity has 7 unknowns;
    a few thousand pairs pin it down and cost a fraction of the queries). Stops when the trimmed mean
    distance changes by less than ``tol`` (relative) from one iteration to the next."""
    tree = dst_tree if dst_tree is not None else kdtree(dst)
    total = np.eye(4)
    cur = np.asarray(src, np.float64)
    if max_points is not None and len(cur) > max_points:
        cur = cur[np.random.default_rng(seed).choice(len(cur), max_points, replace=False)]
    prev = np.inf
    for _ in range(iterations):
        d, idx = tree.query(cur, workers=-1)
        keep = d <= np.quantile(d, trim)
        step = umeyama(cur[keep], dst[idx[keep]], with_scale)
        cur = apply(step, cur)
        total = step @ total
        err = float(d[keep].mean())
        if abs(prev - err) < tol * max(err, 1e-12):
            break
        prev = err
    return total


def icp_from_camera(src: np.ndarray, dst: np.ndarray, centre: np.ndarray, trim: float = 0.9,
                    dst_tree: cKDTree | None = None, **kw) -> np.ndarray:
    """Scale + rigid ICP of ``src`` onto ``dst`` (``icp``'s arguments) started from two poses, keeping
    the one whose trimmed nearest-neighbour distances end lower (not the GT's score):
    where ``src`` is, and ``src`` scaled about the camera ``centre`` so that its median distance from it
    is ``dst``'s. Scaling about the camera leaves the picture unchanged, so a single photo cannot tell
    it: a relative-depth reconstruction placed at a guessed distance two or three times the true one is
    the right shape at the wrong scale, which ICP from where it stands does not recover (it shrinks it
    onto part of the target). The ending error is measured both ways (prediction to target and back)."""
    centre = np.asarray(centre, np.float64)
    s = float(np.median(np.linalg.norm(dst - centre, axis=1)) /
              max(float(np.median(np.linalg.norm(src - centre, axis=1))), 1e-12))
    start = np.eye(4)
    start[:3, :3] *= s
    start[:3, 3] = centre * (1.0 - s)
    tree = dst_tree if dst_tree is not None else kdtree(dst)
    best, best_err = np.eye(4), np.inf
    for init in (np.eye(4), start):
        m = icp(apply(init, src), dst, trim=trim, dst_tree=tree, **kw) @ init
        moved = apply(m, src)
        # both ways: one way alone favours a prediction shrunk onto a corner of the target
        there = tree.query(moved, workers=-1)[0]
        back = kdtree(moved).query(dst, workers=-1)[0]
        err = sum(float(d[d <= np.quantile(d, trim)].mean()) for d in (there, back))
        if err < best_err:
            best, best_err = m, err
    return best


def _crossings_up_z(points: np.ndarray, v: np.ndarray, tris: np.ndarray, budget: int = 4_000_000) -> np.ndarray:
    """Number of triangles a ray from each point towards +Z crosses (x-slab pairing, chunked)."""
    a, b, c = v[tris[:, 0]], v[tris[:, 1]], v[tris[:, 2]]
    order = np.argsort(points[:, 0], kind="stable")
    xs = points[order, 0]
    tx0 = np.minimum(np.minimum(a[:, 0], b[:, 0]), c[:, 0])
    tx1 = np.maximum(np.maximum(a[:, 0], b[:, 0]), c[:, 0])
    lo = np.searchsorted(xs, tx0, "left")
    hi = np.searchsorted(xs, tx1, "right")
    counts = hi - lo
    crossings = np.zeros(len(points), np.int64)
    for tri, k in _expand(counts, budget):
        pt = order[lo[tri] + k]
        p = points[pt]
        ta, tb, tc = a[tri], b[tri], c[tri]
        inside, wa, wb, wc = _barycentric_2d(p[:, :2], ta[:, :2], tb[:, :2], tc[:, :2])  # in the xy projection
        z = wa * ta[:, 2] + wb * tb[:, 2] + wc * tc[:, 2]
        hit = inside & (z > p[:, 2])
        crossings += np.bincount(pt[hit], minlength=len(points))
    return crossings


def inside_mesh(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray | Sequence[Sequence[int]]) -> np.ndarray:
    """Occupancy of points for a closed mesh by ray parity (a ray towards +Z; odd = inside)."""
    crossings = _crossings_up_z(np.asarray(points, np.float64), np.asarray(vertices, np.float64), triangulate(faces))
    return crossings % 2 == 1


def occupancy_grid(
    vertices: np.ndarray, faces: np.ndarray | Sequence[Sequence[int]], lo: np.ndarray, step: np.ndarray,
    shape: tuple[int, int, int], offset: np.ndarray | None = None,
) -> np.ndarray:
    """Occupancy of a closed mesh at the points ``lo + (index + offset) * step`` of a regular grid
    (``shape`` = (nx, ny, nz); ``offset`` in [0, 1) per axis, default 0.5 = cell centres).

    Ray parity along +Z, one ray per grid column: each triangle is paired only with the columns under
    its xy bounding box, and every point of a column is answered from that column's crossings, so a
    grid of 10^5..10^6 points costs about as much as the mesh has triangles.
    """
    v = np.asarray(vertices, np.float64)
    tris = triangulate(faces)
    lo, step = np.asarray(lo, np.float64), np.asarray(step, np.float64)
    off = np.full(3, 0.5) if offset is None else np.asarray(offset, np.float64)
    nx, ny, nz = shape
    # triangle corners in grid-index units: point (i, j, k) sits at index coordinates (i, j, k)
    g = (v - lo) / step - off
    tg = g[tris]
    tlo, thi = tg.min(1), tg.max(1)
    i0 = np.clip(np.ceil(tlo[:, 0]), 0, nx).astype(np.int64)
    i1 = np.clip(np.floor(thi[:, 0]), -1, nx - 1).astype(np.int64)
    j0 = np.clip(np.ceil(tlo[:, 1]), 0, ny).astype(np.int64)
    j1 = np.clip(np.floor(thi[:, 1]), -1, ny - 1).astype(np.int64)
    band = nz + 4  # each column's crossings live in their own key band: [col * band - 1, col * band + nz + 1]
    keys = []
    for tri, i, j in _cell_pairs(i0, i1, j0, j1):
        t = tris[tri]
        p = np.stack([i, j], 1).astype(np.float64)
        inside, wa, wb, wc = _barycentric_2d(p, g[t[:, 0], :2], g[t[:, 1], :2], g[t[:, 2], :2])
        zk = wa * g[t[:, 0], 2] + wb * g[t[:, 1], 2] + wc * g[t[:, 2], 2]
        keys.append(((i * ny + j) * band + np.clip(zk, -1.0, nz + 1.0))[inside])
    hits = np.sort(np.concatenate(keys)) if keys else np.zeros(0)
    col_base = (np.arange(nx * ny) * band).astype(np.float64)
    col_end = np.searchsorted(hits, col_base + nz + 2.0, "left")  # end of each column's crossings
    point_key = (col_base[:, None] + np.arange(nz)[None, :]).ravel()
    above = np.repeat(col_end, nz) - np.searchsorted(hits, point_key, "right")  # crossings above each point
    return (above % 2 == 1).reshape(nx, ny, nz)


def volumetric_iou(
    verts_a: np.ndarray, faces_a: np.ndarray | Sequence[Sequence[int]],
    verts_b: np.ndarray, faces_b: np.ndarray | Sequence[Sequence[int]], n: int = 100_000, seed: int = 0,
) -> float:
    """IoU of two closed meshes from their occupancy at about ``n`` points of a regular grid over their
    joint bounding box (near-cubic cells), shifted by a random sub-cell offset (``seed``) so grid lines
    never run along the meshes' own edges."""
    va, vb = np.asarray(verts_a, np.float64), np.asarray(verts_b, np.float64)
    if np.any(va.max(0) < vb.min(0)) or np.any(vb.max(0) < va.min(0)):
        return 0.0  # disjoint bounding boxes: no overlap to estimate
    lo = np.minimum(va.min(0), vb.min(0))
    ext = np.maximum(np.maximum(va.max(0), vb.max(0)) - lo, 1e-9)
    cell = float(np.cbrt(np.prod(ext) / n))
    shape = tuple(int(k) for k in np.maximum(np.round(ext / cell), 1))
    step = ext / np.array(shape)
    offset = np.random.default_rng(seed).random(3)
    ia = occupancy_grid(va, faces_a, lo, step, shape, offset)
    ib = occupancy_grid(vb, faces_b, lo, step, shape, offset)
    union = (ia | ib).sum()
    return float((ia & ib).sum() / union) if union else 0.0


# --------------------------------------------------------------------------- depth


def depth_metrics(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> dict[str, float]:
    """AbsRel, delta1..3 and RMSE of a metric depth prediction (no alignment)."""
    valid = _valid(gt, valid) & np.isfinite(pred) & (pred > 0)
    p, g = pred[valid].astype(np.float64), gt[valid].astype(np.float64)
    ratio = np.maximum(p / g, g / p)
    return {
        "abs_rel": float(np.mean(np.abs(p - g) / g)),
        "delta1": float(np.mean(ratio < 1.25)),
        "delta2": float(np.mean(ratio < 1.25**2)),
        "delta3": float(np.mean(ratio < 1.25**3)),
        "rmse": float(np.sqrt(np.mean((p - g) ** 2))),
        "pixels": int(valid.sum()),
    }


def align_inverse_depth(pred_inverse: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None,
                        clamp: float = 1e-3) -> tuple[np.ndarray, float, float]:
    """Least-squares scale s and shift t with s * pred + t ~ 1 / gt over valid pixels; returns
    (aligned depth = 1 / max(s * pred + t, clamp), s, t)."""
    valid = _valid(gt, valid) & np.isfinite(pred_inverse)
    p = pred_inverse[valid].astype(np.float64)
    a = np.stack([p, np.ones_like(p)], 1)
    (s, t), *_ = np.linalg.lstsq(a, 1.0 / gt[valid].astype(np.float64), rcond=None)
    disp = np.maximum(s * np.nan_to_num(pred_inverse.astype(np.float64), nan=0.0) + t, clamp)
    return 1.0 / disp, float(s), float(t)


def relative_depth_metrics(pred_inverse: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None,
                           clamp: float = 1e-3) -> dict[str, float]:
    """Depth metrics of a relative inverse-depth prediction after the scale-and-shift fit."""
    valid = _valid(gt, valid) & np.isfinite(pred_inverse)
    aligned, s, t = align_inverse_depth(pred_inverse, gt, valid, clamp)
    return {**depth_metrics(aligned, gt, valid), "scale": s, "shift": t}


def _valid(gt: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    ok = np.isfinite(gt) & (gt > 0)
    return ok if valid is None else ok & valid


# --------------------------------------------------------------------------- masks


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU of two masks; non-boolean masks are binarised at half their dtype's range (0.5 / 128)."""
    p, g = _binary(pred), _binary(gt)
    return float(np.logical_and(p, g).sum() / max(1, np.logical_or(p, g).sum()))


def _binary(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m)
    if m.dtype == bool:
        return m
    return m >= (128 if np.issubdtype(m.dtype, np.integer) else 0.5)
