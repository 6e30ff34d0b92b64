"""Objects and relief of a drawing: regions closed by outline strokes, inflated into rounded reliefs.

An object is a connected outline, its small gaps bridged, filled: lines inside it (internal lines,
X-ray edges, shading) never split it. Internal-weight strokes close outlines too, so an outline
drawn partly lighter (a stroke that reads lighter between two heavier overlaps) stays closed.
What encloses no area relative to the outline's width (text, arrows, dimension lines, hatching)
is not an object, and neither is a large rectangle around the others (a sheet frame).
"""

from __future__ import annotations

import numpy as np

from .drawing_lines import ANNOTATION, INTERNAL, OUTLINE, LineAnalysis

GAP_WIDTHS = 5.0  # gaps up to this many outline widths are closed
INK_GAP_WIDTHS = 12.0  # ... and this many where other strokes fill the gap
MIN_SIDE_WIDTHS = 8.0  # an object is at least this many outline widths across
HOLE_OUTLINE = 0.9  # paper inside an object ringed by this share of outline strokes is a hole ...
HOLE_ATTACHED = 0.5  # ... when this share of them joins the outer outline ...
HOLE_OUTER = 0.05  # ... and at most this share is the outer outline itself (where a tube's two lines touch)
HOLE_RADIUS = 1.0  # ... and it is at least this many outline widths from its ring all along its middle
ISLAND_WIDTHS = 3.0  # a stroke of at least this many outline widths in pixels inside a region makes it a face
FRAME_FILL = 0.9  # a frame fills its bounding box this much ...
FRAME_SPAN = 0.6  # ... and spans this much of the sheet both ways
DEPTH_OF_SIZE = 1.0  # a drawn object is this deep, front to back, per unit of its drawn size (mean box side) ...
DEPTH_RADII = 6.0  # ... and at most this many inscribed radii deep (a thin thing stays round, not a fin)
CREASE_DEPTH = 0.12  # internal lines fold the relief in by this fraction of its height
SOLVE_SIDE = 48  # long side of the grid the membrane is solved on


def _endpoints(skeleton: np.ndarray) -> np.ndarray:
    import cv2

    sk = skeleton.astype(np.uint8)
    neighbours = cv2.filter2D(sk, -1, np.ones((3, 3), np.float32), borderType=cv2.BORDER_CONSTANT) - sk
    return np.argwhere((sk > 0) & (neighbours == 1))


def _bridge_gaps(outline: np.ndarray, lines: np.ndarray, skeleton: np.ndarray, width: float) -> np.ndarray:
    """``outline`` with each stroke end joined to the nearest other stroke end: across paper up to
    GAP_WIDTHS outline widths, along other ink (an outline stretch where hatching or a crossing
    line made it read lighter) up to INK_GAP_WIDTHS."""
    import cv2
    from scipy.spatial import cKDTree

    ends = _endpoints(skeleton & outline)
    out = outline.astype(np.uint8)
    if len(ends) < 2:
        return outline
    w = max(width, 1.0)
    pairs = np.array(sorted(cKDTree(ends).query_pairs(INK_GAP_WIDTHS * w)), np.int64).reshape(-1, 2)
    if not len(pairs):
        return outline
    p0, p1 = ends[pairs[:, 0]].astype(np.float64), ends[pairs[:, 1]].astype(np.float64)
    # every pair's straight line, sampled once per pixel step (padded with its last point)
    n = (np.abs(p1 - p0).max(axis=1) + 1).astype(np.int64)
    t = np.minimum(np.arange(int(n.max()))[None, :] / np.maximum(n - 1, 1)[:, None], 1.0)
    ys = np.rint(p0[:, :1] + (p1[:, :1] - p0[:, :1]) * t).astype(np.int64)
    xs = np.rint(p0[:, 1:] + (p1[:, 1:] - p0[:, 1:]) * t).astype(np.int64)
    valid = np.arange(t.shape[1])[None, :] < n[:, None]
    on_ink = (lines[ys, xs] & valid).sum(axis=1) / n
    # a short bridge may cross paper, a long one must run along other ink; one along the outline itself
    # (two stroke ends side by side, where a stroke resumes beside where the last one stopped) is kept
    keep = (n <= max(3.0, GAP_WIDTHS * w)) | (on_ink >= 0.8)
    thickness = max(1, round(width))
    for (y0, x0), (y1, x1) in zip(p0[keep].astype(int), p1[keep].astype(int)):
        cv2.line(out, (int(x0), int(y0)), (int(x1), int(y1)), (1,), thickness)
    return out.astype(bool)


def _fill_holes(part: np.ndarray) -> np.ndarray:
    """``part`` with every region it encloses filled (the paper reachable from outside stays out)."""
    import cv2

    outside = np.pad(~part, 1, constant_values=True).astype(np.uint8)
    cv2.floodFill(outside, None, (0, 0), (2,))
    return outside[1:-1, 1:-1] != 2


def _see_through(filled: np.ndarray, ink: np.ndarray, classes: np.ndarray, width: float,
                 min_side: float) -> np.ndarray:
    """Paper inside an object ringed by outline strokes alone, none of them the object's own outer
    outline, that run on into that outer outline: a hole seen through the object (between a chair's
    legs or a tube frame's bars, inside a handle). Faces are ringed by internal lines at least in
    part, by the outer outline, or by a loop of outline of their own, or hold strokes of their own
    (a drawer's handle, a cushion's folds): nothing is drawn in the empty space behind an object."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats((filled & ~ink).astype(np.uint8), connectivity=4)
    big = stats[:, cv2.CC_STAT_AREA] >= (min_side / 2) ** 2
    big[0] = False
    if not big.any():
        return np.zeros(filled.shape, bool)
    # the ink ringing each region takes that region's label (the larger one between two regions)
    ring = cv2.dilate(labels.astype(np.float32), np.ones((5, 5), np.uint8)).astype(np.int64)
    on = ink & (ring > 0)
    total = np.bincount(ring[on], minlength=n)
    heavy = np.bincount(ring[on], weights=(classes[on] == OUTLINE), minlength=n)
    hole = big & (total > 0) & (heavy >= HOLE_OUTLINE * np.maximum(total, 1))
    if not hole.any():
        return np.zeros(filled.shape, bool)
    rim = _outer_stroke(filled, ink, width)
    hole &= np.bincount(ring[on & rim], minlength=n) <= HOLE_OUTER * total
    # a hole is seen between parts whose outlines run on into the object's outer outline; a loop
    # of outline drawn apart from it (a screen, a drawer, a window) is a face on the object
    n_strokes, strokes, extent, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    joined = np.isin(strokes, np.unique(strokes[rim]))
    hole &= np.bincount(ring[on], weights=joined[on], minlength=n) >= HOLE_ATTACHED * np.maximum(total, 1)
    if hole.any():  # a strip thinner than the strokes (between a rim's two lines) is a face seen edge on
        from scipy import ndimage

        free = cv2.distanceTransform((labels > 0).astype(np.uint8), cv2.DIST_L2, 3)
        candidates = np.flatnonzero(hole)
        hole[candidates] = np.asarray(ndimage.maximum(free, labels, candidates)) >= HOLE_RADIUS * width
    if hole.any():
        hole[_with_islands(np.where(big[labels], labels, 0), n, strokes, extent, filled, width)] = False
    return hole[labels]


def _outer_stroke(filled: np.ndarray, ink: np.ndarray, width: float) -> np.ndarray:
    """The ink of the object's outer outline: what the outside paper reaches across ink alone within
    a stroke's width, so a line beside the outline across a thin strip of paper (a tube's inner
    edge, a slat's) is not part of it."""
    import cv2

    outside = ~np.pad(filled, 1)
    seed = cv2.dilate(outside.astype(np.uint8), np.ones((3, 3), np.uint8))[1:-1, 1:-1].astype(bool) & ink
    inked = ink.astype(np.uint8)
    grown = seed.astype(np.uint8)
    for _ in range(int(np.ceil(width)) + 1):  # a geodesic dilation: one pixel a step, through ink only
        grown = cv2.bitwise_and(cv2.dilate(grown, np.ones((3, 3), np.uint8)), inked)
    return grown.astype(bool)


def _with_islands(labels: np.ndarray, n: int, strokes: np.ndarray, extent: np.ndarray, filled: np.ndarray,
                  width: float) -> np.ndarray:
    """Which regions (labels 1..n-1) hold a stroke of their own: ink bordering that region alone (a
    handle, a fold, a logo), not a speck.
    ``strokes`` labels the ink, ``extent`` is OpenCV's statistics of those labels."""
    import cv2
    from scipy import ndimage

    paper = labels > 0
    mark = np.where(paper, labels, np.where(filled, 0, -1)).astype(np.float32)  # ink 0, outside -1
    kernel = np.ones((3, 3), np.uint8)
    near_max = cv2.dilate(np.where(paper, mark, -1.0).astype(np.float32), kernel)
    near_min = cv2.erode(np.where(paper | ~filled, mark, float(n)).astype(np.float32), kernel)
    index = np.arange(1, len(extent))
    if not len(index):
        return np.zeros(n, bool)
    top = np.asarray(ndimage.maximum(near_max, strokes, index))
    low = np.asarray(ndimage.minimum(near_min, strokes, index))
    island = (top == low) & (top >= 1) & (extent[1:, cv2.CC_STAT_AREA] >= ISLAND_WIDTHS * max(width, 1.0))
    out = np.zeros(n, bool)
    out[top[island].astype(np.int64)] = True
    return out


def _to_centre(filled: np.ndarray, width: float) -> np.ndarray:
    """``filled`` taken in to its outline's centre line: the outer half of the stroke is ink, not
    object. A pixel's distance to the paper is measured from its centre to the edge between them,
    half a pixel less than the distance transform's count."""
    import cv2

    dist = cv2.distanceTransform(np.pad(filled, 1).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return dist[1:-1, 1:-1] - 0.5 > 0.5 * width


def _is_frame(filled: np.ndarray, box: tuple[int, int, int, int], shape: tuple[int, int]) -> bool:
    x, y, w, h = box
    fill = float(filled.sum()) / max(w * h, 1)
    return fill >= FRAME_FILL and w >= FRAME_SPAN * shape[1] and h >= FRAME_SPAN * shape[0]


def find_objects(lines: LineAnalysis) -> list[np.ndarray]:
    """Masks (working resolution) of the drawn objects, largest first, each to its outline's centre."""
    import cv2

    outline = (lines.classes == OUTLINE) | (lines.classes == INTERNAL)
    if not outline.any():
        return []
    width = float(lines.widths.get("outline", 1.0))
    closed = _bridge_gaps(outline, lines.lines, lines.skeleton, width)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(closed.astype(np.uint8), connectivity=8)
    shape = outline.shape
    min_side = MIN_SIDE_WIDTHS * max(width, 1.0)
    found: list[tuple[int, tuple[slice, slice], np.ndarray]] = []  # area, box, mask over the box
    for i in sorted(range(1, n), key=lambda k: -int(stats[k, cv2.CC_STAT_WIDTH] * stats[k, cv2.CC_STAT_HEIGHT])):
        x, y, w, h = (int(v) for v in stats[i, :4])
        if min(w, h) < min_side:
            continue
        part = labels[y:y + h, x:x + w] == i
        filled = _fill_holes(part)
        inside = filled & ~part
        if inside.sum() < (min_side / 2) ** 2:
            continue  # encloses nothing worth a shape (an arrowhead, a letter)
        if _is_frame(filled, (x, y, w, h), shape):
            continue
        box = (slice(y, y + h), slice(x, x + w))
        filled &= ~_see_through(filled, lines.lines[box], lines.classes[box], width, min_side)
        core = _to_centre(filled, width)
        area = int(core.sum())
        if any(_overlap(box, core, b, m) > 0.5 * area for _, b, m in found):
            continue  # drawn inside an object already found (a detail in outline weight)
        found.append((area, box, core))
    masks = []
    for _, box, core in sorted(found, key=lambda f: -f[0]):
        mask = np.zeros(shape, bool)
        mask[box] = core
        masks.append(mask)
    return masks


def _overlap(box_a: tuple[slice, slice], a: np.ndarray, box_b: tuple[slice, slice], b: np.ndarray) -> int:
    """Pixels two masks, each given over its own box, share."""
    y0, y1 = max(box_a[0].start, box_b[0].start), min(box_a[0].stop, box_b[0].stop)
    x0, x1 = max(box_a[1].start, box_b[1].start), min(box_a[1].stop, box_b[1].stop)
    if y0 >= y1 or x0 >= x1:
        return 0
    pa = a[y0 - box_a[0].start:y1 - box_a[0].start, x0 - box_a[1].start:x1 - box_a[1].start]
    pb = b[y0 - box_b[0].start:y1 - box_b[0].start, x0 - box_b[1].start:x1 - box_b[1].start]
    return int(np.count_nonzero(pa & pb))


def annotate(lines: LineAnalysis, masks: list[np.ndarray]) -> np.ndarray:
    """The line-class map: strokes outside every object (text, arrows, frames) become annotation."""
    import cv2

    classes = lines.classes.copy()
    objects = np.zeros(classes.shape, np.uint8)
    for m in masks:
        objects |= m.astype(np.uint8)
    width = max(1, round(float(lines.widths.get("outline", 1.0))))
    near = cv2.dilate(objects, np.ones((2 * width + 1, 2 * width + 1), np.uint8)).astype(bool)
    classes[lines.lines & ~near] = ANNOTATION
    return classes


def _box(mask: np.ndarray, margin: int = 0) -> tuple[slice, slice]:
    """Slices of ``mask``'s bounding box grown by ``margin`` pixels (clipped to the image)."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (slice(max(0, ys[0] - margin), min(h, ys[-1] + 1 + margin)),
            slice(max(0, xs[0] - margin), min(w, xs[-1] + 1 + margin)))


def _membrane(crop: np.ndarray) -> np.ndarray:
    """Height of a membrane over the mask ``crop`` under uniform pressure, square-rooted: a disk of
    radius R becomes a hemisphere of height R (the inflation of sketch-based modelling), 0 at the
    outline. The membrane is solved on a coarse grid; it rises linearly from the outline, so it
    interpolates well, and the square root is taken at full resolution, where the rim needs it."""
    import cv2
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import spsolve

    f = min(1.0, SOLVE_SIDE / max(crop.shape))
    size = (max(2, round(crop.shape[1] * f)), max(2, round(crop.shape[0] * f)))
    small = np.pad(cv2.resize(crop.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5, 1)
    index = np.full(small.shape, -1, np.int64)
    cells = np.argwhere(small)
    index[small] = np.arange(len(cells))
    rows, cols = [np.arange(len(cells))], [np.arange(len(cells))]
    vals = [np.full(len(cells), 4.0)]
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        nb = index[cells[:, 0] + dy, cells[:, 1] + dx]
        ok = nb >= 0
        rows.append(np.nonzero(ok)[0])
        cols.append(nb[ok])
        vals.append(np.full(int(ok.sum()), -1.0))
    a = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols)))).tocsc()
    u = np.zeros(small.shape, np.float32)
    if len(cells):
        u[small] = spsolve(a, np.ones(len(cells)), permc_spec="MMD_AT_PLUS_A")
    # back to the crop's pixels, the zero border included, edge to edge
    (ch, cw), (sw, sh) = crop.shape, size
    my, mx = round(ch / sh), round(cw / sw)
    full = cv2.resize(u, (cw + 2 * mx, ch + 2 * my), interpolation=cv2.INTER_LINEAR)[my:my + ch, mx:mx + cw]
    return np.where(crop, 2.0 * np.sqrt(np.clip(full, 0.0, None)) / f, 0.0).astype(np.float32)


def object_depth(size: tuple[int, int], radius: float) -> float:
    """How deep (pixels, front to back) an object drawn over a box of ``size`` (height, width) whose
    silhouette's inscribed radius is ``radius`` is: as deep as its mean side (industrial-design
    drawings show objects turned to the viewer, whose depth along the view is about their drawn
    size), but no deeper than ``DEPTH_RADII`` inscribed radii."""
    return min(DEPTH_OF_SIZE * 0.5 * (size[0] + size[1]), DEPTH_RADII * radius)


def relief(mask: np.ndarray, creases: np.ndarray) -> tuple[tuple[slice, slice], np.ndarray]:
    """Rounded height field (working pixels) of one object over its bounding box (the slices),
    folded in along ``creases``: a V-shaped groove whose kink lies on the line, so the surface may
    fold there and stays smooth elsewhere.

    Its shape is the inflated silhouette (``_membrane``); its height is half the depth the drawing
    suggests (``object_depth``), so the closed object (the front and its mirrored back) comes out
    about as deep as a drawn object of that size is, whatever else is on the sheet."""
    import cv2

    box = _box(mask)
    crop = mask[box]
    h = _membrane(crop)
    # the build measures the relief from the outline's pixels: they are the base, the rest rises from it
    edge = crop & ~cv2.erode(np.pad(crop, 1).astype(np.uint8), np.ones((3, 3), np.uint8))[1:-1, 1:-1].astype(bool)
    rise = np.maximum(h - np.float32(np.median(h[edge])), np.float32(0.0))
    radius = float(cv2.distanceTransform(np.pad(crop.astype(np.uint8), 1), cv2.DIST_L2, 5).max())
    top = float(rise[crop].max())
    scale = 0.5 * object_depth((crop.shape[0], crop.shape[1]), radius) / top if top > 0.0 else 0.0
    h = np.where(crop, rise * np.float32(scale), np.float32(0.0)).astype(np.float32)
    lines = creases[box] & crop
    if not lines.any():
        return box, h
    reach = max(2.0, 0.12 * radius)
    d = cv2.distanceTransform((~lines).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    groove = np.clip(1.0 - d / reach, 0.0, 1.0)
    return box, (h * (1.0 - CREASE_DEPTH * groove)).astype(np.float32)
