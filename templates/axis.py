"""Where a surface of revolution's axis lies, read from the depth map of its seen side.

The lattice fit places a template of revolution by its outline and, weakly, by the depth map
(``fit.REVOLUTION_DEPTH_WEIGHT``): across the view the outline pins its axis, but along the view the
axis lands about 1 % of the object's size off (too far, on meshes/category's cans and bowls), and the
hidden side, which is the template's, moves with it. Every normal line of a surface of revolution
meets its axis (Pottmann & Wallner's linear line complex), so the axis of the seen surface comes
from a small eigen-problem on the map's points and normals: no search. A cylinder's normals also all
lie normal to one direction, which leaves the moment's part along the axis free; handles, spouts and
a plate's flat face do not constrain the axis and are down-weighted (iteratively reweighted, from
the template's own axis).

``onto_seen_axis`` (called by ``fit.place_on_axis``) moves a placed template along the view onto the
seen surface's axis, scaling its pose about the camera, so its outline in the photo does not change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .pose import Camera, Pose
from .render import unproject

MAX_POINTS = 20000  # the map's points used (a regular subsample of the mask beyond this)
MAX_STEP = 0.03  # depth step to a neighbour pixel (of the object's size) beyond which a pixel is an edge
GRAZING = 0.2  # |cos| between a normal and its view ray below which the map's normal is too noisy to use
SCALE = 0.01  # residual (of the object's size) at which a point's weight is halved
ITERATIONS = 6
# When the seen axis is trusted, each measured on bench_quality.py's renders (oracle depth): on the library's
# own shapes the template's axis is already within 0.5 % of the size (vases, slim cans: moving it by the
# estimate changed full F@0.1 by -0.01..+0.003), so shorter moves are noise (MIN_ALONG); a bowl's faceted
# inside leaned the estimate 6-19 degrees (MAX_TILT) with under 80 % of the normals meeting it, as did a
# real can's dented, ribbed side (+1.1 % off along the view where the GT axis was; MIN_INLIERS); a plate
# seen from above shows its axis through a thin rim only (MIN_SIDE: its estimate was right within 0.4 %,
# yet moving the plate template onto it lost 0.03-0.05 full F, the template's profile being no plate's).
MAX_TILT = 3.0  # degrees the seen axis may lean from the template's for it to be the same axis
MAX_ACROSS = 0.04  # offset across the view (of the object's size) the outline would not allow
MAX_ALONG = 0.08  # the farthest (of the object's size) a template is moved along the view ...
MIN_ALONG = 0.006  # ... and the least
MIN_INLIERS = 0.85  # share of the axis-constraining points within 2 * SCALE of it
MIN_SPREAD = 60.0  # degrees of azimuth about the axis the constraining points must cover
MIN_SIDE = 0.3  # share of the seen points whose normals lean off the axis (sides, not a flat face)


@dataclass
class Axis:
    """A line in camera space: a unit ``direction`` and the ``point`` of it nearest the seen points'
    centre; ``inliers`` the share of the constraining points that agree with it, ``spread`` the azimuth
    (degrees) they cover about it, ``side`` their share of the seen points."""

    direction: np.ndarray
    point: np.ndarray
    inliers: float
    spread: float
    side: float


def surface_points(mask: np.ndarray, zdepth: np.ndarray, camera: Camera, size: float,
                   max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Camera-space points and unit normals of the depth map inside ``mask`` (``zdepth``: distance
    along -Z per pixel, as the fit reads it), where the pixel and its four neighbours are inside, the
    depth is continuous (steps below ``MAX_STEP`` of ``size``) and the surface is not seen edge-on."""
    full = np.asarray(zdepth, np.float64)
    h, w = full.shape
    rows, cols = np.nonzero(np.asarray(mask, bool))
    if rows.size == 0:
        return np.zeros((0, 3)), np.zeros((0, 3))
    # the mask's box and a pixel round it: no pixel outside it is ever used, on a photo of any size
    r0, r1 = max(int(rows.min()) - 1, 0), min(int(rows.max()) + 2, h)
    c0, c1 = max(int(cols.min()) - 1, 0), min(int(cols.max()) + 2, w)
    z = full[r0:r1, c0:c1]
    inside = np.asarray(mask, bool)[r0:r1, c0:c1] & np.isfinite(z) & (z > 0)
    f = float(camera.focal_px)
    jj, ii = np.meshgrid(np.arange(c0, c1) + 0.5, np.arange(r0, r1) + 0.5)
    p = unproject(jj, ii, z, f, 0.5 * w, 0.5 * h)
    ok = inside.copy()
    ok[0, :] = ok[-1, :] = ok[:, 0] = ok[:, -1] = False  # the image's border, or outside the mask
    step = MAX_STEP * size
    for dim, shift in ((0, 1), (0, -1), (1, 1), (1, -1)):
        nb_in = np.roll(inside, shift, axis=dim)
        nb_z = np.roll(np.where(inside, z, np.inf), shift, axis=dim)
        ok &= nb_in & (np.abs(nb_z - z) < step)
    du = np.roll(p, -1, axis=1) - np.roll(p, 1, axis=1)
    dv = np.roll(p, 1, axis=0) - np.roll(p, -1, axis=0)
    n = np.cross(du, dv)
    idx = np.flatnonzero(ok)
    if idx.size > max_points:
        idx = idx[np.linspace(0, idx.size - 1, max_points).astype(np.int64)]
    pts = p.reshape(-1, 3)[idx]
    nrm = n.reshape(-1, 3)[idx]
    nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-30)
    ray = pts / np.maximum(np.linalg.norm(pts, axis=1, keepdims=True), 1e-30)
    keep = np.abs(np.einsum("ij,ij->i", nrm, ray)) > GRAZING
    return pts[keep], nrm[keep]


def _solve(rows: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The line (unit direction, moment) whose complex the weighted ``rows`` ([x x n, n]) fit best.

    Least squares over unit directions: the moment that fits a direction best is solved for and
    substituted (a Schur complement), leaving a 3 x 3 eigen-problem. A cylinder's normals all lie
    normal to its direction, so the moment's part along it is free (the pseudo-inverse leaves it 0)."""
    a = rows * weights[:, None]
    m = a.T @ a
    mbb = np.linalg.pinv(m[3:, 3:], rcond=1e-9, hermitian=True)
    schur = m[:3, :3] - m[:3, 3:] @ mbb @ m[3:, :3]
    val, vec = np.linalg.eigh(0.5 * (schur + schur.T))
    if not np.all(np.isfinite(val)):
        return None
    d = vec[:, 0]
    moment = -mbb @ m[3:, :3] @ d
    return d, moment - (moment @ d) * d


def revolution_axis(points: np.ndarray, normals: np.ndarray, start: tuple[np.ndarray, np.ndarray],
                    size: float) -> Axis | None:
    """The axis of revolution of the seen surface (``points``, ``normals`` in camera space), iterated
    from ``start`` (a direction and a point on it: the template's axis) with weights that halve at a
    residual of ``SCALE`` of ``size``. None when too few points constrain it."""
    if len(points) < 50:
        return None
    centre = points.mean(axis=0)
    x = points - centre
    rows = np.hstack([np.cross(x, normals), normals])
    d = np.asarray(start[0], np.float64)
    d = d / np.linalg.norm(d)
    q = np.asarray(start[1], np.float64) - centre
    c = SCALE * size
    for _ in range(ITERATIONS):
        res = rows @ np.concatenate([d, np.cross(q, d)])
        w = 1.0 / (1.0 + (res / c) ** 2)
        w *= np.clip(1.0 - np.abs(normals @ d), 0.0, 1.0)  # normals along the axis (a flat top) do not place it
        solved = _solve(rows, np.sqrt(w))
        if solved is None:
            return None
        d_new, moment = solved
        if d_new @ d < 0:
            d_new, moment = -d_new, -moment
        d, q = d_new, np.cross(d_new, moment)
    res = np.abs(rows @ np.concatenate([d, np.cross(q, d)]))
    side = np.abs(normals @ d) < 0.5
    if side.sum() < 50:
        return None
    good = side & (res < 2.0 * c)
    rel = x[good] - q
    rel -= np.outer(rel @ d, d)
    e1 = np.cross(d, [1.0, 0.0, 0.0] if abs(d[0]) < 0.9 else [0.0, 1.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(d, e1)
    az = np.degrees(np.arctan2(rel @ e2, rel @ e1))
    spread = _azimuth_cover(az)
    point = centre + q - (q @ d) * d  # the axis' point nearest the points' centre
    return Axis(d, point, float(good.sum() / side.sum()), spread, float(side.mean()))


def _azimuth_cover(az: np.ndarray) -> float:
    """Degrees of the circle the angles ``az`` cover: the 10-degree sectors holding at least 1 % of them."""
    if az.size == 0:
        return 0.0
    counts = np.bincount(np.minimum(np.mod(az, 360.0) // 10.0, 35).astype(np.int64), minlength=36)
    return 10.0 * float((counts >= max(3, 0.01 * az.size)).sum())


def template_axis(pose: Pose, axis_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A template's axis in camera space (unit direction, a point on it) through its lattice-deformed
    model axis points ``axis_points`` (model (0, 0, h) moved by the lattice) under ``pose``."""
    p = pose.apply(axis_points)
    centre = p.mean(axis=0)
    _, _, vt = np.linalg.svd(p - centre)
    d = vt[0]
    up = pose.rotation[:, 2]
    return (d if d @ up >= 0 else -d), centre


def seen_offset(seen: Axis, template: tuple[np.ndarray, np.ndarray], size: float,
                max_tilt: float = MAX_TILT, min_inliers: float = MIN_INLIERS) -> tuple[float, float] | None:
    """How far the ``seen`` axis lies from the template's (``template``: direction, point) along the view
    (toward the camera), and the template axis' distance from the camera; None when the two are not the
    same axis: they lean apart by more than ``max_tilt`` degrees, lie apart across the view by more than
    ``MAX_ACROSS`` of ``size`` or along it by more than ``MAX_ALONG``, or the seen axis rests on too few,
    too narrow or too scattered points (under ``min_inliers`` of them agree)."""
    d_t, q_t = template
    if seen.inliers < min_inliers or seen.spread < MIN_SPREAD or seen.side < MIN_SIDE:
        return None
    if np.degrees(np.arccos(min(1.0, abs(float(seen.direction @ d_t))))) > max_tilt:
        return None
    foot = q_t + ((seen.point - q_t) @ d_t) * d_t
    gap = seen.point - foot
    distance = float(np.linalg.norm(foot))
    view = -foot / distance  # toward the camera
    along = float(gap @ view)
    across = gap - along * view
    if np.linalg.norm(across) > MAX_ACROSS * size or abs(along) > MAX_ALONG * size:
        return None
    return along, distance


def onto_seen_axis(pose: Pose, seen: Axis, template: tuple[np.ndarray, np.ndarray], size: float) -> Pose | None:
    """``pose`` scaled about the camera so that the template's axis (``template``: direction, point)
    comes onto the ``seen`` one along the view, near the seen points: the template's image stays where
    it was. None when the two are not the same axis (``seen_offset``) or the move would be shorter than
    the estimate's error (``MIN_ALONG``)."""
    offset = seen_offset(seen, template, size)
    if offset is None or abs(offset[0]) < MIN_ALONG * size:
        return None
    along, distance = offset
    k = 1.0 - along / distance
    return Pose(pose.rotation, k * np.asarray(pose.translation, np.float64), k * pose.scale)
