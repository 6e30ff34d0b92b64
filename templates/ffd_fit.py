"""Fit a posed template's FFD lattice to one object: its mask outline and, as far as it can be
trusted, its visible depth.

The deformation is linear in the lattice offsets, so each step is a regularised linear least-squares
problem (Gauss-Newton through the camera projection), with correspondences found again after every
step as in ICP:

- silhouette: every point of the template's contour generator that lies on its projected outline
  moves along the mask's signed distance field to the mask's outline; every point of the mask's
  outline pulls the nearest projected outline point of the template along the outline's normal;
- depth: visible front vertices move onto the depth map (point to plane), weighted by ``depth_trust``;
- smoothness: second differences of the offsets along every lattice axis (affine changes such as
  taller or wider proportions cost nothing), and a small penalty on the offsets' change from the
  lattice the fit starts from (the rest lattice, or a refined pose's stretch).

Offsets live in a reduced basis that keeps the template's symmetry exactly: a surface of revolution
about +Z only gets a radial scale per lattice layer (its lattice interpolates linearly across the axis,
so the radial scale stays exactly radial), one height shift and stretch, and optionally a move of its
axis across itself and oval sections (``FitSettings``), and mirror-symmetric templates
keep their mirror planes (mirrored control points move as mirror images).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from . import ffd, render
from .ffd import Lattice, is_revolution, lattice_for, mirror_axes, second_differences, symmetry_basis
from .match import Camera, Pose
from .mesh import vertex_normals
from .profile import Profile


@dataclass
class FitSettings:
    """Weights and sampling of the lattice fit (residuals are fractions of the object's size)."""

    resolution: tuple[int, int, int] = (4, 4, 4)  # lattice points of templates not of revolution
    layers: int = ffd.REVOLUTION_LAYERS  # lattice layers along a surface of revolution's axis
    oval: bool = False  # a surface of revolution's sections may become ellipses (``ffd.symmetry_basis``)
    move_axis: bool = True  # a surface of revolution's axis may move across itself (``ffd.symmetry_basis``)
    margin: float = 0.05  # lattice box padding, fraction of the template's largest extent
    iterations: int = 10
    outline_weight: float = 0.5  # mask outline -> template outline, relative to the silhouette term
    depth_weight: float = 1.0  # visible depth at trust 1, relative to the silhouette term
    smoothness: float = 1e-3  # bending (second differences of the offsets)
    magnitude: float = 1e-5  # size of the offsets from the lattice the fit starts from (the rest lattice or a stretch)
    robust: float = 0.03  # Cauchy scale of the residuals, fraction of the object's size
    max_step: float = 0.1  # largest control point move of one step, fraction of the template's size
    grid: int = 384  # longest side of the sampled mask (image pixels are grouped above it)
    render_grid: int = 128  # longest side of the visibility renders
    mirror_tolerance: float = 1e-3  # mirror detection, fraction of the template's size
    max_outline_points: int = 600  # mask outline points
    max_samples: int = 600  # template outline points and depth vertices per step
    tolerance: float = 5e-4  # stop when no control point moves more (fraction of the template's size)


@dataclass
class LatticeFit:
    """A fitted lattice and how well the deformed template matches the object."""

    lattice: Lattice
    iou: float  # silhouette IoU against the mask
    outline_error: float  # mean distance of the template's outline to the mask's outline, image pixels
    depth_error: float  # mean point-to-plane depth error of the visible front, fraction of the object size
    bending: float  # sum of squared second differences of the offsets, in template sizes
    displacement: float  # RMS control point offset, fraction of the template's size
    support: np.ndarray = field(repr=False)  # (P,) how strongly the observations tie each control point
    iterations: int = 0
    seconds: float = 0.0
    profile: Profile | None = None  # a surface of revolution's seen profile, applied before the lattice

    def deform(self, vertices: np.ndarray, strength: float = 1.0) -> np.ndarray:
        """Model-space ``vertices`` as the fit shapes them (its profile, then its lattice), scaled by
        ``strength`` (the Fit slider: 0 = the template's own shape)."""
        v = np.asarray(vertices, np.float64)
        if self.profile is not None:
            v = self.profile.apply(v, strength)
        return self.lattice.deform(v, strength)

    def to_json(self) -> dict[str, Any]:
        """The lattice and the fit's measures (the support is left out: it is for diagnostics)."""
        def num(x: float) -> float | None:
            return round(float(x), 5) if np.isfinite(x) else None

        data = {"lattice": self.lattice.to_json(), "iou": num(self.iou), "outline_error": num(self.outline_error),
                "depth_error": num(self.depth_error), "bending": num(self.bending),
                "displacement": num(self.displacement), "iterations": int(self.iterations),
                "seconds": round(float(self.seconds), 3)}
        if self.profile is not None:
            data["profile"] = self.profile.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LatticeFit:
        def num(key: str) -> float:
            value = data.get(key)
            return float("nan") if value is None else float(value)

        lattice = Lattice.from_json(data["lattice"])
        return cls(lattice, num("iou"), num("outline_error"), num("depth_error"), num("bending"),
                   num("displacement"), np.zeros(lattice.num_points), int(data.get("iterations", 0)),
                   float(data.get("seconds", 0.0)),
                   Profile.from_json(data["profile"]) if data.get("profile") else None)


def manifold_edges(triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges ``(E, 2)`` shared by exactly two triangles and those triangles ``(E, 2)``."""
    t = np.asarray(triangles, dtype=np.int64)
    a = t.ravel()
    b = t[:, [1, 2, 0]].ravel()
    key = np.minimum(a, b) * (int(t.max()) + 1) + np.maximum(a, b)
    order = np.argsort(key, kind="stable")
    key, face = key[order], np.repeat(np.arange(len(t)), 3)[order]
    starts = np.concatenate([[0], np.nonzero(np.diff(key))[0] + 1])
    counts = np.diff(np.concatenate([starts, [key.size]]))
    two = starts[counts == 2]
    n = int(t.max()) + 1
    return np.stack([key[two] // n, key[two] % n], axis=1), np.stack([face[two], face[two + 1]], axis=1)


# --------------------------------------------------------------------------- the image side

class _MaskField:
    """The mask on a grid of at most ``grid`` cells per side around it: signed distance to its outline
    (image pixels, positive inside) with its gradient, and points on the outline with inward normals."""

    def __init__(self, mask: np.ndarray, grid: int, max_points: int) -> None:
        mask = np.asarray(mask, dtype=bool)
        rows, cols = np.nonzero(mask)
        lo = np.array([cols.min(), rows.min()], dtype=np.float64)
        hi = np.array([cols.max() + 1, rows.max() + 1], dtype=np.float64)
        pad = 0.3 * float((hi - lo).max()) + 4.0
        self.step = max(1.0, float((hi - lo).max() + 2 * pad) / grid)
        self.x0 = lo - pad
        n = np.ceil((hi - lo + 2 * pad) / self.step).astype(int)
        self.shape = (int(n[1]), int(n[0]))
        self.mask = self.sample_mask(mask)
        inside = ndimage.distance_transform_edt(self.mask)
        outside = ndimage.distance_transform_edt(~self.mask)
        self.sdf = np.where(self.mask, inside - 0.5, 0.5 - outside) * self.step
        gy, gx = np.gradient(self.sdf)
        self.grad = np.stack([gx, gy], axis=-1) / self.step
        edge = self.mask & ~ndimage.binary_erosion(self.mask, border_value=0)
        ii, jj = np.nonzero(edge)
        keep = np.linspace(0, ii.size - 1, min(ii.size, max_points)).astype(int)
        centres = self.x0 + (np.stack([jj[keep], ii[keep]], axis=1) + 0.5) * self.step
        normal = self.gradient(centres)
        normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
        self.outline = centres - self.distance(centres)[:, None] * normal
        self.normals = normal

    def cell_centres(self) -> np.ndarray:
        h, w = self.shape
        jj, ii = np.meshgrid(np.arange(w), np.arange(h))
        return self.x0 + (np.stack([jj, ii], axis=-1) + 0.5) * self.step

    def sample_mask(self, mask: np.ndarray) -> np.ndarray:
        c = self.cell_centres()
        j, i = np.floor(c[..., 0]).astype(int), np.floor(c[..., 1]).astype(int)
        inside = (i >= 0) & (i < mask.shape[0]) & (j >= 0) & (j < mask.shape[1])
        out = np.zeros(self.shape, dtype=bool)
        out[inside] = mask[i[inside], j[inside]]
        return out

    def _bilinear(self, field: np.ndarray, xy: np.ndarray) -> np.ndarray:
        g = (xy - self.x0) / self.step - 0.5
        h, w = self.shape
        gx = np.clip(g[:, 0], 0.0, w - 1.000001)
        gy = np.clip(g[:, 1], 0.0, h - 1.000001)
        j, i = np.floor(gx).astype(int), np.floor(gy).astype(int)
        fx, fy = gx - j, gy - i
        if field.ndim == 3:
            fx, fy = fx[:, None], fy[:, None]
        return ((1 - fy) * ((1 - fx) * field[i, j] + fx * field[i, j + 1])
                + fy * ((1 - fx) * field[i + 1, j] + fx * field[i + 1, j + 1]))

    def distance(self, xy: np.ndarray) -> np.ndarray:
        return self._bilinear(self.sdf, xy)

    def gradient(self, xy: np.ndarray) -> np.ndarray:
        return self._bilinear(self.grad, xy)


def _projection_rows(p_cam: np.ndarray, g: np.ndarray, focal: float) -> np.ndarray:
    """``(N, 3)``: derivative of ``g . pixel(p)`` with respect to the camera-space point ``p``."""
    zc = -p_cam[:, 2]
    du = np.stack([focal / zc, np.zeros_like(zc), focal * p_cam[:, 0] / zc**2], axis=1)
    dv = np.stack([np.zeros_like(zc), -focal / zc, -focal * p_cam[:, 1] / zc**2], axis=1)
    return g[:, :1] * du + g[:, 1:] * dv


def _render(field: _MaskField, uv: np.ndarray, z: np.ndarray, triangles: np.ndarray, cells: int,
            ) -> tuple[render.Raster, np.ndarray, float]:
    """The posed template rendered over the mask field's region, at most ``cells`` pixels a side:
    the raster, the projected vertices in its pixels, and its pixel size in image pixels."""
    h, w = field.shape
    scale = max(h, w) / cells
    step = field.step * max(scale, 1.0)
    # rounded first: at a pixel size equal to the field's, h * step / step can land a hair above h
    shape = (int(np.ceil(round(h * field.step / step, 6))), int(np.ceil(round(w * field.step / step, 6))))
    xy = (uv - field.x0) / step
    return render.rasterize(xy, z, triangles, shape), xy, step


# --------------------------------------------------------------------------- the fit

@dataclass
class _Terms:
    """Linearised residual rows of one step (rows over the flattened offsets, residuals, weights)."""

    rows: list[np.ndarray] = field(default_factory=list)
    res: list[np.ndarray] = field(default_factory=list)
    wts: list[np.ndarray] = field(default_factory=list)

    def add(self, weights: np.ndarray, coeff: np.ndarray, residual: np.ndarray, weight: np.ndarray) -> None:
        """Rows ``residual + coeff_i . (sum_p weights_ip * d_offset_p)`` with per-row ``weight``."""
        if residual.size == 0:
            return
        self.rows.append((weights[:, :, None] * coeff[:, None, :]).reshape(len(residual), -1))
        self.res.append(residual)
        self.wts.append(weight)


def _spread(n: int, most: int) -> np.ndarray:
    """At most ``most`` indices spread evenly over ``range(n)``."""
    return np.unique(np.linspace(0, n - 1, min(n, most)).astype(np.int64)) if n else np.zeros(0, np.int64)


def _cauchy(r: np.ndarray, c: float) -> np.ndarray:
    return 1.0 / (1.0 + (r / c) ** 2)


def fit_lattice(
    vertices: np.ndarray, triangles: np.ndarray, pose: Pose, camera: Camera, mask: np.ndarray,
    depth: np.ndarray | None = None, depth_trust: float = 1.0, symmetry: int = 1, *,
    settings: FitSettings | None = None, lattice: Lattice | None = None,
) -> LatticeFit:
    """Fit the lattice of a posed template (model-space ``vertices`` and ``triangles``, ``pose`` from
    model to camera space) to the object's ``mask`` (H, W) and optional ``depth`` (H, W, distance
    along the camera axis in the pose's units, 0 or non-finite where unknown), the depth weighted by
    ``depth_trust`` in [0, 1] (0 ignores it). ``symmetry`` is the template's library code; mirror
    planes are detected. ``lattice`` gives the rest lattice (default: ``lattice_for``, whose layout the
    symmetry bases assume); the fit starts from its offsets (as far as they keep the symmetry). With
    (almost) no mask the rest lattice comes back with IoU 0."""
    t0 = time.perf_counter()
    cfg = settings or FitSettings()
    v0 = np.asarray(vertices, dtype=np.float64)
    tris = np.asarray(triangles, dtype=np.int64)
    lat = lattice or lattice_for(v0, symmetry, cfg.resolution, cfg.margin, cfg.layers)
    scale = float(np.linalg.norm(np.ptp(v0, axis=0)))
    mirrors = () if is_revolution(symmetry) else mirror_axes(v0, cfg.mirror_tolerance)
    basis = scale * symmetry_basis(lat, is_revolution(symmetry), mirrors, cfg.oval, cfg.move_axis)
    diff = second_differences(lat) @ basis / scale
    magnitude = cfg.magnitude * basis.T @ basis / scale**2  # offsets away from the given lattice's
    reg = cfg.smoothness * diff.T @ diff + magnitude
    if int(np.count_nonzero(mask)) < 16:
        return LatticeFit(lat, 0.0, float("inf"), float("nan"), 0.0, 0.0, np.zeros(lat.num_points))
    w_all = lat.weights(v0)
    edges, edge_faces = manifold_edges(tris)
    field_ = _MaskField(mask, cfg.grid, cfg.max_outline_points)
    focal = float(camera.focal_px)
    cx, cy = 0.5 * camera.width, 0.5 * camera.height
    rot = pose.scale * pose.rotation
    size_cam = pose.scale * scale
    trust = float(np.clip(depth_trust, 0.0, 1.0))
    zmap = None
    if depth is not None and trust > 0.0 and cfg.depth_weight > 0.0:
        zmap = np.asarray(depth, dtype=np.float64)
        zmap = np.where(np.isfinite(zmap) & (zmap > 0) & np.asarray(mask, dtype=bool), zmap, 0.0)
    theta = np.linalg.lstsq(basis, lat.offsets.ravel(), rcond=None)[0]  # from the given lattice's shape
    anchor = magnitude @ theta  # the magnitude term's pull toward the given lattice, the same every step
    support = np.zeros(lat.num_points)
    it = 0
    for it in range(1, cfg.iterations + 1):  # Gauss-Newton steps with fresh correspondences
        offsets = (basis @ theta).reshape(-1, 3)
        x = v0 + w_all @ offsets
        p = pose.apply(x)
        uv, z = render.project_perspective(p, focal, cx, cy)
        terms = _Terms()
        ras, rxy, rstep = _render(field_, uv, z, tris, cfg.render_grid)
        samples = _outline_samples(p, uv, z, tris, edges, edge_faces, ras, rxy)
        if samples is not None:
            a, b, frac, suv, sp = (s[_spread(len(s), cfg.max_samples)] for s in samples)
            ws = (1 - frac)[:, None] * w_all[a] + frac[:, None] * w_all[b]
            px_m = -sp[:, 2] / (focal * size_cam)  # image pixels -> fractions of the object size
            r = field_.distance(suv)
            coeff = _projection_rows(sp, field_.gradient(suv), focal) @ rot
            wt = _cauchy(r * px_m, cfg.robust) / len(r)
            terms.add(ws, coeff * px_m[:, None], r * px_m, wt)
            near = cKDTree(suv).query(field_.outline)[1]
            m_uv, m_p, nrm = suv[near], sp[near], field_.normals
            r = np.einsum("ij,ij->i", nrm, m_uv - field_.outline)
            px_m = -m_p[:, 2] / (focal * size_cam)
            coeff = _projection_rows(m_p, nrm, focal) @ rot
            wt = cfg.outline_weight * _cauchy(r * px_m, cfg.robust) / len(r)
            terms.add(ws[near], coeff * px_m[:, None], r * px_m, wt)
        if zmap is not None:
            vis, target, nrm = _visible_depth(p, uv, z, tris, ras, rxy, field_, zmap, focal, size_cam)
            if vis.size:
                keep = _spread(vis.size, cfg.max_samples)
                vis, target, nrm = vis[keep], target[keep], nrm[keep]
                r = np.einsum("ij,ij->i", nrm, p[vis] - target) / size_cam
                wt = cfg.depth_weight * trust * _cauchy(r, cfg.robust) / len(r)
                terms.add(w_all[vis], nrm @ rot / size_cam, r, wt)
        if not terms.rows:
            break
        a_o = np.vstack(terms.rows)
        res, wts = np.concatenate(terms.res), np.concatenate(terms.wts)
        a_t = a_o @ basis
        normal = (a_t * wts[:, None]).T @ a_t
        damping = 1e-6 * max(float(np.trace(normal)) / len(theta), 1e-12)
        lhs = normal + reg + damping * np.eye(len(theta))
        rhs = (a_t * wts[:, None]).T @ (a_t @ theta - res) + damping * theta + anchor
        new = np.linalg.solve(lhs, rhs)
        move = float(np.abs((basis @ (new - theta)).reshape(-1, 3)).max()) / scale
        if move > cfg.max_step:
            new = theta + (new - theta) * cfg.max_step / move
        theta = new
        support = np.einsum("ij,i,ij->j", a_o, wts, a_o).reshape(-1, 3).sum(axis=1)
        if move < cfg.tolerance:
            break
    offsets = (basis @ theta).reshape(-1, 3)
    fitted = lat.with_offsets(offsets)
    return _report(fitted, v0, tris, pose, camera, field_, zmap, diff @ theta, scale, support, it,
                   time.perf_counter() - t0)


def _outline_samples(
    p: np.ndarray, uv: np.ndarray, z: np.ndarray, tris: np.ndarray, edges: np.ndarray, edge_faces: np.ndarray,
    ras: render.Raster, rxy: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Points of the contour generator (edge midpoints and ends) that lie on the projected outline:
    edge ends ``a``, ``b`` and fraction, image positions and camera-space positions."""
    fn = np.cross(p[tris[:, 1]] - p[tris[:, 0]], p[tris[:, 2]] - p[tris[:, 0]])
    front = np.einsum("ij,ij->i", fn, p[tris[:, 0]]) < 0
    ce = edges[front[edge_faces[:, 0]] != front[edge_faces[:, 1]]]
    if len(ce) == 0 or not ras.mask.any():
        return None
    ends = np.unique(ce)
    a = np.concatenate([ce[:, 0], ends])
    b = np.concatenate([ce[:, 1], ends])
    frac = np.concatenate([np.full(len(ce), 0.5), np.zeros(len(ends))])
    tm = ras.mask
    to_outline = np.where(tm, ndimage.distance_transform_edt(tm), ndimage.distance_transform_edt(~tm)) - 0.5
    sxy = (1 - frac)[:, None] * rxy[a] + frac[:, None] * rxy[b]
    h, w = tm.shape
    j = np.clip(np.floor(sxy[:, 0]).astype(int), 0, w - 1)
    i = np.clip(np.floor(sxy[:, 1]).astype(int), 0, h - 1)
    keep = (to_outline[i, j] <= 1.0) & (z[a] > 0) & (z[b] > 0)
    if keep.sum() < 8:
        return None
    a, b, frac = a[keep], b[keep], frac[keep]
    f = frac[:, None]
    return a, b, frac, (1 - f) * uv[a] + f * uv[b], (1 - f) * p[a] + f * p[b]


def _visible_depth(
    p: np.ndarray, uv: np.ndarray, z: np.ndarray, tris: np.ndarray, ras: render.Raster, rxy: np.ndarray,
    field_: _MaskField, zmap: np.ndarray, focal: float, size_cam: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Visible front vertices away from the mask's outline with a depth: their indices, the depth map's
    points along their rays, and their camera-space normals."""
    h, w = ras.depth.shape
    j = np.floor(rxy[:, 0]).astype(int)
    i = np.floor(rxy[:, 1]).astype(int)
    ok = (i >= 0) & (i < h) & (j >= 0) & (j < w) & (z > 0)
    ok[ok] &= z[ok] <= ras.depth[i[ok], j[ok]] + 0.02 * size_cam
    ok[ok] &= field_.distance(uv[ok]) > 2.0 * field_.step
    ii, jj = np.floor(uv[:, 1]).astype(int), np.floor(uv[:, 0]).astype(int)
    ok &= (ii >= 0) & (ii < zmap.shape[0]) & (jj >= 0) & (jj < zmap.shape[1])
    d = np.zeros(len(p))
    d[ok] = zmap[ii[ok], jj[ok]]
    nrm = vertex_normals(p, tris)
    ok &= (d > 0) & (np.einsum("ij,ij->i", nrm, p) < 0)
    vis = np.nonzero(ok)[0]
    points = render.unproject(uv[vis, 0], uv[vis, 1], d[vis], focal, 0.5 * zmap.shape[1], 0.5 * zmap.shape[0])
    return vis, points, nrm[vis]


def _report(
    lattice: Lattice, v0: np.ndarray, tris: np.ndarray, pose: Pose, camera: Camera, field_: _MaskField,
    zmap: np.ndarray | None, bend: np.ndarray, scale: float, support: np.ndarray, iterations: int, seconds: float,
) -> LatticeFit:
    """Measure the fitted template against the mask (on the mask field's grid) and the depth."""
    p = pose.apply(lattice.deform(v0))
    focal = float(camera.focal_px)
    uv, z = render.project_perspective(p, focal, 0.5 * camera.width, 0.5 * camera.height)
    ras, rxy, _ = _render(field_, uv, z, tris, max(field_.shape))
    inter = float((ras.mask & field_.mask).sum())
    iou = inter / max(float((ras.mask | field_.mask).sum()), 1.0)
    edges, edge_faces = manifold_edges(tris)
    samples = _outline_samples(p, uv, z, tris, edges, edge_faces, ras, rxy)
    outline = float(np.abs(field_.distance(samples[3])).mean()) if samples is not None else float("inf")
    depth_err = float("nan")
    size_cam = pose.scale * scale
    if zmap is not None:
        vis, target, nrm = _visible_depth(p, uv, z, tris, ras, rxy, field_, zmap, focal, size_cam)
        if vis.size:
            depth_err = float(np.abs(np.einsum("ij,ij->i", nrm, p[vis] - target)).mean() / size_cam)
    rms = float(np.sqrt((lattice.offsets**2).sum(axis=1).mean())) / scale
    return LatticeFit(lattice, iou, outline, depth_err, float(bend @ bend), rms, support, iterations, seconds)
