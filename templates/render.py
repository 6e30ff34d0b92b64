"""A small numpy z-buffer rasteriser: depth and triangle id per pixel.

Deterministic and GPU-free, so descriptors, test renders and visibility come out the same
on every machine. Pixel (row i, column j) has its centre at (j + 0.5, i + 0.5), matching
``geometry.CameraModel``. Camera space is Blender's: x right, y up, looking down -z.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Candidate (triangle, pixel) pairs handled per batch: bounds memory on large renders.
_BATCH_PAIRS = 2_000_000


@dataclass
class Raster:
    """Per-pixel distance along the view axis (``inf`` where empty) and triangle index (-1 where empty)."""

    depth: np.ndarray
    tri: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        return self.tri >= 0


def project_perspective(points: np.ndarray, focal_px: float, cx: float, cy: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates ``(N, 2)`` and depths ``(N,)`` of camera-space points through a pinhole."""
    p = np.asarray(points, dtype=np.float64)
    z = -p[:, 2]
    safe = np.where(z > 1e-9, z, 1e-9)
    xy = np.stack([cx + focal_px * p[:, 0] / safe, cy - focal_px * p[:, 1] / safe], axis=1)
    return xy, z


def unproject(x: np.ndarray, y: np.ndarray, z: np.ndarray, focal_px: float, cx: float, cy: float) -> np.ndarray:
    """Camera-space points ``(..., 3)`` at image positions ``x``, ``y`` (pixels from the top-left corner: a
    pixel's centre is its index + 0.5) and depths ``z`` (along -Z): the inverse of ``project_perspective``."""
    return np.stack([(x - cx) / focal_px * z, (cy - y) / focal_px * z, -z], axis=-1)


def project_orthographic(points: np.ndarray, scale: float, cx: float, cy: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates and depths of camera-space points seen orthographically (``scale`` px per unit)."""
    p = np.asarray(points, dtype=np.float64)
    return np.stack([cx + scale * p[:, 0], cy - scale * p[:, 1]], axis=1), -p[:, 2]


def rasterize(
    xy: np.ndarray, depth: np.ndarray, triangles: np.ndarray, shape: tuple[int, int], perspective: bool = True,
) -> Raster:
    """Nearest surface per pixel of projected triangles.

    ``xy`` and ``depth`` are per vertex (from ``project_*``); with ``perspective`` the depth
    is interpolated in 1/z (exact for planar triangles under a pinhole), otherwise linearly.
    With ``perspective``, triangles with a vertex behind the camera (depth <= 0) are skipped.
    """
    h, w = int(shape[0]), int(shape[1])
    zbuf = np.full(h * w, np.inf)
    tbuf = np.full(h * w, -1, dtype=np.int64)
    tris = np.asarray(triangles, dtype=np.int64)
    if tris.size == 0:
        return Raster(zbuf.reshape(h, w), tbuf.reshape(h, w))
    v = np.asarray(xy, dtype=np.float64)[tris]  # (T, 3, 2)
    z = np.asarray(depth, dtype=np.float64)[tris]  # (T, 3)
    x0, y0 = v[:, 0, 0], v[:, 0, 1]
    x1, y1 = v[:, 1, 0], v[:, 1, 1]
    x2, y2 = v[:, 2, 0], v[:, 2, 1]
    area: np.ndarray = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    j0 = np.clip(np.ceil(v[..., 0].min(axis=1) - 0.5), 0, w).astype(np.int64)
    j1 = np.clip(np.floor(v[..., 0].max(axis=1) - 0.5), -1, w - 1).astype(np.int64)
    i0 = np.clip(np.ceil(v[..., 1].min(axis=1) - 0.5), 0, h).astype(np.int64)
    i1 = np.clip(np.floor(v[..., 1].max(axis=1) - 0.5), -1, h - 1).astype(np.int64)
    nw, nh = j1 - j0 + 1, i1 - i0 + 1
    keep = (nw > 0) & (nh > 0) & (np.abs(area) > 1e-12) & np.all(np.isfinite(z), axis=1)
    if perspective:
        keep &= np.all(z > 1e-9, axis=1)
    idx = np.nonzero(keep)[0]
    if idx.size == 0:
        return Raster(zbuf.reshape(h, w), tbuf.reshape(h, w))
    counts = (nw * nh)[idx]
    bounds = np.searchsorted(np.cumsum(counts), np.arange(_BATCH_PAIRS, counts.sum() + _BATCH_PAIRS, _BATCH_PAIRS))
    start = 0
    for stop in np.unique(np.concatenate([bounds + 1, [idx.size]])):
        stop = int(min(stop, idx.size))
        if stop <= start:
            continue
        sel = idx[start:stop]
        cnt = counts[start:stop]
        start = stop
        t = np.repeat(sel, cnt)
        k = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        nwt = nw[t]
        pj = j0[t] + k % nwt
        pi = i0[t] + k // nwt
        px, py = pj + 0.5, pi + 0.5
        a: np.ndarray = area[t]
        b0 = ((x1[t] - px) * (y2[t] - py) - (x2[t] - px) * (y1[t] - py)) / a
        b1 = ((x2[t] - px) * (y0[t] - py) - (x0[t] - px) * (y2[t] - py)) / a
        b2 = 1.0 - b0 - b1
        eps = -1e-7
        inside = (b0 >= eps) & (b1 >= eps) & (b2 >= eps)
        if not inside.any():
            continue
        t, b0, b1, b2 = t[inside], b0[inside], b1[inside], b2[inside]
        pix = pi[inside] * w + pj[inside]
        zt = z[t]
        if perspective:
            zz = 1.0 / (b0 / zt[:, 0] + b1 / zt[:, 1] + b2 / zt[:, 2])
        else:
            zz = b0 * zt[:, 0] + b1 * zt[:, 1] + b2 * zt[:, 2]
        order = np.lexsort((zz, pix))
        pix, zz, t = pix[order], zz[order], t[order]
        first = np.ones(pix.size, dtype=bool)
        first[1:] = pix[1:] != pix[:-1]
        pix, zz, t = pix[first], zz[first], t[first]
        better = zz < zbuf[pix]
        zbuf[pix[better]] = zz[better]
        tbuf[pix[better]] = t[better]
    return Raster(zbuf.reshape(h, w), tbuf.reshape(h, w))


def look_rotation(azimuth_deg: float | np.ndarray, elevation_deg: float | np.ndarray) -> np.ndarray:
    """Camera-from-model rotations ``(..., 3, 3)`` of an upright camera circling +Z.

    Azimuth 0 looks at the model's front (the camera on -Y looking along +Y, Blender's
    front view); positive azimuth moves the camera counter-clockwise seen from above;
    positive elevation lifts it. The camera's up vector stays in the plane of +Z (no roll).
    """
    a = np.radians(np.asarray(azimuth_deg, dtype=np.float64))
    e = np.radians(np.asarray(elevation_deg, dtype=np.float64))
    ca, sa, ce, se = np.cos(a), np.sin(a), np.cos(e), np.sin(e)
    # camera position direction (model space): Rz(a) @ (0, -ce, se)
    pos = np.stack([sa * ce, -ca * ce, se], axis=-1)
    back = pos  # camera +z axis points from the model to the camera
    right = np.stack([ca, sa, np.zeros_like(a)], axis=-1)
    up = np.cross(back, right)
    return np.stack([right, up, back], axis=-2)
