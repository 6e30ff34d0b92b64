"""The smooth base surface under an object's relief.

The base is a membrane (harmonic interpolation) stretched across the object's rim:
it takes the depth of the mask's rim pixels and is as flat as possible inside. The
relief (depth minus base) is then about zero along the outline, so the front, a
mirrored back and any Displace strength all meet at the silhouette. The membrane is
solved on blocks of pixels (about ``TARGET_UNKNOWNS`` unknowns, one sparse
factorisation) and read back bilinearly; the same factorisation also gives the
inflation potential used to round the closed back (Poisson equation, zero on the rim).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .grid import grid_bilinear, nonzero_2d, scatter_grid

TARGET_UNKNOWNS = 1024


@dataclass
class BaseSurface:
    """Base depth and inflation potential on a lattice of pixel blocks."""

    depth: np.ndarray  # (hb, wb) base depth at block centres
    phi: np.ndarray  # (hb, wb) inflation potential, 0 on the rim, in block units squared
    block: int
    x0: int  # image pixel of the crop's top-left corner
    y0: int

    def _bilinear(self, grid: np.ndarray, pts: np.ndarray) -> np.ndarray:
        hb, wb = grid.shape
        fx = np.clip((pts[:, 0] - self.x0) / self.block - 0.5, 0.0, max(wb - 1.0, 0.0))
        fy = np.clip((pts[:, 1] - self.y0) / self.block - 0.5, 0.0, max(hb - 1.0, 0.0))
        c0 = np.minimum(fx.astype(np.int64), max(wb - 2, 0))
        r0 = np.minimum(fy.astype(np.int64), max(hb - 2, 0))
        c1, r1 = np.minimum(c0 + 1, wb - 1), np.minimum(r0 + 1, hb - 1)
        tx, ty = fx - c0, fy - r0
        top = grid[r0, c0] * (1 - tx) + grid[r0, c1] * tx
        bot = grid[r1, c0] * (1 - tx) + grid[r1, c1] * tx
        return top * (1 - ty) + bot * ty

    def sample(self, pts: np.ndarray) -> np.ndarray:
        return self._bilinear(self.depth, pts)

    def sample_grid(self, xs: np.ndarray, ys: np.ndarray, at: np.ndarray | None = None) -> np.ndarray:
        """Base depth on the regular grid ``ys x xs`` (pixel coordinates); only at the flat grid
        points ``at`` when given (see ``grid_bilinear``)."""
        b = self.block
        values = grid_bilinear(self.depth, self.x0 + 0.5 * b, self.y0 + 0.5 * b, b, xs, ys, at)
        return scatter_grid(values, at, (len(ys), len(xs)))

    def sample_inflation(self, pts: np.ndarray) -> np.ndarray:
        """Inflation profile in [0, 1]: 0 on the rim, 1 at the widest point, round in between."""
        return self._profile(self._bilinear(self.phi, pts))

    def sample_inflation_grid(self, xs: np.ndarray, ys: np.ndarray, at: np.ndarray | None = None) -> np.ndarray:
        """``sample_inflation`` on the regular grid ``ys x xs`` (only at ``at`` when given)."""
        b = self.block
        values = self._profile(grid_bilinear(self.phi, self.x0 + 0.5 * b, self.y0 + 0.5 * b, b, xs, ys, at))
        return scatter_grid(values, at, (len(ys), len(xs)))

    def _profile(self, phi: np.ndarray) -> np.ndarray:
        peak = float(self.phi.max())
        if peak <= 0:
            return np.zeros(phi.shape, dtype=np.float32)
        return np.sqrt(np.clip(phi / np.float32(peak), 0.0, 1.0))


def _block_counts(flags: np.ndarray, b: int) -> np.ndarray:
    """How many pixels are set in every ``b`` x ``b`` block of a bool array (the last blocks
    may be partial), read off its integral image: exact, and one pass over the pixels."""
    import cv2

    h, w = flags.shape
    total = cv2.integral(flags.view(np.uint8))  # int32, (h + 1, w + 1)
    corners = total[np.minimum(np.arange(0, h + b, b), h)][:, np.minimum(np.arange(0, w + b, b), w)]
    return corners[1:, 1:] - corners[:-1, 1:] - corners[1:, :-1] + corners[:-1, :-1]


def membrane_base(z: np.ndarray, valid: np.ndarray, x0: int, y0: int, rim_points: np.ndarray | None = None,
                  rim_depths: np.ndarray | None = None,
                  pixels: tuple[np.ndarray, np.ndarray] | None = None) -> BaseSurface:
    """Membrane over the object whose pixels are ``valid`` in the crop ``z`` at image offset ``(x0, y0)``.

    The membrane is pinned to the mean depth of the rim in every block the rim crosses:
    of ``rim_depths`` at ``rim_points`` (the mesh's outline vertices, so their relief
    comes out near zero) where given, else of the mask's rim pixels. ``pixels``, when given,
    are the (rows, columns) of the valid pixels (a thin object's few), counted one by one.
    """
    import cv2
    from scipy import ndimage, sparse
    from scipy.sparse.linalg import splu

    area = int(np.count_nonzero(valid)) if pixels is None else pixels[0].size
    b = max(1, int(round(math.sqrt(area / TARGET_UNKNOWNS))))
    h, w = valid.shape
    hb, wb = -(-h // b), -(-w // b)
    if pixels is None:
        count = _block_counts(valid, b)
    else:
        count = np.bincount((pixels[0] // b) * wb + pixels[1] // b, minlength=hb * wb).reshape(hb, wb)
    # rim: valid pixels with a 4-neighbour outside (or on the crop's edge); few, so gathered
    flags: np.ndarray = valid.view(np.uint8)
    inner = cv2.erode(flags, cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)),
                      borderType=cv2.BORDER_CONSTANT, borderValue=(0.0,))
    rr, cc = nonzero_2d(flags > inner)
    rim_block = (rr // b) * wb + cc // b
    rim_count = np.bincount(rim_block, minlength=hb * wb).reshape(hb, wb)
    rim_sum = np.bincount(rim_block, weights=z[rr, cc], minlength=hb * wb).reshape(hb, wb)
    values = np.zeros(count.shape)
    fixed = rim_count > 0
    values[fixed] = rim_sum[fixed] / rim_count[fixed]
    if rim_points is not None and rim_depths is not None and rim_points.shape[0]:
        bj = np.clip(((rim_points[:, 1] - y0) // b).astype(np.int64), 0, hb - 1)
        bi = np.clip(((rim_points[:, 0] - x0) // b).astype(np.int64), 0, wb - 1)
        flat = bj * wb + bi
        n_pts = np.bincount(flat, minlength=hb * wb).reshape(hb, wb)
        sum_pts = np.bincount(flat, weights=rim_depths, minlength=hb * wb).reshape(hb, wb)
        has = n_pts > 0
        values[has] = sum_pts[has] / n_pts[has]
        fixed |= has
    unknown = (count > 0) & ~fixed
    if (~fixed).any():
        idx = ndimage.distance_transform_edt(~fixed, return_distances=False, return_indices=True)
        values = values[idx[0], idx[1]]
    phi = np.zeros(count.shape)
    n = int(unknown.sum())
    if n:
        hb, wb = count.shape
        ids = np.full(count.shape, -1, dtype=np.int64)
        ids[unknown] = np.arange(n)
        uj, ui = np.nonzero(unknown)
        rows, cols = [np.arange(n)], [np.arange(n)]
        data = [np.full(n, 4.0)]
        rhs = np.zeros(n)
        for dj, di in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            nj, ni = np.clip(uj + dj, 0, hb - 1), np.clip(ui + di, 0, wb - 1)
            nid = ids[nj, ni]
            inner_nb = nid >= 0
            rows.append(np.flatnonzero(inner_nb))
            cols.append(nid[inner_nb])
            data.append(np.full(int(inner_nb.sum()), -1.0))
            rhs += np.where(inner_nb, 0.0, values[nj, ni])
        mat = sparse.csc_matrix((np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
        lu = splu(mat, permc_spec="MMD_AT_PLUS_A")
        values[unknown] = lu.solve(rhs)
        phi[unknown] = lu.solve(np.ones(n))
    return BaseSurface(depth=values, phi=phi, block=b, x0=x0, y0=y0)
