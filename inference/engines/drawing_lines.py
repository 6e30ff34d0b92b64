"""Line art clean-up and line weights for the ``drawing`` engine.

A drawing becomes an ink map (0 paper, 1 full ink) by dividing out the paper's own brightness,
so uneven light and grey paper do not matter, and by taking the strongest channel, so coloured
lines count as ink. Strokes are cut at their junctions and weighed by the ink they carry per unit
length, an anti-aliasing-proof stroke width; the weights are classed against the drawing's own
distribution, so the same drawing at 72 and 300 dpi gives the same classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# values of the line-class map written beside the masks
PAPER, OUTLINE, INTERNAL, CONTOUR, ANNOTATION = 0, 1, 2, 3, 4
CLASS_NAMES = {PAPER: "paper", OUTLINE: "outline", INTERNAL: "internal", CONTOUR: "contour", ANNOTATION: "annotation"}
MERGE_RATIO = 1.45  # stroke weights closer than this factor are one class
OUTLINE_SHARE = 0.15  # the outline's weight carries at least this share of the strokes' length
PAPER_SIDE = 256  # long side the paper brightness is estimated at
ELONGATION = 3.0  # a stroke is at least this many times as long as it is wide; shorter ones are blobs


@dataclass
class LineAnalysis:
    """The strokes of a drawing at the working resolution."""

    ink: np.ndarray  # (H, W) float32, 0 paper .. 1 the drawing's darkest ink
    lines: np.ndarray  # (H, W) bool, pixels that are ink
    skeleton: np.ndarray  # (H, W) bool, centre lines of the strokes
    classes: np.ndarray  # (H, W) uint8, class of each line pixel (PAPER elsewhere)
    widths: dict[str, float] = field(default_factory=dict)  # class name -> median stroke width in pixels
    strokes: int = 0


def ink_map(rgb: np.ndarray) -> np.ndarray:
    """Ink (0..1) of every pixel relative to the paper around it."""
    import cv2

    h, w = rgb.shape[:2]
    f = min(1.0, PAPER_SIDE / max(h, w))
    size = (max(1, round(w * f)), max(1, round(h * f)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    # the paper is the brightest thing nearby: a max filter wider than any stroke removes the lines
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
    paper = np.maximum(cv2.GaussianBlur(cv2.dilate(small, k), (0, 0), 4.0), 8.0)
    if rgb.dtype == np.uint8:  # in 8.8 fixed point: a third of the float path's memory traffic
        paper8 = cv2.resize(np.rint(np.minimum(paper, 255.0)).astype(np.uint8), (w, h), interpolation=cv2.INTER_LINEAR)
        ratio = cv2.divide(rgb, paper8, scale=256.0, dtype=cv2.CV_16U)
        scale = 1.0 / 256.0
    else:
        ratio = rgb.astype(np.float32) / cv2.resize(paper, (w, h), interpolation=cv2.INTER_LINEAR)
        scale = 1.0
    # the strongest channel's ink; pairwise minima, as a reduction over a last axis of three is slow
    darkest = np.minimum(np.minimum(ratio[..., 0], ratio[..., 1]), ratio[..., 2]).astype(np.float32)
    darkest *= np.float32(-scale)
    darkest += np.float32(1.0)
    return np.clip(darkest, 0.0, 1.0, out=darkest)


def line_mask(ink: np.ndarray) -> tuple[np.ndarray, float]:
    """Pixels that are strokes, and the ink level of a full-strength stroke.

    Hysteresis above the paper's own noise (texture, JPEG) keeps faint pencil strokes that touch
    a clear part of themselves and drops isolated specks.
    """
    import cv2

    sample = ink[::2, ::2]
    med = float(np.median(sample))
    noise = 1.4826 * float(np.median(np.abs(sample - med)))
    low = max(0.08, med + 5.0 * noise)
    high = max(0.18, 2.0 * low)
    # one labelling of the faint ink (4-connected) serves the hysteresis and the specks' size
    n, labels, stats, _ = cv2.connectedComponentsWithStats((ink > low).astype(np.uint8), connectivity=4)
    keep = np.zeros(n, bool)
    keep[labels[ink > high]] = True
    keep &= stats[:, cv2.CC_STAT_AREA] > max(3, int((0.004 * max(ink.shape)) ** 2))
    keep[0] = False
    lines = keep[labels]
    level = float(np.percentile(ink[lines], 90)) if lines.any() else 1.0
    return lines, max(level, 0.2)


def _branches(skeleton: np.ndarray) -> tuple[int, np.ndarray]:
    """The skeleton cut at its junctions: (count + 1, label image, 0 off the branches)."""
    import cv2

    sk = skeleton.astype(np.uint8)
    neighbours = cv2.filter2D(sk, -1, np.ones((3, 3), np.float32), borderType=cv2.BORDER_CONSTANT) - sk
    junctions = (sk > 0) & (neighbours >= 3)
    cut = (sk > 0) & ~cv2.dilate(junctions.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    n, labels = cv2.connectedComponents(cut.astype(np.uint8), connectivity=8)
    return n, labels


def _classify(weights: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Class (OUTLINE, INTERNAL, CONTOUR) of each stroke weight.

    A length-weighted 1D k-means in log weight finds up to four weights; weights closer than
    MERGE_RATIO are one. The heaviest is the outline, the lightest the contour lines, any between
    are internal lines; with two weights the lighter is internal when it is close to the outline.
    """
    logw = np.log(np.maximum(weights, 1e-3))
    order = np.argsort(logw)
    cum = np.cumsum(lengths[order]) / max(float(lengths.sum()), 1e-9)
    centres = np.unique([logw[order][min(int(np.searchsorted(cum, q)), len(order) - 1)]
                         for q in (0.05, 0.35, 0.65, 0.95)])
    while True:
        for _ in range(50):
            assign = np.argmin(np.abs(logw[:, None] - centres[None, :]), axis=1)
            new = np.array([np.average(logw[assign == c], weights=lengths[assign == c])
                            if (assign == c).any() else centres[c] for c in range(len(centres))])
            if np.allclose(new, centres):
                break
            centres = new
        centres = np.sort(centres)
        gaps = np.diff(centres)
        if len(gaps) == 0 or gaps.min() >= np.log(MERGE_RATIO):
            break
        i = int(np.argmin(gaps))  # merge the closest two and fit again
        centres = np.delete(centres, i + 1)
        centres[i] = 0.5 * (centres[i] + centres[i] + gaps[i])
    assign = np.argmin(np.abs(logw[:, None] - centres[None, :]), axis=1)  # 0 lightest
    drawn = _drawn_length(weights, lengths)
    share = np.bincount(assign, weights=drawn, minlength=len(centres)) / max(float(drawn.sum()), 1e-9)
    # the outline is the heaviest weight drawn at length: a heavier few strokes (lines drawn twice
    # over, where two outlines meet) are outline too, not a class of their own, and so are blobs
    # (dense detail, like a keyboard's keys, merged into ink no longer than it is wide)
    top = max([c for c in range(len(centres)) if share[c] >= OUTLINE_SHARE], default=len(centres) - 1)
    names = np.full(len(centres), INTERNAL, np.uint8)
    names[top:] = OUTLINE
    if top >= 1 and (top >= 2 or centres[top] - centres[0] >= np.log(2.6)):
        names[0] = CONTOUR
    return names[assign]


def _drawn_length(weights: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The length of each stroke that counts towards its weight's share of the drawing: all of an
    elongated stroke, none of a blob (ink as long as it is wide, where dense detail merged)."""
    return np.where(lengths >= ELONGATION * weights, lengths, 0.0)


def analyse_lines(rgb: np.ndarray) -> LineAnalysis:
    """Clean the drawing into strokes and class every stroke by its weight."""
    import cv2
    from skimage.morphology import skeletonize

    ink = ink_map(rgb)
    lines, level = line_mask(ink)
    ink = np.clip(ink / level, 0.0, 1.0)
    skeleton = skeletonize(lines)
    n, labels = _branches(skeleton)
    classes = np.zeros(lines.shape, np.uint8)
    if n <= 1:
        return LineAnalysis(ink, lines, skeleton, classes)
    # every ink pixel (and the anti-aliased fringe around it) belongs to its nearest branch
    near = cv2.dilate(lines.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    owner = _nearest(labels > 0, labels)
    ink_sum = np.bincount(owner[near], weights=ink[near], minlength=n)[1:]
    lengths = np.bincount(labels[labels > 0], minlength=n)[1:].astype(np.float64) * 1.1  # diagonal steps
    real = lengths >= 2.0
    # a stroke's ink covers its skeleton and half a width beyond each free end: caps/2 w^2 + L w = ink
    sk = skeleton.astype(np.uint8)
    ends = (sk > 0) & (cv2.filter2D(sk, -1, np.ones((3, 3), np.float32), borderType=cv2.BORDER_CONSTANT) == 2)
    caps = np.bincount(labels[ends], minlength=n)[1:].astype(np.float64)
    quad = np.where(caps > 0, 0.5 * caps, 1.0)
    weights = np.where(caps > 0, (np.sqrt(lengths**2 + 4.0 * quad * ink_sum) - lengths) / (2.0 * quad),
                       ink_sum / np.maximum(lengths, 1.0))
    weights = np.where(real, weights, 0.0)
    stroke_class = np.full(n, PAPER, np.uint8)
    if real.any():
        stroke_class[1:][real] = _classify(weights[real], lengths[real])
    stroke_class[1:][~real] = PAPER
    # stubs too short to weigh take the class of the nearest weighed stroke
    weighed = (stroke_class[labels] > 0) & (labels > 0)
    classes = np.where(lines, stroke_class[_nearest(weighed, labels)], PAPER).astype(np.uint8)
    widths = {}
    drawn = _drawn_length(weights, lengths)
    for c in (OUTLINE, INTERNAL, CONTOUR):
        sel = real & (stroke_class[1:] == c)
        if sel.any():  # the width of the class's strokes, its blobs left out where it has strokes
            at = drawn[sel] if drawn[sel].sum() > 0 else lengths[sel]
            widths[CLASS_NAMES[c]] = round(float(_weighted_median(weights[sel], at)), 3)
    return LineAnalysis(ink, lines, skeleton, classes, widths, int(real.sum()))


def _nearest(sources: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` at the nearest ``sources`` pixel, for every pixel (0 everywhere without sources)."""
    import cv2

    if not sources.any():
        return np.zeros(values.shape, values.dtype)
    # with per-pixel labels OpenCV numbers the source pixels 1.. in raster order
    _, nearest = cv2.distanceTransformWithLabels((~sources).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5,
                                                 labelType=cv2.DIST_LABEL_PIXEL)
    return values[sources][nearest - 1]


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, 0.5 * cum[-1])])


def line_art_verdict(rgb: np.ndarray) -> tuple[bool, str]:
    """Whether the image is line art (near-binary, thin strokes on paper), and why in words."""
    import cv2

    h, w = rgb.shape[:2]
    f = min(1.0, 512 / max(h, w))
    small = cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    ink = ink_map(small)
    paper = float((ink < 0.1).mean())
    lines, _ = line_mask(ink)
    share = float(lines.mean())
    if not lines.any():
        return False, "not line art (no strokes stand out from the background)"
    from skimage.morphology import skeletonize

    half = cv2.distanceTransform(lines.astype(np.uint8), cv2.DIST_L2, 3)
    # the median width along the strokes' centre lines: dense detail merged into blobs of ink (a
    # keyboard's keys) covers much area but little length
    centre = skeletonize(lines)
    stroke = float(np.median(half[centre])) * 2.0 / max(small.shape[:2]) if centre.any() else 1.0
    facts = f"{paper:.0%} paper, {share:.1%} ink, strokes {stroke:.2%} of the image"
    if paper >= 0.8 and 0.003 <= share <= 0.2 and stroke <= 0.02:
        return True, f"line art ({facts})"
    return False, f"not line art ({facts})"
