"""Offline foreground extraction for the ``classic`` engine.

No learned model: the object is found from priors that hold for most product
and object photos, then cut out with colour models.

1. On a small copy of the image (or of the region around the box hint) a
   saliency prior combines how unlike the border colours a pixel is (the
   border is mostly background), its minimum-barrier distance to the border
   (how strong an edge separates it from the border) and a mild centre bias.
2. The prior, thresholded and hole-filled, seeds GrabCut (colour GMMs plus a
   contrast-sensitive graph cut) on the small image instead of a rectangle.
   On a plain backdrop (its border a smooth gradient to within a few Lab
   units) and without a box hint, the seed also takes in what is joined to it
   and clearly brighter than that backdrop: a lit face as pale as the backdrop
   scores far below the object's dark faces on the prior, and GrabCut, told it
   was background, would leave it out. A shadow only darkens, so none is taken
   in this way. On a busy background (wood, foliage) the prior alone seeds:
   there a larger seed tips GrabCut's colour models (the demo's espresso cup
   kept its white rim and lost its brown body and saucer).
3. The cut is brought back to working resolution by a colour guided filter,
   which snaps the upsampled outline onto the image's edges.
4. Connected parts above a minimum area become instances; each one's score is
   how much more salient it is than a ring of pixels around it, and parts far
   less salient than the best one are dropped.
"""

from __future__ import annotations

import numpy as np

from . import Instance

WORK_PIXELS = 360 * 270  # pixel budget of the small image the prior and GrabCut run on
MIN_AREA_FRACTION = 0.002  # parts smaller than this share of the image are specks
MIN_HOLE_FRACTION = 0.002  # enclosed holes smaller than this share of the image are filled
BORDER_FRACTION = 0.03  # width of the border band that samples background colours
CENTRE_SIGMA = 0.25  # centre bias: Gaussian sigma in image widths/heights (no box only)
BOX_SEED_FACTOR = 0.5  # inside a box hint the seed threshold is relaxed by this factor
COLOUR_NOISE = 4.0  # Lab variance added to every border colour cluster
GRABCUT_ITERATIONS = 3  # at most
SETTLED_FRACTION = 0.005  # GrabCut stops early once fewer pixels than this share change
BARRIER_PASSES = 2  # raster-scan rounds of the barrier distance
MIN_RELATIVE_SCORE = 0.35  # parts scoring below this fraction of the best part are dropped
LIT_DISTANCE = 4.0  # Mahalanobis distance from the backdrop model of a colour that is clearly not the backdrop
PLAIN_BACKDROP = 8.0  # RMS lightness residual (OpenCV Lab, 0-255) of a border the quadratic backdrop explains


def segment(
    rgb: np.ndarray, *, alpha: np.ndarray | None, box: tuple[int, int, int, int] | None, objects: str
) -> list[Instance]:
    """Find the foreground objects of ``rgb`` (H, W, 3 uint8).

    ``alpha`` (real transparency, 0..1) is authoritative when given: its opaque
    parts (alpha >= 0.5) are the objects. ``box`` (x0, y0, x1, y1) says the
    object lies inside it. Returns connected parts above a minimum area,
    largest first; ``objects == "largest"`` keeps only the first.
    """
    h, w = rgb.shape[:2]
    if alpha is not None:
        soft = np.clip(alpha.astype(np.float32), 0.0, 1.0)
        fg = soft >= 0.5
        if box is not None:
            fg &= _box_mask((h, w), box)
        instances = _instances(fg, soft, fill_holes=False, min_relative_score=0.0)
    else:
        soft, prior = _foreground_probability(rgb, box)
        instances = _instances(soft >= 0.5, prior, fill_holes=True, min_relative_score=MIN_RELATIVE_SCORE)
    if objects == "largest":
        instances = instances[:1]
    return instances


def _box_mask(shape: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    h, w = shape
    x0, y0, x1, y1 = (int(v) for v in box)
    m = np.zeros((h, w), bool)
    m[max(0, y0):max(0, min(h, y1)), max(0, x0):max(0, min(w, x1))] = True
    return m


def _foreground_probability(
    rgb: np.ndarray, box: tuple[int, int, int, int] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Soft foreground map and saliency prior, both (H, W) float32 in 0..1 at working resolution."""
    import cv2

    h, w = rgb.shape[:2]
    if box is not None:
        x0, y0, x1, y1 = (int(v) for v in box)
        x0, x1 = max(0, min(x0, w - 1)), max(1, min(x1, w))
        y0, y1 = max(0, min(y0, h - 1)), max(1, min(y1, h))
        # a margin around the box supplies background colours just outside it
        mx, my = max(4, (x1 - x0) // 10), max(4, (y1 - y0) // 10)
        rx0, ry0, rx1, ry1 = max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my)
    else:
        x0, y0, x1, y1 = 0, 0, w, h
        rx0, ry0, rx1, ry1 = 0, 0, w, h
    crop = np.ascontiguousarray(rgb[ry0:ry1, rx0:rx1])
    ch, cw = crop.shape[:2]
    scale = min(1.0, float(np.sqrt(WORK_PIXELS / (ch * cw))))
    sw, sh = max(8, round(cw * scale)), max(8, round(ch * scale))
    small = cv2.resize(crop, (sw, sh), interpolation=cv2.INTER_AREA)
    sx, sy = sw / cw, sh / ch

    inside = None
    if box is not None:
        inside = np.zeros((sh, sw), bool)
        iy0, iy1 = int((y0 - ry0) * sy), int(np.ceil((y1 - ry0) * sy))
        ix0, ix1 = int((x0 - rx0) * sx), int(np.ceil((x1 - rx0) * sx))
        inside[iy0:iy1, ix0:ix1] = True
        if (~inside).sum() < 64:
            inside = None  # the box covers (almost) the whole image: it says nothing

    lab = cv2.cvtColor(cv2.GaussianBlur(small, (0, 0), 0.8), cv2.COLOR_RGB2LAB).astype(np.float32)
    prior = _saliency(lab, inside)
    cut = _grabcut(small, prior, inside, None if inside is not None else _lit_beyond_backdrop(lab))

    up = cv2.resize(cut.astype(np.float32), (cw, ch), interpolation=cv2.INTER_LINEAR)
    radius = max(2, int(round(1.5 / scale)))
    refined = _guided_filter(crop.astype(np.float32) / 255.0, up, radius, 1e-3)
    soft = np.zeros((h, w), np.float32)
    soft[ry0:ry1, rx0:rx1] = np.clip(refined, 0.0, 1.0)
    prior_full = np.zeros((h, w), np.float32)
    prior_full[ry0:ry1, rx0:rx1] = cv2.resize(prior, (cw, ch), interpolation=cv2.INTER_LINEAR)
    if box is not None:
        inside_full = _box_mask((h, w), box)
        soft *= inside_full
        prior_full *= inside_full
    return soft, prior_full


def _border_band(shape: tuple[int, int], inside: np.ndarray | None) -> np.ndarray:
    """Pixels taken as background samples: outside the box hint, else a band along the image border."""
    if inside is not None:
        return ~inside
    h, w = shape
    b = max(1, min(int(round(BORDER_FRACTION * min(h, w))), min(h, w) // 4))
    band = np.ones((h, w), bool)
    band[b:-b, b:-b] = False
    return band


def _saliency(lab: np.ndarray, inside: np.ndarray | None) -> np.ndarray:
    """Foreground prior in 0..1: geometric mean of border colour contrast and barrier distance."""
    import cv2

    h, w = lab.shape[:2]
    band = _border_band((h, w), inside)
    contrast = _normalise(_border_contrast(lab, band))
    barrier = _normalise(_barrier_distance(lab, band, BARRIER_PASSES))
    sal = np.sqrt(contrast * barrier)
    if inside is None:
        yy = (np.arange(h, dtype=np.float32) + 0.5) / h - 0.5
        xx = (np.arange(w, dtype=np.float32) + 0.5) / w - 0.5
        sal = sal * np.exp(-(yy[:, None] ** 2 + xx[None, :] ** 2) / (2 * CENTRE_SIGMA**2))
    sal = cv2.GaussianBlur(sal.astype(np.float32), (0, 0), 1.0)
    if inside is not None:
        sal[~inside] = 0.0
    return _normalise(sal)


def _normalise(x: np.ndarray) -> np.ndarray:
    """Robust rescale to 0..1 (1st to 99.5th percentile)."""
    lo, hi = np.percentile(x, 1), np.percentile(x, 99.5)
    return np.clip((x - lo) / max(hi - lo, 1e-6), 0.0, 1.0).astype(np.float32)


def _lit_beyond_backdrop(lab: np.ndarray) -> np.ndarray | None:
    """Pixels brighter than the backdrop and clearly unlike it; None where the border is no plain backdrop.
    The backdrop is a quadratic in (x, y) per Lab channel fitted to the border band (a studio backdrop's
    gradient and vignette), plain where it leaves an RMS lightness residual under ``PLAIN_BACKDROP``; a pixel
    is unlike it at ``LIT_DISTANCE`` under the band's residual covariance widened by ``COLOUR_NOISE``."""
    h, w = lab.shape[:2]
    band = _border_band((h, w), None)
    x = (np.arange(w, dtype=np.float32) + 0.5) / w - 0.5
    y = (np.arange(h, dtype=np.float32) + 0.5) / h - 0.5
    terms = (np.ones((h, w), np.float32), x[None, :], y[:, None], x[None, :] ** 2, y[:, None] * x[None, :],
             y[:, None] ** 2)
    basis = np.stack([np.broadcast_to(t, (h, w))[band] for t in terms], 1).astype(np.float64)
    coef = np.linalg.lstsq(basis, lab[band].astype(np.float64), rcond=None)[0].astype(np.float32)
    resid = lab - sum(t[..., None] * c for t, c in zip(terms, coef))
    border = resid[band]
    if float(np.sqrt(np.mean(border[:, 0] ** 2))) > PLAIN_BACKDROP:
        return None
    cov = np.cov(border, rowvar=False) + COLOUR_NOISE * np.eye(3)
    d2 = (resid @ np.linalg.inv(cov).astype(np.float32) * resid).sum(-1)
    return (resid[..., 0] > 0) & (d2 >= LIT_DISTANCE**2)


def _border_contrast(lab: np.ndarray, band: np.ndarray) -> np.ndarray:
    """Mahalanobis distance of each pixel's colour to the nearest well-populated border colour cluster.

    Clusters come from splitting the band's colours; per-cluster covariances make
    textured backgrounds (grass, brick) count as background. Clusters holding
    under 3 % of the band are ignored: they are usually the object touching
    the border.
    """
    samples = lab[band].reshape(-1, 3).astype(np.float64)
    flat = lab.reshape(-1, 3)
    best = np.full(flat.shape[0], np.inf, np.float32)
    for pts in _principal_split(samples, 8):
        if pts.shape[0] < max(4, 0.03 * samples.shape[0]):
            continue
        cov = np.cov(pts, rowvar=False) + COLOUR_NOISE * np.eye(3)
        diff = flat - pts.mean(0).astype(np.float32)
        d2 = ((diff @ np.linalg.inv(cov).astype(np.float32)) * diff).sum(1)
        np.minimum(best, d2, out=best)
    return np.sqrt(best).reshape(lab.shape[:2])


def _barrier_distance(lab: np.ndarray, band: np.ndarray, passes: int) -> np.ndarray:
    """Approximate minimum-barrier distance from the border band, summed over the Lab channels.

    The barrier of a path is max - min of the colour along it; a pixel far (in
    this sense) from every border pixel is enclosed by an edge. Raster scans in
    the four directions, each vectorised across a whole row (columns are
    scanned as rows of the transposed arrays): a pixel takes its neighbour's
    path when that lowers the barrier.
    """
    img = np.ascontiguousarray(lab, dtype=np.float32)
    dist = np.where(band[..., None], np.float32(0.0), np.float32(np.inf)) * np.ones(3, np.float32)
    state = [img, dist, img.copy(), img.copy()]  # colour, barrier, path max, path min
    for _ in range(passes):
        for transposed in (False, True):
            arrays = [np.ascontiguousarray(a.transpose(1, 0, 2)) for a in state] if transposed else state
            _scan_rows(*arrays)
            if transposed:
                state = [np.ascontiguousarray(a.transpose(1, 0, 2)) for a in arrays]
    return state[1].sum(-1)


def _scan_rows(img: np.ndarray, dist: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> None:
    """One downward and one upward sweep of the barrier update, in place."""
    n = img.shape[0]
    for order, step in ((range(1, n), -1), (range(n - 2, -1, -1), 1)):
        for i in order:
            v = img[i]
            nh = np.maximum(hi[i + step], v)
            nl = np.minimum(lo[i + step], v)
            nd = nh - nl
            better = nd < dist[i]
            np.copyto(dist[i], nd, where=better)
            np.copyto(hi[i], nh, where=better)
            np.copyto(lo[i], nl, where=better)


def _grabcut(small: np.ndarray, prior: np.ndarray, inside: np.ndarray | None, lit: np.ndarray | None) -> np.ndarray:
    """GrabCut on the small image seeded from the saliency prior and the ``lit`` pixels joined to it;
    returns a bool mask."""
    import cv2

    h, w = prior.shape
    thr = _otsu(prior) * (BOX_SEED_FACTOR if inside is not None else 1.0)
    seed = prior >= thr
    if lit is not None:
        seed = parts_touching(seed | lit, seed, 0, strict=True)
    # the object's interior is often less salient than its rim (spots, print): seed it too
    seed = _fill_small_holes(seed, h * w)
    mask = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    mask[seed] = cv2.GC_PR_FGD
    band = _border_band((h, w), inside)
    mask[band if inside is not None else band & ~seed] = cv2.GC_BGD
    if seed.all() or not (mask == cv2.GC_PR_FGD).any():
        return seed
    return _run_grabcut(small, mask, GRABCUT_ITERATIONS)


def parts_touching(mask: np.ndarray, keep: np.ndarray | None, min_area: int, strict: bool = False) -> np.ndarray:
    """Connected parts of ``mask`` above ``min_area`` pixels; with ``keep``, only those that
    touch it (a seed, the clicks), or every part when none does and not ``strict``."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    good = np.zeros(n, bool)
    good[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    if keep is not None and (keep.any() or strict):
        touched = np.zeros(n, bool)
        touched[np.unique(labels[keep & mask])] = True
        touched[0] = False
        if touched.any() or strict:
            good &= touched
    return good[labels]


def _run_grabcut(rgb: np.ndarray, mask: np.ndarray, iterations: int) -> np.ndarray:
    """OpenCV GrabCut from a GC_* label mask, stopping early once the cut has settled.

    The colour models start from a deterministic split of the labelled colours
    instead of OpenCV's randomly seeded k-means, whose luck can decide whether
    a whole part of the object is kept.
    """
    import cv2

    h, w = mask.shape
    mask = mask.copy()
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    fg = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    pixels = bgr.reshape(-1, 3).astype(np.float64)
    fgd, bgd = _gmm_model(pixels[fg.ravel()]), _gmm_model(pixels[~fg.ravel()])
    for _ in range(iterations):
        cv2.grabCut(bgr, mask, (0, 0, 0, 0), bgd, fgd, 1, cv2.GC_EVAL)  # (the rectangle is for GC_INIT_WITH_RECT)
        new = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
        changed = int(np.count_nonzero(new != fg))
        fg = new
        if changed <= SETTLED_FRACTION * h * w:
            break
    return fg


def _principal_split(pixels: np.ndarray, clusters: int) -> list[np.ndarray]:
    """Deterministic colour clustering (Orchard-Bouman): keep splitting the cluster with the
    largest colour variance at its mean, across its principal axis."""
    if pixels.shape[0] > 20000:
        pixels = pixels[:: pixels.shape[0] // 20000 + 1]
    out = [pixels]
    spread = [_principal_axis(pixels)]
    while len(out) < clusters:
        j = int(np.argmax([v for v, _ in spread]))
        if spread[j][0] <= 0:
            break
        c = out.pop(j)
        axis = spread.pop(j)[1]
        side = (c - c.mean(0)) @ axis > 0
        for part in (c[side], c[~side]):
            out.append(part)
            spread.append(_principal_axis(part))
    return out


def _principal_axis(pixels: np.ndarray) -> tuple[float, np.ndarray]:
    if pixels.shape[0] < 8:
        return -1.0, np.zeros(3)
    values, vectors = np.linalg.eigh(np.cov(pixels, rowvar=False))
    return float(values[-1]), vectors[:, -1]


def _gmm_model(pixels: np.ndarray, components: int = 5) -> np.ndarray:
    """A GMM in OpenCV GrabCut's layout (1 x 65: weights, means, covariances) from principal-axis splitting."""
    clusters = _principal_split(pixels, components)
    weights = np.zeros(components)
    means = np.zeros((components, 3))
    covs = np.tile(np.eye(3), (components, 1, 1))
    total = max(1, sum(c.shape[0] for c in clusters))
    for k, c in enumerate(clusters):
        if c.shape[0] == 0:
            continue
        weights[k] = c.shape[0] / total
        means[k] = c.mean(0)
        if c.shape[0] > 3:
            covs[k] = np.cov(c, rowvar=False) + 0.01 * np.eye(3)
    return np.concatenate([weights, means.ravel(), covs.ravel()])[None].astype(np.float64)


def _otsu(x: np.ndarray) -> float:
    """Otsu threshold of values in 0..1."""
    hist, edges = np.histogram(x, bins=64, range=(0.0, 1.0))
    p = hist.astype(np.float64) / max(1, hist.sum())
    centres = 0.5 * (edges[1:] + edges[:-1])
    w0 = np.cumsum(p)
    m0 = np.cumsum(p * centres)
    between = (m0[-1] * w0 - m0) ** 2 / np.maximum(w0 * (1 - w0), 1e-12)
    return float(edges[1:][int(np.argmax(between))])


def _guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Colour guided filter (He et al.): smooths ``src`` while following the edges of ``guide``."""
    import cv2

    size = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, size, borderType=cv2.BORDER_REFLECT)

    mean_i = box(guide)
    mean_p = box(src)
    cov_ip = box(guide * src[..., None]) - mean_i * mean_p[..., None]
    v = {}
    for a in range(3):
        for b in range(a, 3):
            v[a, b] = box(guide[..., a] * guide[..., b]) - mean_i[..., a] * mean_i[..., b] + (eps if a == b else 0.0)
    # closed-form inverse of the symmetric 3x3 covariance at every pixel
    i00 = v[1, 1] * v[2, 2] - v[1, 2] ** 2
    i01 = v[0, 2] * v[1, 2] - v[0, 1] * v[2, 2]
    i02 = v[0, 1] * v[1, 2] - v[0, 2] * v[1, 1]
    i11 = v[0, 0] * v[2, 2] - v[0, 2] ** 2
    i12 = v[0, 2] * v[0, 1] - v[0, 0] * v[1, 2]
    i22 = v[0, 0] * v[1, 1] - v[0, 1] ** 2
    det = v[0, 0] * i00 + v[0, 1] * i01 + v[0, 2] * i02
    c0, c1, c2 = cov_ip[..., 0], cov_ip[..., 1], cov_ip[..., 2]
    a_coef = np.stack(
        [i00 * c0 + i01 * c1 + i02 * c2, i01 * c0 + i11 * c1 + i12 * c2, i02 * c0 + i12 * c1 + i22 * c2], -1
    ) / det[..., None]
    b_coef = mean_p - (a_coef * mean_i).sum(-1)
    return (box(a_coef) * guide).sum(-1) + box(b_coef)


def _instances(
    fg: np.ndarray, evidence: np.ndarray, *, fill_holes: bool, min_relative_score: float
) -> list[Instance]:
    """Connected parts of ``fg`` above the minimum area, largest first, scored against ``evidence``."""
    import cv2

    h, w = fg.shape
    if fill_holes:
        fg = _fill_small_holes(fg, int(MIN_HOLE_FRACTION * h * w))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
    min_area = max(16, int(MIN_AREA_FRACTION * h * w))
    parts = []
    for i in range(1, n):
        if stats[i, cv2.CC_STAT_AREA] < min_area:
            continue
        x, y, bw, bh = stats[i, :4]
        pad = max(3, int(0.05 * max(bw, bh)))
        window = np.s_[max(0, y - pad):y + bh + pad, max(0, x - pad):x + bw + pad]
        m = labels[window] == i
        parts.append((i, int(stats[i, cv2.CC_STAT_AREA]), _score(m, evidence[window], pad)))
    if not parts:
        return []
    best = max(s for _, _, s in parts)
    parts = [p for p in parts if p[2] >= min_relative_score * best]
    parts.sort(key=lambda p: -p[1])
    return [Instance(mask=labels == i, label="object", score=round(s, 4)) for i, _, s in parts]


def _fill_small_holes(fg: np.ndarray, max_area: int) -> np.ndarray:
    """Fill background regions enclosed by ``fg`` that are smaller than ``max_area`` pixels."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats((~fg).astype(np.uint8), connectivity=4)
    h, w = fg.shape
    x, y, bw, bh, area = (stats[:, j] for j in range(5))
    enclosed = (x > 0) & (y > 0) & (x + bw < w) & (y + bh < h) & (area < max_area)
    enclosed[0] = False
    lut = np.zeros(n, bool)
    lut[1:] = enclosed[1:]
    return fg | lut[labels]


def _score(mask: np.ndarray, evidence: np.ndarray, ring: int) -> float:
    """Confidence of the separation: relative drop of evidence from the part to a ring around it.

    With the saliency prior as evidence a part whose surroundings look like
    plain background scores near 1, one barely distinct from them near 0.
    """
    import cv2

    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ring + 1, 2 * ring + 1))
    around = cv2.dilate(mask.astype(np.uint8), k).astype(bool) & ~mask
    inner = float(evidence[mask].mean())
    outer = float(evidence[around].mean()) if around.any() else 0.0
    return float(np.clip((inner - outer) / max(inner, 1e-6), 0.0, 1.0))
