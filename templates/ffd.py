"""Free-form deformation of a template by a lattice, computed the way Blender's Lattice modifier does.

A ``Lattice`` is a box around the template in the template's own (model) coordinates with
``nu x nv x nw`` control points, each displaced by an offset. In Blender it is a Lattice object
whose matrix (relative to the template object) is ``Lattice.matrix()``, whose points' deformed
locations are ``Lattice.local_points()`` and whose interpolation types are
``Lattice.interpolation``; a Lattice modifier with strength ``s`` on the template then moves every
vertex exactly as ``Lattice.deform(vertices, s)`` does.

The modifier adds to each vertex the offsets of the 4 x 4 x 4 nearest control points (fewer
for linear interpolation) weighted by a tensor product of per-axis curve weights; control point
indices past the lattice's ends are clamped to the end points, which also gives points outside
the box a finite (constant per axis beyond the ends) displacement. The deformation is therefore
linear in the offsets: ``deformed = rest + strength * W @ offsets`` with ``W = weights(rest)``.

``symmetry_basis`` spans the offsets that keep a template's symmetry (a surface of revolution
stays one, mirror planes stay mirror planes) and ``second_differences`` measures their bending;
``templates.ffd_fit`` fits the offsets to a photo with both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from .library import SYM_REVOLUTION, SYM_SPHERE

INTERPOLATIONS = ("KEY_LINEAR", "KEY_CARDINAL", "KEY_CATMULL_ROM", "KEY_BSPLINE")
REVOLUTION_INTERPOLATION = ("KEY_LINEAR", "KEY_LINEAR", "KEY_BSPLINE")
FREE_INTERPOLATION = ("KEY_BSPLINE", "KEY_BSPLINE", "KEY_BSPLINE")
REVOLUTION_LAYERS = 12  # lattice layers along a surface of revolution's axis


def _hermite_rows(fc: float) -> np.ndarray:
    """Cardinal-spline weight polynomials (rows: t^3, t^2, t, 1; columns: the 4 points) of tension ``fc``."""
    return np.array([
        [-fc, 2.0 - fc, fc - 2.0, fc],
        [2.0 * fc, fc - 3.0, 3.0 - 2.0 * fc, -fc],
        [-fc, 0.0, fc, 0.0],
        [0.0, 1.0, 0.0, 0.0],
    ])


# Blender evaluates these in single precision with its own rounding of 1/6 and 2/3.
_SIXTH = float(np.float32("0.16666666"))
_TWO_THIRDS = float(np.float32("0.66666666"))
_CURVE_POLYNOMIALS = {
    "KEY_LINEAR": np.array([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, -1.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0]]),
    "KEY_CARDINAL": _hermite_rows(float(np.float32(0.71))),
    "KEY_CATMULL_ROM": _hermite_rows(0.5),
    "KEY_BSPLINE": np.array([
        [-_SIXTH, 0.5, -0.5, _SIXTH],
        [0.5, -1.0, 0.5, 0.0],
        [-0.5, 0.0, 0.5, 0.0],
        [_SIXTH, _TWO_THIRDS, _SIXTH, 0.0],
    ]),
}


def curve_weights(t: np.ndarray, kind: str) -> np.ndarray:
    """Weights ``(N, 4)`` of the points ``i-1 .. i+2`` at fraction ``t`` in ``[0, 1)`` past point ``i``."""
    t = np.asarray(t, dtype=np.float64)
    powers = np.stack([t**3, t**2, t, np.ones_like(t)], axis=-1)
    return powers @ _CURVE_POLYNOMIALS[kind]


def axis_weights(u: np.ndarray, n: int, kind: str) -> np.ndarray:
    """Dense weights ``(N, n)`` of the ``n`` points along one lattice axis at grid coordinates ``u``
    (point ``i`` sits at ``u == i``); indices past the ends are clamped onto the end points."""
    u = np.asarray(u, dtype=np.float64).ravel()
    out = np.zeros((u.size, n))
    if n == 1:
        out[:, 0] = 1.0
        return out
    base = np.floor(u)
    coeff = curve_weights(u - base, kind)
    rows = np.arange(u.size)
    start = base.astype(np.int64) - 1
    for k in range(4):  # the four neighbouring points; clamped indices may repeat across k, never within
        out[rows, np.clip(start + k, 0, n - 1)] += coeff[:, k]
    return out


@dataclass
class Lattice:
    """An FFD lattice: a box (``origin`` its centre, ``axes`` columns its u, v, w directions, ``size``
    its side lengths, all in model space) with ``resolution`` points per axis and their model-space
    ``offsets`` ``(nu * nv * nw, 3)`` in Blender's point order (u fastest, then v, then w)."""

    resolution: tuple[int, int, int]
    origin: np.ndarray
    size: np.ndarray
    axes: np.ndarray = field(default_factory=lambda: np.eye(3))
    offsets: np.ndarray = None  # type: ignore[assignment]  # None: all zeros, set in __post_init__
    interpolation: tuple[str, str, str] = ("KEY_BSPLINE", "KEY_BSPLINE", "KEY_BSPLINE")

    def __post_init__(self) -> None:
        self.resolution = tuple(int(n) for n in self.resolution)  # type: ignore[assignment]
        if len(self.resolution) != 3 or min(self.resolution) < 1:
            raise ValueError(f"bad lattice resolution {self.resolution}")
        self.origin = np.asarray(self.origin, dtype=np.float64).reshape(3)
        self.size = np.asarray(self.size, dtype=np.float64).reshape(3)
        self.axes = np.asarray(self.axes, dtype=np.float64).reshape(3, 3)
        if self.offsets is None:
            self.offsets = np.zeros((self.num_points, 3))
        self.offsets = np.asarray(self.offsets, dtype=np.float64).reshape(self.num_points, 3)
        self.interpolation = tuple(self.interpolation)  # type: ignore[assignment]
        for kind in self.interpolation:
            if kind not in INTERPOLATIONS:
                raise ValueError(f"unknown interpolation {kind!r}")

    @property
    def num_points(self) -> int:
        nu, nv, nw = self.resolution
        return nu * nv * nw

    @classmethod
    def around(cls, vertices: np.ndarray, resolution: tuple[int, int, int] = (4, 4, 4), margin: float = 0.05,
               interpolation: tuple[str, str, str] = ("KEY_BSPLINE", "KEY_BSPLINE", "KEY_BSPLINE"),
               axis_centred: bool = False) -> Lattice:
        """An axis-aligned lattice around ``vertices`` grown by ``margin`` of the largest extent on every
        side; ``axis_centred`` centres it on the model's +Z axis with a square cross-section
        (for surfaces of revolution about +Z)."""
        v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
        lo, hi = v.min(axis=0), v.max(axis=0)
        pad = margin * float((hi - lo).max())
        if axis_centred:
            r = float(np.hypot(v[:, 0], v[:, 1]).max())
            lo, hi = np.array([-r, -r, lo[2]]), np.array([r, r, hi[2]])
        return cls(resolution, 0.5 * (lo + hi), hi - lo + 2.0 * pad, interpolation=interpolation)

    def grid_indices(self) -> np.ndarray:
        """``(P, 3)`` integer (u, v, w) index of every point."""
        nu, nv, nw = self.resolution
        return _grid_indices((nu, nv, nw))

    def local_rest(self) -> np.ndarray:
        """Rest points in lattice space, the unit cube ``[-0.5, 0.5]^3`` (Blender's ``LatticePoint.co``)."""
        n = np.asarray(self.resolution, dtype=np.float64)
        step = np.divide(1.0, n - 1.0, out=np.zeros(3), where=n > 1)
        start = np.where(n > 1, -0.5, 0.0)
        return start + self.grid_indices() * step

    def _linear(self) -> np.ndarray:
        return self.axes * self.size[None, :]

    def matrix(self) -> np.ndarray:
        """4x4 model-from-lattice matrix: the Lattice object's matrix relative to the template object."""
        m = np.eye(4)
        m[:3, :3] = self._linear()
        m[:3, 3] = self.origin
        return m

    def to_local(self, points: np.ndarray) -> np.ndarray:
        """Model-space points in lattice space (the unit cube spans the box)."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3) - self.origin
        return np.linalg.solve(self._linear(), p.T).T

    def rest_points(self) -> np.ndarray:
        """Model-space rest positions ``(P, 3)`` of the control points."""
        return self.origin + self.local_rest() @ self._linear().T

    def points(self) -> np.ndarray:
        """Model-space deformed control points ``(P, 3)``."""
        return self.rest_points() + self.offsets

    def local_points(self) -> np.ndarray:
        """Deformed points in lattice space (Blender's ``LatticePoint.co_deform``)."""
        return self.local_rest() + np.linalg.solve(self._linear(), self.offsets.T).T

    def with_local_points(self, co_deform: np.ndarray) -> Lattice:
        """This lattice with its points moved to ``co_deform`` (lattice space, e.g. read back from Blender)."""
        local = np.asarray(co_deform, dtype=np.float64).reshape(self.num_points, 3) - self.local_rest()
        return self.with_offsets(local @ self._linear().T)

    def with_offsets(self, offsets: np.ndarray) -> Lattice:
        return Lattice(self.resolution, self.origin, self.size, self.axes, offsets, self.interpolation)

    def scaled(self, strength: float) -> Lattice:
        """The deformation scaled by ``strength`` (0 = rest, 1 = this lattice), like the modifier's strength."""
        return self.with_offsets(float(strength) * self.offsets)

    def weights(self, points: np.ndarray) -> np.ndarray:
        """Dense ``(N, P)`` matrix with ``deform(points) == points + weights(points) @ offsets``."""
        local = self.to_local(points)
        n = np.asarray(self.resolution)
        grid = (local + 0.5) * np.maximum(n - 1, 1)
        wu, wv, ww = (axis_weights(grid[:, a], int(n[a]), self.interpolation[a]) for a in range(3))
        return np.einsum("nw,nv,nu->nwvu", ww, wv, wu).reshape(len(local), self.num_points)

    def deform(self, points: np.ndarray, strength: float = 1.0) -> np.ndarray:
        """Model-space points moved by the lattice (Blender's Lattice modifier with this ``strength``)."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        return p + float(strength) * (self.weights(p) @ self.offsets)

    def to_json(self) -> dict[str, Any]:
        return {"resolution": list(self.resolution), "origin": self.origin.tolist(), "size": self.size.tolist(),
                "axes": self.axes.tolist(), "offsets": np.round(self.offsets, 7).tolist(),
                "interpolation": list(self.interpolation)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Lattice:
        return cls(tuple(data["resolution"]), data["origin"], data["size"], data["axes"], data["offsets"],
                   tuple(data["interpolation"]))


# --------------------------------------------------------------------------- symmetry and regularisers


def mirror_axes(vertices: np.ndarray, tolerance: float = 1e-3) -> tuple[int, ...]:
    """Model axes (0 = x, 1 = y) across which the vertices are mirror images of themselves about their
    bounding box's centre, within ``tolerance`` of the bounding box diagonal."""
    v = np.asarray(vertices, dtype=np.float64)
    lo, hi = v.min(axis=0), v.max(axis=0)
    size = float(np.linalg.norm(hi - lo)) or 1.0
    tree = cKDTree(v)
    out = []
    for a in (0, 1):
        m = v.copy()
        m[:, a] = lo[a] + hi[a] - m[:, a]
        if float(tree.query(m)[0].max()) <= tolerance * size:
            out.append(a)
    return tuple(out)


def _grid_indices(resolution: tuple[int, int, int]) -> np.ndarray:
    nu, nv, nw = resolution
    w, v, u = np.meshgrid(np.arange(nw), np.arange(nv), np.arange(nu), indexing="ij")
    return np.stack([u.ravel(), v.ravel(), w.ravel()], axis=1)


def is_revolution(symmetry: int) -> bool:
    return symmetry in (SYM_REVOLUTION, SYM_SPHERE)


def lattice_for(vertices: np.ndarray, symmetry: int, resolution: tuple[int, int, int] = (4, 4, 4),
                margin: float = 0.05, layers: int = REVOLUTION_LAYERS) -> Lattice:
    """The rest lattice a template of this symmetry is fitted with: around its vertices with
    ``resolution`` points, and for a surface of revolution centred on +Z with 2 x 2 points across
    (linear) and ``layers`` along the axis (a radius per height: enough of them to follow a bottle's
    shoulder and neck, or a bowl's curve, within 1 % of its size)."""
    if is_revolution(symmetry):
        return Lattice.around(vertices, (2, 2, layers), margin, REVOLUTION_INTERPOLATION, axis_centred=True)
    return Lattice.around(vertices, resolution, margin, FREE_INTERPOLATION)


def symmetry_basis(lattice: Lattice, revolution: bool = False, mirrors: tuple[int, ...] = (),
                   oval: bool = False, move_axis: bool = True) -> np.ndarray:
    """``(3P, K)`` basis of the allowed flattened offsets (point-major), columns of unit length.

    ``revolution``: per lattice layer along w, a radial scale about the box's w axis, one height shift and
    stretch for all layers, and with ``move_axis`` the whole lattice moved across the axis (the axis moves,
    the surface stays one of revolution);
    with ``oval`` also a stretch of the layer across the axis in any direction (a circle becomes an
    ellipse: a flat bottle; the section keeps two mirror planes).
    ``mirrors``: lattice axes whose mirror image (through the box's centre) the offsets must respect.
    """
    p = lattice.num_points
    idx = lattice.grid_indices()
    if revolution:
        x, y = (lattice.rest_points() - lattice.origin)[:, :2].T
        zero = np.zeros(p)
        fields = [np.stack([x, y, zero], 1)]
        if oval:  # the symmetric linear maps of the section: x - y stretch and its 45 degree turn
            fields += [np.stack([x, -y, zero], 1), np.stack([y, x, zero], 1)]
        cols = []
        for k in range(lattice.resolution[2]):
            layer = (idx[:, 2] == k)[:, None]
            cols += [np.where(layer, f, 0.0).ravel() for f in fields]
        # heights: an affine map of the axis (a height per layer, free where the base is hidden, let it sag)
        h = (lattice.rest_points() - lattice.origin)[:, 2]
        cols += [np.tile(np.eye(3)[2], p), np.stack([zero, zero, h], 1).ravel()]
        if move_axis:  # the whole template across its axis (the rigid pose puts the axis a few pixels off)
            cols += [np.tile(np.eye(3)[a], p) for a in (0, 1)]
        basis = np.stack(cols, axis=1)
        return basis / np.linalg.norm(basis, axis=0)
    return _mirror_basis(tuple(int(r) for r in lattice.resolution), tuple(mirrors)).copy()


@lru_cache(maxsize=64)
def _mirror_basis(resolution: tuple[int, int, int], mirrors: tuple[int, ...]) -> np.ndarray:
    """The mirror-symmetric offsets of a lattice of ``resolution``: they depend on nothing else, and an
    eigendecomposition per fitted template would cost more than the rest of its basis."""
    n = np.asarray(resolution)
    idx = _grid_indices(resolution)
    p = len(idx)
    group = [np.eye(3 * p)]
    for a in mirrors:  # reflections commute: the group is every product of them
        flip = idx.copy()
        flip[:, a] = n[a] - 1 - flip[:, a]
        target = flip[:, 0] + n[0] * (flip[:, 1] + n[1] * flip[:, 2])
        sign = np.ones(3)
        sign[a] = -1.0
        g = np.zeros((3 * p, 3 * p))
        rows = (3 * target[:, None] + np.arange(3)).ravel()
        cols = (3 * np.arange(p)[:, None] + np.arange(3)).ravel()
        g[rows, cols] = np.tile(sign, p)
        group += [g @ h for h in group]
    projector = np.asarray(sum(group)) / len(group)
    vals, vecs = np.linalg.eigh(0.5 * (projector + projector.T))
    return vecs[:, vals > 0.5]


def second_differences(lattice: Lattice) -> np.ndarray:
    """``(R, 3P)`` operator: second differences of the offsets along every lattice axis (zero for affine fields)."""
    idx = lattice.grid_indices()
    n = np.asarray(lattice.resolution)
    flat = idx[:, 0] + n[0] * (idx[:, 1] + n[1] * idx[:, 2])
    rows = []
    for a in range(3):
        step = np.zeros(3, dtype=np.int64)
        step[a] = 1
        inner = (idx[:, a] >= 1) & (idx[:, a] <= n[a] - 2)
        centre = flat[inner]
        prev = centre - int(step @ [1, n[0], n[0] * n[1]])
        nxt = centre + int(step @ [1, n[0], n[0] * n[1]])
        for c in range(3):
            d = np.zeros((centre.size, 3 * lattice.num_points))
            r = np.arange(centre.size)
            d[r, 3 * prev + c] = 1.0
            d[r, 3 * centre + c] = -2.0
            d[r, 3 * nxt + c] = 1.0
            rows.append(d)
    return np.vstack(rows) if rows else np.zeros((0, 3 * lattice.num_points))
