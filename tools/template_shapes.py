"""Parametric shapes of the bundled template library (used by ``tools/make_templates.py``).

Every shape is built in metres with +Z up, the origin at the centre of its base and its front
towards -Y (what Blender's front view sees). Parts that touch are separate closed shells, so
each template is watertight and quad-based (surfaces of revolution end in triangle fans).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from templates.library import SYM_REVOLUTION, SYM_SPHERE  # noqa: E402
from templates.mesh import PolyMesh, box, lathe, merge, sweep, torus, uv_sphere  # noqa: E402


@dataclass(frozen=True)
class Shape:
    """A template to generate: name, category, labels, catalog path and builder."""

    name: str
    category: str
    labels: tuple[str, ...]
    catalog: str
    symmetry: int
    build: Callable[[], PolyMesh]
    description: str


def _rot_x(angle_deg: float) -> np.ndarray:
    a = np.radians(angle_deg)
    m = np.eye(4)
    m[1:3, 1:3] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    return m


def _rot_y(angle_deg: float) -> np.ndarray:
    a = np.radians(angle_deg)
    m = np.eye(4)
    m[0, 0], m[0, 2], m[2, 0], m[2, 2] = np.cos(a), np.sin(a), -np.sin(a), np.cos(a)
    return m


def _hollow(outer: list[tuple[float, float]], wall: float, floor: float) -> np.ndarray:
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


def _leg(x: float, y: float, top: float, w: float, max_len: float) -> PolyMesh:
    return box((w, w, top), (x, y, 0.5 * top), max_len)


# --------------------------------------------------------------------------- furniture

def chair_dining() -> PolyMesh:
    ml = 0.06
    seat = box((0.44, 0.42, 0.04), (0, 0, 0.45), ml, radius=0.008)
    legs = [_leg(x, -0.18, 0.43, 0.035, ml) for x in (-0.195, 0.195)]
    posts = [box((0.035, 0.035, 0.90), (x, 0.18, 0.45), ml) for x in (-0.195, 0.195)]
    back = box((0.39, 0.025, 0.20), (0, 0.185, 0.76), ml, radius=0.006)
    rail = box((0.39, 0.02, 0.05), (0, 0.185, 0.56), ml)
    return merge(seat, *legs, *posts, back, rail)


def chair_armchair() -> PolyMesh:
    ml = 0.08
    base = box((0.82, 0.80, 0.30), (0, 0, 0.26), ml, radius=0.04)
    cushion = box((0.50, 0.62, 0.12), (0, -0.05, 0.45), ml, radius=0.04)
    back = box((0.82, 0.20, 0.46), (0, 0.30, 0.64), ml, radius=0.05)
    arms = [box((0.16, 0.80, 0.24), (x, 0, 0.53), ml, radius=0.05) for x in (-0.33, 0.33)]
    legs = [_leg(x, y, 0.12, 0.05, ml) for x in (-0.34, 0.34) for y in (-0.32, 0.32)]
    return merge(base, cushion, back, *arms, *legs)


def table_square() -> PolyMesh:
    ml = 0.1
    top = box((0.80, 0.80, 0.04), (0, 0, 0.73), ml, radius=0.008)
    legs = [_leg(x, y, 0.71, 0.05, ml) for x in (-0.34, 0.34) for y in (-0.34, 0.34)]
    aprons = [box((0.63, 0.02, 0.08), (0, y, 0.67), ml) for y in (-0.34, 0.34)]
    aprons += [box((0.02, 0.63, 0.08), (x, 0, 0.67), ml) for x in (-0.34, 0.34)]
    return merge(top, *legs, *aprons)


def table_rect() -> PolyMesh:
    ml = 0.12
    top = box((1.60, 0.90, 0.04), (0, 0, 0.73), ml, radius=0.008)
    legs = [_leg(x, y, 0.71, 0.06, ml) for x in (-0.72, 0.72) for y in (-0.37, 0.37)]
    aprons = [box((1.38, 0.02, 0.09), (0, y, 0.665), ml) for y in (-0.37, 0.37)]
    aprons += [box((0.02, 0.68, 0.09), (x, 0, 0.665), ml) for x in (-0.72, 0.72)]
    return merge(top, *legs, *aprons)


def table_round() -> PolyMesh:
    profile = [(0, 0), (0.26, 0), (0.26, 0.025), (0.07, 0.05), (0.05, 0.08), (0.05, 0.69), (0.10, 0.71),
               (0.45, 0.715), (0.45, 0.75), (0, 0.75)]
    return lathe(np.array(profile), 48, max_len=0.08)


def stool_round() -> PolyMesh:
    seat = lathe(np.array([(0, 0.41), (0.17, 0.41), (0.175, 0.425), (0.17, 0.45), (0, 0.45)]), 40, max_len=0.05)
    legs = []
    for a in np.radians([90.0, 210.0, 330.0]):
        d = np.array([np.cos(a), np.sin(a), 0.0])
        top = d * 0.11 + [0, 0, 0.415]
        foot = d * 0.19 + [0, 0, 0.0]
        legs.append(sweep(np.linspace(foot, top, 7), 0.016, 10))
    ring = torus(0.16, 0.009, 40, 8).translated((0, 0, 0.16))
    return merge(seat, *legs, ring)


def stool_bar() -> PolyMesh:
    profile = [(0, 0), (0.20, 0), (0.20, 0.015), (0.06, 0.03), (0.025, 0.05), (0.025, 0.66), (0.06, 0.68),
               (0.18, 0.69), (0.19, 0.72), (0.18, 0.76), (0, 0.765)]
    return lathe(np.array(profile), 40, max_len=0.05)


def _sofa(width: float, seats: int) -> PolyMesh:
    ml = 0.1
    base = box((width, 0.86, 0.28), (0, 0, 0.25), ml, radius=0.03)
    back = box((width, 0.22, 0.44), (0, 0.32, 0.61), ml, radius=0.06)
    arm_w = 0.18
    arms = [box((arm_w, 0.86, 0.26), (s * (0.5 * width - 0.5 * arm_w), 0, 0.52), ml, radius=0.06) for s in (-1, 1)]
    inner = width - 2 * arm_w
    cw = inner / seats
    cushions = [box((cw - 0.01, 0.62, 0.14), (-0.5 * inner + (k + 0.5) * cw, -0.08, 0.45), ml, radius=0.05)
                for k in range(seats)]
    legs = [_leg(x, y, 0.11, 0.05, ml) for x in (-0.5 * width + 0.08, 0.5 * width - 0.08) for y in (-0.34, 0.34)]
    return merge(base, back, *arms, *cushions, *legs)


def sofa_two() -> PolyMesh:
    return _sofa(1.55, 2)


def sofa_three() -> PolyMesh:
    return _sofa(2.15, 3)


# --------------------------------------------------------------------------- tableware

def _handle(x_top: float, x_bottom: float, z_top: float, z_bottom: float, reach: float, radius: float) -> PolyMesh:
    """A C-shaped handle on the +X side whose ends sit in the wall at ``x_top`` and ``x_bottom``."""
    t = np.linspace(0.5 * np.pi, -0.5 * np.pi, 15)
    zc, rz = 0.5 * (z_top + z_bottom), 0.5 * (z_top - z_bottom)
    wall = x_bottom + (x_top - x_bottom) * (np.sin(t) + 1.0) * 0.5
    path = np.stack([wall + reach * np.cos(t) ** 0.8, np.zeros_like(t), zc + rz * np.sin(t)], axis=1)
    return sweep(path, radius, 10)


def mug_handle() -> PolyMesh:
    body = lathe(_hollow([(0, 0), (0.040, 0), (0.041, 0.004), (0.041, 0.095)], 0.005, 0.008), 40, max_len=0.012)
    return merge(body, _handle(0.0385, 0.0385, 0.078, 0.024, 0.034, 0.0065))


def mug_plain() -> PolyMesh:
    return lathe(_hollow([(0, 0), (0.039, 0), (0.040, 0.004), (0.040, 0.100)], 0.005, 0.008), 40, max_len=0.012)


def cup_tea() -> PolyMesh:
    outer = [(0, 0), (0.024, 0), (0.025, 0.006), (0.030, 0.012), (0.040, 0.035), (0.046, 0.058), (0.047, 0.062)]
    body = lathe(_hollow(outer, 0.004, 0.01), 40, max_len=0.01)
    return merge(body, _handle(0.0424, 0.0323, 0.052, 0.022, 0.024, 0.0045))


def cup_paper() -> PolyMesh:
    outer = [(0, 0), (0.027, 0), (0.027, 0.004), (0.040, 0.107), (0.0425, 0.110)]
    return lathe(_hollow(outer, 0.003, 0.006), 40, max_len=0.012)


def glass_wine() -> PolyMesh:
    outer = [(0, 0), (0.036, 0), (0.036, 0.003), (0.008, 0.008), (0.004, 0.02), (0.004, 0.09), (0.012, 0.098),
             (0.030, 0.112), (0.041, 0.135), (0.042, 0.160), (0.036, 0.190), (0.034, 0.200)]
    return lathe(_hollow(outer, 0.003, 0.104), 40, max_len=0.012)


def bottle_wine() -> PolyMesh:
    profile = [(0, 0.004), (0.03, 0.002), (0.037, 0.0), (0.0375, 0.01), (0.0375, 0.20), (0.034, 0.225),
               (0.022, 0.245), (0.015, 0.26), (0.0145, 0.29), (0.0165, 0.292), (0.0165, 0.30), (0, 0.30)]
    return lathe(np.array(profile), 36, max_len=0.015)


def bottle_water() -> PolyMesh:
    profile = [(0, 0.003), (0.028, 0.0), (0.033, 0.006), (0.033, 0.07), (0.030, 0.09), (0.033, 0.11),
               (0.033, 0.15), (0.028, 0.18), (0.016, 0.205), (0.0135, 0.21), (0.0155, 0.212), (0.0155, 0.232),
               (0, 0.232)]
    return lathe(np.array(profile), 36, max_len=0.015)


def vase_round() -> PolyMesh:
    outer = [(0, 0), (0.05, 0), (0.07, 0.02), (0.09, 0.07), (0.092, 0.11), (0.08, 0.16), (0.05, 0.20),
             (0.036, 0.22), (0.04, 0.245), (0.05, 0.26)]
    return lathe(_hollow(outer, 0.005, 0.17), 40, max_len=0.02)


def vase_tall() -> PolyMesh:
    outer = [(0, 0), (0.055, 0), (0.06, 0.01), (0.052, 0.12), (0.056, 0.24), (0.07, 0.33), (0.075, 0.35)]
    return lathe(_hollow(outer, 0.005, 0.02), 40, max_len=0.025)


def bowl() -> PolyMesh:
    t = np.linspace(0.0, 0.5 * np.pi, 8)[1:]
    outer = [(0, 0), (0.04, 0), (0.042, 0.008)] + [(0.042 + 0.048 * np.sin(a), 0.008 + 0.062 * (1 - np.cos(a)))
                                                   for a in t]
    return lathe(_hollow(outer, 0.005, 0.012), 48, max_len=0.015)


def plate() -> PolyMesh:
    profile = [(0, 0.003), (0.060, 0.003), (0.064, 0.0), (0.070, 0.0), (0.085, 0.006), (0.132, 0.021),
               (0.135, 0.024), (0.131, 0.026), (0.090, 0.013), (0.075, 0.010), (0, 0.010)]
    return lathe(np.array(profile), 48, max_len=0.02)


def can() -> PolyMesh:
    profile = [(0, 0.004), (0.024, 0.0), (0.027, 0.0), (0.033, 0.01), (0.033, 0.108), (0.027, 0.119),
               (0.027, 0.122), (0.024, 0.122), (0.024, 0.118), (0, 0.118)]
    return lathe(np.array(profile), 36, max_len=0.012)


# --------------------------------------------------------------------------- other objects

def lamp_table() -> PolyMesh:
    base = lathe(np.array([(0, 0), (0.085, 0), (0.085, 0.015), (0.06, 0.03), (0, 0.03)]), 40, max_len=0.03)
    stem = lathe(np.array([(0, 0.025), (0.009, 0.025), (0.009, 0.40), (0, 0.40)]), 16, max_len=0.05)
    shade = lathe(np.array([(0.16, 0.27), (0.165, 0.27), (0.105, 0.48), (0.10, 0.48)]), 48, max_len=0.04,
                  closed=True)
    return merge(base, stem, shade)


def lamp_floor() -> PolyMesh:
    base = lathe(np.array([(0, 0), (0.16, 0), (0.16, 0.02), (0.12, 0.04), (0, 0.04)]), 40, max_len=0.06)
    stem = lathe(np.array([(0, 0.03), (0.014, 0.03), (0.014, 1.45), (0, 1.45)]), 16, max_len=0.1)
    shade = lathe(np.array([(0.22, 1.30), (0.226, 1.30), (0.165, 1.62), (0.16, 1.62)]), 48, max_len=0.08,
                  closed=True)
    return merge(base, stem, shade)


def book_hardcover() -> PolyMesh:
    ml = 0.03
    covers = [box((0.165, 0.24, 0.004), (0, 0, z), ml) for z in (0.002, 0.030)]
    spine = box((0.006, 0.24, 0.032), (-0.0795, 0, 0.016), ml, radius=0.002)
    pages = box((0.157, 0.232, 0.025), (-0.001, 0, 0.016), ml)
    return merge(*covers, spine, pages)


def book_paperback() -> PolyMesh:
    return box((0.11, 0.178, 0.022), (0, 0, 0.011), 0.025, radius=0.002)


def box_cardboard() -> PolyMesh:
    body = box((0.40, 0.30, 0.29), (0, 0, 0.145), 0.05, radius=0.004)
    tape = box((0.05, 0.302, 0.004), (0, 0, 0.29), 0.05)
    return merge(body, tape)


def box_shoebox() -> PolyMesh:
    base = box((0.32, 0.19, 0.10), (0, 0, 0.05), 0.04, radius=0.002)
    lid = box((0.33, 0.20, 0.035), (0, 0, 0.1025), 0.04, radius=0.003)
    return merge(base, lid)


def _car(length: float, width: float, top_keys: list[tuple[float, float]], belt: float, taper: float) -> PolyMesh:
    """A car body lofted from a rounded box (front towards -Y) plus four wheels."""
    ml = 0.22
    body = box((width, length, 1.0), (0, 0, 0.5), ml, radius=0.12, round_segments=2)
    v = body.vertices
    keys = np.asarray(top_keys)
    z_bottom = 0.22
    top = np.interp(v[:, 1], keys[:, 0] * 0.5 * length, keys[:, 1])
    z = z_bottom + v[:, 2] * (top - z_bottom)
    above = np.clip((z - belt) / max(top.max() - belt, 1e-6), 0.0, 1.0)
    v = np.stack([v[:, 0] * (1.0 - taper * above), v[:, 1], z], axis=1)
    body = PolyMesh(v, body.face_sizes, body.loops)
    r, half_w = 0.33, 0.12
    tyre = lathe(np.array([(0, -half_w), (0.27, -half_w), (r - 0.02, -half_w + 0.01), (r, -half_w + 0.04),
                           (r, half_w - 0.04), (r - 0.02, half_w - 0.01), (0.27, half_w), (0, half_w)]), 32)
    tyre = tyre.transformed(_rot_y(90.0))
    wheels = [tyre.translated((sx * (0.5 * width - 0.1), sy * 0.32 * length, r)) for sx in (-1, 1) for sy in (-1, 1)]
    return merge(body, *wheels)


def car_sedan() -> PolyMesh:
    keys = [(-1.0, 0.72), (-0.62, 0.92), (-0.40, 0.98), (-0.08, 1.44), (0.40, 1.42), (0.70, 1.02), (1.0, 0.98)]
    return _car(4.6, 1.8, keys, 0.95, 0.22)


def car_suv() -> PolyMesh:
    keys = [(-1.0, 0.85), (-0.70, 1.08), (-0.48, 1.12), (-0.22, 1.72), (0.90, 1.70), (1.0, 1.55)]
    return _car(4.7, 1.9, keys, 1.12, 0.14)


# --------------------------------------------------------------------------- primitives

def prim_cube() -> PolyMesh:
    return box((1.0, 1.0, 1.0), (0, 0, 0.5), 0.125)


def prim_sphere() -> PolyMesh:
    return uv_sphere(0.5, 40, 20, centre_z=0.5)


def prim_cylinder() -> PolyMesh:
    return lathe(np.array([(0, 0), (0.25, 0), (0.5, 0), (0.5, 1.0), (0.25, 1.0), (0, 1.0)]), 40, max_len=0.125)


def prim_cone() -> PolyMesh:
    return lathe(np.array([(0, 0), (0.25, 0), (0.5, 0), (0, 1.0)]), 40, max_len=0.125)


def prim_torus() -> PolyMesh:
    return torus(0.375, 0.125, 48, 16).translated((0, 0, 0.125))


def prim_capsule() -> PolyMesh:
    t = np.linspace(-0.5 * np.pi, 0.0, 7)
    low = [(0.25 * np.cos(a), 0.25 + 0.25 * np.sin(a)) for a in t]
    high = [(r, 1.0 - z) for r, z in low[::-1]]
    prof = np.array(low + high)
    prof[0, 0] = prof[-1, 0] = 0.0
    return lathe(prof, 40, max_len=0.125)


SHAPES: tuple[Shape, ...] = (
    Shape("Chair Dining", "chair", ("chair", "dining chair", "seat"), "Furniture/Chair", 1, chair_dining,
          "Wooden dining chair with a panel back"),
    Shape("Chair Armchair", "chair", ("chair", "armchair", "couch", "seat"), "Furniture/Chair", 1, chair_armchair,
          "Upholstered armchair"),
    Shape("Table Square", "table", ("table", "dining table", "desk"), "Furniture/Table", 4, table_square,
          "Square four-legged table"),
    Shape("Table Rectangular", "table", ("table", "dining table", "desk"), "Furniture/Table", 2, table_rect,
          "Rectangular dining table"),
    Shape("Table Round", "table", ("table", "dining table"), "Furniture/Table", SYM_REVOLUTION, table_round,
          "Round pedestal table"),
    Shape("Stool Round", "stool", ("stool", "chair", "seat"), "Furniture/Stool", 3, stool_round,
          "Three-legged round stool"),
    Shape("Stool Bar", "stool", ("stool", "bar stool", "chair", "seat"), "Furniture/Stool", SYM_REVOLUTION, stool_bar,
          "Pedestal bar stool"),
    Shape("Sofa Two Seat", "sofa", ("sofa", "couch", "settee"), "Furniture/Sofa", 1, sofa_two, "Two-seat sofa"),
    Shape("Sofa Three Seat", "sofa", ("sofa", "couch", "settee"), "Furniture/Sofa", 1, sofa_three,
          "Three-seat sofa"),
    Shape("Mug", "mug", ("mug", "cup", "coffee mug"), "Tableware/Mug", 1, mug_handle, "Mug with a handle"),
    Shape("Mug Plain", "mug", ("mug", "cup", "tumbler"), "Tableware/Mug", SYM_REVOLUTION, mug_plain,
          "Mug without a handle"),
    Shape("Cup Tea", "cup", ("cup", "mug", "tea cup", "teacup"), "Tableware/Cup", 1, cup_tea,
          "Tea cup with a handle"),
    Shape("Cup Paper", "cup", ("cup", "paper cup", "mug"), "Tableware/Cup", SYM_REVOLUTION, cup_paper,
          "Tapered paper cup"),
    Shape("Wine Glass", "cup", ("cup", "wine glass", "glass", "mug"), "Tableware/Cup", SYM_REVOLUTION, glass_wine,
          "Stemmed wine glass"),
    Shape("Bottle Wine", "bottle", ("bottle", "wine bottle"), "Tableware/Bottle", SYM_REVOLUTION, bottle_wine,
          "Wine bottle"),
    Shape("Bottle Water", "bottle", ("bottle", "water bottle"), "Tableware/Bottle", SYM_REVOLUTION, bottle_water,
          "Water bottle with a cap"),
    Shape("Vase Round", "vase", ("vase", "pot", "potted plant"), "Decor/Vase", SYM_REVOLUTION, vase_round,
          "Round vase with a neck"),
    Shape("Vase Tall", "vase", ("vase", "pot"), "Decor/Vase", SYM_REVOLUTION, vase_tall, "Tall flared vase"),
    Shape("Bowl", "bowl", ("bowl",), "Tableware/Bowl", SYM_REVOLUTION, bowl, "Footed bowl"),
    Shape("Plate", "plate", ("plate", "dish"), "Tableware/Plate", SYM_REVOLUTION, plate, "Dinner plate"),
    Shape("Can", "can", ("can", "tin", "soda can"), "Tableware/Can", SYM_REVOLUTION, can, "Drinks can"),
    Shape("Lamp Table", "lamp", ("lamp", "table lamp", "light"), "Decor/Lamp", SYM_REVOLUTION, lamp_table,
          "Table lamp with a shade"),
    Shape("Lamp Floor", "lamp", ("lamp", "floor lamp", "light"), "Decor/Lamp", SYM_REVOLUTION, lamp_floor,
          "Floor lamp with a shade"),
    Shape("Book Hardcover", "book", ("book",), "Decor/Book", 1, book_hardcover, "Hardcover book lying flat"),
    Shape("Book Paperback", "book", ("book",), "Decor/Book", 2, book_paperback, "Paperback lying flat"),
    Shape("Box Cardboard", "box", ("box", "package", "suitcase"), "Decor/Box", 2, box_cardboard,
          "Taped cardboard box"),
    Shape("Box Shoebox", "box", ("box", "package"), "Decor/Box", 2, box_shoebox, "Shoebox with a lid"),
    Shape("Car Sedan", "car", ("car", "vehicle", "automobile"), "Vehicle/Car", 1, car_sedan, "Sedan car"),
    Shape("Car SUV", "car", ("car", "truck", "vehicle", "automobile"), "Vehicle/Car", 1, car_suv, "SUV"),
    Shape("Cube", "cube", ("cube", "box", "block"), "Primitive", 4, prim_cube, "Cube, 1 m"),
    Shape("Sphere", "sphere", ("sphere", "ball", "sports ball", "orange", "apple"), "Primitive", SYM_SPHERE,
          prim_sphere, "Sphere, 1 m across"),
    Shape("Cylinder", "cylinder", ("cylinder",), "Primitive", SYM_REVOLUTION, prim_cylinder, "Cylinder, 1 m"),
    Shape("Cone", "cone", ("cone",), "Primitive", SYM_REVOLUTION, prim_cone, "Cone, 1 m"),
    Shape("Torus", "torus", ("torus", "ring", "donut"), "Primitive", SYM_REVOLUTION, prim_torus,
          "Torus, 1 m across"),
    Shape("Capsule", "capsule", ("capsule", "pill"), "Primitive", SYM_REVOLUTION, prim_capsule, "Capsule, 1 m tall"),
)
