"""GrabCut seeded with an artist's prompts: the classic engine's promptable segmenter.

A prompt becomes GrabCut labels inside a window of the photo: a box marks probable
foreground inside and sure background outside, a positive click a small disc of sure
foreground (and, with no box, the salient part of the window around it as probable
foreground), a negative click a disc of sure background, a stroke its pixels. The cut
runs on a small copy of the window (a fixed pixel budget, so a 12 MP photo costs what a
1 MP one does) and comes back to full resolution through the colour guided filter, which
snaps the upsampled outline onto the photo's edges; sure labels always win.
"""

from __future__ import annotations

import numpy as np

from .classic_segment import GRABCUT_ITERATIONS, _guided_filter, _run_grabcut
from .classic_segment import parts_touching as parts_touching

WORK_PIXELS = 180 * 180  # pixel budget of the window GrabCut runs on (its max-flow grows faster than that)
GUIDE_PIXELS = 400_000  # the guided filter runs at most at this size, then a plain upsample
SALIENT_SIDE = 320  # long side of the copy a lone click's window is searched for an object on
SEED_RADIUS = 0.006  # disc of a click, share of the photo's long side
CLICK_WINDOW = 0.5  # side of the window around a lone click, share of the photo's long side
MIN_PART = 0.0005  # a cut part smaller than this share of the photo is a speck


def clip_window(window: tuple[int, int, int, int], shape: tuple[int, int]) -> tuple[int, int, int, int]:
    h, w = shape
    x0, y0, x1, y1 = (int(round(v)) for v in window)
    x0, y0 = max(0, min(x0, w - 1)), max(0, min(y0, h - 1))
    return x0, y0, max(x0 + 1, min(x1, w)), max(y0 + 1, min(y1, h))


def pad_window(box: tuple[float, float, float, float], shape: tuple[int, int], fraction: float = 0.1,
               least: int = 8) -> tuple[int, int, int, int]:
    """``box`` grown by ``fraction`` of its size (at least ``least`` pixels) on every side, clipped."""
    x0, y0, x1, y1 = box
    mx, my = max(least, fraction * (x1 - x0)), max(least, fraction * (y1 - y0))
    return clip_window((int(x0 - mx), int(y0 - my), int(np.ceil(x1 + mx)), int(np.ceil(y1 + my))), shape)


def seed_radius(shape: tuple[int, int]) -> int:
    return max(2, int(round(SEED_RADIUS * max(shape))))


def stamp(labels: np.ndarray, points: list[tuple[float, float, bool]], origin: tuple[int, int], radius: int,
          fg: int, bg: int) -> None:
    """Discs of ``fg`` (positive points) or ``bg`` (negative points) into ``labels``, in place."""
    import cv2

    ox, oy = origin
    for x, y, positive in points:
        cv2.circle(labels, (int(round(x - ox)), int(round(y - oy))), radius, (int(fg if positive else bg),), -1)


def salient_part(rgb: np.ndarray, points: list[tuple[float, float]]) -> np.ndarray | None:
    """The classic engine's own object finding on a window: the found part under (or nearest to)
    the clicks, as a bool mask of the window; None when it finds nothing near them."""
    import cv2

    from .classic_segment import segment

    h, w = rgb.shape[:2]
    s = min(1.0, SALIENT_SIDE / max(h, w))  # it works on a small copy anyway: hand it one
    small = rgb if s == 1.0 else cv2.resize(rgb, (max(8, round(w * s)), max(8, round(h * s))),
                                            interpolation=cv2.INTER_AREA)
    found = segment(small, alpha=None, box=None, objects="all")
    if not found:
        return None
    sh, sw = small.shape[:2]
    best, best_d = None, 0.08 * max(sh, sw)
    for inst in found:
        ys, xs = np.nonzero(inst.mask)
        for x, y in points:
            xi, yi = min(sw - 1, max(0, int(x * s))), min(sh - 1, max(0, int(y * s)))
            d = 0.0 if inst.mask[yi, xi] else float(np.min(np.hypot(xs - x * s, ys - y * s)))
            if d <= best_d:
                best, best_d = inst.mask, d
    if best is None or s == 1.0:
        return best
    return cv2.resize(best.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0


def seeded_cut(rgb: np.ndarray, labels: np.ndarray, window: tuple[int, int, int, int]) -> np.ndarray:
    """GrabCut of ``rgb[window]`` (full photo, window x0, y0, x1, y1) from ``labels`` (the window's
    cv2.GC_* labels at full resolution); returns the window's foreground as a bool mask."""
    import cv2

    x0, y0, x1, y1 = window
    crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    h, w = crop.shape[:2]
    scale = min(1.0, float(np.sqrt(WORK_PIXELS / (h * w))))
    sw, sh = max(8, round(w * scale)), max(8, round(h * scale))
    small = cv2.resize(crop, (sw, sh), interpolation=cv2.INTER_AREA)
    small_labels = _shrink_labels(labels, (sw, sh))
    fg_like = np.isin(small_labels, (cv2.GC_FGD, cv2.GC_PR_FGD))
    if fg_like.all() or not fg_like.any():
        cut = fg_like
    else:
        cut = _run_grabcut(small, small_labels, GRABCUT_ITERATIONS)
    out = upsample(crop, cut)
    out[labels == cv2.GC_FGD] = True
    out[labels == cv2.GC_BGD] = False
    return out


def _shrink_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Labels at ``size``: probable ones by nearest neighbour, and every sure foreground pixel
    kept (a thin stroke or small disc must survive the shrink), sure background by majority."""
    import cv2

    if labels.shape == (size[1], size[0]):
        return labels.copy()
    small = cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST)
    bg = cv2.resize((labels == cv2.GC_BGD).astype(np.float32), size, interpolation=cv2.INTER_AREA)
    fg = cv2.resize((labels == cv2.GC_FGD).astype(np.float32), size, interpolation=cv2.INTER_AREA)
    small[(small == cv2.GC_BGD) & (bg < 0.5)] = cv2.GC_PR_BGD
    small[bg >= 0.5] = cv2.GC_BGD
    small[fg > 0] = cv2.GC_FGD
    return small


def upsample(crop: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """The small cut at the crop's size, its outline snapped to the crop's edges (only around
    the cut: the rest of the window stays background)."""
    h, w = crop.shape[:2]
    sh, sw = cut.shape
    if (sh, sw) == (h, w) or not cut.any():
        return cut.copy() if (sh, sw) == (h, w) else np.zeros((h, w), bool)
    rows, cols = np.nonzero(cut.any(1))[0], np.nonzero(cut.any(0))[0]
    fy, fx = h / sh, w / sw
    pad = 2
    y0, y1 = int(max(0, rows[0] - pad) * fy), int(np.ceil(min(sh, rows[-1] + 1 + pad) * fy))
    x0, x1 = int(max(0, cols[0] - pad) * fx), int(np.ceil(min(sw, cols[-1] + 1 + pad) * fx))
    sy0, sy1, sx0, sx1 = max(0, rows[0] - pad), min(sh, rows[-1] + 1 + pad), max(0, cols[0] - pad), \
        min(sw, cols[-1] + 1 + pad)
    out = np.zeros((h, w), bool)
    out[y0:y1, x0:x1] = _snap(np.ascontiguousarray(crop[y0:y1, x0:x1]), cut[sy0:sy1, sx0:sx1])
    return out


def _snap(crop: np.ndarray, cut: np.ndarray) -> np.ndarray:
    import cv2

    h, w = crop.shape[:2]
    sh, sw = cut.shape
    g = min(1.0, float(np.sqrt(GUIDE_PIXELS / (h * w))))
    gw, gh = max(sw, round(w * g)), max(sh, round(h * g))
    guide = crop if (gw, gh) == (w, h) else cv2.resize(crop, (gw, gh), interpolation=cv2.INTER_AREA)
    up = cv2.resize(cut.astype(np.float32), (gw, gh), interpolation=cv2.INTER_LINEAR)
    radius = max(2, int(round(1.5 * gw / sw)))
    soft = _guided_filter(guide.astype(np.float32) / 255.0, up, radius, 1e-3)
    if (gw, gh) != (w, h):
        soft = cv2.resize(soft, (w, h), interpolation=cv2.INTER_LINEAR)
    return soft >= 0.5


def near(mask: np.ndarray, reach: int) -> np.ndarray:
    """Pixels within ``reach`` of ``mask`` (a distance transform over its padded box only: a
    dilation with a kernel that wide would cost seconds on a large photo)."""
    import cv2

    out = np.zeros(mask.shape, bool)
    if not mask.any():
        return out
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    h, w = mask.shape
    y0, y1 = max(0, rows[0] - reach), min(h, rows[-1] + 1 + reach)
    x0, x1 = max(0, cols[0] - reach), min(w, cols[-1] + 1 + reach)
    dist = cv2.distanceTransform((~mask[y0:y1, x0:x1]).astype(np.uint8), cv2.DIST_L2, 3)
    out[y0:y1, x0:x1] = dist <= reach
    return out
