"""A surface of revolution's profile read off the depth map of its seen side.

A template of revolution is one profile (radius per height) turned about its axis; its lattice can
only scale that profile layer by layer (``ffd.symmetry_basis``), so a bowl's curve or a can's rim
stays the library's between the lattice's few layers, about 1 % of the object's size off, and the
hidden side with it. The seen side shows the object's own profile: every seen point, turned about
the axis into the meridian plane (distance from the axis, height along it), is a sample of it. This
module compares the placed template's profile with those samples, normal by normal, and keeps the
difference as a smooth field over the template's own meridian plane (``Profile``), which moves any
vertex of the template (the library's or a densified copy) before its lattice: the template stays a
surface of revolution and takes the seen profile all round, and where the camera saw no part of the
profile (a bowl's foot) it keeps its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.spatial import cKDTree

from .ffd import Lattice
from .pose import Pose
from .surface import sample_faces

SAMPLES = 6000  # points on the template's surface compared with the seen profile
NEIGHBOURS = 8  # seen meridian points per template point ...
RADIUS = 0.03  # ... within this distance (of the object's size) in the meridian plane and normal, together
MIN_NEIGHBOURS = 4  # seen points a template point needs to be moved
NORMAL_AGREE = 0.8  # cosine between the meridian normals of a template point and a seen point it may use
MERIDIAN_NORMAL = 0.5  # a normal must lie this much in the meridian plane (not along the turn: handles)
GRID = 64  # cells of the field along the template's height or radius, the longer (square cells)
SMOOTH = 1.0  # the field's smoothing, in cells
RING = 16  # vertices at one height and one distance from the axis that make a ring of a lathed body
BODY_SHARE = 0.5  # share of a template's vertices on such rings that make it a body of revolution
MAX_MOVE = 0.04  # the farthest a profile point is moved (of the object's size)


@dataclass
class Profile:
    """Moves of a template's points in its own meridian plane (model space: the axis is z through
    the origin): ``radial`` (out from the axis) and ``axial`` (along it), each (rows = height from
    ``h0`` in steps of ``cell``, columns = distance from the axis in steps of ``cell``)."""

    h0: float
    cell: float
    radial: np.ndarray
    axial: np.ndarray

    def apply(self, vertices: np.ndarray, strength: float = 1.0) -> np.ndarray:
        """``vertices`` (model space) moved by ``strength`` times the field (bilinear between cells;
        no move outside the field)."""
        v = np.asarray(vertices, np.float64)
        if strength == 0.0 or len(v) == 0:
            return v.copy()
        r = np.hypot(v[:, 0], v[:, 1])
        fr, fh = _sample(self.radial, self.axial, (v[:, 2] - self.h0) / self.cell, r / self.cell)
        out = v.copy()
        scale = np.where(r > 1e-12, (r + strength * fr) / np.maximum(r, 1e-12), 1.0)
        out[:, 0] *= scale
        out[:, 1] *= scale
        out[:, 2] += strength * fh
        return out

    def to_json(self) -> dict[str, Any]:
        return {"h0": float(self.h0), "cell": float(self.cell),
                "radial": np.round(self.radial, 7).tolist(), "axial": np.round(self.axial, 7).tolist()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Profile:
        return cls(float(data["h0"]), float(data["cell"]), np.asarray(data["radial"], np.float64),
                   np.asarray(data["axial"], np.float64))


def on_rings(vertices: np.ndarray) -> np.ndarray:
    """Which of a template's model ``vertices`` (axis z through the origin) lie on rings: ``RING`` or more
    at one height and one distance from the axis (to 1e-4 of its size), as a lathed body's do."""
    v = np.asarray(vertices, np.float64)
    if len(v) == 0:
        return np.zeros(0, bool)
    size = float(np.linalg.norm(np.ptp(v, axis=0)))
    key = np.round(np.stack([np.hypot(v[:, 0], v[:, 1]), v[:, 2]], axis=1) / max(size, 1e-12), 4)
    _, ring, count = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    return np.asarray(count[ring.ravel()] >= RING)


def revolution_body(vertices: np.ndarray) -> bool:
    """Whether a template (model ``vertices``, axis z through the origin) is mostly a body of revolution:
    at least ``BODY_SHARE`` of its vertices on rings (``on_rings``): a lathed body with parts (a mug's
    handle, a stool's legs); a four-fold shape (a square table) makes rings of 4 or 8."""
    ring = on_rings(vertices)
    return bool(ring.size and ring.mean() >= BODY_SHARE)


def _sample(radial: np.ndarray, axial: np.ndarray, row: np.ndarray, col: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear samples of two fields at fractional cell centres (row, col); 0 outside."""
    rows, cols = radial.shape
    y, x = row - 0.5, col - 0.5
    y0, x0 = np.floor(y).astype(np.int64), np.floor(x).astype(np.int64)
    ty, tx = y - y0, x - x0
    fr, fh = np.zeros(len(row)), np.zeros(len(row))
    for dy, wy in ((0, 1.0 - ty), (1, ty)):
        for dx, wx in ((0, 1.0 - tx), (1, tx)):
            yy, xx = y0 + dy, np.maximum(x0 + dx, 0)  # left of the first column: the axis, where r is 0
            ok = (yy >= 0) & (yy < rows) & (xx < cols)
            w = np.where(ok, wy * wx, 0.0)
            yy, xx = np.clip(yy, 0, rows - 1), np.clip(xx, 0, cols - 1)
            fr += w * radial[yy, xx]
            fh += w * axial[yy, xx]
    return fr, fh


def _meridian(points: np.ndarray, direction: np.ndarray, point: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distance from the axis, height along it, unit radial direction) of each point."""
    q = points - point
    h = q @ direction
    radial = q - np.outer(h, direction)
    r = np.linalg.norm(radial, axis=1)
    return r, h, radial / np.maximum(r, 1e-12)[:, None]


def _meridian_normals(normals: np.ndarray, radial: np.ndarray, direction: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Unit 2D normals (radial, axial) in the meridian plane and how much of each normal lies in it."""
    m = np.stack([np.einsum("ij,ij->i", normals, radial), normals @ direction], axis=1)
    length = np.linalg.norm(m, axis=1)
    return m / np.maximum(length, 1e-12)[:, None], length


def fit_profile(vertices: np.ndarray, triangles: np.ndarray, pose: Pose, lattice: Lattice,
                points: np.ndarray, normals: np.ndarray, axis: tuple[np.ndarray, np.ndarray],
                seen: tuple[np.ndarray, np.ndarray], size: float) -> Profile | None:
    """The field that moves the template (model ``vertices``, ``triangles``; axis z through the origin)
    placed by ``pose`` and shaped by ``lattice`` onto the profile of the seen surface (camera-space
    ``points`` and ``normals`` of the depth map). Each profile is read about its own axis: the placed
    template's ``axis`` and the seen surface's ``seen`` (each a direction and a point in camera space;
    ``templates.axis``), so the field changes the template's shape, not where it stands. ``size`` is the
    placed object's. None when no part of the template meets the seen profile."""
    v = np.asarray(vertices, np.float64)
    tris = np.asarray(triangles, np.int64).reshape(-1, 3)
    if len(points) < 50 or len(tris) == 0:
        return None
    direction = np.asarray(axis[0], np.float64)
    direction = direction / np.linalg.norm(direction)
    centre = np.asarray(axis[1], np.float64)
    # the lathed body only: a handle's points lie in the meridian plane beside the body's and would
    # dilute its field; the pole, a single vertex, is no ring but its faces are the body's
    ring = on_rings(v) | (np.hypot(v[:, 0], v[:, 1]) < 1e-9 * float(np.linalg.norm(np.ptp(v, axis=0))))
    tris = tris[ring[tris].all(axis=1)]
    if len(tris) == 0:
        return None
    # template points with their faces' normals as placed (lattice and pose)
    face, bary = sample_faces(v, tris, SAMPLES, seed=0)
    model = np.einsum("nc,ncj->nj", bary, v[tris[face]])
    corners = pose.apply(lattice.deform(v))[tris[face]]
    t_n = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    t_n /= np.maximum(np.linalg.norm(t_n, axis=1, keepdims=True), 1e-30)
    placed = pose.apply(lattice.deform(model))
    t_r, t_h, t_rad = _meridian(placed, direction, centre)
    t_m, t_in = _meridian_normals(t_n, t_rad, direction)
    # the seen points, normals toward the camera (outward on a seen surface)
    p = np.asarray(points, np.float64)
    n = np.asarray(normals, np.float64)
    n = np.where((np.einsum("ij,ij->i", n, p) > 0)[:, None], -n, n)
    s_dir = np.asarray(seen[0], np.float64) / np.linalg.norm(seen[0])
    if s_dir @ direction < 0:
        s_dir = -s_dir
    s_centre = np.asarray(seen[1], np.float64)
    s_centre = s_centre + ((centre - s_centre) @ s_dir) * s_dir  # heights from the same level on both axes
    o_r, o_h, o_rad = _meridian(p, s_dir, s_centre)
    o_m, o_in = _meridian_normals(n, o_rad, s_dir)
    keep = o_in >= MERIDIAN_NORMAL
    if keep.sum() < 50:
        return None
    o_xy = np.stack([o_r[keep], o_h[keep]], axis=1)
    o_m = o_m[keep]
    # neighbours near in the meridian plane and in normal: a thin wall's other side (a cup's inside, a
    # bowl's) lies close by, facing the other way
    reach = RADIUS * size
    tree = cKDTree(np.hstack([o_xy, reach * o_m]))
    t_xy = np.stack([t_r, t_h], axis=1)
    dist, idx = tree.query(np.hstack([t_xy, reach * t_m]), k=NEIGHBOURS, distance_upper_bound=reach)
    found = np.isfinite(dist)
    idx = np.where(found, idx, 0)
    agree = found & (np.einsum("nkj,nj->nk", o_m[idx], t_m) >= NORMAL_AGREE)
    offset = np.einsum("nkj,nj->nk", o_xy[idx] - t_xy[:, None, :], t_m)
    offset = np.where(agree, offset, np.nan)
    count = agree.sum(axis=1)
    moved = (count >= MIN_NEIGHBOURS) & (t_in >= MERIDIAN_NORMAL)
    if not moved.any():
        return None
    e = np.zeros(len(model))
    e[moved] = np.nanmedian(offset[moved], axis=1)
    e = np.clip(e, -MAX_MOVE * size, MAX_MOVE * size)
    want = e[:, None] * t_m  # the move in the placed meridian plane (radial, axial)
    # back into the template's own meridian plane: the placed plane's change per model step out and up
    m_r = np.hypot(model[:, 0], model[:, 1])
    m_rad = np.zeros_like(model)
    m_rad[:, :2] = model[:, :2] / np.maximum(m_r, 1e-12)[:, None]
    step = 1e-3 * float(np.linalg.norm(np.ptp(v, axis=0)))
    jac = np.empty((len(model), 2, 2))
    for col, du in enumerate((m_rad, np.array([[0.0, 0.0, 1.0]]))):
        q = pose.apply(lattice.deform(model + step * du)) - placed
        jac[:, 0, col] = np.einsum("ij,ij->i", q, t_rad) / step
        jac[:, 1, col] = (q @ direction) / step
    det = jac[:, 0, 0] * jac[:, 1, 1] - jac[:, 0, 1] * jac[:, 1, 0]
    ok = moved & (np.abs(det) > 1e-12) & (m_r > 1e-9)
    safe = np.where(ok, det, 1.0)
    d_r = (jac[:, 1, 1] * want[:, 0] - jac[:, 0, 1] * want[:, 1]) / safe
    d_h = (jac[:, 0, 0] * want[:, 1] - jac[:, 1, 0] * want[:, 0]) / safe
    return _field(model, m_r, d_r, d_h, ok)


def _field(model: np.ndarray, m_r: np.ndarray, d_r: np.ndarray, d_h: np.ndarray, ok: np.ndarray) -> Profile | None:
    """The smooth field of the moves ``d_r``, ``d_h`` of the template points ``model`` (where ``ok``),
    fading to none where no point was moved."""
    if not ok.any():
        return None
    h_lo, h_hi = float(model[:, 2].min()), float(model[:, 2].max())
    cell = max(h_hi - h_lo, float(m_r.max())) / (GRID - 2)  # square cells, at most GRID of them each way
    h0 = h_lo - cell
    rows = int(np.ceil((h_hi - h_lo) / cell)) + 2
    cols = int(np.ceil(float(m_r.max()) / cell)) + 2
    row = np.clip(((model[:, 2] - h0) / cell).astype(np.int64), 0, rows - 1)
    col = np.clip((m_r / cell).astype(np.int64), 0, cols - 1)
    flat = row * cols + col
    count = np.bincount(flat, minlength=rows * cols).reshape(rows, cols).astype(np.float64)
    used = np.bincount(flat[ok], minlength=rows * cols).reshape(rows, cols).astype(np.float64)
    s_r = np.bincount(flat[ok], d_r[ok], rows * cols).reshape(rows, cols)
    s_h = np.bincount(flat[ok], d_h[ok], rows * cols).reshape(rows, cols)
    used_s, count_s = gaussian_filter(used, SMOOTH), gaussian_filter(count, SMOOTH)
    mean_r = gaussian_filter(s_r, SMOOTH) / np.maximum(used_s, 1e-12)
    mean_h = gaussian_filter(s_h, SMOOTH) / np.maximum(used_s, 1e-12)
    # full where the template points about the cell were moved, none where none were (the unseen profile)
    share = np.clip(used_s / np.maximum(count_s, 1e-12), 0.0, 1.0)
    return Profile(h0, cell, mean_r * share, mean_h * share)
