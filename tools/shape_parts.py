"""Building blocks of the parametric template shapes (``tools/template_shapes.py`` and its families).

Every shape is built in metres with +Z up, the origin at the centre of its base and its front
towards -Y (what Blender's front view sees). Parts that touch are separate closed shells, so
each template is watertight and quad-based (surfaces of revolution end in triangle fans).
A family is one parametric builder and a table of variants (parameter sets), not one function
per template.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from templates.library import MIRROR_AXES, SYM_REVOLUTION
from templates.mesh import PolyMesh, box, lathe, sweep


@dataclass(frozen=True)
class Shape:
    """A template to generate: name, category, labels, catalog path, symmetry and builder."""

    name: str
    category: str
    labels: tuple[str, ...]
    catalog: str
    symmetry: int
    build: Callable[[], PolyMesh]
    description: str
    mirror: str = ""


@dataclass(frozen=True)
class Variant:
    """One row of a family's table: its name, parameters, symmetry about +Z and mirror planes."""

    name: str
    description: str
    params: dict[str, Any] = field(default_factory=dict)
    symmetry: int = 1
    mirror: str = "x"
    labels: tuple[str, ...] = ()


def family(category: str, catalog: str, labels: Sequence[str], builder: Callable[..., PolyMesh],
           variants: Sequence[Variant]) -> tuple[Shape, ...]:
    """The shapes of one category: ``builder(**variant.params)`` for every variant."""
    out = []
    for v in variants:
        if v.mirror not in MIRROR_AXES:
            raise ValueError(f"{v.name}: mirror must be one of {MIRROR_AXES}")
        mirror = "xy" if v.symmetry == SYM_REVOLUTION else v.mirror
        tags = tuple(dict.fromkeys((*labels, *v.labels)))
        out.append(Shape(v.name, category, tags, catalog, v.symmetry, partial(builder, **v.params), v.description,
                         mirror))
    return tuple(out)


def rot_x(angle_deg: float) -> np.ndarray:
    a = np.radians(angle_deg)
    m = np.eye(4)
    m[1:3, 1:3] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    return m


def rot_y(angle_deg: float) -> np.ndarray:
    a = np.radians(angle_deg)
    m = np.eye(4)
    m[0, 0], m[0, 2], m[2, 0], m[2, 2] = np.cos(a), np.sin(a), -np.sin(a), np.cos(a)
    return m


def rot_z(angle_deg: float) -> np.ndarray:
    a = np.radians(angle_deg)
    m = np.eye(4)
    m[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    return m


def about(matrix: np.ndarray, pivot: Sequence[float]) -> np.ndarray:
    """``matrix`` (4x4) applied about ``pivot`` instead of the origin."""
    t = np.eye(4)
    t[:3, 3] = pivot
    back = np.eye(4)
    back[:3, 3] = -np.asarray(pivot, dtype=np.float64)
    return t @ matrix @ back


def scaled(mesh: PolyMesh, sx: float, sy: float, sz: float = 1.0) -> PolyMesh:
    """``mesh`` stretched along the axes (a lathe made elliptical, a sphere made an ellipsoid)."""
    return mesh.transformed(np.diag([sx, sy, sz, 1.0]))


def centred(mesh: PolyMesh) -> PolyMesh:
    """``mesh`` moved so the centre of its footprint's bounding box is on the Z axis."""
    v = mesh.vertices
    return mesh.translated((-0.5 * (v[:, 0].min() + v[:, 0].max()), -0.5 * (v[:, 1].min() + v[:, 1].max()), 0.0))


def hollow(outer: list[tuple[float, float]], wall: float, floor: float) -> np.ndarray:
    """Profile of an open vessel: the outer wall (bottom centre to rim), then the inside ``wall`` in
    from it, down to an inner floor at height ``floor``.

    ``outer`` starts at (0, 0) and climbs (never down) to the rim point.
    """
    out = np.asarray(outer, dtype=np.float64)
    wall_pts = out[1:]
    heights = [z for z in wall_pts[::-1, 1] if z > floor + 1e-9]
    heights = list(dict.fromkeys(heights)) + [floor]
    radii = np.interp(heights, wall_pts[:, 1], wall_pts[:, 0]) - wall
    inner = np.stack([np.maximum(radii, 1e-4), heights], axis=1)
    return np.vstack([out, inner, [(0.0, floor)]])


def vessel(outer: list[tuple[float, float]], wall: float, floor: float, segments: int = 24,
           max_len: float = 0.02) -> PolyMesh:
    """An open vessel turned about +Z (see ``hollow``)."""
    return lathe(hollow(outer, wall, floor), segments, max_len=max_len)


def solid(profile: list[tuple[float, float]], segments: int = 24, max_len: float | None = None) -> PolyMesh:
    """A closed solid of revolution from an (r, z) profile that starts and ends on the axis."""
    return lathe(np.asarray(profile, dtype=np.float64), segments, max_len=max_len)


def disc(radius: float, z0: float, z1: float, segments: int = 24, max_len: float | None = None) -> PolyMesh:
    """A flat cylinder from height ``z0`` to ``z1`` (rings on its caps keep it quad-based)."""
    return solid([(0, z0), (radius, z0), (radius, z1), (0, z1)], segments, max_len or 0.3 * radius)


def leg(x: float, y: float, top: float, w: float, max_len: float, bottom: float = 0.0) -> PolyMesh:
    """A square leg from ``bottom`` up to ``top``."""
    return box((w, w, top - bottom), (x, y, 0.5 * (top + bottom)), max_len)


def handle(x_top: float, x_bottom: float, z_top: float, z_bottom: float, reach: float, radius: float,
           segments: int = 8) -> PolyMesh:
    """A C-shaped handle on the +X side whose ends sit in the wall at ``x_top`` and ``x_bottom``."""
    t = np.linspace(0.5 * np.pi, -0.5 * np.pi, 13)
    zc, rz = 0.5 * (z_top + z_bottom), 0.5 * (z_top - z_bottom)
    wall = x_bottom + (x_top - x_bottom) * (np.sin(t) + 1.0) * 0.5
    path = np.stack([wall + reach * np.cos(t) ** 0.8, np.zeros_like(t), zc + rz * np.sin(t)], axis=1)
    return sweep(path, radius, segments)


def arch(centre: Sequence[float], half_width: float, height: float, radius: float, axis: str = "x",
         points: int = 13, segments: int = 8) -> PolyMesh:
    """A bail or strap: a half ellipse rising ``height`` above ``centre``, spanning ``axis``."""
    t = np.linspace(np.pi, 0.0, points)
    a, z = half_width * np.cos(t), height * np.sin(t)
    zero = np.zeros_like(t)
    path = np.stack([a, zero, z] if axis == "x" else [zero, a, z], axis=1) + np.asarray(centre, dtype=np.float64)
    return sweep(path, radius, segments)


def ring_of(mesh: PolyMesh, count: int, radius: float, start_deg: float = 90.0) -> list[PolyMesh]:
    """``count`` copies of ``mesh`` (built at the origin) around +Z at ``radius``, the first at ``start_deg``."""
    out = []
    for k in range(count):
        a = start_deg + 360.0 * k / count
        m = rot_z(a)
        m[:2, 3] = radius * np.cos(np.radians(a)), radius * np.sin(np.radians(a))
        out.append(mesh.transformed(m))
    return out
