"""Furniture families of the template library: chairs, tables, stools, sofas, benches, beds,
toilets, sinks and cabinets (metres, +Z up, front towards -Y; see ``shape_parts``)."""

from __future__ import annotations

import numpy as np
from shape_parts import Shape, Variant, centred, disc, family, leg, ring_of, rot_x, scaled, solid, vessel

from templates.library import SYM_REVOLUTION
from templates.mesh import PolyMesh, box, lathe, merge, sweep, torus, uv_sphere


def pad(size: tuple[float, float, float], centre: tuple[float, float, float], max_len: float,
        radius: float) -> PolyMesh:
    """A softly rounded box (two rounding steps: upholstery, mattresses, boards)."""
    return box(size, centre, max_len, radius=radius, round_segments=2)


def chair(seat_w: float = 0.44, seat_d: float = 0.42, seat_h: float = 0.45, back_h: float = 0.90,
          arms: bool = False, slats: int = 0, leg_w: float = 0.035) -> PolyMesh:
    """A wooden chair: seat, four legs, back posts with a top panel (or slats), optional arm rests."""
    ml = 0.2
    x, y = 0.5 * seat_w - 0.025, 0.5 * seat_d - 0.03
    arm_h = seat_h + 0.22
    front_top = arm_h if arms else seat_h - 0.02
    inner = 2 * x - leg_w
    parts = [box((seat_w, seat_d, 0.04), (0, 0, seat_h), ml, radius=0.008)]
    parts += [leg(s * x, -y, front_top, leg_w, ml) for s in (-1, 1)]
    parts += [leg(s * x, y, back_h, leg_w, ml) for s in (-1, 1)]
    parts.append(box((inner, 0.025, 0.20), (0, y + 0.005, back_h - 0.14), ml, radius=0.006))
    parts.append(box((inner, 0.02, 0.05), (0, y + 0.005, seat_h + 0.11), ml))
    if slats:
        z0, z1 = seat_h + 0.135, back_h - 0.24
        for xs in np.linspace(-0.5 * inner, 0.5 * inner, slats + 2)[1:-1]:
            parts.append(box((0.03, 0.016, z1 - z0), (xs, y + 0.005, 0.5 * (z0 + z1)), ml))
    if arms:
        parts += [box((0.05, 2 * y + 0.08, 0.025), (s * x, -0.01, arm_h + 0.0125), ml, radius=0.008) for s in (-1, 1)]
    return merge(*parts)


def armchair(width: float = 0.82, depth: float = 0.80, back_top: float = 0.87, arms: bool = True) -> PolyMesh:
    """An upholstered chair: base, seat cushion, back, optional arms, short legs."""
    ml = 0.25
    arm_w = 0.16 if arms else 0.0
    parts = [pad((width, depth, 0.30), (0, 0, 0.26), ml, radius=0.04),
             pad((width - 2 * arm_w - 0.02, depth - 0.18, 0.12), (0, -0.05, 0.45), ml, radius=0.04),
             pad((width, 0.20, back_top - 0.41), (0, 0.5 * depth - 0.10, 0.5 * (back_top + 0.41)), ml, radius=0.05)]
    if arms:
        parts += [pad((arm_w, depth, 0.24), (s * (0.5 * width - 0.5 * arm_w - 0.01), 0, 0.53), ml, radius=0.05)
                  for s in (-1, 1)]
    parts += [leg(sx * (0.5 * width - 0.07), sy * (0.5 * depth - 0.08), 0.12, 0.05, ml)
              for sx in (-1, 1) for sy in (-1, 1)]
    return merge(*parts)


def _rounded_loop(points: np.ndarray, passes: int = 3) -> np.ndarray:
    """A closed polygon with its corners rounded off (corner cutting), for bent tube frames."""
    for _ in range(passes):
        nxt = np.roll(points, -1, axis=0)
        points = np.stack([0.75 * points + 0.25 * nxt, 0.25 * points + 0.75 * nxt], axis=1).reshape(-1, 3)
    return points


def sled_lounge(width: float = 0.78, depth: float = 0.82, seat_h: float = 0.36, back_top: float = 0.78,
                recline: float = 18.0, tube: float = 0.016, arms: bool = False) -> PolyMesh:
    """A lounge chair on a bent-tube sled frame: a side loop (floor runner, seat rail, back post) at
    each side, a seat cushion tilted back and a reclined back cushion; open underneath."""
    ml = 0.25
    half, y0, y1 = 0.5 * width, -0.5 * depth, 0.5 * depth
    back_y = y1 - 0.12
    if arms:  # runner, rear post, arm rail, front post
        arm_z = seat_h + 0.20
        loop = np.array([[0, y0 + 0.04, tube], [0, y1 - 0.04, tube], [0, y1 - 0.02, arm_z - 0.04],
                         [0, y1 - 0.08, arm_z], [0, y0 + 0.06, arm_z], [0, y0, arm_z - 0.04]])
    else:  # runner, back post, seat rail
        loop = np.array([[0, y0 + 0.04, tube], [0, y1 - 0.04, tube], [0, y1, back_top - 0.05],
                         [0, back_y, seat_h - 0.04], [0, y0 + 0.06, seat_h], [0, y0, seat_h - 0.04]])
    frame = sweep(_rounded_loop(loop), tube, 10, closed=True)
    parts = [frame.translated((s * (half - tube), 0.0, 0.0)) for s in (-1, 1)]
    seat_d = back_y - y0 - 0.02
    seat = pad((width - 4 * tube - 0.01, seat_d, 0.12), (0, 0, 0), ml, radius=0.04).transformed(rot_x(-6.0))
    parts.append(seat.translated((0, y0 + 0.5 * seat_d + 0.01, seat_h + 0.03)))
    back_len = (back_top - seat_h - 0.04) / np.cos(np.radians(recline))
    back = pad((width - 4 * tube - 0.01, 0.12, back_len), (0, 0, 0.5 * back_len), ml, radius=0.04)
    parts.append(back.transformed(rot_x(-recline)).translated((0, back_y - 0.02, seat_h + 0.06)))
    return merge(*parts)


def office_chair(arms: bool = True, back_top: float = 1.05) -> PolyMesh:
    """A swivel chair: five-star base on casters, gas column, seat, back, optional arm pads."""
    ml = 0.3
    spoke = sweep(np.array([[0.03, 0, 0.09], [0.16, 0, 0.075], [0.30, 0, 0.06]]), 0.016, 8)
    caster = uv_sphere(0.028, 8, 4).translated((0.30, 0, 0.028))
    parts = ring_of(merge(spoke, caster), 5, 0.0)
    parts.append(disc(0.045, 0.06, 0.11, 16))
    parts.append(disc(0.025, 0.10, 0.44, 12, max_len=0.1))
    parts.append(box((0.50, 0.48, 0.08), (0, -0.02, 0.48), ml, radius=0.03))
    parts.append(box((0.06, 0.05, 0.30), (0, 0.25, 0.55), ml))
    parts.append(box((0.46, 0.07, back_top - 0.62), (0, 0.27, 0.5 * (back_top + 0.62)), ml, radius=0.03))
    if arms:
        for s in (-1, 1):
            parts.append(box((0.035, 0.035, 0.20), (s * 0.24, 0.02, 0.60), ml))
            parts.append(box((0.07, 0.26, 0.03), (s * 0.24, -0.02, 0.715), ml, radius=0.012))
    return merge(*parts)


def leg_table(width: float = 0.8, depth: float = 0.8, height: float = 0.75, leg_w: float = 0.05,
              shelf: bool = False) -> PolyMesh:
    """A four-legged table with aprons and an optional lower shelf."""
    ml = 0.25
    x, y = 0.5 * width - 0.5 * leg_w - 0.035, 0.5 * depth - 0.5 * leg_w - 0.035
    top = height - 0.04
    parts = [box((width, depth, 0.04), (0, 0, height - 0.02), ml, radius=0.008)]
    parts += [leg(sx * x, sy * y, top, leg_w, ml) for sx in (-1, 1) for sy in (-1, 1)]
    parts += [box((2 * x - leg_w, 0.02, 0.08), (0, sy * y, top - 0.04), ml) for sy in (-1, 1)]
    parts += [box((0.02, 2 * y - leg_w, 0.08), (sx * x, 0, top - 0.04), ml) for sx in (-1, 1)]
    if shelf:
        parts.append(box((2 * x - leg_w, 2 * y - leg_w, 0.02), (0, 0, 0.14), ml))
    return merge(*parts)


def desk(width: float = 1.3, depth: float = 0.65, height: float = 0.75) -> PolyMesh:
    """A desk: top, a drawer pedestal on the right, two legs on the left and a modesty panel."""
    ml = 0.12
    top = height - 0.03
    ped_w = 0.42
    px = 0.5 * width - 0.5 * ped_w - 0.02
    parts = [box((width, depth, 0.03), (0, 0, height - 0.015), ml, radius=0.006),
             box((ped_w, depth - 0.06, top), (px, 0, 0.5 * top), ml)]
    for k in range(3):
        z = 0.12 + k * 0.22
        parts.append(box((ped_w - 0.04, 0.015, 0.19), (px, -0.5 * depth + 0.025, z), ml))
        parts.append(box((0.10, 0.02, 0.015), (px, -0.5 * depth + 0.008, z + 0.05), ml))
    lx = -0.5 * width + 0.05
    parts += [leg(lx, sy * (0.5 * depth - 0.05), top, 0.05, ml) for sy in (-1, 1)]
    parts.append(box((width - ped_w - 0.12, 0.018, 0.35), (lx + 0.5 * (width - ped_w - 0.12) + 0.02,
                                                             0.5 * depth - 0.06, top - 0.2), ml))
    return merge(*parts)


def pedestal_table(radius: float = 0.45, height: float = 0.75, base: float = 0.26) -> PolyMesh:
    """A round table on a single column."""
    h = height
    profile = [(0, 0), (base, 0), (base, 0.025), (0.07, 0.05), (0.05, 0.08), (0.05, h - 0.06), (0.10, h - 0.04),
               (radius, h - 0.035), (radius, h), (0, h)]
    return lathe(np.array(profile), 32, max_len=0.1)


def stool_legs(radius: float = 0.175, height: float = 0.45, legs: int = 3, splay: float = 0.19) -> PolyMesh:
    """A round seat on splayed legs with a foot ring."""
    h = height
    seat = solid([(0, h - 0.04), (radius - 0.005, h - 0.04), (radius, h - 0.025), (radius - 0.005, h), (0, h)], 32,
                 max_len=0.05)
    parts = [seat]
    for a in np.radians(90.0 + 360.0 / legs * np.arange(legs)):
        d = np.array([np.cos(a), np.sin(a), 0.0])
        parts.append(sweep(np.linspace(d * splay, d * 0.11 + [0, 0, h - 0.035], 6), 0.016, 8))
    ring_r = splay - (splay - 0.11) * 0.16 / (h - 0.035)
    parts.append(torus(ring_r - 0.01, 0.009, 32, 6).translated((0, 0, 0.16)))
    return merge(*parts)


def stool_square(width: float = 0.34, height: float = 0.46) -> PolyMesh:
    """A square stool: seat, four legs and stretchers."""
    ml = 0.08
    x = 0.5 * width - 0.035
    parts = [box((width, width, 0.04), (0, 0, height - 0.02), ml, radius=0.008)]
    parts += [leg(sx * x, sy * x, height - 0.04, 0.035, ml) for sx in (-1, 1) for sy in (-1, 1)]
    parts += [box((2 * x, 0.02, 0.03), (0, s * x, 0.15), ml) for s in (-1, 1)]
    parts += [box((0.02, 2 * x, 0.03), (s * x, 0, 0.15), ml) for s in (-1, 1)]
    return merge(*parts)


def bar_stool(height: float = 0.765) -> PolyMesh:
    """A pedestal bar stool."""
    h = height
    profile = [(0, 0), (0.20, 0), (0.20, 0.015), (0.06, 0.03), (0.025, 0.05), (0.025, h - 0.105), (0.06, h - 0.085),
               (0.18, h - 0.075), (0.19, h - 0.045), (0.18, h - 0.005), (0, h)]
    return lathe(np.array(profile), 32, max_len=0.08)


def sofa(width: float = 1.55, seats: int = 2, arms: bool = True, chaise: bool = False) -> PolyMesh:
    """A sofa: base, back, cushions, optional arms, optional chaise on the right."""
    ml = 0.3
    base = pad((width, 0.86, 0.28), (0, 0, 0.25), ml, radius=0.03)
    back = pad((width, 0.22, 0.44), (0, 0.32, 0.61), ml, radius=0.06)
    arm_w = 0.18 if arms else 0.0
    parts = [base, back]
    if arms:
        parts += [pad((arm_w, 0.86, 0.26), (s * (0.5 * width - 0.5 * arm_w), 0, 0.52), ml, radius=0.06)
                  for s in (-1, 1)]
    inner = width - 2 * arm_w
    cw = inner / seats
    parts += [pad((cw - 0.01, 0.62, 0.14), (-0.5 * inner + (k + 0.5) * cw, -0.08, 0.45), ml, radius=0.05)
              for k in range(seats)]
    if chaise:
        cx = 0.5 * inner - 0.5 * cw
        parts.append(pad((cw + arm_w, 0.75, 0.28), (cx + 0.5 * arm_w, -0.78, 0.25), ml, radius=0.03))
        parts.append(pad((cw - 0.01, 0.75, 0.14), (cx, -0.76, 0.45), ml, radius=0.05))
    parts += [leg(sx * (0.5 * width - 0.08), sy * 0.34, 0.11, 0.05, ml) for sx in (-1, 1) for sy in (-1, 1)]
    return centred(merge(*parts))


def park_bench(length: float = 1.5, back: bool = True, arms: bool = True) -> PolyMesh:
    """A slatted bench on two side frames, with optional back and arm rests."""
    ml = 0.3
    fx = 0.5 * length - 0.12
    parts = [box((length, 0.09, 0.03), (0, y, 0.44), ml) for y in (-0.15, -0.05, 0.05, 0.15)]
    for s in (-1, 1):
        parts += [leg(s * fx, y, 0.425, 0.05, ml) for y in (-0.17, 0.17)]
        parts.append(box((0.05, 0.40, 0.05), (s * fx, 0, 0.40), ml))
        if back:
            parts.append(box((0.05, 0.05, 0.45), (s * fx, 0.21, 0.65), ml))
        if arms:
            parts.append(box((0.05, 0.05, 0.20), (s * fx, -0.17, 0.55), ml))
            parts.append(box((0.06, 0.44, 0.04), (s * fx, 0.02, 0.67), ml, radius=0.01))
    if back:
        parts += [box((length, 0.025, 0.09), (0, 0.24, z), ml) for z in (0.58, 0.70, 0.82)]
    return merge(*parts)


def plain_bench(length: float = 1.2, depth: float = 0.35, height: float = 0.45) -> PolyMesh:
    """A backless bench: a thick top on two slab legs."""
    ml = 0.12
    parts = [box((length, depth, 0.05), (0, 0, height - 0.025), ml, radius=0.008)]
    parts += [box((0.05, depth - 0.04, height - 0.05), (s * (0.5 * length - 0.12), 0, 0.5 * (height - 0.05)), ml)
              for s in (-1, 1)]
    return merge(*parts)


def bed(width: float = 1.4, length: float = 2.0, head: float = 1.0, foot: float = 0.0, pillows: int = 2) -> PolyMesh:
    """A bed: frame on legs, mattress, pillows, headboard (back, +Y) and optional footboard."""
    ml = 0.5
    parts = [pad((width, length, 0.22), (0, 0, 0.23), ml, radius=0.01),
             pad((width - 0.04, length - 0.06, 0.22), (0, -0.01, 0.45), ml, radius=0.05)]
    parts += [leg(sx * (0.5 * width - 0.06), sy * (0.5 * length - 0.06), 0.12, 0.07, ml)
              for sx in (-1, 1) for sy in (-1, 1)]
    pw = (width - 0.2) / pillows
    parts += [pad((pw - 0.04, 0.38, 0.12), (-0.5 * (width - 0.2) + (k + 0.5) * pw, 0.5 * length - 0.3, 0.6), ml,
                  radius=0.05) for k in range(pillows)]
    parts.append(pad((width + 0.06, 0.06, head), (0, 0.5 * length + 0.03, 0.5 * head), ml, radius=0.02))
    if foot:
        parts.append(pad((width + 0.06, 0.05, foot), (0, -0.5 * length - 0.025, 0.5 * foot), ml, radius=0.02))
    return merge(*parts)


def toilet(tank: bool = True) -> PolyMesh:
    """A toilet: an oval bowl on its foot (or hung off a wall frame), seat, lid and cistern at the back."""
    rx, ry, y0 = 0.18, 0.23, -0.06
    if tank:
        prof = [(0, 0), (0.62, 0), (0.62, 0.03), (0.56, 0.14), (0.72, 0.27), (0.95, 0.35), (1.0, 0.38), (0, 0.38)]
    else:
        prof = [(0, 0.18), (0.55, 0.18), (0.72, 0.24), (0.92, 0.33), (1.0, 0.38), (0, 0.38)]
    bowl = scaled(solid(prof, 24, max_len=0.3), rx, ry).translated((0, y0, 0))
    seat = scaled(disc(1.0, 0.38, 0.40), rx + 0.005, ry + 0.005).translated((0, y0, 0))
    lid = scaled(disc(1.0, 0.40, 0.42), rx, ry).translated((0, y0, 0))
    parts = [bowl, seat, lid]
    back = y0 + ry
    if tank:
        parts.append(box((0.40, 0.17, 0.38), (0, back + 0.06, 0.57), 0.1, radius=0.02))
        parts.append(box((0.42, 0.19, 0.03), (0, back + 0.06, 0.775), 0.1, radius=0.01))
    else:
        parts.append(box((0.46, 0.10, 1.0), (0, back + 0.05, 0.5), 0.15, radius=0.01))
        parts.append(box((0.22, 0.015, 0.15), (0, back - 0.0075, 0.85), 0.1, radius=0.005))
    return merge(*parts)


def _tap(y: float, z: float, reach: float = 0.10) -> PolyMesh:
    path = np.array([[0, y, z], [0, y, z + 0.12], [0, y - 0.3 * reach, z + 0.16], [0, y - reach, z + 0.14],
                     [0, y - reach, z + 0.11]])
    return merge(disc(0.025, 0.0, 0.02, 16).translated((0, y, z)), sweep(path, 0.011, 8))


def sink(vanity: bool = False) -> PolyMesh:
    """A wash basin with a tap: on a pedestal, or a bowl on a vanity cabinet."""
    if vanity:
        ml = 0.15
        parts = [box((0.62, 0.46, 0.78), (0, 0, 0.39), ml, radius=0.01, round_segments=1),
                 box((0.66, 0.49, 0.03), (0, 0, 0.795), ml, radius=0.005)]
        parts += [box((0.29, 0.015, 0.66), (s * 0.152, -0.2375, 0.40), ml) for s in (-1, 1)]
        parts += [box((0.015, 0.02, 0.14), (s * 0.03, -0.252, 0.62), ml) for s in (-1, 1)]
        outer = [(0, 0), (0.08, 0), (0.16, 0.04), (0.19, 0.10), (0.20, 0.14)]
        parts.append(vessel(outer, 0.012, 0.02, 32, max_len=0.04).translated((0, -0.02, 0.81)))
        parts.append(_tap(0.19, 0.81, 0.09))
        return merge(*parts)
    column = scaled(solid([(0, 0), (1.0, 0), (0.75, 0.05), (0.6, 0.3), (0.75, 0.7), (0, 0.7)], 24, max_len=0.2),
                    0.12, 0.10)
    outer = [(0, 0), (0.5, 0), (0.85, 0.06), (1.0, 0.15), (1.0, 0.18)]
    basin = scaled(vessel(outer, 0.06, 0.04, 32, max_len=0.3), 0.30, 0.23).translated((0, -0.03, 0.68))
    back = box((0.50, 0.05, 0.10), (0, 0.19, 0.91), 0.15, radius=0.01)
    return merge(column, basin, back, _tap(0.17, 0.86, 0.12))


def cabinet(width: float = 0.45, depth: float = 0.40, height: float = 0.60, rows: int = 2, cols: int = 1,
            doors: bool = False, legs: float = 0.08) -> PolyMesh:
    """A cabinet on legs with drawer fronts (or doors) and their knobs on the front (-Y)."""
    ml = 0.35
    body_h = height - legs
    zc = legs + 0.5 * body_h
    parts = [box((width, depth, body_h), (0, 0, zc), ml, radius=0.005),
             box((width + 0.02, depth + 0.02, 0.025), (0, 0, height - 0.0125), ml, radius=0.005)]
    parts += [leg(sx * (0.5 * width - 0.04), sy * (0.5 * depth - 0.04), legs, 0.04, ml)
              for sx in (-1, 1) for sy in (-1, 1)]
    cw, rh = (width - 0.03) / cols, (body_h - 0.05) / rows
    fy = -0.5 * depth - 0.008
    for r in range(rows):
        for c in range(cols):
            x = -0.5 * (width - 0.03) + (c + 0.5) * cw
            z = legs + 0.02 + (r + 0.5) * rh
            parts.append(box((cw - 0.012, 0.016, rh - 0.012), (x, fy, z), ml))
            if doors:
                kx = x + (0.5 * cw - 0.05) * (1 if c < cols / 2 else -1) * (1 if cols > 1 else 0)
                parts.append(box((0.015, 0.02, min(0.25, 0.5 * rh)), (kx, fy - 0.015, z), ml))
            else:
                parts.append(box((min(0.12, 0.4 * cw), 0.02, 0.015), (x, fy - 0.015, z + 0.2 * rh), ml))
    return merge(*parts)


X = "x"
XY = "xy"
REV = SYM_REVOLUTION

SHAPES: tuple[Shape, ...] = (
    *family("chair", "Furniture/Chair", ("chair", "seat"), chair, [
        Variant("Chair Dining", "Wooden dining chair with a panel back", {}, labels=("dining chair",)),
        Variant("Chair Dining Arms", "Dining chair with arm rests", {"arms": True}, labels=("dining chair",)),
        Variant("Chair Slat Back", "Tall chair with a slatted back",
                {"seat_w": 0.42, "seat_d": 0.40, "back_h": 1.02, "slats": 4}, labels=("kitchen chair",)),
    ]),
    *family("chair", "Furniture/Chair", ("chair", "armchair", "couch", "seat"), armchair, [
        Variant("Chair Armchair", "Upholstered armchair", {}),
        Variant("Chair Lounge", "Upholstered chair without arms", {"width": 0.68, "back_top": 0.92, "arms": False}),
    ]),
    *family("chair", "Furniture/Chair", ("chair", "office chair", "seat"), office_chair, [
        Variant("Chair Office", "Swivel office chair with arm rests", {}),
    ]),
    *family("chair", "Furniture/Chair", ("chair", "armchair", "lounge chair", "seat"), sled_lounge, [
        Variant("Chair Sled Lounge", "Lounge chair with cushions on a bent-tube sled frame", {}),
        Variant("Chair Sled Arms", "Tube-frame lounge chair whose frame loops form the arms",
                {"width": 0.72, "depth": 0.74, "seat_h": 0.42, "back_top": 0.82, "recline": 12.0, "arms": True}),
    ]),
    *family("table", "Furniture/Table", ("table", "dining table", "desk"), leg_table, [
        Variant("Table Square", "Square four-legged table", {}, 4, XY),
        Variant("Table Rectangular", "Rectangular dining table", {"width": 1.6, "depth": 0.9, "leg_w": 0.06}, 2, XY),
        Variant("Table Coffee", "Low coffee table with a shelf",
                {"width": 1.1, "depth": 0.6, "height": 0.42, "leg_w": 0.06, "shelf": True}, 2, XY,
                labels=("coffee table",)),
    ]),
    *family("table", "Furniture/Table", ("table", "desk"), desk, [
        Variant("Table Desk", "Desk with a drawer pedestal", {}, 1, ""),
    ]),
    *family("table", "Furniture/Table", ("table", "dining table"), pedestal_table, [
        Variant("Table Round", "Round pedestal table", {}, REV),
        Variant("Table Side Round", "Small round side table", {"radius": 0.25, "height": 0.58, "base": 0.18}, REV,
                labels=("side table",)),
    ]),
    *family("stool", "Furniture/Stool", ("stool", "chair", "seat"), stool_legs, [
        Variant("Stool Round", "Three-legged round stool", {}, 3),
    ]),
    *family("stool", "Furniture/Stool", ("stool", "chair", "seat"), stool_square, [
        Variant("Stool Square", "Four-legged square stool", {}, 4, XY),
    ]),
    *family("stool", "Furniture/Stool", ("stool", "bar stool", "chair", "seat"), bar_stool, [
        Variant("Stool Bar", "Pedestal bar stool", {}, REV),
    ]),
    *family("sofa", "Furniture/Sofa", ("sofa", "couch", "settee"), sofa, [
        Variant("Sofa Two Seat", "Two-seat sofa", {}),
        Variant("Sofa Three Seat", "Three-seat sofa", {"width": 2.15, "seats": 3}),
        Variant("Sofa Corner", "Three-seat sofa with a chaise", {"width": 2.2, "seats": 3, "chaise": True}, 1, ""),
    ]),
    *family("bench", "Furniture/Bench", ("bench", "seat"), park_bench, [
        Variant("Bench Park", "Slatted park bench with back and arms", {}, labels=("park bench",)),
    ]),
    *family("bench", "Furniture/Bench", ("bench", "seat"), plain_bench, [
        Variant("Bench Plain", "Backless bench on slab legs", {}, 2, XY),
    ]),
    *family("bed", "Furniture/Bed", ("bed",), bed, [
        Variant("Bed Single", "Single bed with a headboard", {"width": 0.9, "head": 0.9, "pillows": 1}),
        Variant("Bed Double", "Double bed with a headboard", {}),
        Variant("Bed King", "King-size bed with head and foot boards",
                {"width": 1.8, "length": 2.1, "head": 1.15, "foot": 0.55}),
    ]),
    *family("toilet", "Bathroom/Toilet", ("toilet", "wc", "lavatory"), toilet, [
        Variant("Toilet", "Toilet with a cistern, lid closed", {}),
        Variant("Toilet Wall Hung", "Wall-hung toilet on its frame", {"tank": False}),
    ]),
    *family("sink", "Bathroom/Sink", ("sink", "basin", "washbasin"), sink, [
        Variant("Sink Pedestal", "Wash basin on a pedestal, with a tap", {}),
        Variant("Sink Vanity", "Bowl basin on a vanity cabinet", {"vanity": True}),
    ]),
    *family("cabinet", "Furniture/Cabinet", ("cabinet", "cupboard", "dresser", "drawers"), cabinet, [
        Variant("Cabinet Nightstand", "Bedside table with two drawers", {}, labels=("nightstand",)),
        Variant("Cabinet Dresser", "Chest of drawers, three rows of two",
                {"width": 1.2, "depth": 0.5, "height": 0.85, "rows": 3, "cols": 2}, labels=("chest of drawers",)),
        Variant("Cabinet Tall", "Tall two-door cupboard",
                {"width": 0.8, "depth": 0.42, "height": 1.8, "rows": 1, "cols": 2, "doors": True, "legs": 0.1},
                labels=("wardrobe",)),
    ]),
)
