"""Sub-pixel outline of a mask: a lightly smoothed inside/outside field whose 0.5
level is the silhouette, and that level traced as closed polylines.

The field is a Gaussian blur of the mask (binary masks ``SIGMA_BINARY``, soft coverage
masks ``SIGMA_SOFT``), so the silhouette is a smooth curve instead of a pixel staircase.
Near parts thinner than three pixels (and gaps that narrow) most of the blur is
blended out again, so one-pixel slivers keep about their width instead of vanishing.
Finally every mask pixel centre is kept on its side of 0.5, which preserves the
mask's topology: single pixels, one-pixel holes and diagonal touches survive.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .grid import grid_axis, grid_bilinear

SIGMA_BINARY = 1.5
SIGMA_SOFT = 0.7
THIN_UNBLUR = 0.8
PIXEL_MARGIN = 0.02
FIELD_TILE = 64  # pixels: large crops are smoothed tile by tile where the coverage changes
FIELD_HALO = 8  # pixels read around a tile: more than the 7 the smoothing reaches (a multiple of 8)
# smaller crops take one pass (~12 ms at 1 MP); from there the tiles near a change of coverage
# cost 0.5-0.65x the pass for a filled shape (a 1.6 MP ellipse crop: 12 ms against 24) and
# about the same for a crop full of edges (1.1 MP of blobs: 31 ms against 30)
FIELD_TILED_PIXELS = 1_000_000


def smoothed_field(coverage: np.ndarray, binary: bool, border: int = 0) -> np.ndarray:
    """Inside/outside field of a mask crop (float32, > 0.5 inside), with ``border`` rows and
    columns of zeros around it; see the module docstring.

    Every step is local (the field at a pixel depends on the mask within 7 pixels), so a
    large crop is computed only in the tiles near a change of coverage; everywhere else
    the field is what a uniform mask gives. A thin object across a large photo (a pole
    across 12 MP: a 3620x2620 crop, 2 % of it object) costs a small fraction of the full pass.
    """
    return _field_and_tiles(coverage, binary, border)[0]


def _field_and_tiles(coverage: np.ndarray, binary: bool, border: int,
                     inside: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """``smoothed_field`` and, when it was computed in tiles, the field's value on each
    ``FIELD_TILE`` tile of the crop that is settled (one value on the tile and within a pixel
    around it), NaN on the others. ``inside`` (coverage of at least half) is taken when the
    caller has it."""
    h, w = coverage.shape
    t = FIELD_TILE
    if h * w < FIELD_TILED_PIXELS or h < 3 * t or w < 3 * t:
        return _bordered(_smoothed(coverage, binary), border), None
    hb, wb = h // t, w // t  # whole tiles; the ragged last row and column of pixels are always computed
    if inside is None:
        inside = coverage if coverage.dtype == bool else coverage >= 0.5
    soft = None if coverage.dtype == bool else (coverage > 0) & (coverage < 1)
    settled = _settled_tiles(inside[:hb * t, :wb * t], None if soft is None else soft[:hb * t, :wb * t], t, FIELD_HALO)
    if h % t:  # the ragged pixels lie within the halo of the last whole tiles
        settled[-1] = False
    if w % t:
        settled[:, -1] = False
    if settled.mean() < 0.5:  # most of the crop changes near some pixel: one pass is cheaper
        return _bordered(_smoothed(coverage, binary), border), None
    ones = _smoothed(np.ones((4 * FIELD_HALO, 4 * FIELD_HALO), np.float32), binary)[2 * FIELD_HALO, 2 * FIELD_HALO]
    full = settled & inside[:hb * t:t, :wb * t:t]  # settled inside: the field is `ones` there
    # zeros are never written: the pages of the empty tiles stay untouched
    framed = np.zeros((h + 2 * border, w + 2 * border), dtype=np.float32)
    out = framed[border:border + h, border:border + w]
    todo = np.ones((hb + 1, wb + 1), dtype=bool)  # the extra row/column: the ragged pixels
    todo[:hb, :wb] = ~settled
    windows = []
    for j in range(hb + 1):
        y0, y1 = j * t, min(h, (j + 1) * t)
        if j < hb:
            for a, b in _runs(full[j]):
                out[y0:y1, a * t:(b + 1) * t] = ones
        windows += [(y0, y1, a * t, min(w, (b + 1) * t)) for a, b in _runs(todo[j]) if y0 < y1 and a * t < w]

    def smooth(part: list[tuple[int, int, int, int]]) -> None:
        for y0, y1, x0, x1 in part:
            wy0, wy1 = max(0, y0 - FIELD_HALO), min(h, y1 + FIELD_HALO)
            wx0, wx1 = max(0, x0 - FIELD_HALO), min(w, x1 + FIELD_HALO)
            window = _smoothed(coverage[wy0:wy1, wx0:wx1], binary)
            out[y0:y1, x0:x1] = window[y0 - wy0:y1 - wy0, x0 - wx0:x1 - wx0]

    # the windows are disjoint and OpenCV and numpy release the GIL: half of them on a second core
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="monocle-field") as pool:
        half = pool.submit(smooth, windows[len(windows) // 2:])
        smooth(windows[:len(windows) // 2])
        half.result()
    tiles = np.where(full, ones, np.float32(0.0)).astype(np.float32)
    tiles[~settled] = np.nan
    return framed, tiles


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """First and last index of every run of set entries of a 1D bool array."""
    on = np.flatnonzero(flags)
    if on.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(on) > 1)
    return list(zip(np.r_[on[0], on[breaks + 1]].tolist(), np.r_[on[breaks], on[-1]].tolist()))


def _bordered(field: np.ndarray, border: int) -> np.ndarray:
    return np.pad(field, border) if border else field


def _any_all(flags: np.ndarray, cell: int) -> tuple[np.ndarray, np.ndarray]:
    """Per ``cell`` x ``cell`` block of a bool array (sides multiples of ``cell``, itself a
    multiple of 8): whether any and whether all of its pixels are set. Eight pixels are
    tested at once as the bytes of one 64-bit word."""
    h, w = flags.shape
    words = np.ascontiguousarray(flags).view(np.uint64).reshape(h // cell, cell, w // cell, cell // 8)
    ones = np.uint64(0x0101010101010101)  # a numpy bool is one byte, 0 or 1
    any_set = np.bitwise_or.reduce(np.bitwise_or.reduce(words, axis=3), axis=1) != 0
    all_set = np.bitwise_and.reduce(np.bitwise_and.reduce(words, axis=3), axis=1) == ones
    return any_set, all_set


def _settled_tiles(inside: np.ndarray, soft: np.ndarray | None, tile: int, halo: int) -> np.ndarray:
    """Per ``tile`` x ``tile`` block of a crop (sides multiples of ``tile``, itself a multiple
    of ``halo``): whether the block and the ``halo`` pixels around it hold one value, 0 or 1
    everywhere, so its field is what a uniform mask gives. ``inside`` flags pixels of at least
    half coverage and ``soft`` (None for a binary mask) those strictly between 0 and 1."""
    import cv2

    k = tile // halo
    h, w = inside.shape
    any_in, all_in = _any_all(inside, halo)
    if soft is not None:
        any_soft = _any_all(soft, halo)[0]
        all_in &= ~any_soft
        any_in |= any_soft
    lo: np.ndarray = all_in.view(np.uint8)
    hi: np.ndarray = any_in.view(np.uint8)  # per cell: all ones, and not all zeros
    ring = np.ones((3, 3), np.uint8)  # each cell's neighbours: the halo around a tile's cells
    lo = cv2.erode(lo, ring, borderType=cv2.BORDER_REPLICATE)
    hi = cv2.dilate(hi, ring, borderType=cv2.BORDER_REPLICATE)
    tiles_lo = lo.reshape(h // tile, k, w // tile, k).min(axis=3).min(axis=1)
    tiles_hi = hi.reshape(h // tile, k, w // tile, k).max(axis=3).max(axis=1)
    return tiles_lo == tiles_hi


def _smoothed(m: np.ndarray, binary: bool) -> np.ndarray:
    """``smoothed_field`` of a whole array (bool, or float coverage) in one pass."""
    import cv2

    m = np.ascontiguousarray(m, dtype=np.float32)
    inside = m >= 0.5
    sigma = SIGMA_BINARY if binary else SIGMA_SOFT
    blur = cv2.GaussianBlur(m, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    b8 = inside.astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    opened = cv2.morphologyEx(b8, cv2.MORPH_OPEN, kernel)
    closed = cv2.morphologyEx(b8, cv2.MORPH_CLOSE, kernel)
    thin = ((b8 > opened) | (closed > b8)).astype(np.float32)
    if thin.any():
        near_thin = cv2.dilate(thin, kernel.astype(np.float32))
        weight = np.clip(2.0 * cv2.GaussianBlur(near_thin, (0, 0), 1.0, borderType=cv2.BORDER_REPLICATE), 0.0, 1.0)
        blur = blur + (THIN_UNBLUR * weight) * (m - blur)
    return np.where(inside, np.maximum(blur, 0.5 + PIXEL_MARGIN), np.minimum(blur, 0.5 - PIXEL_MARGIN))


def trace_level(field: np.ndarray, inside: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The 0.5 level of a field with a zero border, by marching squares: (points (N, 2) as
    (row, column), successor (N,)), one point per pixel edge the level crosses, each linked
    to the next point along its closed loop (clockwise on screen around the inside).

    The same points as ``skimage.measure.find_contours(field, 0.5)`` (which links saddles the
    same way: pixels above the level touching only at a corner stay apart), but only the
    crossings are visited: the scan is two vectorised comparisons of the inside flags, so a
    thin object across a large crop costs about its outline, not its box.
    """
    hp, wp = field.shape
    if inside is None:  # given when known: ``field > 0.5`` is a pass over the whole field
        inside = field > 0.5
    kh = np.flatnonzero(inside[:, :-1] != inside[:, 1:])  # edge (r, c)-(r, c + 1): key r * (wp - 1) + c
    kv = np.flatnonzero(inside[:-1] != inside[1:])  # edge (r, c)-(r + 1, c): key r * wp + c
    nh = kh.size
    hr, hc = np.divmod(kh, wp - 1)
    vr, vc = np.divmod(kv, wp)
    flat = field.ravel()
    a = np.concatenate([hr * wp + hc, kv])  # each crossing's first pixel (flat), then its second
    b = np.concatenate([hr * wp + hc + 1, kv + wp])
    fa, fb = flat[a].astype(np.float64), flat[b].astype(np.float64)
    frac = (0.5 - fa) / (fb - fa)
    points = np.empty((a.size, 2))
    points[:nh, 0], points[:nh, 1] = hr, hc + frac[:nh]
    points[nh:, 0], points[nh:, 1] = vr + frac[nh:], vc

    # The cell (between pixel rows r, r + 1 and columns c, c + 1) the loop enters through
    # each crossing, walking clockwise on screen around the inside.
    first_in = inside.ravel()[a]
    cell_r = np.concatenate([np.where(first_in[:nh], hr, hr - 1), vr])
    cell_c = np.concatenate([hc, np.where(first_in[nh:], vc - 1, vc)])
    # Sides: 0 top, 1 right, 2 bottom, 3 left; the entry side of each crossing's cell.
    entry = np.concatenate([np.where(first_in[:nh], 0, 2), np.where(first_in[nh:], 1, 3)]).astype(np.int8)
    corner = cell_r * wp + cell_c
    tl, tr, bl, br = (inside.ravel()[corner + d] for d in (0, 1, wp, wp + 1))
    crosses = np.stack([tl != tr, tr != br, bl != br, tl != bl], axis=1)
    crosses[np.arange(entry.size), entry] = False
    exit_side = np.argmax(crosses, axis=1).astype(np.int8)  # the other crossing side
    saddle = crosses.sum(axis=1) == 3
    if saddle.any():  # pixels above the level stay apart: leave by the side sharing the entry's inside corner
        pair_tl = np.array([3, 2, 1, 0], dtype=np.int8)  # top-left and bottom-right inside: top-left, right-bottom
        pair_tr = np.array([1, 0, 3, 2], dtype=np.int8)  # top-right and bottom-left inside
        e = entry[saddle]
        exit_side[saddle] = np.where(tl[saddle], pair_tl[e], pair_tr[e])
    r = cell_r + (exit_side == 2)
    c = cell_c + (exit_side == 1)
    horizontal = (exit_side == 0) | (exit_side == 2)
    successor = np.empty(a.size, dtype=np.int64)
    successor[horizontal] = np.searchsorted(kh, r[horizontal] * (wp - 1) + c[horizontal])
    successor[~horizontal] = nh + np.searchsorted(kv, r[~horizontal] * wp + c[~horizontal])
    return points, successor


@dataclass
class Outline:
    """A mask's silhouette in image pixel coordinates (x right, y down, pixel centres at +0.5).

    ``field[r, c]`` is the inside/outside value at pixel coordinate ``(ox + c, oy + r)``;
    the field has a zero border so every outline is closed, including along the image edge.
    ``points`` are the outline's vertices and ``successor[i]`` the one after ``points[i]``
    along its loop.
    """

    field: np.ndarray
    ox: float
    oy: float
    points: np.ndarray
    successor: np.ndarray
    tiles: np.ndarray | None = None  # the value of each FIELD_TILE tile (past the 1-px border) holding one, else NaN

    @classmethod
    def from_mask(cls, coverage: np.ndarray, binary: bool, x0: int = 0, y0: int = 0) -> Outline:
        """Outline of a mask crop whose top-left pixel is pixel ``(x0, y0)`` of the image."""
        crop_inside = coverage if coverage.dtype == bool else coverage >= 0.5
        f, tiles = _field_and_tiles(coverage, binary, 1, crop_inside)
        ox, oy = x0 - 0.5, y0 - 0.5  # pixel centre of the padding's corner
        inside = np.zeros(f.shape, dtype=bool)  # the field is above 0.5 exactly on the mask's inside pixels
        inside[1:-1, 1:-1] = crop_inside
        rc, successor = trace_level(f, inside)
        pts = np.empty_like(rc)
        pts[:, 0] = rc[:, 1] + ox
        pts[:, 1] = rc[:, 0] + oy
        return cls(field=f, ox=ox, oy=oy, points=pts, successor=successor, tiles=tiles)

    @property
    def length(self) -> float:
        return float(np.linalg.norm(self.points[self.successor] - self.points, axis=1).sum())

    def sample(self, pts: np.ndarray) -> np.ndarray:
        """Bilinear field values at pixel coordinates ``(N, 2)`` (0 outside the crop)."""
        h, w = self.field.shape
        fc = np.clip(pts[:, 0] - self.ox, 0.0, w - 1.0)
        fr = np.clip(pts[:, 1] - self.oy, 0.0, h - 1.0)
        c0 = np.minimum(fc.astype(np.int64), w - 2)
        r0 = np.minimum(fr.astype(np.int64), h - 2)
        tc, tr = fc - c0, fr - r0
        f = self.field
        top = f[r0, c0] * (1 - tc) + f[r0, c0 + 1] * tc
        bot = f[r0 + 1, c0] * (1 - tc) + f[r0 + 1, c0 + 1] * tc
        return top * (1 - tr) + bot * tr

    def sample_grid(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """Bilinear field values on the regular grid ``ys x xs`` (separable, fast).

        Where the field was computed in tiles, a point whose four pixels lie in a settled
        tile (or the pixel beyond its edge, which holds the same value) takes the tile's
        value, and only the points near the outline are interpolated: the same numbers
        bit for bit (interpolating four equal values returns that value).
        """
        if self.tiles is None:
            return grid_bilinear(self.field, self.ox, self.oy, 1.0, xs, ys)
        h, w = self.field.shape
        r0 = grid_axis(ys, self.oy, 1.0, h)[0]
        c0 = grid_axis(xs, self.ox, 1.0, w)[0]
        t = FIELD_TILE
        hb, wb = self.tiles.shape
        framed = np.full((hb + 2, wb + 2), np.nan, dtype=np.float32)  # NaN: no tile (the crop's border)
        framed[1:-1, 1:-1] = self.tiles
        tj = np.clip((r0 - 1) // t + 1, 0, hb + 1)  # the field has a 1-px border
        ti = np.clip((c0 - 1) // t + 1, 0, wb + 1)
        out = np.take(np.take(framed, tj, axis=0), ti, axis=1)
        at = np.flatnonzero(np.isnan(out))
        out.ravel()[at] = grid_bilinear(self.field, self.ox, self.oy, 1.0, xs, ys, at)
        return out

    def project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest points on the outline polylines and their distances."""
        from scipy.spatial import cKDTree

        poly = self.points
        if poly.shape[0] == 0 or pts.shape[0] == 0:
            return pts.copy(), np.full(pts.shape[0], np.inf)
        nxt = self.successor
        prv = np.empty_like(nxt)
        prv[nxt] = np.arange(nxt.size)
        dist, k = cKDTree(poly).query(pts)
        best = poly[k].copy()
        for nb in (prv[k], nxt[k]):
            a, b = poly[k], poly[nb]
            ab = b - a
            den = np.maximum((ab * ab).sum(1), 1e-18)
            t = np.clip(((pts - a) * ab).sum(1) / den, 0.0, 1.0)
            q = a + t[:, None] * ab
            dq = np.linalg.norm(pts - q, axis=1)
            better = dq < dist
            best[better] = q[better]
            dist = np.where(better, dq, dist)
        return best, dist
