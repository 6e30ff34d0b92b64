"""Tableware and kitchen families of the template library: mugs, cups, glasses, bottles, vases,
bowls, plates, cans, jars, pans, bins and potted plants (metres, +Z up, front towards -Y)."""

from __future__ import annotations

import numpy as np
from shape_parts import Shape, Variant, centred, disc, family, handle, ring_of, rot_y, rot_z, scaled, solid, vessel

from templates.library import SYM_REVOLUTION
from templates.mesh import PolyMesh, box, merge, sweep, uv_sphere


def mug(radius: float = 0.041, height: float = 0.095, with_handle: bool = True) -> PolyMesh:
    """A straight mug, with or without a handle on the +X side."""
    r, h = radius, height
    body = vessel([(0, 0), (r - 0.001, 0), (r, 0.004), (r, h)], 0.005, 0.008)
    if not with_handle:
        return body
    return merge(body, handle(r - 0.0025, r - 0.0025, 0.82 * h, 0.25 * h, 0.034, 0.0065))


def teacup(rim: float = 0.047, height: float = 0.062, foot: float = 0.025) -> PolyMesh:
    """A cup that flares from a narrow foot, with a handle on the +X side."""
    r, h = rim, height
    outer = [(0, 0), (foot, 0), (foot + 0.001, 0.1 * h), (0.64 * r, 0.19 * h), (0.85 * r, 0.56 * h),
             (0.98 * r, 0.935 * h), (r, h)]
    body = vessel(outer, 0.004, 0.16 * h)
    return merge(body, handle(0.9 * r, 0.69 * r, 0.84 * h, 0.355 * h, 0.51 * r, 0.096 * r))


def paper_cup(rim: float = 0.0425, base: float = 0.027, height: float = 0.11, lid: bool = False) -> PolyMesh:
    """A tapered paper cup, open or with a takeaway lid."""
    h = height
    if not lid:
        return vessel([(0, 0), (base, 0), (base, 0.004), (rim - 0.0025, h - 0.003), (rim, h)], 0.003, 0.006, 32,
                      max_len=0.012)
    body = solid([(0, 0), (base, 0), (base, 0.004), (rim - 0.0025, h - 0.003), (rim, h), (0, h)], max_len=0.015)
    cap = solid([(0, h - 0.004), (rim + 0.003, h - 0.004), (rim + 0.003, h + 0.006), (rim - 0.006, h + 0.012),
                 (rim - 0.012, h + 0.016), (0, h + 0.016)], max_len=0.01)
    return merge(body, cap)


def glass(outer: tuple[tuple[float, float], ...], floor: float, wall: float = 0.003) -> PolyMesh:
    """A drinking glass turned from its outer profile (foot and stem included)."""
    return vessel(list(outer), wall, floor)


def bottle(radius: float = 0.0375, body: float = 0.20, shoulder: float = 0.05, neck_r: float = 0.0145,
           neck: float = 0.045, cap: float = 0.0, waist: float = 0.0) -> PolyMesh:
    """A bottle: punted base, straight body (pinched by a grip ``waist``), round shoulder, neck, lip or cap."""
    r = radius
    prof = [(0, 0.004), (0.8 * r, 0.002), (r, 0.0), (r, 0.01)]
    if waist:
        prof += [(r, 0.42 * body), (r - waist, 0.52 * body), (r, 0.64 * body)]
    prof.append((r, body))
    t = np.linspace(0.0, 0.5 * np.pi, 5)[1:]
    prof += [(neck_r + (r - neck_r) * np.cos(a), body + shoulder * np.sin(a)) for a in t]
    top = body + shoulder + neck
    if cap:
        prof += [(neck_r, top), (neck_r + 0.0015, top), (neck_r + 0.0015, top + cap), (0, top + cap)]
    else:
        prof += [(neck_r, top - 0.008), (neck_r + 0.002, top - 0.006), (neck_r + 0.002, top), (0, top)]
    return solid(prof, 24, max_len=0.03)


def flask(width: float = 0.09, flat: float = 0.6, square: float = 3.0, **bottle_params: float) -> PolyMesh:
    """A flat bottle (a flask, a shampoo or detergent bottle): ``bottle``'s profile whose body is
    squeezed front to back to ``flat`` of its ``width`` and squared towards a rounded rectangle
    (superellipse exponent ``square``); the shoulder blends back to the round neck."""
    params = {"shoulder": 0.035, "neck_r": 0.013, "neck": 0.012, "cap": 0.018, **bottle_params}
    mesh = bottle(0.5 * width, **params)
    v = mesh.vertices.copy()
    big, neck, top = 0.5 * width, params["neck_r"], params.get("body", 0.20)
    r = np.hypot(v[:, 0], v[:, 1])
    body, above = v[:, 2] <= top + 1e-9, v[:, 2] >= top + params["shoulder"] - 1e-9
    w = np.where(body, 1.0, np.where(above, 0.0, np.clip((r - neck) / (big - neck), 0.0, 1.0)))
    # 1 on the body, 0 from the neck up (neck, lip and cap stay round); the shoulder's half depth runs
    # linearly from the neck's radius to the body's (no bulge)
    half_depth = np.where(body, flat * r, np.where(above, r, neck + w * (flat * big - neck)))
    c, s = v[:, 0] / np.maximum(r, 1e-12), v[:, 1] / np.maximum(r, 1e-12)
    p = 1.0 + (2.0 / square - 1.0) * w  # superellipse: |c|^p, |s|^p
    v[:, 0] = r * np.sign(c) * np.abs(c) ** p
    v[:, 1] = half_depth * np.sign(s) * np.abs(s) ** p
    return PolyMesh(v, mesh.face_sizes, mesh.loops)


def vase(outer: tuple[tuple[float, float], ...], floor: float, handles: bool = False) -> PolyMesh:
    """A vase turned from its outer profile, optionally with two handles (on +X and -X)."""
    body = vessel(list(outer), 0.005, floor, 28, max_len=0.03)
    if not handles:
        return body
    zs = np.array(outer)
    top = float(zs[-1, 1])
    r_top = float(np.interp(0.86 * top, zs[1:, 1], zs[1:, 0]))
    r_low = float(np.interp(0.62 * top, zs[1:, 1], zs[1:, 0]))
    one = handle(r_top - 0.003, r_low - 0.003, 0.86 * top, 0.62 * top, 0.035, 0.006)
    return merge(body, one, one.transformed(rot_z(180.0)))


def bowl(radius: float = 0.09, depth: float = 0.07, foot: float = 0.042) -> PolyMesh:
    """A footed bowl with a round wall."""
    t = np.linspace(0.0, 0.5 * np.pi, 8)[1:]
    outer = [(0, 0), (foot - 0.002, 0), (foot, 0.008)]
    outer += [(foot + (radius - foot) * np.sin(a), 0.008 + (depth - 0.008) * (1 - np.cos(a))) for a in t]
    return vessel(outer, 0.005, 0.012, 32, max_len=0.02)


def plate(radius: float = 0.135, deep: float = 1.0) -> PolyMesh:
    """A round plate (``deep`` stretches its height: about 2 for a soup plate)."""
    k = radius / 0.135
    prof = [(0, 0.003), (0.060, 0.003), (0.064, 0.0), (0.070, 0.0), (0.085, 0.006), (0.132, 0.021),
            (0.135, 0.024), (0.131, 0.026), (0.090, 0.013), (0.075, 0.010), (0, 0.010)]
    return solid([(k * r, deep * z) for r, z in prof], 32, max_len=0.03)


def square_plate(side: float = 0.24, thickness: float = 0.008, lift: float = 0.018) -> PolyMesh:
    """A square plate whose edges curve up (a slab bent by a smooth bump, so it stays closed)."""
    slab = box((side, side, thickness), (0, 0, 0.5 * thickness), 0.02, radius=0.003, round_segments=2)
    v = slab.vertices.copy()
    edge = np.max(np.abs(v[:, :2]), axis=1) / (0.5 * side)
    v[:, 2] += lift * np.clip((edge - 0.6) / 0.4, 0.0, 1.0) ** 2
    return PolyMesh(v, slab.face_sizes, slab.loops)


def can(radius: float = 0.033, height: float = 0.122, food: bool = False) -> PolyMesh:
    """A drinks can (necked top with a recessed lid) or a food tin (straight, a rolled rim at each
    end, both ends recessed)."""
    r, h = radius, height
    if food:
        b, e = r + 0.0015, 0.0035
        return solid([(0, e), (r - 0.004, e), (r - 0.003, 0.0), (b, 0.0), (b, 0.004), (r, 0.007), (r, h - 0.007),
                      (b, h - 0.004), (b, h), (r - 0.003, h), (r - 0.004, h - e), (0, h - e)], 32, max_len=0.02)
    prof = [(0, 0.004), (0.73 * r, 0.0), (0.82 * r, 0.0), (r, 0.01), (r, h - 0.014), (0.82 * r, h - 0.003),
            (0.82 * r, h), (0.73 * r, h), (0.73 * r, h - 0.004), (0, h - 0.004)]
    return solid(prof, 24, max_len=0.02)


def jar(radius: float = 0.043, height: float = 0.135, neck: float = 0.037, lid: float = 0.015,
        knob: bool = False) -> PolyMesh:
    """A jar: body with a short shoulder and a screw lid (or a glass lid with a knob)."""
    r, h = radius, height
    body = solid([(0, 0), (r - 0.003, 0), (r, 0.005), (r, h - 0.02), (neck, h - 0.005), (neck, h), (0, h)], 32,
                 max_len=0.02)
    top = solid([(0, h - 0.008), (neck + 0.003, h - 0.008), (neck + 0.003, h - 0.008 + lid), (0, h - 0.008 + lid)],
                32, max_len=0.01)
    parts = [body, top]
    if knob:
        parts.append(uv_sphere(0.015, 16, 8, centre_z=h - 0.008 + lid + 0.012))
    return merge(*parts)


def pan(radius: float = 0.12, height: float = 0.15, flare: float = 0.0, long_handle: bool = False,
        lid: bool = False) -> PolyMesh:
    """Cookware: a pot or pan body, a long handle on +X or two loop handles, optional lid."""
    r, h = radius, height
    body = vessel([(0, 0), (r - flare - 0.004, 0), (r - flare, 0.004), (r, h)], 0.004, 0.005, 28, max_len=0.03)
    parts = [body]
    if long_handle:
        path = np.array([[r - 0.005, 0, 0.8 * h], [r + 0.03, 0, 0.85 * h], [r + 0.12, 0, 0.9 * h + 0.02],
                         [r + 0.19, 0, 0.9 * h + 0.035]])
        parts.append(sweep(path, 0.011, 8))
    else:
        loop = handle(r - 0.002, r - 0.002, 0.88 * h, 0.70 * h, 0.03, 0.006)
        parts += [loop, loop.transformed(rot_z(180.0))]
    if lid:
        parts.append(solid([(0, h - 0.004), (r + 0.004, h - 0.004), (r + 0.004, h + 0.004), (0.6 * r, h + 0.02),
                            (0, h + 0.025)], 28))
        parts.append(disc(0.02, h + 0.02, h + 0.045, 16))
    return centred(merge(*parts))


def waste_bin(radius: float = 0.14, base: float = 0.12, height: float = 0.34, pedal: bool = False) -> PolyMesh:
    """A round open waste bin, or a pedal bin with a lid (rounded box, pedal at the front)."""
    if not pedal:
        return vessel([(0, 0), (base, 0), (base, 0.005), (radius, height)], 0.004, 0.006, 28, max_len=0.06)
    w, d, h = 2 * radius, 2 * base, height
    parts = [box((w, d, h - 0.03), (0, 0, 0.5 * (h - 0.03)), 0.12, radius=0.03, round_segments=2),
             box((w + 0.01, d + 0.01, 0.035), (0, 0, h - 0.0175), 0.12, radius=0.015, round_segments=2),
             box((0.10, 0.05, 0.015), (0, -0.5 * d - 0.02, 0.03), 0.06, radius=0.005)]
    return merge(*parts)


def potted_plant(pot_r: float = 0.09, pot_h: float = 0.14, crown: tuple[float, float] = (0.26, 0.24),
                 stem: float = 0.0, leaves: int = 0, cactus: bool = False) -> PolyMesh:
    """A plant in a tapered pot: a round crown (on a stem), a rosette of leaves, or a cactus."""
    r, h = pot_r, pot_h
    pot = solid([(0, 0), (0.75 * r, 0), (0.75 * r, 0.01), (r - 0.006, h - 0.02), (r, h - 0.02), (r, h),
                 (r - 0.01, h), (r - 0.01, h - 0.01), (0, h - 0.01)], 24, max_len=0.04)
    parts = [pot]
    soil = h - 0.01
    if cactus:
        parts.append(solid([(0, soil), (0.04, soil), (0.045, soil + 0.2), (0.03, soil + 0.27), (0, soil + 0.285)],
                           16, max_len=0.02))
        for side, z, length in ((1, 0.10, 0.09), (-1, 0.15, 0.07)):
            path = np.array([[0, 0, soil + z], [side * 0.035, 0, soil + z], [side * 0.07, 0, soil + z],
                             [side * 0.085, 0, soil + z + 0.02], [side * 0.085, 0, soil + z + 0.5 * length],
                             [side * 0.085, 0, soil + z + length]])
            parts.append(sweep(path, 0.022, 10))
    elif leaves:
        leaf = scaled(uv_sphere(1.0, 12, 12), 0.035, 0.012, 0.5 * crown[1]).transformed(rot_y(25.0))
        leaf = leaf.translated((0.03 + 0.21 * crown[1], 0, soil + 0.45 * crown[1]))
        parts += ring_of(leaf, leaves, 0.0)
    else:
        if stem:
            parts.append(disc(0.012, soil - 0.01, soil + stem + 0.02, 10, max_len=0.1))
        cw, ch = crown
        parts.append(scaled(uv_sphere(1.0, 24, 12, centre_z=1.0), 0.5 * cw, 0.5 * cw, 0.5 * ch).translated(
            (0, 0, soil + stem - 0.03)))
    return merge(*parts)


X = "x"
Y = "y"
XY = "xy"
REV = SYM_REVOLUTION
WINE = ((0, 0), (0.036, 0), (0.036, 0.003), (0.008, 0.008), (0.004, 0.02), (0.004, 0.09), (0.012, 0.098),
        (0.030, 0.112), (0.041, 0.135), (0.042, 0.160), (0.036, 0.190), (0.034, 0.200))

SHAPES: tuple[Shape, ...] = (
    *family("mug", "Tableware/Mug", ("mug", "cup", "coffee mug"), mug, [
        Variant("Mug", "Mug with a handle", {}, 1, Y),
        Variant("Mug Plain", "Mug without a handle", {"radius": 0.040, "height": 0.10, "with_handle": False}, REV,
                labels=("tumbler",)),
        Variant("Mug Tall", "Tall latte mug with a handle", {"radius": 0.043, "height": 0.13}, 1, Y),
    ]),
    *family("cup", "Tableware/Cup", ("cup", "mug", "tea cup", "teacup"), teacup, [
        Variant("Cup Tea", "Tea cup with a handle", {}, 1, Y),
    ]),
    *family("cup", "Tableware/Cup", ("cup", "paper cup", "mug"), paper_cup, [
        Variant("Cup Paper", "Tapered paper cup", {}, REV),
        Variant("Cup Takeaway", "Paper coffee cup with a lid", {"rim": 0.045, "base": 0.029, "height": 0.135,
                                                                 "lid": True}, REV, labels=("coffee cup",)),
    ]),
    *family("glass", "Tableware/Glass", ("glass", "drinking glass"), glass, [
        Variant("Wine Glass", "Stemmed wine glass", {"outer": WINE, "floor": 0.104}, REV, labels=("wine glass",)),
        Variant("Glass Tumbler", "Straight tumbler with a thick base",
                {"outer": ((0, 0), (0.032, 0), (0.034, 0.005), (0.037, 0.095)), "floor": 0.012}, REV,
                labels=("cup", "tumbler")),
    ]),
    *family("bottle", "Tableware/Bottle", ("bottle",), bottle, [
        Variant("Bottle Wine", "Wine bottle", {}, REV, labels=("wine bottle",)),
        Variant("Bottle Water", "Water bottle with a cap",
                {"radius": 0.033, "body": 0.15, "shoulder": 0.055, "neck_r": 0.0135, "neck": 0.008, "cap": 0.02,
                 "waist": 0.004},
                REV, labels=("water bottle",)),
        Variant("Bottle Beer", "Long-neck beer bottle",
                {"radius": 0.030, "body": 0.12, "shoulder": 0.06, "neck_r": 0.012, "neck": 0.05}, REV,
                labels=("beer bottle",)),
        Variant("Bottle Large", "Two-litre bottle with a cap",
                {"radius": 0.054, "body": 0.21, "shoulder": 0.08, "neck_r": 0.014, "neck": 0.012, "cap": 0.02},
                REV, labels=("soda bottle",)),
    ]),
    *family("bottle", "Tableware/Bottle", ("bottle",), flask, [
        Variant("Bottle Oval", "Oval bottle with a grip and a cap (shampoo, detergent)",
                {"width": 0.08, "flat": 0.62, "body": 0.16, "waist": 0.004}, 2, XY,
                labels=("shampoo bottle", "detergent bottle")),
        Variant("Bottle Flask", "Flat flask with a short neck",
                {"width": 0.11, "flat": 0.42, "square": 4.0, "body": 0.14, "shoulder": 0.03, "neck": 0.022,
                 "cap": 0.0}, 2, XY, labels=("flask",)),
    ]),
    *family("vase", "Decor/Vase", ("vase", "pot"), vase, [
        Variant("Vase Round", "Round vase with a neck",
                {"outer": ((0, 0), (0.05, 0), (0.07, 0.02), (0.09, 0.07), (0.092, 0.11), (0.08, 0.16), (0.05, 0.20),
                           (0.036, 0.22), (0.04, 0.245), (0.05, 0.26)), "floor": 0.17}, REV),
        Variant("Vase Tall", "Tall flared vase",
                {"outer": ((0, 0), (0.055, 0), (0.06, 0.01), (0.052, 0.12), (0.056, 0.24), (0.07, 0.33),
                           (0.075, 0.35)), "floor": 0.02}, REV),
        Variant("Vase Cylinder", "Straight cylinder vase",
                {"outer": ((0, 0), (0.058, 0), (0.06, 0.004), (0.06, 0.25)), "floor": 0.015}, REV),
        Variant("Vase Amphora", "Urn with two handles",
                {"outer": ((0, 0), (0.045, 0), (0.05, 0.02), (0.04, 0.04), (0.085, 0.12), (0.09, 0.16),
                           (0.06, 0.24), (0.045, 0.27), (0.055, 0.30)), "floor": 0.2, "handles": True}, 2, XY,
                labels=("urn",)),
    ]),
    *family("bowl", "Tableware/Bowl", ("bowl",), bowl, [
        Variant("Bowl", "Footed bowl", {}, REV),
        Variant("Bowl Deep", "Deep mixing bowl", {"radius": 0.12, "depth": 0.11, "foot": 0.05}, REV,
                labels=("mixing bowl",)),
    ]),
    *family("plate", "Tableware/Plate", ("plate", "dish"), plate, [
        Variant("Plate", "Dinner plate", {}, REV),
        Variant("Plate Soup", "Deep soup plate", {"radius": 0.115, "deep": 2.2}, REV, labels=("soup plate",)),
    ]),
    *family("plate", "Tableware/Plate", ("plate", "dish"), square_plate, [
        Variant("Plate Square", "Square plate with raised edges", {}, 4, XY),
    ]),
    *family("can", "Tableware/Can", ("can", "tin"), can, [
        Variant("Can", "Drinks can", {}, REV, labels=("soda can",)),
        Variant("Can Slim", "Slim tall drinks can", {"radius": 0.029, "height": 0.146}, REV, labels=("soda can",)),
        Variant("Can Food", "Food tin with rolled rims", {"radius": 0.0365, "height": 0.11, "food": True}, REV,
                labels=("tin can",)),
    ]),
    *family("jar", "Tableware/Jar", ("jar", "container"), jar, [
        Variant("Jar Mason", "Mason jar with a screw lid", {}, REV),
        Variant("Jar Storage", "Wide storage jar with a knob lid",
                {"radius": 0.075, "height": 0.19, "neck": 0.066, "lid": 0.02, "knob": True}, REV,
                labels=("cookie jar",)),
    ]),
    *family("pan", "Kitchen/Cookware", ("pan", "cooking pot", "saucepan", "cookware"), pan, [
        Variant("Pan Stock Pot", "Stock pot with two handles and a lid", {"lid": True}, 2, XY,
                labels=("stockpot",)),
        Variant("Pan Saucepan", "Saucepan with a long handle", {"radius": 0.09, "height": 0.09, "long_handle": True},
                1, Y),
        Variant("Pan Frying", "Frying pan", {"radius": 0.14, "height": 0.045, "flare": 0.025, "long_handle": True},
                1, Y, labels=("frying pan", "skillet")),
    ]),
    *family("bin", "Household/Bin", ("bin", "trash can", "wastebasket", "garbage can", "dustbin"), waste_bin, [
        Variant("Bin Round", "Open round waste bin", {}, REV),
        Variant("Bin Pedal", "Pedal bin with a lid", {"radius": 0.15, "base": 0.13, "height": 0.45, "pedal": True},
                1, X, labels=("pedal bin",)),
    ]),
    *family("plant", "Decor/Potted Plant", ("plant", "potted plant", "houseplant"), potted_plant, [
        Variant("Plant Bush", "Round bush in a pot", {}, REV),
        Variant("Plant Tree", "Small tree on a stem in a pot",
                {"pot_r": 0.14, "pot_h": 0.22, "crown": (0.42, 0.45), "stem": 0.45}, REV),
        Variant("Plant Leaves", "Rosette of long leaves in a pot", {"crown": (0.0, 0.40), "leaves": 5}, 5, X),
        Variant("Plant Cactus", "Cactus with two arms", {"pot_r": 0.07, "pot_h": 0.1, "cactus": True}, 1, Y,
                labels=("cactus",)),
    ]),
)
