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

from .grid import grid_bilinear

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

    def sample_grid(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """Base depth on the regular grid ``ys x xs`` (pixel coordinates)."""
        b = self.block
        return grid_bilinear(self.depth, self.x0 + 0.5 * b, self.y0 + 0.5 * b, b, xs, ys)

    def sample_inflation(self, pts: np.ndarray) -> np.ndarray:
        """Inflation profile in [0, 1]: 0 on the rim, 1 at the widest point, round in between."""
        return self._profile(self._bilinear(self.phi, pts))

    def sample_inflation_grid(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """``sample_inflation`` on the regular grid ``ys x xs``."""
        b = self.block
        return self._profile(grid_bilinear(self.phi, self.x0 + 0.5 * b, self.y0 + 0.5 * b, b, xs, ys))

    def _profile(self, phi: np.ndarray) -> np.ndarray:
        peak = float(self.phi.max())
        if peak <= 0:
            return np.zeros(phi.shape, dtype=np.float32)
        return np.sqrt(np.clip(phi / np.float32(peak), 0.0, 1.0))


def _block_sum(a: np.ndarray, b: int) -> np.ndarray:
    """Sums over ``b`` x ``b`` blocks (the last ones zero-padded)."""
    import cv2

    h, w = a.shape
    hb, wb = -(-h // b), -(-w // b)
    if b == 1:
        return a.astype(np.float64)
    pad = np.zeros((hb * b, wb * b), dtype=np.float32)
    pad[:h, :w] = a
    mean = cv2.resize(pad, (wb, hb), interpolation=cv2.INTER_AREA)  # exact block means at integer scale
    return mean.astype(np.float64) * (b * b)


def membrane_base(z: np.ndarray, valid: np.ndarray, x0: int, y0: int, rim_points: np.ndarray | None = None,
                  rim_depths: np.ndarray | None = None) -> BaseSurface:
    """Membrane over the object whose pixels are ``valid`` in the crop ``z`` at image offset ``(x0, y0)``.

    The membrane is pinned to the mean depth of the rim in every block the rim crosses:
    of ``rim_depths`` at ``rim_points`` (the mesh's outline vertices, so their relief
    comes out near zero) where given, else of the mask's rim pixels.
    """
    from scipy import ndimage, sparse
    from scipy.sparse.linalg import splu

    area = int(valid.sum())
    b = max(1, int(round(math.sqrt(area / TARGET_UNKNOWNS))))
    inner = valid.copy()
    inner[1:] &= valid[:-1]
    inner[:-1] &= valid[1:]
    inner[:, 1:] &= valid[:, :-1]
    inner[:, :-1] &= valid[:, 1:]
    inner[0], inner[-1], inner[:, 0], inner[:, -1] = False, False, False, False
    rim = valid & ~inner
    count = _block_sum(valid, b)
    rim_count = _block_sum(rim, b)
    rim_sum = _block_sum(np.where(rim, z, z.dtype.type(0)), b)  # float32 stays float32
    values = np.zeros(count.shape)
    fixed = rim_count > 0
    values[fixed] = rim_sum[fixed] / rim_count[fixed]
    if rim_points is not None and rim_depths is not None and rim_points.shape[0]:
        hb, wb = count.shape
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
