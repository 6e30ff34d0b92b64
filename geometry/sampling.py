"""Depth lookups restricted to one object's pixels."""

from __future__ import annotations

import numpy as np

from .grid import grid_axis, scatter_grid

CHUNK = 1 << 18  # points per vectorised batch: bounds the temporaries at 1M vertices
NEAREST_TILE = 128  # pixels: points with no valid depth around them are looked up a tile at a time
JUMP_SPANS = (1, 2, 3)  # pixel distances over which a depth step is looked for (blurred edges span a few)
JUMP_RATIO = 2.0  # a step must exceed the change beside it on both sides this many times


def jump_pixels(z: np.ndarray, valid: np.ndarray, tear: float,
                pixels: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Pixels next to a depth discontinuity: along a row or column, a change above ``tear``
    (relative) over 1-3 pixels that is much larger than the change just before and after it.

    The flanks tell a jump inside the object (surface on both sides) from a silhouette,
    where the surface turns away steeply but continuously and there is no far side.
    ``pixels``, when given, are the (rows, columns) of ``valid``'s pixels (a thin object's
    few): only they are examined, with the same result.
    """
    if pixels is not None:
        return _jump_pixels_at(z, valid, tear, *pixels)
    zf = np.where(valid, z, np.nan).astype(np.float32)
    out = np.zeros(z.shape, dtype=bool)
    thr = np.float32(tear)
    for axis in (0, 1):
        n = z.shape[axis]
        for k in JUMP_SPANS:
            if n <= 3 * k:
                continue

            def cut(a: int, b: int) -> np.ndarray:
                return zf[a:b] if axis == 0 else zf[:, a:b]

            z0, z1, z2, z3 = cut(0, n - 3 * k), cut(k, n - 2 * k), cut(2 * k, n - k), cut(3 * k, n)
            step = np.abs(z2 - z1)
            flank = np.maximum(np.abs(z1 - z0), np.abs(z3 - z2))
            with np.errstate(invalid="ignore"):
                jump = (step > thr * np.minimum(z1, z2)) & (step > np.float32(JUMP_RATIO) * flank)
            if axis == 0:
                out[k:n - 2 * k] |= jump
                out[2 * k:n - k] |= jump
            else:
                out[:, k:n - 2 * k] |= jump
                out[:, 2 * k:n - k] |= jump
    return out


def _jump_pixels_at(z: np.ndarray, valid: np.ndarray, tear: float, rr: np.ndarray, cc: np.ndarray) -> np.ndarray:
    """``jump_pixels`` examined at the valid pixels ``(rr, cc)`` alone: each is taken as the
    near side of a step (the sample after it the far side, one before and one after those
    the flanks), as the full pass does; a jump marks both sides."""
    h, w = z.shape
    out = np.zeros((h, w), dtype=bool)
    thr = np.float32(tear)
    z32 = z.astype(np.float32, copy=False)
    for axis, n in ((0, h), (1, w)):
        along = rr if axis == 0 else cc
        for k in JUMP_SPANS:
            if n <= 3 * k:
                continue
            ok = (along >= k) & (along < n - 2 * k)  # the four samples lie in the crop
            r, c = rr[ok], cc[ok]
            samples = []
            for d in (-k, 0, k, 2 * k):
                rd, cd = (r + d, c) if axis == 0 else (r, c + d)
                samples.append(np.where(valid[rd, cd], z32[rd, cd], np.float32(np.nan)))
            z0, z1, z2, z3 = samples
            step = np.abs(z2 - z1)
            flank = np.maximum(np.abs(z1 - z0), np.abs(z3 - z2))
            with np.errstate(invalid="ignore"):
                jump = (step > thr * np.minimum(z1, z2)) & (step > np.float32(JUMP_RATIO) * flank)
            r, c = r[jump], c[jump]
            out[r, c] = True
            if axis == 0:
                out[r + k, c] = True
            else:
                out[r, c + k] = True
    return out


class DepthSampler:
    """Bilinear depth from the pixels of one mask only, so outline vertices never pick
    up the background. Where those pixels straddle a depth jump (relative spread above
    ``tear``) the nearest pixel is used instead of a blend, so a vertex lands on one
    side of the jump and the face spanning it can be torn.
    """

    def __init__(self, z: np.ndarray, valid: np.ndarray, x0: int, y0: int, tear: float,
                 pixels: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """``pixels``, when given, are the (rows, columns) of ``valid``'s pixels (a thin object's
        few): only they are copied."""
        # scene_depth's maps are float32: kept as they are, at half the memory traffic of float64
        # (other inputs keep float64 for the point samples; the grid is float32 either way)
        z = np.asarray(z)
        h, w = z.shape
        # the object's depth with a zero border, written once (no where/astype/pad temporaries: at a
        # 12 MP crop each is 40-80 MB)
        self.z = np.zeros((h + 2, w + 2), dtype=np.float32 if z.dtype == np.float32 else np.float64)
        self.valid = np.zeros((h + 2, w + 2), dtype=bool)
        if pixels is None:
            np.copyto(self.z[1:-1, 1:-1], z, where=valid)
            self.valid[1:-1, 1:-1] = valid
        else:
            rr, cc = pixels
            self.z[rr + 1, cc + 1] = z[rr, cc]
            self.valid[rr + 1, cc + 1] = True
        self.z32 = self.z.astype(np.float32, copy=False)
        self.x0, self.y0 = x0, y0
        self.tear = float(tear)

    def sample_grid(self, xs: np.ndarray, ys: np.ndarray,
                    at: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Depth on the regular grid ``ys x xs`` and where that fast value cannot be used.

        The returned flag marks grid points whose four pixels are not all valid or
        straddle a jump: sample those with ``sample`` instead. Only the image rows the
        grid falls between are read, so a grid coarser than the pixels costs less. With
        ``at`` (flat grid indices) only those points are computed, the same numbers bit for
        bit; the grids are unset elsewhere.
        """
        ox, oy = self.x0 - 0.5, self.y0 - 0.5  # padded pixel (0, 0) centre
        zz, v = self.z32, self.valid
        r0, tr = grid_axis(ys, oy, 1.0, zz.shape[0])
        c0, tc = grid_axis(xs, ox, 1.0, zz.shape[1])
        if at is not None:
            j, i = np.divmod(at, len(xs))
            rj, ci, t = r0[j], c0[i], tr[j]
            tl, bl, tr_, br = zz[rj, ci], zz[rj + 1, ci], zz[rj, ci + 1], zz[rj + 1, ci + 1]
            left = tl + t * (bl - tl)
            z = left + tc[i] * ((tr_ + t * (br - tr_)) - left)
            hi = np.maximum(np.maximum(tl, bl), np.maximum(tr_, br))
            lo = np.minimum(np.minimum(tl, bl), np.minimum(tr_, br))
            flag = v[rj, ci] & v[rj + 1, ci] & v[rj, ci + 1] & v[rj + 1, ci + 1]
            shape = (len(ys), len(xs))
        else:
            top, bot = zz[r0], zz[r0 + 1]  # r0 <= h - 2, so r0 + 1 is in range
            rows = top + tr[:, None] * (bot - top)
            z = rows[:, c0] + tc[None, :] * (rows[:, c0 + 1] - rows[:, c0])
            hi, lo = np.maximum(top, bot), np.minimum(top, bot)
            hi = np.maximum(hi[:, c0], hi[:, c0 + 1])
            lo = np.minimum(lo[:, c0], lo[:, c0 + 1])
            both = v[r0] & v[r0 + 1]
            flag = both[:, c0]
            flag &= both[:, c0 + 1]
        np.logical_not(flag, out=flag)
        hi -= lo
        lo *= np.float32(self.tear)
        with np.errstate(invalid="ignore"):
            flag |= hi > lo
        if at is None:
            return z, flag
        return scatter_grid(z, at, shape), scatter_grid(flag, at, shape)

    def sample(self, pts: np.ndarray) -> np.ndarray:
        out = np.empty(pts.shape[0])
        for start in range(0, pts.shape[0], CHUNK):
            out[start:start + CHUNK] = self._sample(pts[start:start + CHUNK])
        return out

    def _sample(self, pts: np.ndarray) -> np.ndarray:
        h, w = self.z.shape
        # padded index of pixel centre (x0 + c + 0.5, y0 + r + 0.5) is (r + 1, c + 1)
        fx = np.clip(pts[:, 0] - self.x0 + 0.5, 0.0, w - 1.000001)
        fy = np.clip(pts[:, 1] - self.y0 + 0.5, 0.0, h - 1.000001)
        c0 = fx.astype(np.int64)
        r0 = fy.astype(np.int64)
        tx, ty = fx - c0, fy - r0
        flat = r0 * w + c0
        zf, vf = self.z.ravel(), self.valid.ravel()
        idx = np.stack([flat, flat + 1, flat + w, flat + w + 1], axis=1)
        zs = zf[idx]
        vs = vf[idx]
        wts = np.stack([(1 - tx) * (1 - ty), tx * (1 - ty), (1 - tx) * ty, tx * ty], axis=1) * vs
        den = wts.sum(axis=1)
        blend = (wts * zs).sum(axis=1) / np.where(den > 0, den, 1.0)
        zmax = np.where(vs, zs, -np.inf).max(axis=1)
        zmin = np.where(vs, zs, np.inf).min(axis=1)
        jump = (zmax - zmin) > self.tear * zmin
        if jump.any():
            nearest = zs[np.flatnonzero(jump), wts[jump].argmax(axis=1)]
            blend[jump] = nearest
        lost = den <= 1e-12
        if lost.any():
            blend[lost] = self._nearest_valid(fy[lost], fx[lost])
        return blend

    def _nearest_valid(self, fy: np.ndarray, fx: np.ndarray) -> np.ndarray:
        """Depth of the nearest valid pixel, for points with no valid pixel around them (holes
        in the depth inside the mask).

        The points are taken a ``NEAREST_TILE`` tile at a time, each with a distance transform of
        a window round its tile, widened until every point's nearest valid pixel in the window is
        nearer than any pixel outside it. A hole in a thin object across a 12 MP photo so costs
        milliseconds, where one transform of the whole crop took 0.8 s and 78 MB.
        """
        h, w = self.valid.shape
        r = np.clip(np.rint(fy).astype(np.int64), 0, h - 1)
        c = np.clip(np.rint(fx).astype(np.int64), 0, w - 1)
        out = np.empty(r.size, dtype=self.z.dtype)
        tile = (r // NEAREST_TILE) * (w // NEAREST_TILE + 1) + c // NEAREST_TILE
        order = np.argsort(tile, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(tile[order]) != 0])
        for group in np.split(order, starts[1:]):
            out[group] = self._nearest_in_window(r[group], c[group])
        return out

    def _nearest_in_window(self, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        from scipy import ndimage

        h, w = self.valid.shape
        margin = NEAREST_TILE // 4
        while True:
            ra, rb = max(0, int(r.min()) - margin), min(h, int(r.max()) + 1 + margin)
            ca, cb = max(0, int(c.min()) - margin), min(w, int(c.max()) + 1 + margin)
            window = self.valid[ra:rb, ca:cb]
            whole = (ra, rb, ca, cb) == (0, h, 0, w)
            if window.any():
                dist, (ir, ic) = ndimage.distance_transform_edt(~window, return_indices=True)
                d = dist[r - ra, c - ca]
                # the nearest pixel outside the window, on whichever side has one
                outside = np.full(r.size, np.inf)
                for has, gap in ((ra > 0, r - ra + 1), (rb < h, rb - r), (ca > 0, c - ca + 1), (cb < w, cb - c)):
                    if has:
                        np.minimum(outside, gap, out=outside)
                if whole or bool(np.all(d < outside)):
                    return self.z[ir[r - ra, c - ca] + ra, ic[r - ra, c - ca] + ca]
            if whole:  # no valid pixel at all (the caller checks there is one)
                return np.zeros(r.size, dtype=self.z.dtype)
            margin *= 4
