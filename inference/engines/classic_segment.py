"""Offline foreground extraction for the ``classic`` engine.

No learned model: the object is found from priors that hold for most product
and object photos, then cut out with colour models.

1. On a small copy of the image (or of the region around the box hint) two
   saliency cues are computed: how unlike the image border a pixel's colour is
   (the border is mostly background) and its minimum-barrier distance to the
   border (how strong an edge separates it from the border).
2. Their combination seeds GrabCut (colour GMMs plus a contrast-sensitive
   graph cut) on the small image, initialised from that mask instead of a
   rectangle.
3. The cut is brought back to working resolution by a colour guided filter,
   which snaps the upsampled outline onto the image's edges.
4. Connected parts above a minimum area become instances; each one's score is
   how well its colours separate from the colours around it.
"""

from __future__ import annotations

import numpy as np

from . import Instance

WORK_SIDE = 320  # long side of the image GrabCut runs on
MIN_AREA_FRACTION = 0.002  # parts smaller than this share of the image are specks
MIN_HOLE_FRACTION = 0.002  # smaller holes are filled unless they look like background
BOX_THRESHOLD_FACTOR = 0.5
SEED_THRESHOLD_FACTOR = 1.0
COMBINE = "geo"
CENTRE_SIGMA = 0.25
MAHALANOBIS = True
COLOUR_NOISE = 4.0  # Lab variance added to every border colour cluster


def segment(
    rgb: np.ndarray, *, alpha: np.ndarray | None, box: tuple[int, int, int, int] | None, objects: str
) -> list[Instance]:
    """Find the foreground objects of ``rgb`` (H, W, 3 uint8).

    ``alpha`` (real transparency, 0..1) is used as is when given; ``box``
    (x0, y0, x1, y1) says the object lies inside it. Returns connected parts,
    largest first; ``objects == "largest"`` keeps only the first.
    """
    h, w = rgb.shape[:2]
    if alpha is not None:
        soft = np.clip(alpha.astype(np.float32), 0.0, 1.0)
        fg = soft >= 0.5
        if box is not None:
            fg &= _box_mask((h, w), box)
        instances = _instances(fg, soft, rgb, fill_holes=False)
    else:
        soft = _foreground_probability(rgb, box)
        fg = soft >= 0.5
        instances = _instances(fg, soft, rgb, fill_holes=True)
    if objects == "largest":
        instances = instances[:1]
    return instances


def _box_mask(shape: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    h, w = shape
    x0, y0, x1, y1 = box
    m = np.zeros((h, w), bool)
    m[max(0, y0):max(0, min(h, y1)), max(0, x0):max(0, min(w, x1))] = True
    return m


def _foreground_probability(rgb: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
    """Soft foreground map (H, W) float32 in 0..1 at working resolution."""
    import cv2

    h, w = rgb.shape[:2]
    if box is not None:
        x0, y0, x1, y1 = (int(v) for v in box)
        x0, x1 = max(0, min(x0, w - 1)), max(1, min(x1, w))
        y0, y1 = max(0, min(y0, h - 1)), max(1, min(y1, h))
        mx, my = max(4, (x1 - x0) // 10), max(4, (y1 - y0) // 10)
        roi = (max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my))
        inner = (x0 - roi[0], y0 - roi[1], x1 - roi[0], y1 - roi[1])
    else:
        roi = (0, 0, w, h)
        inner = None
    rx0, ry0, rx1, ry1 = roi
    crop = np.ascontiguousarray(rgb[ry0:ry1, rx0:rx1])
    ch, cw = crop.shape[:2]
    scale = min(1.0, WORK_SIDE / max(ch, cw))
    sw, sh = max(8, round(cw * scale)), max(8, round(ch * scale))
    small = cv2.resize(crop, (sw, sh), interpolation=cv2.INTER_AREA)
    inside = None
    if inner is not None:
        sx, sy = sw / cw, sh / ch
        inside = np.zeros((sh, sw), bool)
        inside[int(inner[1] * sy):int(np.ceil(inner[3] * sy)), int(inner[0] * sx):int(np.ceil(inner[2] * sx))] = True

    lab = cv2.cvtColor(cv2.GaussianBlur(small, (0, 0), 0.8), cv2.COLOR_RGB2LAB).astype(np.float32)
    prior = _saliency(lab, inside)
    cut = _grabcut(small, prior, inside)

    soft_small = cut.astype(np.float32)
    up = cv2.resize(soft_small, (cw, ch), interpolation=cv2.INTER_LINEAR)
    radius = max(2, int(round(1.5 / scale)))
    refined = _guided_filter(crop.astype(np.float32) / 255.0, up, radius, 1e-3)
    out = np.zeros((h, w), np.float32)
    out[ry0:ry1, rx0:rx1] = np.clip(refined, 0.0, 1.0)
    if box is not None:
        out *= _box_mask((h, w), box)
    return out


def _border_band(shape: tuple[int, int], inside: np.ndarray | None) -> np.ndarray:
    h, w = shape
    if inside is not None:
        return ~inside
    b = max(2, int(round(0.03 * min(h, w))))
    band = np.ones((h, w), bool)
    band[b:-b, b:-b] = False
    return band


def _saliency(lab: np.ndarray, inside: np.ndarray | None) -> np.ndarray:
    """Foreground prior in 0..1 from border colour contrast and barrier distance."""
    h, w = lab.shape[:2]
    band = _border_band((h, w), inside)
    contrast = _normalise(_border_contrast(lab, band))
    barrier = _normalise(_barrier_distance(lab, band))
    if COMBINE == "geo":
        sal = np.sqrt(contrast * barrier)
    else:
        sal = 0.5 * (contrast + barrier)
    if inside is None and CENTRE_SIGMA > 0:
        yy = (np.arange(h, dtype=np.float32) + 0.5) / h - 0.5
        xx = (np.arange(w, dtype=np.float32) + 0.5) / w - 0.5
        sal = sal * np.exp(-(yy[:, None] ** 2 + xx[None, :] ** 2) / (2 * CENTRE_SIGMA**2))
    if inside is not None:
        sal[~inside] = 0.0
    return _normalise(sal)


def _normalise(x: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(x, 1), np.percentile(x, 99.5)
    return np.clip((x - lo) / max(hi - lo, 1e-6), 0.0, 1.0).astype(np.float32)


def _border_contrast(lab: np.ndarray, band: np.ndarray) -> np.ndarray:
    """Distance of each pixel's colour to the nearest well-populated border colour cluster."""
    import cv2

    samples = lab[band].reshape(-1, 3)
    if samples.shape[0] > 4000:
        samples = samples[:: samples.shape[0] // 4000 + 1]
    k = 8
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 10, 0.5)
    cv2.setRNGSeed(1)
    _, labels, centres = cv2.kmeans(np.ascontiguousarray(samples), k, None, crit, 1, cv2.KMEANS_PP_CENTERS)
    labels = labels.ravel()
    counts = np.bincount(labels, minlength=k)
    flat = lab.reshape(-1, 3)
    best = np.full(flat.shape[0], np.inf, np.float32)
    for c in np.nonzero(counts >= 0.03 * samples.shape[0])[0]:
        pts = samples[labels == c]
        mu = pts.mean(0)
        cov = np.cov(pts, rowvar=False) + COLOUR_NOISE * np.eye(3)
        if not MAHALANOBIS:
            cov = np.eye(3)
        diff = flat - mu
        d2 = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov).astype(np.float32), diff)
        np.minimum(best, d2, out=best)
    return np.sqrt(best).reshape(lab.shape[:2])


def _barrier_distance(lab: np.ndarray, band: np.ndarray, passes: int = 2) -> np.ndarray:
    """Approximate minimum-barrier distance from the border band (summed over Lab channels).

    Raster scans in the four directions, each vectorised across a whole row or
    column: a pixel takes its neighbour's path if that lowers max - min along it.
    """
    img = lab.astype(np.float32)
    dist = np.where(band[..., None], 0.0, np.inf).astype(np.float32)
    hi = img.copy()
    lo = img.copy()
    dist = np.broadcast_to(dist, img.shape).copy()
    for _ in range(passes):
        for axis, rev in ((0, False), (0, True), (1, False), (1, True)):
            n = img.shape[axis]
            order = range(n - 2, -1, -1) if rev else range(1, n)
            step = 1 if rev else -1
            for i in order:
                j = i + step
                if axis == 0:
                    cur, prev = np.s_[i], np.s_[j]
                else:
                    cur, prev = np.s_[:, i], np.s_[:, j]
                v = img[cur]
                nh = np.maximum(hi[prev], v)
                nl = np.minimum(lo[prev], v)
                nd = nh - nl
                better = nd < dist[cur]
                dist[cur] = np.where(better, nd, dist[cur])
                hi[cur] = np.where(better, nh, hi[cur])
                lo[cur] = np.where(better, nl, lo[cur])
    return dist.sum(-1)


def _grabcut(small: np.ndarray, prior: np.ndarray, inside: np.ndarray | None, iterations: int = 4) -> np.ndarray:
    """GrabCut on the small image seeded from the saliency prior; returns a bool mask."""
    import cv2

    h, w = prior.shape
    thr = _otsu(prior)
    thr *= BOX_THRESHOLD_FACTOR if inside is not None else SEED_THRESHOLD_FACTOR
    seed = _fill_small_holes(prior >= thr, h * w)
    mask = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    mask[seed] = cv2.GC_PR_FGD
    band = _border_band((h, w), inside)
    if inside is not None:
        mask[band] = cv2.GC_BGD
    else:
        mask[band & (prior < thr)] = cv2.GC_BGD
    if not (mask == cv2.GC_PR_FGD).any():
        return np.zeros((h, w), bool)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), mask, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)


def _otsu(x: np.ndarray) -> float:
    hist, edges = np.histogram(x, bins=64, range=(0.0, 1.0))
    p = hist.astype(np.float64) / max(1, hist.sum())
    centres = 0.5 * (edges[1:] + edges[:-1])
    w0 = np.cumsum(p)
    m0 = np.cumsum(p * centres)
    mt = m0[-1]
    between = (mt * w0 - m0) ** 2 / np.maximum(w0 * (1 - w0), 1e-12)
    return float(edges[1:][int(np.argmax(between))])


def _guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Colour guided filter (He et al.): edge-aware smoothing of ``src`` along ``guide``'s edges."""
    import cv2

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT)

    mean_i = box(guide)
    mean_p = box(src)
    cov_ip = box(guide * src[..., None]) - mean_i * mean_p[..., None]
    corr = np.empty(guide.shape[:2] + (3, 3), np.float32)
    for a in range(3):
        for b in range(a, 3):
            v = box(guide[..., a] * guide[..., b]) - mean_i[..., a] * mean_i[..., b]
            corr[..., a, b] = v
            corr[..., b, a] = v
    corr += eps * np.eye(3, dtype=np.float32)
    a_coef = np.linalg.solve(corr, cov_ip[..., None])[..., 0]
    b_coef = mean_p - (a_coef * mean_i).sum(-1)
    return (box(a_coef) * guide).sum(-1) + box(b_coef)


def _instances(fg: np.ndarray, soft: np.ndarray, rgb: np.ndarray, *, fill_holes: bool) -> list[Instance]:
    """Connected parts of ``fg`` above the minimum area, largest first, with a separation score."""
    import cv2

    h, w = fg.shape
    min_area = max(16, int(MIN_AREA_FRACTION * h * w))
    if fill_holes:
        fg = _fill_small_holes(fg, int(MIN_HOLE_FRACTION * h * w))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
    comps = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_area]
    comps.sort(key=lambda i: -stats[i, cv2.CC_STAT_AREA])
    out = []
    for i in comps:
        m = labels == i
        out.append(Instance(mask=m, label="object", score=_score(m, soft)))
    return out


def _fill_small_holes(fg: np.ndarray, max_area: int) -> np.ndarray:
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats((~fg).astype(np.uint8), connectivity=4)
    h, w = fg.shape
    out = fg.copy()
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        touches = x == 0 or y == 0 or x + bw == w or y + bh == h
        if not touches and area < max_area:
            out[labels == i] = True
    return out


def _score(mask: np.ndarray, soft: np.ndarray) -> float:
    """Confidence of the separation: how decided the soft map is inside and just outside the part."""
    import cv2

    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    ring = cv2.dilate(mask.astype(np.uint8), k, iterations=2).astype(bool) & ~mask
    inner = float(soft[mask].mean()) if mask.any() else 0.0
    outer = float(soft[ring].mean()) if ring.any() else 0.0
    return float(np.clip(inner - outer, 0.0, 1.0))
