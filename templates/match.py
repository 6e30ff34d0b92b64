"""Find the templates that fit one segmented object, with their pose in camera space.

1. Prune: keep the ``PRUNE_KEEP`` candidates whose best view's outline is closest to the object's,
   proportions apart (silhouettes stretched to fill their boxes, a mild penalty for a different
   aspect ratio: the lattice fit changes proportions cheaply), with a mild prior for upright
   objects seen from slightly above. The outline holds for every engine's depth.
2. Coarse: add the depth term to the kept candidates' views: minus the spread of the depth
   difference over the overlap (scale-free grid), weighted by the depth's trust.
3. Refine: the best (template, view) pairs start a scale + rigid ICP against the
   reconstructed points; each step renders the posed template into the object's window, pairs
   pixels both cover along their ray (point-to-plane) and pulls the outlines together
   (nearest points where only one of them covers a pixel).
4. Score: silhouette IoU of the posed template against the mask (forgiving one pixel), minus
   its mean (saturating) depth error relative to the object's size, minus a penalty for roll.
   Below ``THRESHOLD`` no template is used.

Relative depth maps (``depth_scale=True``) have an unknown relief scale: each stage then fits
the factor between the object's relief and the template's before comparing depths.

Poses map model space to camera space: ``p_cam = scale * R @ p_model + t`` (Blender's camera
axes: x right, y up, looking down -z).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from scipy.spatial import cKDTree

from . import descriptors as desc
from . import render
from .library import SYM_REVOLUTION, SYM_SPHERE, TemplateLibrary
from .render import Raster

THRESHOLD = 0.85
COARSE_DEPTH_WEIGHT = 1.0
DEPTH_WEIGHT = 2.0
DEPTH_CAP = 0.1  # relative depth error at which a pixel counts as simply wrong
ROLL_WEIGHT = 0.1  # score lost per (30 degrees of roll)^2: photos are rarely tilted much
ROBUST_SCALE = 0.02  # Cauchy scale of ICP residuals, fraction of the object size
MAX_TURN_DEG = 8.0  # largest rotation of one ICP step
MAX_SCALE_STEP = 0.1  # largest relative scale change of one ICP step
DEPTH_SCALE_RANGE = (1.0 / 3.0, 3.0)  # how far a relative depth map's relief may be stretched or squashed
PRUNE_KEEP = 24  # templates the silhouette-only pass keeps for the full comparison
ASPECT_WEIGHT = 0.5  # coarse score lost per unit of log aspect ratio between outlines ...
ASPECT_FREE = 0.2  # ... beyond this much (a lattice fit changes proportions cheaply)
REFINE_GRID = 48
SCORE_GRID = 80
WINDOW_GROW = 1.35  # refinement window side / descriptor window side
LATERAL_TRUST = 0.5  # depth trusted less pulls the outlines together in the image plane only


class Camera(Protocol):
    width: int
    height: int

    @property
    def focal_px(self) -> float: ...


@dataclass
class Pose:
    """``p_cam = scale * rotation @ p_model + translation``."""

    rotation: np.ndarray
    translation: np.ndarray
    scale: float

    def apply(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        return np.einsum("ij,nj->ni", self.scale * self.rotation, p) + self.translation

    def inverse_apply(self, points: np.ndarray) -> np.ndarray:
        """Model-space points of camera-space ``points``; solved, not transposed, so a ``rotation``
        that holds a stretch along the model's axes (``templates.pose_fit``) inverts exactly too."""
        p = np.asarray(points, dtype=np.float64) - self.translation
        return np.linalg.solve(self.scale * self.rotation, p.T).T

    def matrix(self) -> np.ndarray:
        """4x4 camera-from-model matrix (scale included)."""
        m = np.eye(4)
        m[:3, :3] = self.scale * self.rotation
        m[:3, 3] = self.translation
        return m

    def to_json(self) -> dict[str, Any]:
        return {"rotation": np.round(self.rotation, 6).tolist(), "translation": np.round(self.translation, 6).tolist(),
                "scale": round(float(self.scale), 6)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Pose:
        return cls(np.asarray(data["rotation"], dtype=np.float64), np.asarray(data["translation"], dtype=np.float64),
                   float(data["scale"]))


@dataclass
class Match:
    """One template fitted to the object."""

    template: str
    category: str
    score: float
    iou: float
    depth_error: float  # mean |depth difference| / object size, over the overlap
    pose: Pose
    coarse_score: float
    view: tuple[float, float]  # azimuth, elevation (degrees) of the library view it started from
    source: str = ""  # the template's .blend ("" = the bundled library)
    depth_scale: float = 1.0  # relief of the object's depth / relief of the posed template (1 for metric depth)
    rigid_score: float | None = None  # the score of the rigid pose, where ``score`` is the fitted one

    def to_json(self) -> dict[str, Any]:
        return {"template": self.template, "category": self.category, "score": round(self.score, 4),
                "iou": round(self.iou, 4), "depth_error": round(self.depth_error, 4), "pose": self.pose.to_json(),
                "coarse_score": round(self.coarse_score, 4), "view": [float(v) for v in self.view],
                "source": self.source, "depth_scale": round(self.depth_scale, 4),
                "rigid_score": None if self.rigid_score is None else round(self.rigid_score, 4)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Match:
        return cls(data["template"], data["category"], float(data["score"]), float(data["iou"]),
                   float(data["depth_error"]), Pose.from_json(data["pose"]), float(data["coarse_score"]),
                   tuple(data["view"]), str(data.get("source", "")), float(data.get("depth_scale", 1.0)),
                   None if data.get("rigid_score") is None else float(data["rigid_score"]))


@dataclass
class MatchResult:
    """The best templates for one object (best first) and whether the best one is good enough."""

    label: str
    matches: list[Match] = field(default_factory=list)
    threshold: float = THRESHOLD
    timings: dict[str, float] = field(default_factory=dict)
    ambiguous: bool = False  # a template of another category fits about as well: the shape cannot tell

    @property
    def accepted(self) -> bool:
        return bool(self.matches) and self.matches[0].score >= self.threshold and not self.ambiguous

    @property
    def best(self) -> Match | None:
        return self.matches[0] if self.accepted else None

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "accepted": self.accepted, "threshold": self.threshold,
                "ambiguous": self.ambiguous, "matches": [m.to_json() for m in self.matches]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MatchResult:
        return cls(str(data.get("label", "object")), [Match.from_json(m) for m in data.get("matches", [])],
                   float(data.get("threshold", THRESHOLD)), ambiguous=bool(data.get("ambiguous", False)))


# --------------------------------------------------------------------------- geometry helpers

def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking unit vector ``a`` to unit vector ``b``."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    v = np.cross(a, b)
    c = float(a @ b)
    if c < -1.0 + 1e-12:
        return -np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


def rotation_angle(r: np.ndarray) -> float:
    """Angle of a rotation matrix, degrees."""
    return math.degrees(math.acos(float(np.clip((np.trace(r) - 1.0) * 0.5, -1.0, 1.0))))


def _rot_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def orientation_error(r_est: np.ndarray, r_true: np.ndarray, symmetry: int = 1) -> float:
    """Angle (degrees) between two camera-from-model rotations, modulo the template's symmetry about +Z."""
    if symmetry == SYM_SPHERE:
        return 0.0
    if symmetry == SYM_REVOLUTION:
        return math.degrees(math.acos(float(np.clip(r_est[:, 2] @ r_true[:, 2], -1.0, 1.0))))
    return min(rotation_angle(r_est.T @ r_true @ _rot_z(2.0 * math.pi * k / symmetry)) for k in range(symmetry))


def roll_degrees(rotation: np.ndarray) -> float:
    """How far the model's up axis leans sideways in the image (degrees, 0 = upright)."""
    up = rotation[:, 2]
    return math.degrees(math.atan2(abs(float(up[0])), float(up[1])))


# --------------------------------------------------------------------------- the instance

@dataclass
class _Window:
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

    def rescaled(self, k: float, z_centre: float) -> _Window:
        """This window with its depth relief divided by ``k`` about ``z_centre`` (along the pixel rays)."""
        z = np.where(self.mask, z_centre + (self.z - z_centre) / k, 0.0)
        ii, jj = np.nonzero(self.mask)
        zz = z[ii, jj]
        pts = np.stack([(jj + 0.5 - self.cx) / self.focal * zz, (self.cy - ii - 0.5) / self.focal * zz, -zz], axis=1)
        return _Window(self.x0, self.y0, self.side, self.n, self.mask, z, pts, self.focal, self.cx, self.cy)

    @classmethod
    def sample(cls, mask: np.ndarray, zdepth: np.ndarray, camera: Camera, centre: np.ndarray, side: float,
               n: int) -> _Window:
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
        pts = np.stack([(xs[jj] - 0.5 * camera.width) / f * zz, (0.5 * camera.height - ys[ii]) / f * zz, -zz], axis=1)
        return cls(x0, y0, side, n, m, z, pts, f * n / side, (0.5 * camera.width - x0) / step,
                   (0.5 * camera.height - y0) / step)

    def render(self, vertices: np.ndarray, triangles: np.ndarray, pose: Pose) -> render.Raster:
        xy, z = render.project_perspective(pose.apply(vertices), self.focal, self.cx, self.cy)
        return render.rasterize(xy, z, triangles, (self.n, self.n))

    def backproject(self, raster: Raster) -> np.ndarray:
        ii, jj = np.nonzero(raster.mask)
        zz = raster.depth[ii, jj]
        return np.stack([(jj + 0.5 - self.cx) / self.focal * zz, (self.cy - ii - 0.5) / self.focal * zz, -zz], axis=1)


# --------------------------------------------------------------------------- stages

def _valid_views(library: TemplateLibrary, cand: list[int]) -> np.ndarray:
    """(C, V) bool: the views that are not repeats of another under the template's symmetry."""
    az, el = library.angles[:, 0], library.angles[:, 1]
    out = np.zeros((len(cand), len(az)), dtype=bool)
    for k, i in enumerate(cand):  # one row per candidate template
        sym = library.templates[i].symmetry
        if sym == SYM_SPHERE:
            out[k] = (az == 0) & (el == library.angles[:, 1].min())
        elif sym == SYM_REVOLUTION:
            out[k] = az == 0
        else:
            out[k] = az < 360.0 / max(sym, 1) - 1e-6
    return out


def coarse_scores(inst: desc.InstanceDescriptor, library: TemplateLibrary, cand: list[int],
                  depth_scale: bool = False, depth_trust: float = 1.0, silhouette: np.ndarray | None = None,
                  ) -> np.ndarray:
    """(C, V) coarse fit of every candidate view (-inf for symmetric repeats): the outline, proportions
    apart (``silhouette``, default ``silhouette_scores``), minus the depth term: the spread of the
    depth difference over the overlap, in template units; with ``depth_scale`` the object's relief
    is first rescaled by the factor that fits best.
    """
    g2 = desc.GRID * desc.GRID
    c, v = len(cand), library.angles.shape[0]
    iou = (silhouette_scores(inst, library, cand) if silhouette is None else silhouette).ravel()
    dep = library.depth[cand].reshape(c * v, g2)
    b = inst.depth.ravel()
    both = (dep > 0) & np.isfinite(b)
    ta = np.where(both, desc.dequantize_depth(dep), 0.0)
    tb = np.where(both, np.nan_to_num(b), 0.0)
    n = np.maximum(both.sum(axis=1), 1)
    sa, sb = ta.sum(axis=1), tb.sum(axis=1)
    caa = (ta * ta).sum(axis=1) - sa * sa / n
    cbb = (tb * tb).sum(axis=1) - sb * sb / n
    cab = (ta * tb).sum(axis=1) - sa * sb / n
    k = np.ones(len(caa))
    if depth_scale:
        k = np.clip(cab / np.maximum(caa, 1e-12), *DEPTH_SCALE_RANGE)
    rms = np.sqrt(np.maximum((caa - 2.0 * cab / k + cbb / k**2) / n, 0.0))
    rms = np.where(both.any(axis=1), rms, 1.0)
    score = (iou - COARSE_DEPTH_WEIGHT * depth_trust * rms).reshape(c, v) + view_prior(library)
    return np.where(_valid_views(library, cand), score, -np.inf)


def view_prior(library: TemplateLibrary) -> np.ndarray:
    """(V,) score bonus of each library view: objects are mostly seen upright from slightly above."""
    return -0.03 * ((library.angles[:, 1] - 20.0) / 60.0) ** 2


def silhouette_scores(inst: desc.InstanceDescriptor, library: TemplateLibrary, cand: list[int]) -> np.ndarray:
    """(C, V) how well each candidate view's outline fits the object's, proportions apart: IoU of the
    silhouettes stretched to fill their boxes, minus ``ASPECT_WEIGHT`` per unit of log aspect ratio
    beyond ``ASPECT_FREE`` (a lattice fit changes proportions cheaply, a shape not)."""
    sil, aspect = library.silhouettes
    sil, aspect = sil[cand], aspect[cand]
    c, v, k2 = sil.shape
    a8, a_aspect = desc.stretched_silhouettes(inst.coverage[None])
    flat = sil.reshape(c * v, k2)
    inter = np.minimum(flat, a8[0]).sum(axis=1, dtype=np.uint32)
    union = np.maximum(flat, a8[0]).sum(axis=1, dtype=np.uint32)
    iou = (inter / np.maximum(union, 1)).reshape(c, v)
    return iou - ASPECT_WEIGHT * np.maximum(np.abs(aspect - a_aspect[0]) - ASPECT_FREE, 0.0)


def prune(silhouette: np.ndarray, keep: int = PRUNE_KEEP) -> np.ndarray:
    """Rows of ``silhouette`` (``silhouette_scores`` plus the view prior, -inf for repeated views)
    whose best view is among the ``keep`` best, in their order."""
    if len(silhouette) <= keep:
        return np.arange(len(silhouette))
    return np.sort(np.argsort(-silhouette.max(axis=1), kind="stable")[:keep])


def relief_scale(raster: render.Raster, window: _Window) -> float:
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


def _initial_pose(library: TemplateLibrary, t: int, view: int, inst: desc.InstanceDescriptor, camera: Camera,
                  rotations: np.ndarray) -> Pose:
    """Place the template so its view window lands on the instance's window."""
    cx, cy, side, dref = (float(x) for x in library.windows[t, view])
    x0, y0, side_px = inst.window
    f = float(camera.focal_px)
    u = np.array([x0 + 0.5 * side_px, y0 + 0.5 * side_px])
    ray = np.array([(u[0] - 0.5 * camera.width) / f, (0.5 * camera.height - u[1]) / f, -1.0])
    r_ray = rotation_between(np.array([0.0, 0.0, -1.0]), ray)
    rot = r_ray @ rotations[view]
    scale = inst.side_m / side
    centre = ray * inst.z_ref
    t_vec = centre - scale * r_ray @ np.array([cx, cy, -dref])
    return Pose(rot, t_vec, scale)


def _bbox(mask: np.ndarray) -> np.ndarray:
    rows = np.nonzero(mask.any(axis=1))[0]
    cols = np.nonzero(mask.any(axis=0))[0]
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.float64)


def align_silhouette(vertices: np.ndarray, triangles: np.ndarray, window: _Window, pose: Pose,
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


def _exp_so3(w: np.ndarray) -> np.ndarray:
    theta = float(np.linalg.norm(w))
    if theta < 1e-12:
        return np.eye(3)
    k = _skew((w / theta)[None])[0]
    return np.eye(3) + math.sin(theta) * k + (1.0 - math.cos(theta)) * k @ k


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


def _outline_pairs(window: _Window, grid: np.ndarray, hit: np.ndarray, target: np.ndarray, tree_p: cKDTree,
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


def refine(vertices: np.ndarray, triangles: np.ndarray, window: _Window, pose: Pose, iterations: int = 10,
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
        rw = _exp_so3(w)
        new = Pose(rw @ pose.rotation, (1.0 + sigma) * rw @ (pose.translation - centre) + centre + tau,
                   pose.scale * (1.0 + sigma))
        step = math.degrees(float(np.linalg.norm(w)))
        moved = float(np.linalg.norm(tau))
        pose = new
        if step < 0.1 and abs(sigma) < 1e-3 and moved < 1e-3 * size:
            break
    return pose


def _dilate(mask: np.ndarray) -> np.ndarray:
    """3x3 binary dilation."""
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    grown = out.copy()
    grown[:, 1:] |= out[:, :-1]
    grown[:, :-1] |= out[:, 1:]
    return grown


def tolerant_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU that forgives one pixel of misalignment: pixels of each mask within one pixel of the
    other count as shared (thin legs and handles would otherwise dominate the score)."""
    na, nb = int(a.sum()), int(b.sum())
    if na == 0 or nb == 0:
        return 0.0
    shared_a = int((a & _dilate(b)).sum())
    shared_b = int((b & _dilate(a)).sum())
    shared = 0.5 * (shared_a + shared_b)
    return float(shared / (na + nb - shared))


def fit_score(vertices: np.ndarray, triangles: np.ndarray, window: _Window, pose: Pose, object_size: float,
              depth_scale: bool = False, depth_trust: float = 1.0) -> tuple[float, float, float, float]:
    """(score, IoU, relative depth error, relief scale) of a posed template against the window's
    mask and depth (the relief rescaled to the template's first with ``depth_scale``)."""
    ras = window.render(vertices, triangles, pose)
    hit = ras.mask
    iou = tolerant_iou(hit, window.mask)
    k = relief_scale(ras, window) if depth_scale else 1.0
    zi = window.rescaled(k, window.z_centre).z if depth_scale else window.z
    inter = ~_dilate(~hit) & ~_dilate(~window.mask)  # away from both outlines: no mixed depths
    if not inter.any():
        inter = hit & window.mask
    if inter.any():
        # saturating: a rim seen a pixel off (a depth jump inside the outline) costs little
        err = float(np.minimum(np.abs(ras.depth[inter] - zi[inter]) / object_size, DEPTH_CAP).mean())
    else:
        err = 1.0
    roll = roll_degrees(pose.rotation)
    score = iou - DEPTH_WEIGHT * depth_trust * err - ROLL_WEIGHT * (roll / 30.0) ** 2
    return score, iou, err, k


def score_window(inst: desc.InstanceDescriptor, mask: np.ndarray, zdepth: np.ndarray, camera: Camera,
                 grid: int = SCORE_GRID) -> tuple[_Window, float]:
    """The window poses are scored in (``grid`` cells a side around the object) and the object's size."""
    x0, y0, side_px = inst.window
    centre = np.array([x0 + 0.5 * side_px, y0 + 0.5 * side_px])
    window = _Window.sample(mask, zdepth, camera, centre, side_px * WINDOW_GROW, grid)
    return window, inst.side_m / (1.0 + 2.0 * desc.MARGIN)


def match_instance(
    mask: np.ndarray, zdepth: np.ndarray, camera: Camera, library: TemplateLibrary, label: str | None = None, *,
    top: int = 3, refine_templates: int = 6, second_views: int = 4, extra_views: int = 2, iterations: int = 10,
    threshold: float = THRESHOLD, depth_scale: bool = False, depth_trust: float = 1.0, prune_keep: int = PRUNE_KEEP,
) -> MatchResult:
    """The ``top`` best templates for one object (``mask`` (H, W) bool, ``zdepth`` (H, W) distances
    along the camera axis, ``camera`` with ``width``, ``height`` and ``focal_px``).

    Candidates are the templates answering to ``label`` (all of them for an unknown label), of which
    the ``prune_keep`` best by silhouette are compared in full.
    ``depth_scale``: the depth is relative (its relief has an unknown scale), fit that scale too.
    ``depth_trust`` (``templates.fit.DEPTH_TRUST``) weights every depth term against the silhouette.
    The best view of the ``refine_templates`` best candidates, and ``extra_views`` more views (at
    least 45 degrees apart) of the first ``second_views``, are refined; each template keeps its
    best refined pose.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    result = MatchResult(label=str(label or "object"), threshold=threshold, timings=timings)
    mask = np.asarray(mask, dtype=bool)
    zdepth = np.asarray(zdepth, dtype=np.float64)
    if mask.shape != zdepth.shape:
        raise ValueError(f"mask {mask.shape} and depth {zdepth.shape} differ in shape")
    if mask.sum() < 16 or len(library) == 0:
        return result
    inst = desc.instance_descriptor(mask, zdepth, float(camera.focal_px))
    cand = library.candidates(label)
    silhouette = np.where(_valid_views(library, cand), silhouette_scores(inst, library, cand), -np.inf)
    kept = prune(silhouette + view_prior(library), prune_keep)
    cand = [cand[i] for i in kept]
    scores = coarse_scores(inst, library, cand, depth_scale, depth_trust, silhouette[kept])
    timings["coarse"] = time.perf_counter() - t0

    best_view = scores.argmax(axis=1)
    best = scores[np.arange(len(cand)), best_view]
    order = np.argsort(-best)[: max(refine_templates, top)]
    seeds = [(int(k), int(best_view[k])) for k in order]
    rotations = desc.view_rotations()
    apart = np.degrees(np.arccos(np.clip((np.einsum("aij,bij->ab", rotations, rotations) - 1.0) * 0.5, -1, 1)))
    for k in order[:second_views]:  # other, distant views of the leading templates (front/back flips)
        row = scores[k].copy()
        chosen = [int(best_view[k])]
        for _ in range(extra_views):
            row[np.any(apart[chosen] < 45.0, axis=0)] = -np.inf
            if not np.isfinite(row.max()):
                break
            chosen.append(int(row.argmax()))
            seeds.append((int(k), chosen[-1]))

    fine, object_size = score_window(inst, mask, zdepth, camera)
    coarse_win = score_window(inst, mask, zdepth, camera, REFINE_GRID)[0]
    best_per_template: dict[int, Match] = {}
    t1 = time.perf_counter()
    for k, view in seeds:  # a few ICP runs
        ti = cand[k]
        tpl = library.templates[ti]
        verts = tpl.vertices.astype(np.float64)
        pose = _initial_pose(library, ti, view, inst, camera, rotations)
        pose = refine(verts, tpl.triangles, coarse_win, pose, iterations, depth_scale=depth_scale,
                      depth_trust=depth_trust)
        score, iou, err, relief = fit_score(verts, tpl.triangles, fine, pose, object_size, depth_scale,
                                            depth_trust)
        m = Match(tpl.name, tpl.category, score, iou, err, pose, float(scores[k, view]),
                  (float(library.angles[view][0]), float(library.angles[view][1])), tpl.source, relief)
        if ti not in best_per_template or score > best_per_template[ti].score:
            best_per_template[ti] = m
    timings["refine"] = time.perf_counter() - t1
    result.matches = sorted(best_per_template.values(), key=lambda m: -m.score)[:top]
    timings["total"] = time.perf_counter() - t0
    return result
