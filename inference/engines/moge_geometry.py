"""From an affine-invariant point map to metric depth and the focal length (numpy and scipy only).

MoGe predicts, per pixel, a 3D point known up to a scale and a shift along the optical axis,
plus a metric scale for the whole image. The camera is a pinhole with its principal point at
the image centre and square pixels, so every valid point must project back onto its own
pixel: ``focal * (x, y) / (z + shift) == uv``. Solving that least-squares problem for the
focal length and the shift (the recovery the MoGe paper describes; the focal length has a
closed form for a given shift, leaving a one-dimensional search) turns the point map into a
depth map ``z + shift`` along the optical axis, which the metric scale puts into metres.

Image-plane coordinates ``uv`` are measured from the image centre in units of half the image
diagonal, which is how MoGe expresses its focal length; :func:`focal_to_pixels` converts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLES = 64  # the fit uses at most SAMPLES x SAMPLES pixels of the map: the two unknowns need few
MIN_POINTS = 16  # fewer valid points than this give no trustworthy fit


@dataclass(frozen=True)
class Recovered:
    """What the point map says about the camera and the scene."""

    focal: float  # relative to half the image diagonal
    shift: float  # added to the map's z to give depth (in the map's own scale)
    points: int  # how many points the fit used


def view_plane_uv(width: int, height: int) -> np.ndarray:
    """(H, W, 2) image-plane coordinates of the pixel centres: x right, y down, from the image
    centre, in units of half the image diagonal."""
    half = 0.5 * float(np.hypot(width, height))
    u = (np.arange(width, dtype=np.float64) + 0.5 - 0.5 * width) / half
    v = (np.arange(height, dtype=np.float64) + 0.5 - 0.5 * height) / half
    uu, vv = np.meshgrid(u, v, indexing="xy")
    return np.stack([uu, vv], axis=-1)


def focal_to_pixels(focal: float, width: int, height: int) -> float:
    """A focal length relative to half the image diagonal, in pixels."""
    return float(focal) * 0.5 * float(np.hypot(width, height))


def pixels_to_focal(focal_px: float, width: int, height: int) -> float:
    """A focal length in pixels, relative to half the image diagonal."""
    return float(focal_px) / (0.5 * float(np.hypot(width, height)))


def _sample(points: np.ndarray, mask: np.ndarray | None, samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-neighbour downsampling to at most ``samples`` x ``samples`` (pixel ``floor(i * size / samples)``,
    as a nearest resize picks): (uv (N, 2), xyz (N, 3)) of the valid samples."""
    h, w = points.shape[:2]
    rows = (np.arange(min(h, samples)) * h // min(h, samples)).astype(np.intp)
    cols = (np.arange(min(w, samples)) * w // min(w, samples)).astype(np.intp)
    uv = view_plane_uv(w, h)[np.ix_(rows, cols)].reshape(-1, 2)
    xyz = points[np.ix_(rows, cols)].reshape(-1, 3).astype(np.float64)
    keep = np.isfinite(xyz).all(axis=1)
    if mask is not None:
        keep &= np.asarray(mask, dtype=bool)[np.ix_(rows, cols)].reshape(-1)
    return uv[keep], xyz[keep]


def _focal_for(uv: np.ndarray, xy: np.ndarray, z: np.ndarray, shift: float) -> tuple[float, np.ndarray]:
    """The best focal length for ``shift`` (closed form) and the projections it scales."""
    proj = xy / (z + shift)[:, None]
    return float((proj * uv).sum() / max(float(np.square(proj).sum()), 1e-30)), proj


def recover_focal_shift(
    points: np.ndarray, mask: np.ndarray | None = None, focal: float | None = None, samples: int = SAMPLES,
) -> Recovered:
    """The focal length and z shift that make ``points`` (H, W, 3) project onto their pixels.

    ``mask`` (H, W) marks the points to trust; ``focal`` (relative to half the diagonal), when
    known from elsewhere, is kept and only the shift is solved. Raises ``ValueError`` when the
    map has too few valid points or no shift puts them all in front of the camera.
    """
    from scipy.optimize import least_squares

    points = np.asarray(points)
    if points.ndim != 3 or points.shape[2] != 3:
        raise ValueError(f"a point map is (H, W, 3), not {points.shape}")
    uv, xyz = _sample(points, mask, samples)
    if len(uv) < MIN_POINTS:
        raise ValueError(f"the point map has {len(uv)} valid points, too few to find the camera")
    xy, z = xyz[:, :2], xyz[:, 2]
    span = float(np.ptp(z)) or float(np.abs(z).max()) or 1.0
    lower = -float(z.min()) + 1e-6 * span  # every point stays in front of the camera

    def residuals(params: np.ndarray) -> np.ndarray:
        shift = float(params[0])
        f, proj = (focal, xy / (z + shift)[:, None]) if focal is not None else _focal_for(uv, xy, z, shift)
        return (f * proj - uv).ravel()

    start = max(0.0, lower + 0.5 * span)  # a map with positive depths already needs no shift
    fit = least_squares(residuals, x0=[start], bounds=([lower], [np.inf]), x_scale=[span], xtol=1e-12,
                        ftol=1e-12, gtol=1e-12)
    shift = float(fit.x[0])
    best = float(focal) if focal is not None else _focal_for(uv, xy, z, shift)[0]
    if not (np.isfinite(best) and best > 0 and np.isfinite(shift)):
        raise ValueError("the point map gives no camera in front of the scene")
    return Recovered(best, shift, int(len(uv)))


def metric_depth(
    points: np.ndarray, mask: np.ndarray | None, metric_scale: float, focal: float | None = None,
) -> tuple[np.ndarray, float]:
    """(depth along the optical axis in metres, focal length in pixels) from a MoGe point map.

    Pixels outside ``mask`` or behind the camera are NaN (holes the geometry fills).
    """
    h, w = points.shape[:2]
    found = recover_focal_shift(points, mask, focal)
    depth = (points[..., 2].astype(np.float64) + found.shift) * float(metric_scale)
    valid = np.isfinite(depth) & (depth > 0)
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool)
    out = np.where(valid, depth, np.nan).astype(np.float32)
    return out, focal_to_pixels(found.focal, w, h)
