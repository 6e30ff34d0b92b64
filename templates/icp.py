"""Scale + rigid ICP of a posed template against an object's window: the matcher's refinement.

The object is sampled on a square pixel window (``Window``); each step renders the posed template
into it, pairs pixels both cover along their ray (point-to-plane, weighted by the depth's trust)
and pulls the outlines together (nearest points where only one of them covers a pixel; in the
image plane when the depth is a guess, so a relief inflated from the outline cannot tilt the
template).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from . import render
from .pose import Camera, Pose
from .render import Raster

ROBUST_SCALE = 0.02  # Cauchy scale of ICP residuals, fraction of the object size
MAX_TURN_DEG = 8.0  # largest rotation of one ICP step
MAX_SCALE_STEP = 0.1  # largest relative scale change of one ICP step
DEPTH_SCALE_RANGE = (1.0 / 3.0, 3.0)  # how far a relative depth map's relief may be stretched or squashed
LATERAL_TRUST = 0.5  # depth trusted less pulls the outlines together in the image plane only


@dataclass
class Window:
    """A square pixel window of the photo sampled on an n x n grid, with the object's points."""

    x0: float
    y0: float
    side: float
    n: int
    mask: np.ndarray  # (n, n) bool
    z: np.ndarray  # (n, n) depth (0 outside the mask)
    points: np.ndarray  # (M, 3) camera space, one per masked cell
    focal: float  # focal length in grid pixels
    cx: float  # principal point in grid pixels
    cy: float

    @property
    def z_centre(self) -> float:
        return float(np.median(self.z[self.mask])) if self.mask.any() else 0.0

    def rescaled(self, k: float, z_centre: float) -> Window:
        """This window with its depth relief divided by ``k`` about ``z_centre`` (along the pixel rays)."""
        z = np.where(self.mask, z_centre + (self.z - z_centre) / k, 0.0)
        ii, jj = np.nonzero(self.mask)
        zz = z[ii, jj]
        pts = render.unproject(jj + 0.5, ii + 0.5, zz, self.focal, self.cx, self.cy)
        return Window(self.x0, self.y0, self.side, self.n, self.mask, z, pts, self.focal, self.cx, self.cy)

    @classmethod
    def sample(cls, mask: np.ndarray, zdepth: np.ndarray, camera: Camera, centre: np.ndarray, side: float,
               n: int) -> Window:
        h, w = mask.shape
        x0, y0 = centre - 0.5 * side
        step = side / n
        xs = x0 + (np.arange(n) + 0.5) * step
        ys = y0 + (np.arange(n) + 0.5) * step
        inside = np.outer((ys >= 0) & (ys < h), (xs >= 0) & (xs < w))
        j = np.clip(np.floor(xs).astype(np.int64), 0, w - 1)
        i = np.clip(np.floor(ys).astype(np.int64), 0, h - 1)
        m = mask[i][:, j] & inside
        z = np.where(m, zdepth[i][:, j], 0.0)
        m &= np.isfinite(z) & (z > 0)
        z = np.where(m, z, 0.0)
        f = float(camera.focal_px)
        ii, jj = np.nonzero(m)
        zz = z[ii, jj]
        pts = render.unproject(xs[jj], ys[ii], zz, f, 0.5 * camera.width, 0.5 * camera.height)
        return cls(x0, y0, side, n, m, z, pts, f * n / side, (0.5 * camera.width - x0) / step,
                   (0.5 * camera.height - y0) / step)

    def render(self, vertices: np.ndarray, triangles: np.ndarray, pose: Pose) -> render.Raster:
        xy, z = render.project_perspective(pose.apply(vertices), self.focal, self.cx, self.cy)
        return render.rasterize(xy, z, triangles, (self.n, self.n))

    def backproject(self, raster: Raster) -> np.ndarray:
        ii, jj = np.nonzero(raster.mask)
        zz = raster.depth[ii, jj]
        return render.unproject(jj + 0.5, ii + 0.5, zz, self.focal, self.cx, self.cy)


def relief_scale(raster: render.Raster, window: Window) -> float:
    """Least-squares factor between the object's depth relief and the posed template's, over the
    pixels both cover (clipped to ``DEPTH_SCALE_RANGE``)."""
    both = raster.mask & window.mask
    if both.sum() < 20:
        return 1.0
    zt = raster.depth[both]
    zi = window.z[both]
    a = zt - np.median(zt)
    b = zi - np.median(zi)
    denom = float(a @ a)
    if denom <= 0:
        return 1.0
    return float(np.clip(float(a @ b) / denom, *DEPTH_SCALE_RANGE))


def _bbox(mask: np.ndarray) -> np.ndarray:
    rows = np.nonzero(mask.any(axis=1))[0]
    cols = np.nonzero(mask.any(axis=0))[0]
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.float64)


def align_silhouette(vertices: np.ndarray, triangles: np.ndarray, window: Window, pose: Pose,
                     steps: int = 3) -> Pose:
    """Rescale and move the posed template (rotation kept) so its silhouette box and median depth
    match the object's: a fast start for ICP, whose scale converges slowly."""
    if not window.mask.any():
        return pose
    bm = _bbox(window.mask)
    zm = float(np.median(window.z[window.mask]))
    for _ in range(steps):  # a few fixed-point steps
        ras = window.render(vertices, triangles, pose)
        if not ras.mask.any():
            break
        bt = _bbox(ras.mask)
        zt = float(np.median(ras.depth[ras.mask]))
        ratio = 0.5 * ((bm[2] - bm[0]) / (bt[2] - bt[0]) + (bm[3] - bm[1]) / (bt[3] - bt[1]))
        k = ratio * zm / zt

        def point(b: np.ndarray, z: float) -> np.ndarray:
            u, v = 0.5 * (b[0] + b[2]), 0.5 * (b[1] + b[3])
            return np.array([(u - window.cx) / window.focal * z, (window.cy - v) / window.focal * z, -z])

        pc, pm = point(bt, zt), point(bm, zm)
        pose = Pose(pose.rotation, pm + k * (pose.translation - pc), pose.scale * k)
    return pose


def _skew(v: np.ndarray) -> np.ndarray:
    """(N, 3) vectors -> (N, 3, 3) cross-product matrices."""
    out = np.zeros((len(v), 3, 3))
    out[:, 0, 1], out[:, 0, 2] = -v[:, 2], v[:, 1]
    out[:, 1, 0], out[:, 1, 2] = v[:, 2], -v[:, 0]
    out[:, 2, 0], out[:, 2, 1] = -v[:, 1], v[:, 0]
    return out


def _solve_spd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve a small symmetric positive definite system by Cholesky in plain numpy.

    LAPACK through a threaded BLAS costs milliseconds per call on small machines (its threads
    must wake up); this costs microseconds.
    """
    n = len(b)
    low = np.zeros_like(a)
    for j in range(n):  # n = 7
        d = a[j, j] - low[j, :j] @ low[j, :j]
        low[j, j] = math.sqrt(max(d, 1e-300))
        low[j + 1:, j] = (a[j + 1:, j] - low[j + 1:, :j] @ low[j, :j]) / low[j, j]
    y = np.zeros(n)
    for i in range(n):
        y[i] = (b[i] - low[i, :i] @ y[:i]) / low[i, i]
    x = np.zeros(n)
    for i in reversed(range(n)):
        x[i] = (y[i] - low[i + 1:, i] @ x[i + 1:]) / low[i, i]
    return x


def face_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Unit normals ``(T, 3)`` of a triangle mesh (model space)."""
    v = np.asarray(vertices, dtype=np.float64)
    t = np.asarray(triangles, dtype=np.int64)
    n = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-20)


def _outline_pairs(window: Window, grid: np.ndarray, hit: np.ndarray, target: np.ndarray, tree_p: cKDTree,
                   tree_px: cKDTree | None) -> tuple[np.ndarray, np.ndarray]:
    """(template points, object points) paired where only one of them covers a pixel: each with the
    other's nearest point, in 3D; with ``tree_px`` (the mask's pixels) nearest in the image and the
    object's point moved along its ray to the template point's depth, so an untrusted relief pulls
    the outlines together in the image plane only."""
    only_t = hit & ~window.mask
    only_m = window.mask & ~hit
    hi, hj = np.nonzero(hit)
    if tree_px is None:
        xt = grid[only_t]
        yt = window.points[tree_p.query(xt)[1]] if len(xt) else np.zeros((0, 3))
        ym = target[only_m]
        xm = grid[hi, hj][cKDTree(grid[hi, hj]).query(ym)[1]] if len(ym) else np.zeros((0, 3))
        return np.vstack([xt, xm]), np.vstack([yt, ym])
    ti, tj = np.nonzero(only_t)
    mi, mj = np.nonzero(only_m)
    xt = grid[ti, tj]
    yt = window.points[tree_px.query(np.stack([ti, tj], axis=1))[1]] if len(ti) else np.zeros((0, 3))
    ym = target[mi, mj]
    near = cKDTree(np.stack([hi, hj], axis=1)).query(np.stack([mi, mj], axis=1))[1] if len(mi) else []
    xm = grid[hi, hj][near] if len(mi) else np.zeros((0, 3))
    xs, ys = np.vstack([xt, xm]), np.vstack([yt, ym])
    return xs, ys * (xs[:, 2] / np.minimum(ys[:, 2], -1e-12))[:, None]


def refine(vertices: np.ndarray, triangles: np.ndarray, window: Window, pose: Pose, iterations: int = 10,
           prealign: bool = True, normals: np.ndarray | None = None, depth_scale: bool = False,
           depth_trust: float = 1.0) -> Pose:
    """Scale + rigid ICP of the posed template against the window's points.

    Where template and object overlap in the window, pixels pair up along their shared ray and
    count point-to-plane (depth-map ICP); where only one of them covers a pixel, that point pairs
    with the other's nearest point, which pulls the outlines together. Each step solves a damped
    linearised least-squares problem for a small rotation, scale change and translation. With
    ``depth_scale`` the object's relief is rescaled to the template's before each step (relative
    depth maps carry an unknown relief scale). The depth pairs weigh ``depth_trust``, the outline's 1;
    below ``LATERAL_TRUST`` the outline pairs ignore the object's depth (``_outline_pairs``).
    """
    if prealign:
        pose = align_silhouette(vertices, triangles, window, pose)
    if window.mask.sum() < 10:
        return pose
    fn = face_normals(vertices, triangles) if normals is None else normals
    base = window
    zc = base.z_centre
    ii, jj = np.nonzero(window.mask)
    target = np.zeros((window.n, window.n, 3))
    target[ii, jj] = window.points
    tree_p = cKDTree(window.points)
    lateral = depth_trust < LATERAL_TRUST
    tree_px = cKDTree(np.stack([ii, jj], axis=1))
    size = float(np.ptp(window.points, axis=0).max()) or 1.0
    for _ in range(iterations):  # a handful of ICP steps
        ras = window.render(vertices, triangles, pose)
        if depth_scale:
            window = base.rescaled(relief_scale(ras, base), zc)
            target[ii, jj] = window.points
            tree_p = cKDTree(window.points)
        hit = ras.mask
        if hit.sum() < 10:
            break
        hi, hj = np.nonzero(hit)
        grid = np.zeros((window.n, window.n, 3))
        grid[hi, hj] = window.backproject(ras)
        normal = np.zeros((window.n, window.n, 3))
        normal[hi, hj] = np.einsum("ij,nj->ni", pose.rotation, fn[ras.tri[hi, hj]])
        both = hit & window.mask
        x, y, nrm = grid[both], target[both], normal[both]
        gap = np.linalg.norm(x - y, axis=1)
        near = gap <= max(3.0 * float(np.median(gap)) if len(gap) else 0.0, 0.02 * size)
        x, y, nrm = x[near], y[near], nrm[near]
        xs, ys = _outline_pairs(window, grid, hit, target, tree_p, tree_px if lateral else None)
        if len(x) + len(xs) < 7:
            break
        centre = grid[hi, hj].mean(axis=0)
        # unknowns: rotation w (3), scale change sigma (1), translation tau (3)
        d = x - centre
        a_plane = np.hstack([np.cross(d, nrm), (d * nrm).sum(axis=1, keepdims=True), nrm])
        b_plane = -((x - y) * nrm).sum(axis=1)
        ds = xs - centre
        a_pt = np.concatenate([-_skew(ds), ds[:, :, None], np.broadcast_to(np.eye(3), (len(ds), 3, 3))], axis=2)
        # Cauchy weights: a few wild pairs (rims, depth jumps) must not steer the step
        c = ROBUST_SCALE * size
        # the depth pairs count as far as the depth is trusted: a relief guessed from the outline
        # (classic, drawing) would tilt the template towards its bulge, off the outline
        w_plane = depth_trust / (1.0 + (b_plane / c) ** 2)
        w_pt = np.repeat(1.0 / (1.0 + (np.linalg.norm(ys - xs, axis=1) / c) ** 2), 3)
        a = np.vstack([a_plane, a_pt.reshape(-1, 7)])
        b = np.concatenate([b_plane, (ys - xs).ravel()])
        wts = np.concatenate([w_plane, w_pt])
        lam = 1e-3 * wts.sum() * np.diag([size**2, size**2, size**2, size**2, 1.0, 1.0, 1.0])
        sol = _solve_spd(np.einsum("ni,n,nj->ij", a, wts, a) + lam, np.einsum("ni,n,n->i", a, wts, b))
        w, sigma, tau = sol[:3], float(np.clip(sol[3], -MAX_SCALE_STEP, MAX_SCALE_STEP)), sol[4:]
        turn = float(np.linalg.norm(w))
        if turn > math.radians(MAX_TURN_DEG):  # trust region: linearisation holds for small turns only
            w = w * math.radians(MAX_TURN_DEG) / turn
        rw = Rotation.from_rotvec(w).as_matrix()
        new = Pose(rw @ pose.rotation, (1.0 + sigma) * rw @ (pose.translation - centre) + centre + tau,
                   pose.scale * (1.0 + sigma))
        step = math.degrees(float(np.linalg.norm(w)))
        moved = float(np.linalg.norm(tau))
        pose = new
        if step < 0.1 and abs(sigma) < 1e-3 and moved < 1e-3 * size:
            break
    return pose
