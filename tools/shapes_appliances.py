"""Electronics and appliance families of the template library: laptops, screens, keyboards, phones,
remotes, microwaves, refrigerators, ovens, toasters, clocks and lamps (metres, +Z up, front -Y)."""

from __future__ import annotations

import numpy as np
from shape_parts import Shape, Variant, about, centred, disc, family, leg, rot_x, rot_y, rot_z, solid

from templates.library import SYM_REVOLUTION
from templates.mesh import PolyMesh, box, lathe, merge, sweep, uv_sphere


def facing_front(mesh: PolyMesh, y: float, z: float, x: float = 0.0) -> PolyMesh:
    """A part built along +Z (a knob, a clock face) turned to face -Y and moved to (x, y, z)."""
    return mesh.transformed(rot_x(90.0)).translated((x, y, z))


def laptop(width: float = 0.32, depth: float = 0.22, thick: float = 0.016, lid: float = 0.006,
           angle: float = 110.0) -> PolyMesh:
    """An open laptop: base with keyboard deck and touchpad, screen lid hinged at the back."""
    ml = 0.05
    base = box((width, depth, thick), (0, 0, 0.5 * thick), ml, radius=0.003, round_segments=1)
    deck = box((0.86 * width, 0.42 * depth, 0.002), (0, 0.12 * depth, thick + 0.001), ml)
    pad = box((0.32 * width, 0.22 * depth, 0.0015), (0, -0.3 * depth, thick + 0.00075), ml)
    screen = box((width, depth, lid), (0, 0, thick + 0.5 * lid + 0.002), ml, radius=0.002, round_segments=1)
    screen = screen.transformed(about(rot_x(-angle), (0, 0.5 * depth, thick + 0.002)))
    return centred(merge(base, deck, pad, screen))


def screen(width: float = 1.23, height: float = 0.71, thick: float = 0.05, lift: float = 0.08,
           stand: str = "feet") -> PolyMesh:
    """A television or monitor panel on two feet or a pedestal stand."""
    ml = 0.15
    panel = box((width, thick, height), (0, 0, lift + 0.5 * height), ml, radius=0.006, round_segments=1)
    parts = [panel]
    if stand == "feet":
        for s in (-1, 1):
            x = s * 0.38 * width
            path = np.array([[x, -0.13, 0.01], [x, 0.0, lift + 0.04], [x, 0.13, 0.01]])
            parts.append(sweep(path, 0.012, 8))
    else:
        parts.append(box((0.55 * width, 0.6 * thick, 0.5 * height), (0, 0.8 * thick, lift + 0.45 * height), ml,
                         radius=0.01, round_segments=1))
        parts.append(box((0.06, 0.035, lift + 0.25 * height), (0, 1.3 * thick + 0.02, 0.5 * (lift + 0.25 * height)),
                         ml))
        parts.append(box((max(0.22, 0.3 * width), 0.2, 0.014), (0, 0.04, 0.007), ml, radius=0.006))
    return centred(merge(*parts))


def keyboard(numpad: bool = True, pitch: float = 0.019) -> PolyMesh:
    """A computer keyboard: a wedge rising to the back and rows of keys (numeric pad on the right)."""
    cols = 14 + (5 if numpad else 0)
    width = cols * pitch + 0.03
    depth = 5 * pitch + 0.035
    x0 = -0.5 * width + 0.015
    base = box((width, depth, 0.016), (0, 0, 0.008), 0.1, radius=0.004, round_segments=1)
    v = base.vertices.copy()
    slope = 0.012 / depth
    v[:, 2] += (v[:, 2] > 0.008) * slope * (v[:, 1] + 0.5 * depth)
    parts = [PolyMesh(v, base.face_sizes, base.loops)]

    def key(x: float, y: float, w: float) -> PolyMesh:
        z = 0.016 + slope * (y + 0.5 * depth)
        return box((w - 0.003, pitch - 0.003, 0.008), (x, y, z + 0.004), 1.0)

    for r in range(4):
        y = -0.5 * depth + 0.0175 + (r + 1.5) * pitch
        parts += [key(x0 + (c + 0.5) * pitch, y, pitch) for c in range(14)]
    y = -0.5 * depth + 0.0175 + 0.5 * pitch
    units = [1.25, 1.25, 1.25, 6.5, 1.25, 1.25, 1.25]
    x = x0
    for u in units:
        parts.append(key(x + 0.5 * u * pitch, y, u * pitch))
        x += u * pitch
    if numpad:
        xn = x0 + 14.5 * pitch
        for r in range(5):
            yy = -0.5 * depth + 0.0175 + (r + 0.5) * pitch
            parts += [key(xn + (c + 0.5) * pitch, yy, pitch) for c in range(4)]
    return merge(*parts)


def phone(width: float = 0.072, length: float = 0.150, thick: float = 0.008, pose: str = "flat") -> PolyMesh:
    """A smartphone lying face up, or (``pose="desk"``) a desk telephone with its handset."""
    ml = 0.03
    if pose == "desk":
        base = box((0.20, 0.21, 0.05), (0, 0, 0.025), 0.1, radius=0.012, round_segments=2)
        v = base.vertices.copy()
        v[:, 2] += (v[:, 2] > 0.025) * 0.03 * (v[:, 1] / 0.21 + 0.5)
        parts = [PolyMesh(v, base.face_sizes, base.loops)]
        parts += [box((0.016, 0.014, 0.006), (x, y, 0.052 + 0.03 * (y / 0.21 + 0.5)), 1.0)
                  for x in (-0.025, 0.0, 0.025) for y in (-0.075, -0.055, -0.035, -0.015)]
        path = np.array([[-0.09, 0.05, 0.10], [-0.05, 0.05, 0.09], [0.05, 0.05, 0.09], [0.09, 0.05, 0.10]])
        parts.append(sweep(path, 0.013, 10))
        parts += [box((0.05, 0.055, 0.03), (s * 0.085, 0.05, 0.09), ml, radius=0.012) for s in (-1, 1)]
        return merge(*parts)
    body = box((width, length, thick), (0, 0, 0.5 * thick), ml, radius=0.0035, round_segments=2)
    glass = box((width - 0.004, length - 0.008, 0.0006), (0, 0, thick + 0.0003), ml)
    return merge(body, glass)


def remote(width: float = 0.048, length: float = 0.20, thick: float = 0.022, rows: int = 6,
           pad: bool = False) -> PolyMesh:
    """A remote control lying flat: a rounded bar with rows of buttons (and a round pad)."""
    ml = 0.05
    parts = [box((width, length, thick), (0, 0, 0.5 * thick), ml, radius=0.4 * thick, round_segments=2)]
    bw = 0.22 * width
    for r in range(rows):
        y = -0.35 * length + r * 0.5 * length / max(rows - 1, 1)
        parts += [box((bw, 0.012, 0.003), (x, y, thick + 0.0015), 1.0) for x in (-0.28 * width, 0.0, 0.28 * width)]
    parts.append(box((0.3 * width, 0.012, 0.003), (0, 0.42 * length, thick + 0.0015), 1.0))
    if pad:
        parts.append(disc(0.36 * width, thick - 0.001, thick + 0.004, 20).translated((0, 0.26 * length, 0)))
    return merge(*parts)


def microwave(width: float = 0.48, depth: float = 0.36, height: float = 0.28, knobs: int = 0) -> PolyMesh:
    """A microwave: box body, door with window frame and handle, control panel on the right."""
    ml = 0.08
    feet = 0.012
    zc = feet + 0.5 * height
    fy = -0.5 * depth
    panel_w = 0.24 * width
    door_w = width - panel_w - 0.02
    dx = -0.5 * width + 0.01 + 0.5 * door_w
    px = 0.5 * width - 0.5 * panel_w - 0.01
    parts = [box((width, depth, height), (0, 0, zc), ml, radius=0.01, round_segments=1),
             box((door_w, 0.012, height - 0.03), (dx, fy - 0.006, zc), ml),
             box((0.7 * door_w, 0.006, 0.62 * height), (dx - 0.05 * door_w, fy - 0.015, zc), ml),
             box((0.025, 0.03, 0.6 * height), (dx + 0.5 * door_w - 0.03, fy - 0.027, zc), ml, radius=0.006)]
    parts += [box((panel_w - 0.02, 0.006, 0.12 * height), (px, fy - 0.003, feet + 0.82 * height), ml)]
    if knobs:
        for k in range(knobs):
            parts.append(facing_front(disc(0.022, 0.0, 0.02, 16), fy, feet + (0.55 - 0.3 * k) * height, px))
    else:
        parts += [box((0.026, 0.006, 0.016), (px + s * 0.018, fy - 0.003, feet + (0.25 + 0.09 * r) * height), 1.0)
                  for s in (-1, 1) for r in range(5)]
    parts += [leg(sx * (0.5 * width - 0.04), sy * (0.5 * depth - 0.04), feet, 0.03, 1.0)
              for sx in (-1, 1) for sy in (-1, 1)]
    return merge(*parts)


def refrigerator(width: float = 0.6, depth: float = 0.65, height: float = 1.75, doors: str = "top") -> PolyMesh:
    """A refrigerator: body, door fronts (freezer on top, at the bottom, side by side, or one door)
    and their bar handles."""
    ml = 0.45
    fy = -0.5 * depth - 0.02
    parts = [box((width, depth, height - 0.03), (0, 0, 0.015 + 0.5 * (height - 0.03)), ml, radius=0.01)]
    parts += [leg(sx * (0.5 * width - 0.05), sy * (0.5 * depth - 0.05), 0.03, 0.04, 1.0)
              for sx in (-1, 1) for sy in (-1, 1)]
    hx = -0.5 * width + 0.05
    h = height - 0.05
    if doors == "side":
        for s in (-1, 1):
            parts.append(box((0.5 * width - 0.01, 0.04, h), (s * 0.25 * width, fy + 0.02, 0.03 + 0.5 * h), ml))
            parts.append(box((0.025, 0.035, 0.5 * h), (s * 0.04, fy - 0.0175, 0.03 + 0.5 * h), ml, radius=0.008))
        return merge(*parts)
    cuts = {"top": [0.68], "bottom": [0.32], "one": []}[doors]
    edges = [0.0, *cuts, 1.0]
    for a, b in zip(edges[:-1], edges[1:]):
        z0, z1 = 0.03 + a * h + 0.005, 0.03 + b * h - 0.005
        parts.append(box((width - 0.01, 0.04, z1 - z0), (0, fy + 0.02, 0.5 * (z0 + z1)), ml))
        if doors == "bottom" and a == 0:  # a freezer drawer: a bar along its top
            parts.append(box((0.6 * width, 0.035, 0.025), (0, fy - 0.0175, z1 - 0.06), ml, radius=0.008))
        else:
            hlen = min(0.45, 0.5 * (z1 - z0))
            parts.append(box((0.025, 0.035, hlen), (hx, fy - 0.0175, 0.5 * (z0 + z1)), ml, radius=0.008))
    return merge(*parts)


def oven(width: float = 0.6, depth: float = 0.6, height: float = 0.9, burners: int = 4) -> PolyMesh:
    """A freestanding cooker: body on a plinth, hob burners, a row of knobs, oven door and handle bar."""
    ml = 0.3
    fy = -0.5 * depth
    parts = [box((width, depth, height - 0.08), (0, 0, 0.08 + 0.5 * (height - 0.08)), ml, radius=0.005),
             box((width - 0.04, depth - 0.06, 0.08), (0, 0.02, 0.04), ml),
             box((width - 0.04, 0.012, 0.48 * height), (0, fy - 0.006, 0.11 + 0.24 * height), ml),
             box((0.62 * width, 0.006, 0.24 * height), (0, fy - 0.015, 0.12 + 0.22 * height), ml)]
    rail = np.array([[-0.4 * width, fy - 0.012, 0.62 * height], [-0.4 * width, fy - 0.05, 0.62 * height],
                     [0.4 * width, fy - 0.05, 0.62 * height], [0.4 * width, fy - 0.012, 0.62 * height]])
    parts.append(sweep(rail, 0.011, 8))
    n_knobs = burners + 1
    for k in range(n_knobs):
        x = (k - 0.5 * (n_knobs - 1)) * (0.8 * width / n_knobs)
        parts.append(facing_front(disc(0.018, 0.0, 0.025, 10, 0.007), fy, height - 0.05, x))
    spots = [(-0.25, -0.22), (0.25, -0.22), (-0.25, 0.22), (0.25, 0.22)]
    if burners == 5:
        spots = [(-0.32, -0.22), (0.32, -0.22), (-0.32, 0.22), (0.32, 0.22), (0.0, 0.0)]
    for sx, sy in spots:
        parts.append(disc(0.06 if (sx, sy) != (0.0, 0.0) else 0.075, height, height + 0.025, 16, 0.03).translated(
            (sx * width, sy * depth, 0)))
    if burners == 5:
        parts.append(box((width, 0.03, 0.12), (0, 0.5 * depth - 0.015, height + 0.06), ml))
    return merge(*parts)


def toaster(width: float = 0.28, depth: float = 0.17, height: float = 0.19, pairs: int = 1) -> PolyMesh:
    """A pop-up toaster: rounded body, raised slot rims on top, levers on the ends (+X, and -X for two pairs)."""
    ml = 0.05
    feet = 0.01
    parts = [box((width, depth, height), (0, 0, feet + 0.5 * height), ml, radius=0.03, round_segments=2)]
    top = feet + height
    slot_l = (0.75 * width) / pairs - 0.02
    for p in range(pairs):
        x = (p - 0.5 * (pairs - 1)) * (0.75 * width / pairs + 0.01)
        for sy in (-1, 1):
            y = sy * 0.18 * depth
            parts += [box((slot_l, 0.005, 0.006), (x, y + s * 0.0145, top + 0.001), 1.0) for s in (-1, 1)]
            parts += [box((0.005, 0.034, 0.006), (x + s * 0.5 * (slot_l - 0.005), y, top + 0.001), 1.0)
                      for s in (-1, 1)]
    ends = (1, -1) if pairs > 1 else (1,)
    for s in ends:
        parts.append(box((0.025, 0.035, 0.02), (s * (0.5 * width + 0.012), 0, feet + 0.6 * height), 1.0,
                         radius=0.005))
        parts.append(facing_front(disc(0.014, 0.0, 0.012, 12), 0, feet + 0.3 * height).transformed(
            rot_z(90.0 * s)).translated((s * 0.5 * width, 0, 0)))
    parts += [leg(sx * (0.5 * width - 0.04), sy * (0.5 * depth - 0.03), feet, 0.02, 1.0) for sx in (-1, 1)
              for sy in (-1, 1)]
    return merge(*parts)


def clock(kind: str = "wall", radius: float = 0.15, depth: float = 0.04) -> PolyMesh:
    """A clock face with a rim and hands at ten past ten: on the wall, an alarm clock, or a mantel clock."""
    r = radius
    face = solid([(0, 0), (r, 0), (r, depth), (r - 0.012, depth), (r - 0.014, depth - 0.006), (0, depth - 0.006)],
                 32, max_len=0.3 * r)
    hands = [box((0.006 if kind != "alarm" else 0.004, 0.6 * r, 0.003), (0, 0.3 * r, depth - 0.003), 1.0)
             .transformed(rot_z(a)) for a in (60.0, -60.0)]
    dial = merge(face, *hands, disc(0.05 * r, depth - 0.006, depth + 0.002, 10))
    if kind == "wall":
        return facing_front(dial, 0.5 * depth, r)
    if kind == "alarm":
        parts = [facing_front(dial, 0.5 * depth, r + 0.02)]
        for s in (-1, 1):
            bell = uv_sphere(0.3 * r, 16, 10).transformed(rot_y(s * 35.0))
            parts.append(bell.translated((s * 0.55 * r, 0, 1.75 * r + 0.02)))
            parts.append(sweep(np.array([[s * 0.45 * r, 0, 0.45 * r], [s * 0.75 * r, 0, 0.0]]), 0.006, 6))
        parts.append(uv_sphere(0.1 * r, 10, 6, centre_z=2.15 * r + 0.02))
        return merge(*parts)
    body_w, body_h = 2.3 * r, 1.3 * r
    parts = [box((body_w + 0.04, depth + 0.05, 0.02), (0, 0.0, 0.01), 0.1),
             box((body_w, depth + 0.03, body_h), (0, 0.0, 0.02 + 0.5 * body_h), 0.1)]
    top = lathe(np.array([(0, -0.5 * depth - 0.015), (0.5 * body_w, -0.5 * depth - 0.015),
                          (0.5 * body_w, 0.5 * depth + 0.015), (0, 0.5 * depth + 0.015)]), 32,
                max_len=0.05).transformed(rot_x(90.0))
    parts.append(top.translated((0, 0, 0.02 + body_h)))
    parts.append(facing_front(dial, -0.5 * depth - 0.015, 0.02 + body_h))
    return merge(*parts)


def lamp(base: tuple[float, float] = (0.085, 0.03), stem: tuple[float, float] = (0.009, 0.40),
         shade: tuple[float, float, float, float] = (0.16, 0.10, 0.27, 0.48)) -> PolyMesh:
    """A lamp: round base, stem and an open drum or cone shade (bottom radius, top radius, bottom, top)."""
    br, bh = base
    sr, top = stem
    foot = solid([(0, 0), (br, 0), (br, 0.5 * bh), (0.7 * br, bh), (0, bh)], 32, max_len=0.06)
    post = disc(sr, 0.8 * bh, top, 12, max_len=0.15)
    r0, r1, z0, z1 = shade
    cover = lathe(np.array([(r0, z0), (r0 + 0.005, z0), (r1 + 0.005, z1), (r1, z1)]), 36, max_len=0.08, closed=True)
    return merge(foot, post, cover)


def desk_lamp(reach: float = 0.35) -> PolyMesh:
    """An articulated desk lamp: base, two arm segments in the YZ plane, a cone head pointing down-forward."""
    base = solid([(0, 0), (0.08, 0), (0.08, 0.02), (0.06, 0.035), (0, 0.035)], 24, max_len=0.03)
    elbow = np.array([0.0, 0.10, 0.38])
    head = np.array([0.0, 0.10 - reach, 0.45])
    lower = np.linspace([0.0, 0.0, 0.03], elbow, 5)
    arms = sweep(np.vstack([lower, np.linspace(elbow, head, 5)[1:]]), 0.009, 8)
    cone = lathe(np.array([(0, 0), (0.02, 0), (0.075, -0.13), (0.07, -0.13), (0, -0.01)]), 20, max_len=0.02)
    cone = cone.transformed(rot_x(-35.0)).translated(head)
    return centred(merge(base, arms, cone, uv_sphere(0.018, 10, 6).translated(elbow)))


X = "x"
Y = "y"
XY = "xy"
REV = SYM_REVOLUTION

SHAPES: tuple[Shape, ...] = (
    *family("laptop", "Electronics/Laptop", ("laptop", "notebook computer", "computer"), laptop, [
        Variant("Laptop", "Open 14-inch laptop", {}),
        Variant("Laptop Wide Open", "Thin laptop opened wide", {"width": 0.30, "depth": 0.21, "thick": 0.012,
                                                                "lid": 0.005, "angle": 135.0}),
    ]),
    *family("tv", "Electronics/TV", ("tv", "television", "monitor", "tvmonitor", "tv monitor", "screen", "display"),
            screen, [
        Variant("TV", "55-inch television on two feet", {}, 1, XY),
        Variant("TV Small", "32-inch television on a stand",
                {"width": 0.73, "height": 0.43, "thick": 0.06, "lift": 0.06, "stand": "pedestal"}),
        Variant("Monitor", "24-inch computer monitor",
                {"width": 0.54, "height": 0.32, "thick": 0.02, "lift": 0.12, "stand": "pedestal"},
                labels=("computer monitor",)),
    ]),
    *family("keyboard", "Electronics/Keyboard", ("keyboard", "computer keyboard"), keyboard, [
        Variant("Keyboard", "Full keyboard with a numeric pad", {}, 1, ""),
        Variant("Keyboard Compact", "Compact keyboard without a numeric pad", {"numpad": False}),
    ]),
    *family("phone", "Electronics/Phone", ("phone", "cell phone", "mobile phone", "smartphone"), phone, [
        Variant("Phone", "Smartphone lying face up", {}, 2, XY),
        Variant("Phone Desk", "Desk telephone with its handset", {"pose": "desk"}, labels=("telephone",)),
    ]),
    *family("remote", "Electronics/Remote", ("remote", "remote control"), remote, [
        Variant("Remote", "TV remote control lying flat", {}),
        Variant("Remote Slim", "Slim remote with a round pad",
                {"width": 0.038, "length": 0.14, "thick": 0.014, "rows": 3, "pad": True}),
    ]),
    *family("microwave", "Kitchen/Microwave", ("microwave", "microwave oven"), microwave, [
        Variant("Microwave", "Microwave with a button panel", {}, 1, ""),
        Variant("Microwave Compact", "Compact microwave with two knobs",
                {"width": 0.44, "depth": 0.33, "height": 0.25, "knobs": 2}, 1, ""),
    ]),
    *family("refrigerator", "Kitchen/Refrigerator", ("refrigerator", "fridge", "freezer"), refrigerator, [
        Variant("Fridge", "Fridge with the freezer on top", {}, 1, ""),
        Variant("Fridge Bottom Freezer", "Tall fridge with the freezer below",
                {"depth": 0.66, "height": 1.85, "doors": "bottom"}, 1, ""),
        Variant("Fridge Side by Side", "Wide side-by-side fridge",
                {"width": 0.9, "depth": 0.72, "height": 1.78, "doors": "side"}),
        Variant("Fridge Mini", "Under-counter fridge", {"width": 0.5, "depth": 0.52, "height": 0.85, "doors": "one"},
                1, ""),
    ]),
    *family("oven", "Kitchen/Oven", ("oven", "stove", "cooker"), oven, [
        Variant("Oven", "Freestanding cooker with four burners", {}),
        Variant("Oven Range", "Wide range cooker with five burners",
                {"width": 0.9, "depth": 0.65, "height": 0.92, "burners": 5}, labels=("range",)),
    ]),
    *family("toaster", "Kitchen/Toaster", ("toaster",), toaster, [
        Variant("Toaster", "Two-slot toaster", {}, 1, Y),
        Variant("Toaster Four Slot", "Four-slot toaster", {"width": 0.38, "depth": 0.18, "pairs": 2}, 2, XY),
    ]),
    *family("clock", "Decor/Clock", ("clock",), clock, [
        Variant("Clock Wall", "Round wall clock", {}, labels=("wall clock",)),
        Variant("Clock Alarm", "Twin-bell alarm clock", {"kind": "alarm", "radius": 0.06, "depth": 0.045},
                labels=("alarm clock",)),
        Variant("Clock Mantel", "Mantel clock with an arched top", {"kind": "mantel", "radius": 0.08, "depth": 0.06}),
    ]),
    *family("lamp", "Decor/Lamp", ("lamp", "light"), lamp, [
        Variant("Lamp Table", "Table lamp with a shade", {}, REV, labels=("table lamp",)),
        Variant("Lamp Floor", "Floor lamp with a shade",
                {"base": (0.16, 0.04), "stem": (0.014, 1.45), "shade": (0.22, 0.16, 1.30, 1.62)}, REV,
                labels=("floor lamp",)),
    ]),
    *family("lamp", "Decor/Lamp", ("lamp", "light", "desk lamp"), desk_lamp, [
        Variant("Lamp Desk", "Articulated desk lamp", {}),
    ]),
)
