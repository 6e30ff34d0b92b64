"""Builds the small copy of ``../shared/bench-data`` that the tests read (``tests/data``, same layout).

    .venv/bin/python tests/data/make_data.py [--bench-data ../shared/bench-data]

Files whose licence allows it are copied unchanged from the bench data; the others are generated
here as stand-ins under the same names (see LICENSES.md): the thirteen GrabCut photos with their
ground-truth masks and boxes (drawn objects on textured backgrounds), the Stanford bunny (a
bunny-like shape of smooth blobs) and Suzanne (Blender's own monkey primitive). The output is the
same on every run (fixed seeds), so rerunning it changes no committed file.
"""

from __future__ import annotations

import argparse
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from scipy import ndimage

HERE = Path(__file__).resolve().parent
SS = 4  # supersampling of the drawn masks (anti-aliased photo edges; the truth is coverage >= 1/2)
COPIED = (  # (path, why it may be copied); the licences are in LICENSES.md
    "meshes/category/cup/cup_03.ply",
    "meshes/category/bowl/bowl_01.ply",
    "meshes/category/plate/plate_03.ply",
)
COW = ("meshes/common3d/spot.obj", "meshes/common3d/cow.obj")  # Keenan Crane's Spot (CC0) stands in for the cow


# --------------------------------------------------------------------------- drawing helpers


class Canvas:
    """A supersampled single-channel canvas to draw a shape on with OpenCV, in photo pixels."""

    def __init__(self, w: int, h: int) -> None:
        self.w, self.h = w, h
        self.img = np.zeros((h * SS, w * SS), np.uint8)

    def _p(self, x: float, y: float) -> tuple[int, int]:
        return int(round(x * SS)), int(round(y * SS))

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, angle: float = 0.0, value: int = 255) -> Canvas:
        cv2.ellipse(self.img, self._p(cx, cy), (int(rx * SS), int(ry * SS)), angle, 0, 360, value, -1)
        return self

    def poly(self, pts: np.ndarray | list[tuple[float, float]], value: int = 255) -> Canvas:
        p = np.round(np.asarray(pts, np.float64) * SS).astype(np.int32)
        cv2.fillPoly(self.img, [p], value)
        return self

    def stroke(self, pts: np.ndarray, radii: np.ndarray, value: int = 255) -> Canvas:
        """Discs of ``radii`` along the polyline ``pts``, joined by their tangent quads."""
        for (x, y), r in zip(pts, radii, strict=True):
            cv2.circle(self.img, self._p(x, y), int(r * SS), value, -1)
        for k in range(len(pts) - 1):
            d = pts[k + 1] - pts[k]
            n = np.array([-d[1], d[0]]) / max(float(np.hypot(*d)), 1e-9)
            a, b = pts[k], pts[k + 1]
            self.poly([a + n * radii[k], b + n * radii[k + 1], b - n * radii[k + 1], a - n * radii[k]], value)
        return self

    def coverage(self) -> np.ndarray:
        """(h, w) float32 coverage in 0..1."""
        return cv2.resize(self.img.astype(np.float32) / 255.0, (self.w, self.h), interpolation=cv2.INTER_AREA)


def radial(cx: float, cy: float, radius: Callable[[np.ndarray], np.ndarray], n: int = 720) -> np.ndarray:
    """Outline points of a star-shaped region r(theta) about (cx, cy)."""
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    r = radius(t)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)


def smooth_noise(rng: np.random.Generator, h: int, w: int, sigma: float, channels: int = 3) -> np.ndarray:
    """Noise of unit spread blurred over ``sigma`` pixels (h, w, channels)."""
    out = np.empty((h, w, channels), np.float32)
    for c in range(channels):
        n = ndimage.gaussian_filter(rng.normal(size=(h, w)).astype(np.float32), sigma)
        out[..., c] = n / max(float(n.std()), 1e-6)
    return out


def texture(rng: np.random.Generator, h: int, w: int, base: tuple[float, float, float], vary: float,
            blotch: float, grain: float, gradient: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """A colour field: ``base`` with large blotches, fine grain and a top-to-bottom gradient."""
    yy = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None, None]
    img = np.asarray(base, np.float32) + yy * np.asarray(gradient, np.float32)
    img = img + vary * (smooth_noise(rng, h, w, blotch, 1) + 0.3 * smooth_noise(rng, h, w, blotch))
    return img + grain * smooth_noise(rng, h, w, 0.8, 1)


def clutter(rng: np.random.Generator, bg: np.ndarray, count: int, colour: tuple[float, float, float]) -> np.ndarray:
    """``count`` soft blobs of about ``colour`` scattered over the background (things beside the object)."""
    h, w = bg.shape[:2]
    c = Canvas(w, h)
    for _ in range(count):
        c.ellipse(rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.04, 0.13) * w, rng.uniform(0.04, 0.13) * h,
                  rng.uniform(0, 180))
    a = ndimage.gaussian_filter(c.coverage(), 2.0)[..., None]
    tint = np.asarray(colour, np.float32) + 12.0 * smooth_noise(rng, h, w, 4.0, 1)
    return (1.0 - a) * bg + a * tint


def photo(rng: np.random.Generator, cov: np.ndarray, bg: np.ndarray, fg: np.ndarray) -> np.ndarray:
    """Foreground over background by coverage, the object shaded darker towards its outline."""
    inside = cov >= 0.5
    dist = ndimage.distance_transform_edt(inside).astype(np.float32)
    shade = 0.75 + 0.25 * np.clip(dist / max(float(dist.max()), 1.0) * 3.0, 0.0, 1.0)
    a = cov[..., None]
    img = a * fg * shade[..., None] + (1.0 - a) * bg
    return np.clip(img + rng.normal(0.0, 1.5, img.shape), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- the thirteen GrabCut stand-ins


def _arc(cx: float, cy: float, r: float, a0: float, a1: float, n: int = 40) -> np.ndarray:
    t = np.radians(np.linspace(a0, a1, n))
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)


def _taper(n: int, r: float) -> np.ndarray:
    return r * (0.25 + 0.75 * np.sin(np.linspace(0.0, math.pi, n)) ** 0.6)


def banana1(c: Canvas) -> None:
    c.stroke(_arc(330, -60, 430, 35, 145), _taper(40, 62))


def banana2(c: Canvas) -> None:
    c.stroke(_arc(300, -20, 380, 40, 140), _taper(40, 48))
    c.stroke(_arc(330, 10, 360, 45, 130), _taper(40, 42))


def book(c: Canvas) -> None:
    c.poly(cv2.boxPoints(((335.0, 240.0), (470.0, 330.0), 12.0)))


def _wobbly(seed: int, size: float, amplitude: tuple[float, float], first: int,
            count: int) -> Callable[[np.ndarray], np.ndarray]:
    """r(theta) of a circle of radius ``size`` with ``count`` random harmonics from the ``first``."""
    rng = np.random.default_rng(seed)
    amp, phase = rng.uniform(*amplitude, count), rng.uniform(0, 2 * math.pi, count)
    k = np.arange(first, first + count)[:, None]

    def radius(t: np.ndarray) -> np.ndarray:
        return size * (1.0 + (amp[:, None] * np.sin(k * t + phase[:, None])).sum(axis=0))
    return radius


def bush(c: Canvas) -> None:
    pts = radial(0.0, 0.0, _wobbly(40, 110.0, (0.02, 0.09), 3, 24), 1440)
    c.poly(pts * [1.0, 2.1] + [237, 300])


def cross(c: Canvas) -> None:
    c.poly([(170, 40), (280, 40), (280, 200), (425, 200), (425, 300), (280, 300), (280, 600), (170, 600),
            (170, 300), (25, 300), (25, 200), (170, 200)])  # standing on the photo's bottom edge


def flower(c: Canvas) -> None:
    c.poly(radial(302, 232, lambda t: 105 + 60 * np.abs(np.cos(3.5 * t)) ** 0.8))


def fullmoon(c: Canvas) -> None:
    c.ellipse(210, 174, 60, 60)


def grave(c: Canvas) -> None:
    c.poly([(165, 250), (165, 462), (341, 462), (341, 250)]).ellipse(253, 250, 88, 100)


def llama(c: Canvas) -> None:
    c.ellipse(230, 250, 95, 50)  # body
    c.poly([(290, 240), (318, 120), (345, 128), (325, 255)])  # neck
    c.ellipse(340, 125, 30, 17, -15)  # head
    c.poly([(318, 112), (322, 90), (330, 110)]).poly([(330, 110), (338, 88), (342, 112)])  # ears
    for x in (160, 190, 265, 295):
        c.poly([(x, 270), (x + 20, 270), (x + 17, 368), (x + 3, 368)])  # legs
    c.ellipse(138, 235, 15, 10, 30)  # tail


def memorial(c: Canvas) -> None:
    c.poly([(75, 400), (338, 400), (338, 497), (75, 497)])  # pedestal
    c.poly([(130, 400), (150, 300), (260, 300), (285, 400)])  # robe
    c.ellipse(205, 240, 52, 75)  # torso
    c.ellipse(205, 165, 32, 36)  # head
    c.poly([(240, 230), (330, 150), (342, 165), (255, 260)])  # raised arm


def sheep(c: Canvas) -> None:
    rng = np.random.default_rng(11)
    for _ in range(40):
        c.ellipse(240 + rng.normal(0, 28), 250 + rng.normal(0, 22), rng.uniform(14, 24), rng.uniform(12, 20))
    c.ellipse(300, 215, 20, 26, 20)  # head
    for x in (205, 225, 255, 275):
        c.poly([(x, 290), (x + 9, 290), (x + 9, 385), (x, 385)])


def stone2(c: Canvas) -> None:
    c.poly(radial(0.0, 0.0, _wobbly(7, 200.0, (0.01, 0.06), 2, 6)) * [0.85, 1.15] + [350, 225])


def teddy(c: Canvas) -> None:
    c.ellipse(146, 235, 78, 95)  # body
    c.ellipse(146, 118, 60, 55)  # head
    c.ellipse(98, 70, 22, 22).ellipse(194, 70, 22, 22)  # ears
    c.ellipse(72, 215, 24, 55, 25).ellipse(220, 215, 24, 55, -25)  # arms
    c.ellipse(100, 315, 36, 24).ellipse(192, 315, 36, 24)  # feet


# name, size, shape, background (base, vary, blotch, grain, gradient), object (base, vary, blotch, grain), clutter
# beside the object (count, colour): some are plain, some have things of the object's colours around it.
GRABCUT = (
    ("banana1", (640, 480), banana1, ((130, 95, 65), 16, 30, 8, (0, 0, 0)), ((215, 190, 80), 14, 20, 6),
     (6, (170, 130, 80))),
    ("banana2", (640, 480), banana2, ((110, 120, 125), 14, 25, 6, (20, 20, 20)), ((190, 190, 90), 18, 18, 6),
     (4, (160, 160, 100))),
    ("book", (640, 480), book, ((200, 180, 160), 10, 40, 6, (0, 0, 0)), ((150, 60, 55), 18, 30, 8),
     (5, (175, 120, 100))),
    ("bush", (450, 600), bush, ((150, 180, 200), 14, 60, 5, (-40, -10, -110)), ((70, 100, 50), 22, 6, 14),
     (0, (0, 0, 0))),
    ("cross", (450, 600), cross, ((130, 160, 200), 14, 50, 4, (40, 40, 20)), ((150, 145, 135), 12, 15, 9),
     (5, (200, 205, 210))),
    ("flower", (600, 450), flower, ((50, 85, 40), 18, 12, 10, (0, 0, 0)), ((215, 125, 165), 16, 25, 6),
     (3, (120, 110, 60))),
    ("fullmoon", (442, 350), fullmoon, ((18, 20, 30), 5, 30, 3, (0, 0, 0)), ((195, 195, 180), 18, 6, 8),
     (0, (0, 0, 0))),
    ("grave", (450, 600), grave, ((105, 120, 85), 16, 15, 10, (30, 30, 10)), ((145, 145, 135), 12, 20, 10),
     (9, (140, 140, 130))),
    ("llama", (513, 371), llama, ((115, 105, 75), 16, 20, 8, (40, 30, 10)), ((225, 215, 190), 10, 20, 6),
     (4, (180, 170, 140))),
    ("memorial", (450, 600), memorial, ((165, 185, 205), 10, 60, 4, (-20, -10, 0)), ((100, 85, 70), 14, 20, 7),
     (3, (120, 120, 110))),
    ("sheep", (450, 600), sheep, ((90, 130, 65), 16, 14, 10, (30, 30, 10)), ((215, 212, 200), 8, 8, 8),
     (6, (200, 200, 185))),
    ("stone2", (640, 480), stone2, ((185, 170, 135), 12, 25, 9, (0, 0, 0)), ((125, 118, 108), 16, 12, 10),
     (3, (150, 140, 120))),
    ("teddy", (284, 398), teddy, ((225, 222, 215), 6, 40, 3, (0, 0, -15)), ((150, 100, 60), 14, 10, 9),
     (2, (190, 170, 150))),
)


def write_grabcut(out: Path) -> None:
    for sub in ("imgs", "seg_GT", "bboxes"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for k, (name, (w, h), shape, bg_style, fg_style, (count, colour)) in enumerate(GRABCUT):
        rng = np.random.default_rng(1000 + k)
        canvas = Canvas(w, h)
        shape(canvas)
        cov = canvas.coverage()
        bg = clutter(rng, texture(rng, h, w, *bg_style), count, colour)
        fg = texture(rng, h, w, *fg_style)
        Image.fromarray(photo(rng, cov, bg, fg)).save(out / "imgs" / f"{name}.jpg", quality=88)
        truth = cov >= 0.5
        Image.fromarray(truth).convert("1").save(out / "seg_GT" / f"{name}.bmp")
        rows, cols = np.flatnonzero(truth.any(axis=1)), np.flatnonzero(truth.any(axis=0))
        pad = 8
        box = (max(0, cols[0] - pad), max(0, rows[0] - pad), min(w - 1, cols[-1] + pad), min(h - 1, rows[-1] + pad))
        (out / "bboxes" / f"{name}.txt").write_text(" ".join(str(int(v)) for v in box) + "\n")


# --------------------------------------------------------------------------- meshes


def _write_obj(path: Path, verts: np.ndarray, faces: np.ndarray, comment: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# {comment}"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in verts]
    lines += ["f " + " ".join(str(int(i) + 1) for i in f) for f in faces]
    path.write_text("\n".join(lines) + "\n")


def bunny_standin(lump_seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """A crouching bunny of blobs (body, haunch, head turned aside, two long ears, tail, paws) with
    a lumpy surface, +Y up, about the Stanford bunny's size, as one closed triangle mesh (marching
    cubes)."""
    from skimage import measure

    n = 64
    ax = np.linspace(-0.11, 0.11, n)
    x, y, z = np.meshgrid(ax, ax + 0.09, ax, indexing="ij")

    def blob(centre: tuple[float, float, float], radii: tuple[float, float, float], tilt: float = 0.0,
             spread: float = 0.0) -> np.ndarray:
        """A Gaussian blob, turned ``tilt`` degrees about z (top towards -x) and ``spread`` about x."""
        t, u = math.radians(tilt), math.radians(spread)
        dx, dy, dz = x - centre[0], y - centre[1], z - centre[2]
        dy, dz = math.cos(u) * dy + math.sin(u) * dz, -math.sin(u) * dy + math.cos(u) * dz
        dx, dy = math.cos(t) * dx - math.sin(t) * dy, math.sin(t) * dx + math.cos(t) * dy
        return np.exp(-((dx / radii[0]) ** 2 + (dy / radii[1]) ** 2 + (dz / radii[2]) ** 2))

    field = (blob((-0.005, 0.055, 0.0), (0.055, 0.055, 0.045)) + blob((-0.04, 0.055, 0.0), (0.045, 0.055, 0.05))
             + blob((0.03, 0.045, 0.0), (0.03, 0.04, 0.035)) + blob((0.055, 0.095, 0.01), (0.035, 0.028, 0.028), -15)
             + blob((0.085, 0.087, 0.016), (0.015, 0.015, 0.015)) + blob((-0.09, 0.06, 0.0), (0.014, 0.014, 0.014))
             + blob((0.025, 0.14, 0.02), (0.014, 0.045, 0.006), 35, -15)
             + blob((0.03, 0.14, -0.02), (0.014, 0.045, 0.006), 40, 15)
             + blob((0.07, 0.01, 0.02), (0.02, 0.01, 0.01)) + blob((0.07, 0.01, -0.02), (0.02, 0.01, 0.01)))
    lumps = ndimage.gaussian_filter(np.random.default_rng(lump_seed).normal(size=field.shape), 2.5)
    field = field * (1.0 + 0.25 * lumps / lumps.std())  # a scanned animal's uneven surface, not a smooth toy
    field = np.pad(field, 1)  # nothing on the box's faces: the surface closes
    step = ax[1] - ax[0]
    verts, faces, _, _ = measure.marching_cubes(field, 0.5, spacing=(step,) * 3)
    verts += [ax[0] - step, ax[0] + 0.09 - step, ax[0] - step]
    return _largest_part(verts, faces[:, ::-1])  # outward normals (marching cubes winds them inwards here)


def _largest_part(verts: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The connected part with the most faces (a lump can leave a speck beside the body)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = verts.shape[0]
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]]])
    _, label = connected_components(coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n)))
    keep_face = label[faces[:, 0]] == np.argmax(np.bincount(label[faces[:, 0]]))
    used = np.unique(faces[keep_face])
    remap = np.full(n, -1)
    remap[used] = np.arange(used.size)
    return verts[used], remap[faces[keep_face]]


def suzanne() -> tuple[np.ndarray, np.ndarray]:
    """Blender's monkey primitive, in the OBJ convention (+Y up)."""
    import bpy

    bpy.ops.wm.read_homefile(app_template="", use_empty=True)
    bpy.ops.mesh.primitive_monkey_add()
    mesh = bpy.context.object.data
    co = np.empty(len(mesh.vertices) * 3)
    mesh.vertices.foreach_get("co", co)
    co = co.reshape(-1, 3)
    faces = [list(p.vertices) for p in mesh.polygons]
    return np.stack([co[:, 0], co[:, 2], -co[:, 1]], axis=1), np.array(faces, dtype=object)


def write_meshes(out: Path, bench: Path) -> None:
    for rel in COPIED:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bench / rel, out / rel)
    (out / COW[1]).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(bench / COW[0], out / COW[1])
    v, f = bunny_standin()
    _write_obj(out / "meshes/common3d/stanford-bunny.obj", v, f,
               "stand-in for the Stanford bunny, generated by tests/data/make_data.py")
    v, f = suzanne()
    _write_obj(out / "meshes/common3d/suzanne.obj", v, f, "Blender's monkey primitive (tests/data/make_data.py)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench-data", type=Path, default=HERE.parents[2] / "shared" / "bench-data")
    ap.add_argument("--only", choices=("grabcut", "meshes"))
    args = ap.parse_args()
    if args.only != "meshes":
        write_grabcut(HERE / "masks" / "grabcut")
    if args.only != "grabcut":
        write_meshes(HERE, args.bench_data)


if __name__ == "__main__":
    main()
