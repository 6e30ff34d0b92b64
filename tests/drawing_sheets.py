"""Synthetic industrial-design sheets drawn with OpenCV, with their ground truth.

A sheet is described in millimetres and rendered at any dpi (4x supersampled, then area-averaged,
like a scanner), so the same drawing can be compared at 72 and 300 dpi. It holds two objects in
the ID line language (thick outline, medium internal lines, light pencil contour lines, thin
X-ray hidden lines), one outline with a gap, hatching, text, a dimension line with arrows and a
sheet frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SHEET_MM = (100.0, 70.0)  # width, height
OUTLINE_MM, INTERNAL_MM, CONTOUR_MM = 1.0, 0.5, 0.25
SS = 4  # supersampling


@dataclass
class Sheet:
    rgb: np.ndarray  # (H, W, 3) uint8
    silhouettes: list[np.ndarray]  # ground-truth object masks, (H, W) bool each
    internal: np.ndarray  # (H, W) bool, where the internal lines run (inside the objects)
    px_per_mm: float


def _rounded_rect(cx: float, cy: float, w: float, h: float, r: float, n: int = 12) -> np.ndarray:
    pts = []
    for (sx, sy), start in zip(((1, 1), (-1, 1), (-1, -1), (1, -1)), (0, 90, 180, 270)):
        ox, oy = cx + sx * (w / 2 - r), cy + sy * (h / 2 - r)
        for a in np.radians(np.linspace(start, start + 90, n)):
            pts.append((ox + r * np.cos(a), oy + r * np.sin(a)))
    return np.array(pts)


def _ellipse(cx: float, cy: float, rx: float, ry: float, a0: float = 0, a1: float = 360, n: int = 90) -> np.ndarray:
    a = np.radians(np.linspace(a0, a1, n))
    return np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], axis=1)


class _Canvas:
    def __init__(self, dpi: float) -> None:
        self.s = dpi / 25.4 * SS
        self.img = np.full((round(SHEET_MM[1] * self.s), round(SHEET_MM[0] * self.s), 3), 255, np.uint8)

    def px(self, pts: np.ndarray) -> np.ndarray:
        return np.round(np.asarray(pts) * self.s).astype(np.int32)

    def thick(self, mm: float) -> int:
        return max(1, round(mm * self.s))

    def poly(self, pts: np.ndarray, mm: float, colour=(0, 0, 0), closed: bool = False, img=None) -> None:
        cv2.polylines(self.img if img is None else img, [self.px(pts)], closed, colour, self.thick(mm), cv2.LINE_AA)

    def line(self, a, b, mm: float, colour=(0, 0, 0)) -> None:
        self.poly(np.array([a, b]), mm, colour)

    def dashed(self, a, b, mm: float, colour=(0, 0, 0), dash: float = 1.5) -> None:
        a, b = np.asarray(a, float), np.asarray(b, float)
        n = max(1, int(np.linalg.norm(b - a) / dash))
        for i in range(0, n, 2):
            self.line(a + (b - a) * i / n, a + (b - a) * (i + 1) / n, mm, colour)

    def down(self, img: np.ndarray, binary: bool = False) -> np.ndarray:
        h, w = img.shape[:2]
        out = cv2.resize(img, (w // SS, h // SS), interpolation=cv2.INTER_AREA)
        return out >= 128 if binary else out


PENCIL = (120, 120, 125)
RED_INK = (150, 25, 25)


def draw_sheet(dpi: float, gap: bool = True, frame: bool = True) -> Sheet:
    """The test sheet at ``dpi``."""
    c = _Canvas(dpi)
    body_a = _rounded_rect(27, 33, 34, 44, 7)
    body_b = _ellipse(72, 31, 16, 21)
    truth = []
    for body in (body_a, body_b):
        m = np.zeros(c.img.shape[:2], np.uint8)
        cv2.fillPoly(m, [c.px(body)], 255, cv2.LINE_AA)
        truth.append(c.down(m, binary=True))
    inner = np.zeros(c.img.shape[:2], np.uint8)

    # object A: a handset with a panel line and a button (medium), pencil contours, X-ray lines
    panel = _rounded_rect(27, 27, 26, 24, 4)
    button = _ellipse(27, 47, 4, 4)
    for pts in (panel, button):
        c.poly(pts, INTERNAL_MM, closed=True)
        c.poly(pts, INTERNAL_MM, (255, 255, 255), closed=True, img=inner)
    for x in (16.0, 38.0):
        c.poly(np.array([(x, 16.0), (x + 1.5, 33.0), (x, 50.0)]), CONTOUR_MM, PENCIL)
    c.dashed((14, 20), (40, 46), CONTOUR_MM)  # hidden edges seen through the body
    c.dashed((14, 46), (40, 20), CONTOUR_MM)
    c.poly(body_a, OUTLINE_MM, closed=True)
    if gap:  # cut about two outline widths out of the left side, away from the corners
        cv2.line(c.img, tuple(c.px((10, 31))), tuple(c.px((10, 32))), (255, 255, 255), c.thick(OUTLINE_MM) + 2)

    # object B: a mouse with a split line in red ink reaching the outline on both sides, hatching
    split = _ellipse(72, 31, 16, 6, 0, 180, 40)
    c.poly(split, INTERNAL_MM, RED_INK)
    c.poly(split, INTERNAL_MM, (255, 255, 255), img=inner)
    hatch = np.zeros(c.img.shape[:2], np.uint8)
    for x in range(0, 170, 2):
        cv2.line(hatch, tuple(c.px((x - 70, 70))), tuple(c.px((x, 0))), 255, c.thick(CONTOUR_MM), cv2.LINE_AA)
    region = np.zeros_like(hatch)
    cv2.fillPoly(region, [c.px(_ellipse(72, 31, 12, 16, 200, 340, 30))], 255)
    c.img[(hatch > 0) & (region > 0)] = PENCIL
    c.poly(body_b, OUTLINE_MM, closed=True)
    # a shadow hatched on the paper under object B (not an object)
    shadow = np.zeros_like(hatch)
    cv2.fillPoly(shadow, [c.px(_ellipse(74, 55, 14, 3))], 255)
    c.img[(hatch > 0) & (shadow > 0)] = PENCIL

    # annotations: a dimension line with arrows and extension lines, text, the sheet frame
    c.line((10, 58), (10, 63), CONTOUR_MM)
    c.line((44, 58), (44, 63), CONTOUR_MM)
    for a, b in (((27, 61), (10.3, 61)), ((27, 61), (43.7, 61))):
        cv2.arrowedLine(c.img, tuple(c.px(a)), tuple(c.px(b)), (0, 0, 0), c.thick(CONTOUR_MM), cv2.LINE_AA,
                        tipLength=0.12)
    font_scale = 2.5 * c.s / 22  # Hershey capitals are 22 units high
    cv2.putText(c.img, "34", tuple(c.px((25, 60))), cv2.FONT_HERSHEY_SIMPLEX, font_scale * 0.8, (0, 0, 0),
                c.thick(0.25), cv2.LINE_AA)
    cv2.putText(c.img, "ID-01 1:1", tuple(c.px((62, 65))), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                (0, 0, 0), c.thick(0.35), cv2.LINE_AA)
    cv2.putText(c.img, "BODY", tuple(c.px((46, 9))), cv2.FONT_HERSHEY_DUPLEX, font_scale * 1.2, (0, 0, 0),
                c.thick(0.9), cv2.LINE_AA)
    if frame:
        c.poly(np.array([(3, 3), (97, 3), (97, 67), (3, 67)]), 0.8, closed=True)

    internal = c.down(inner, binary=True) & (truth[0] | truth[1])
    return Sheet(c.down(c.img), truth, internal, c.s / SS)


A4_PX = (1754, 1240)  # an A4 sheet scanned at 150 dpi, landscape


def a4_sheet(dpi: float = 150.0) -> Sheet:
    """An A4 sheet (landscape) at ``dpi``: the test sheet's content at 90 % three by three (18 objects)
    inside one sheet frame."""
    tile = draw_sheet(0.9 * dpi, frame=False)
    s = dpi / 25.4
    w, h = round(297 * s), round(210 * s)
    th, tw = tile.rgb.shape[:2]
    rgb = np.full((h, w, 3), 255, np.uint8)
    silhouettes = []
    internal = np.zeros((h, w), bool)
    ox, oy = (w - 3 * tw) // 2, (h - 3 * th) // 2
    for row in range(3):
        for col in range(3):
            y, x = oy + row * th, ox + col * tw
            rgb[y:y + th, x:x + tw] = tile.rgb
            internal[y:y + th, x:x + tw] = tile.internal
            for m in tile.silhouettes:
                full = np.zeros((h, w), bool)
                full[y:y + th, x:x + tw] = m
                silhouettes.append(full)
    box = np.round(np.array([(4, 4), (293, 4), (293, 206), (4, 206)]) * s).astype(np.int32)
    cv2.polylines(rgb, [box], True, (0, 0, 0), max(1, round(0.8 * s)), cv2.LINE_AA)
    return Sheet(rgb, silhouettes, internal, s)


def phone_photo(sheet: Sheet, seed: int = 3) -> tuple[np.ndarray, list[np.ndarray]]:
    """The sheet photographed on grey paper: uneven light, slight perspective, blur, JPEG noise.
    Returns the photo (RGB) and the warped ground-truth silhouettes."""
    rng = np.random.default_rng(seed)
    h, w = sheet.rgb.shape[:2]
    img = sheet.rgb.astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 0.55 + 0.4 * (xx / w) * 0.7 + 0.3 * (yy / h) * 0.5
    paper = np.array([205, 200, 190], np.float32) / 255.0
    img = img * paper * light[..., None]
    img += rng.normal(0, 3.0, img.shape)  # paper texture and sensor noise
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = np.float32([[0.03 * w, 0.02 * h], [0.98 * w, 0.0], [w, h], [0.0, 0.97 * h]])
    warp = cv2.getPerspectiveTransform(src, dst)
    img = cv2.warpPerspective(np.clip(img, 0, 255).astype(np.uint8), warp, (w, h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
    img = cv2.GaussianBlur(img, (0, 0), 0.7)
    ok, jpg = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 60])
    photo = cv2.imdecode(jpg, cv2.IMREAD_COLOR)[..., ::-1]
    truth = [cv2.warpPerspective(m.astype(np.uint8) * 255, warp, (w, h)) >= 128 for m in sheet.silhouettes]
    return np.ascontiguousarray(photo), truth


def _parts_drawing(parts: list[np.ndarray], size: tuple[int, int], stroke: float,
                   details: list[tuple[np.ndarray, float]] = ()) -> tuple[np.ndarray, np.ndarray]:
    """(RGB, silhouette) of an object drawn as a designer draws it: each part (a polygon in pixels),
    back to front, filled with paper and outlined, so a nearer part hides the lines behind it and
    the visible outlines meet where parts overlap; ``details`` (polyline, stroke) are drawn on top."""
    w, h = size
    img = np.full((h * SS, w * SS, 3), 255, np.uint8)
    truth = np.zeros((h * SS, w * SS), np.uint8)
    for part in parts:
        pts = np.round(np.asarray(part) * SS).astype(np.int32)
        cv2.fillPoly(img, [pts], (255, 255, 255), cv2.LINE_AA)
        cv2.polylines(img, [pts], True, (0, 0, 0), round(stroke * SS), cv2.LINE_AA)
        cv2.fillPoly(truth, [pts], (255,))
    for line, width in details:
        cv2.polylines(img, [np.round(np.asarray(line) * SS).astype(np.int32)], False, (0, 0, 0),
                      round(width * SS), cv2.LINE_AA)
    small = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    return small, cv2.resize(truth, size, interpolation=cv2.INTER_AREA) >= 128


def _box(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], float)


def bench_drawing(size: tuple[int, int] = (640, 480)) -> tuple[np.ndarray, np.ndarray]:
    """A bench seen from the front: a seat on two legs joined low by a rail, and a back of two slats
    on two posts. The paper between the legs, rail and seat and between the slats is seen through."""
    parts = [_box(150, 120, 157, 260), _box(483, 120, 490, 260),  # the back's posts, thin as tubes
             _box(140, 140, 500, 147), _box(140, 195, 500, 202),  # its slats
             _box(160, 270, 167, 420), _box(473, 270, 480, 420),  # the legs
             _box(160, 373, 480, 380),  # the rail between them
             _box(120, 250, 520, 275)]  # the seat, nearest
    return _parts_drawing(parts, size, 3.0)


def drawers_drawing(size: tuple[int, int] = (640, 480)) -> tuple[np.ndarray, np.ndarray]:
    """A chest of three by three drawers, each outlined with a handle: every drawer is a face,
    the middle one too, though its outline runs on into the chest's and it touches no outer edge."""
    x0, y0, x1, y1 = 140.0, 90.0, 500.0, 390.0
    parts = [_box(x0, y0, x1, y1)]
    xs, ys = np.linspace(x0, x1, 4), np.linspace(y0, y1, 4)
    parts += [_box(xs[i], ys[j], xs[i + 1], ys[j + 1]) for i in range(3) for j in range(3)]
    handles = [(np.array([(0.5 * (xs[i] + xs[i + 1]) - 20, 0.5 * (ys[j] + ys[j + 1])),
                          (0.5 * (xs[i] + xs[i + 1]) + 20, 0.5 * (ys[j] + ys[j + 1]))]), 4.0)
               for i in range(3) for j in range(3)]
    return _parts_drawing(parts, size, 3.0, handles)


def keyboard_drawing(size: tuple[int, int] = (800, 600)) -> tuple[np.ndarray, np.ndarray]:
    """A keyboard from above: a slab and six rows of small keys drawn close together (their lines
    merge into blobs of ink where the drawing is small)."""
    slab = _box(250, 260, 550, 340)
    keys = [_box(256 + 9.6 * i, 266 + 11 * j, 263 + 9.6 * i, 274 + 11 * j) for i in range(30) for j in range(6)]
    rgb, truth = _parts_drawing([slab, *keys], size, 2.0)
    return rgb, truth
