"""Household families of the template library: books, boxes, suitcases, backpacks, handbags and
cars (metres, +Z up, front towards -Y; see ``shape_parts``)."""

from __future__ import annotations

import numpy as np
from shape_parts import Shape, Variant, arch, centred, family, rot_x, rot_y, rot_z

from templates.mesh import PolyMesh, box, lathe, merge, sweep, torus


def book(width: float = 0.165, length: float = 0.24, thick: float = 0.032, hard: bool = True,
         pose: str = "flat") -> PolyMesh:
    """A hardcover or paperback lying flat (spine on -X), or standing with its spine to the front."""
    ml = 0.06
    if hard:
        c = 0.004
        covers = [box((width, length, c), (0, 0, z), ml) for z in (0.5 * c, thick - 0.5 * c)]
        spine = box((0.006, length, thick), (-0.5 * width + 0.003, 0, 0.5 * thick), ml)
        pages = box((width - 0.008, length - 0.008, thick - 2 * c + 0.002), (-0.001, 0, 0.5 * thick), ml)
        mesh = merge(*covers, spine, pages)
    else:
        mesh = box((width, length, thick), (0, 0, 0.5 * thick), 0.025, radius=0.002)
    if pose == "standing":
        mesh = centred(mesh.transformed(rot_x(90.0)).transformed(rot_z(90.0)))
    return mesh


def carton(width: float = 0.40, depth: float = 0.30, height: float = 0.29, kind: str = "tape") -> PolyMesh:
    """A box: a taped carton, a plain one (a cereal box), a shoebox with its lid, or a gift box with
    ribbon and bow."""
    ml = 0.1
    if kind == "lid":
        lid = 0.35 * height
        return merge(box((width, depth, height - 0.01), (0, 0, 0.5 * (height - 0.01)), ml, radius=0.002),
                     box((width + 0.01, depth + 0.01, lid), (0, 0, height - 0.5 * lid), ml, radius=0.003))
    parts = [box((width, depth, height), (0, 0, 0.5 * height), ml, radius=0.004)]
    if kind == "plain":
        return merge(*parts)
    if kind == "tape":
        parts.append(box((0.05, depth + 0.002, 0.004), (0, 0, height), ml))
        return merge(*parts)
    r = 0.03
    parts += [box((r, depth + 0.004, height + 0.004), (0, 0, 0.5 * height), ml),
              box((width + 0.004, r, height + 0.004), (0, 0, 0.5 * height), ml)]
    loop = torus(0.035, 0.008, 16, 6).transformed(rot_x(90.0)).transformed(rot_y(25.0))
    parts += [loop.translated((0.03, 0, height + 0.03)), loop.transformed(rot_z(180.0)).translated((-0.03, 0,
                                                                                                     height + 0.03))]
    return merge(*parts)


def suitcase(width: float = 0.36, depth: float = 0.23, height: float = 0.50, trolley: float = 0.3,
             wheels: bool = True) -> PolyMesh:
    """Luggage standing up: a hard shell on four spinner wheels with a trolley handle at the back
    (+Y) and a carry handle on top; without wheels, a briefcase with latches on the front."""
    ml = 0.1
    lift = 0.06 if wheels else 0.0
    parts = [box((width, depth, height), (0, 0, lift + 0.5 * height), ml, radius=0.03, round_segments=2)]
    top = lift + height
    parts.append(arch((0, 0, top - 0.005), 0.06, 0.03, 0.009))
    if wheels:
        wheel = lathe(np.array([(0, -0.012), (0.025, -0.012), (0.025, 0.012), (0, 0.012)]), 14).transformed(
            rot_y(90.0))
        for sx in (-1, 1):
            for sy in (-1, 1):
                x, y = sx * (0.5 * width - 0.04), sy * (0.5 * depth - 0.04)
                parts.append(box((0.03, 0.03, 0.04), (x, y, lift - 0.015), 1.0))
                parts.append(wheel.translated((x, y, 0.025)))
        for s in (-1, 1):
            parts.append(box((0.015, 0.02, trolley + 0.05), (s * 0.1, 0.5 * depth - 0.015, top + 0.5 * trolley - 0.02),
                             ml))
        parts.append(box((0.23, 0.03, 0.03), (0, 0.5 * depth - 0.015, top + trolley), ml, radius=0.01))
    else:
        parts += [box((0.04, 0.012, 0.02), (s * 0.3 * width, -0.5 * depth - 0.004, top - 0.04), 1.0) for s in (-1, 1)]
    return merge(*parts)


def backpack(width: float = 0.30, depth: float = 0.18, height: float = 0.45, pocket: bool = True,
             side_pockets: bool = False) -> PolyMesh:
    """A backpack standing up: padded body, front pocket, top grab loop, shoulder straps on the back (+Y)."""
    ml = 0.12
    body = box((width, depth, height), (0, 0, 0.5 * height), ml, radius=0.06, round_segments=2)
    v = body.vertices.copy()
    v[:, 1] -= 0.25 * depth * (v[:, 1] < 0) * (1.0 - (2.0 * v[:, 2] / height - 1.0) ** 2)  # the front bulges
    parts = [PolyMesh(v, body.face_sizes, body.loops)]
    if pocket:
        parts.append(box((0.75 * width, 0.08, 0.4 * height), (0, -0.5 * depth - 0.02, 0.25 * height), ml, radius=0.03))
    if side_pockets:
        parts += [box((0.06, 0.6 * depth, 0.3 * height), (s * 0.5 * width, 0, 0.2 * height), ml, radius=0.025)
                  for s in (-1, 1)]
    parts.append(arch((0, 0.2 * depth, height - 0.005), 0.04, 0.035, 0.007))
    for s in (-1, 1):
        x = s * 0.22 * width
        path = np.array([[x, 0.45 * depth, 0.92 * height], [x, 0.5 * depth + 0.03, 0.75 * height],
                         [x * 1.2, 0.5 * depth + 0.04, 0.45 * height], [x * 1.4, 0.5 * depth + 0.01, 0.12 * height]])
        parts.append(sweep(path, 0.018, 8))
    return merge(*parts)


def handbag(width: float = 0.36, depth: float = 0.14, height: float = 0.30, flare: float = 0.25,
            strap: float = 0.0) -> PolyMesh:
    """A handbag: a body that widens to the top, two handles (a tote) or one shoulder strap and a front flap."""
    ml = 0.06
    body = box((width, depth, height), (0, 0, 0.5 * height), ml, radius=0.02, round_segments=2)
    v = body.vertices.copy()
    v[:, 0] *= 1.0 + flare * (v[:, 2] / height - 0.5)
    parts = [PolyMesh(v, body.face_sizes, body.loops)]
    if strap:
        parts.append(arch((0, 0, height - 0.01), 0.45 * width, strap, 0.006))
        parts.append(box((0.9 * width, 0.01, 0.5 * height), (0, -0.5 * depth - 0.005, 0.72 * height), ml,
                         radius=0.004))
    else:
        parts += [arch((0, s * 0.35 * depth, height - 0.01), 0.22 * width, 0.2, 0.008) for s in (-1, 1)]
    return merge(*parts)


def car(length: float = 4.6, width: float = 1.8, keys: tuple[tuple[float, float], ...] = (), belt: float = 0.95,
        taper: float = 0.22) -> PolyMesh:
    """A car body lofted from a rounded box (front towards -Y) plus four wheels; ``keys`` are
    (position along the length in [-1, 1], roof height) pairs."""
    ml = 0.4
    body = box((width, length, 1.0), (0, 0, 0.5), ml, radius=0.12, round_segments=2)
    v = body.vertices
    k = np.asarray(keys)
    z_bottom = 0.22
    top = np.interp(v[:, 1], k[:, 0] * 0.5 * length, k[:, 1])
    z = z_bottom + v[:, 2] * (top - z_bottom)
    above = np.clip((z - belt) / max(top.max() - belt, 1e-6), 0.0, 1.0)
    v = np.stack([v[:, 0] * (1.0 - taper * above), v[:, 1], z], axis=1)
    body = PolyMesh(v, body.face_sizes, body.loops)
    r, half_w = 0.33, 0.12
    tyre = lathe(np.array([(0, -half_w), (0.27, -half_w), (r - 0.02, -half_w + 0.01), (r, -half_w + 0.04),
                           (r, half_w - 0.04), (r - 0.02, half_w - 0.01), (0.27, half_w), (0, half_w)]), 24)
    tyre = tyre.transformed(rot_y(90.0))
    wheels = [tyre.translated((sx * (0.5 * width - 0.1), sy * 0.32 * length, r)) for sx in (-1, 1) for sy in (-1, 1)]
    return merge(body, *wheels)


X = "x"
Y = "y"
XY = "xy"
SEDAN = ((-1.0, 0.72), (-0.62, 0.92), (-0.40, 0.98), (-0.08, 1.44), (0.40, 1.42), (0.70, 1.02), (1.0, 0.98))
SUV = ((-1.0, 0.85), (-0.70, 1.08), (-0.48, 1.12), (-0.22, 1.72), (0.90, 1.70), (1.0, 1.55))
HATCH = ((-1.0, 0.72), (-0.62, 0.92), (-0.38, 0.98), (-0.05, 1.46), (0.72, 1.42), (0.92, 1.20), (1.0, 0.95))
PICKUP = ((-1.0, 0.88), (-0.72, 1.08), (-0.50, 1.12), (-0.28, 1.80), (0.12, 1.80), (0.16, 1.10), (1.0, 1.08))

SHAPES: tuple[Shape, ...] = (
    *family("book", "Decor/Book", ("book",), book, [
        Variant("Book Hardcover", "Hardcover book lying flat", {}, 1, Y),
        Variant("Book Paperback", "Paperback lying flat", {"width": 0.11, "length": 0.178, "thick": 0.022,
                                                           "hard": False}, 2, XY),
        Variant("Book Standing", "Hardcover standing, spine to the front", {"pose": "standing"}, 1, X),
    ]),
    *family("box", "Decor/Box", ("box", "package", "carton", "parcel"), carton, [
        Variant("Box Cardboard", "Taped cardboard box", {}, 2, XY),
        Variant("Box Shoebox", "Shoebox with a lid", {"width": 0.33, "depth": 0.20, "height": 0.12, "kind": "lid"},
                2, XY),
        Variant("Box Gift", "Gift box with ribbon and bow", {"width": 0.22, "depth": 0.22, "height": 0.15,
                                                             "kind": "gift"}, 2, XY, labels=("gift",)),
        Variant("Box Tall", "Tall carton standing up, a cereal box", {"width": 0.20, "depth": 0.07, "height": 0.30,
                                                                       "kind": "plain"}, 2, XY, labels=("cereal",)),
    ]),
    *family("suitcase", "Luggage/Suitcase", ("suitcase", "luggage"), suitcase, [
        Variant("Suitcase Cabin", "Cabin trolley case, handle up", {}, labels=("trolley",)),
        Variant("Suitcase Large", "Large trolley case, handle down",
                {"width": 0.48, "depth": 0.29, "height": 0.70, "trolley": 0.02}, labels=("trolley",)),
        Variant("Suitcase Briefcase", "Briefcase with latches",
                {"width": 0.44, "depth": 0.11, "height": 0.33, "wheels": False}, labels=("briefcase",)),
    ]),
    *family("backpack", "Luggage/Backpack", ("backpack", "rucksack", "bag"), backpack, [
        Variant("Backpack", "Daypack with a front pocket", {}),
        Variant("Backpack Large", "Hiking pack with side pockets",
                {"width": 0.33, "depth": 0.24, "height": 0.62, "side_pockets": True}),
        Variant("Backpack Small", "Small backpack without pockets",
                {"width": 0.25, "depth": 0.13, "height": 0.33, "pocket": False}),
    ]),
    *family("handbag", "Luggage/Handbag", ("handbag", "bag", "purse"), handbag, [
        Variant("Handbag Tote", "Tote bag with two handles", {}, 2, XY, labels=("tote",)),
        Variant("Handbag Shoulder", "Shoulder bag with a flap",
                {"width": 0.26, "depth": 0.09, "height": 0.18, "flare": -0.1, "strap": 0.35}),
    ]),
    *family("car", "Vehicle/Car", ("car", "vehicle", "automobile"), car, [
        Variant("Car Sedan", "Sedan car", {"keys": SEDAN}),
        Variant("Car SUV", "SUV", {"length": 4.7, "width": 1.9, "keys": SUV, "belt": 1.12, "taper": 0.14},
                labels=("truck",)),
        Variant("Car Hatchback", "Hatchback", {"length": 4.0, "width": 1.75, "keys": HATCH}),
        Variant("Car Pickup", "Pickup truck", {"length": 5.3, "width": 1.95, "keys": PICKUP, "belt": 1.1,
                                               "taper": 0.12}, labels=("truck", "pickup truck")),
    ]),
)
