"""The bundled template library: every family's variants plus the unit primitives (used by
``tools/make_templates.py``).

Every shape is built in metres with +Z up, the origin at the centre of its base and its front
towards -Y (what Blender's front view sees); see ``shape_parts`` for the conventions and the
families in ``shapes_furniture``, ``shapes_tableware``, ``shapes_appliances`` and ``shapes_household``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shapes_appliances
import shapes_furniture
import shapes_household
import shapes_tableware
from shape_parts import Shape, Variant, family

from templates.library import SYM_REVOLUTION, SYM_SPHERE
from templates.mesh import PolyMesh, box, lathe, torus, uv_sphere

__all__ = ["PRIMITIVE_CATEGORIES", "SHAPES", "Shape"]


def primitive(kind: str) -> PolyMesh:
    """A unit primitive standing on the origin (1 m tall, except the torus)."""
    if kind == "cube":
        return box((1.0, 1.0, 1.0), (0, 0, 0.5), 0.125)
    if kind == "sphere":
        return uv_sphere(0.5, 40, 20, centre_z=0.5)
    if kind == "cylinder":
        return lathe(np.array([(0, 0), (0.25, 0), (0.5, 0), (0.5, 1.0), (0.25, 1.0), (0, 1.0)]), 40, max_len=0.125)
    if kind == "cone":
        return lathe(np.array([(0, 0), (0.25, 0), (0.5, 0), (0, 1.0)]), 40, max_len=0.125)
    if kind == "torus":
        return torus(0.375, 0.125, 48, 16).translated((0, 0, 0.125))
    t = np.linspace(-0.5 * np.pi, 0.0, 7)
    low = [(0.25 * np.cos(a), 0.25 + 0.25 * np.sin(a)) for a in t]
    prof = np.array(low + [(r, 1.0 - z) for r, z in low[::-1]])
    prof[0, 0] = prof[-1, 0] = 0.0
    return lathe(prof, 40, max_len=0.125)


def _primitives() -> tuple[Shape, ...]:
    rows = (("Cube", "cube", ("cube", "box", "block"), 4, "Cube, 1 m"),
            ("Sphere", "sphere", ("sphere", "ball", "sports ball", "orange", "apple"), SYM_SPHERE,
             "Sphere, 1 m across"),
            ("Cylinder", "cylinder", ("cylinder",), SYM_REVOLUTION, "Cylinder, 1 m"),
            ("Cone", "cone", ("cone",), SYM_REVOLUTION, "Cone, 1 m"),
            ("Torus", "torus", ("torus", "ring", "donut"), SYM_REVOLUTION, "Torus, 1 m across"),
            ("Capsule", "capsule", ("capsule", "pill"), SYM_REVOLUTION, "Capsule, 1 m tall"))
    return tuple(s for name, cat, labels, sym, text in rows
                 for s in family(cat, "Primitive", labels, primitive, [Variant(name, text, {"kind": cat}, sym, "xy")]))


PRIMITIVES = _primitives()
PRIMITIVE_CATEGORIES = frozenset(s.category for s in PRIMITIVES)
SHAPES: tuple[Shape, ...] = (
    *shapes_furniture.SHAPES,
    *shapes_tableware.SHAPES,
    *shapes_appliances.SHAPES,
    *shapes_household.SHAPES,
    *PRIMITIVES,
)
