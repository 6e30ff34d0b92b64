"""A relative depth map's shape, a metric map's scale: fitted inside each object's mask.

A relative model (Depth Anything V2) gives inverse depth up to an unknown scale and shift,
often with finer detail than a metric model (MoGe-2); the metric model gives metres. Inside one
object both describe the same surface, so the relative map is fitted to the metric one there:
``1 / metric ~ a * relative + b`` by least squares on inverse depth over the mask's interior (the
rim is left out: both maps blur an object into what is behind it there; one trimmed refit drops
the worst residuals), and the object's depth becomes
``1 / (a * relative + b)``. Outside the masks the metric map is kept.

A mask where the fit cannot be trusted keeps its metric depth: too few pixels, a non-positive
slope (the two maps order the object's points differently), or a fitted inverse depth that
reaches zero. Whether this helps depends on how much sharper and how much less distorted the
relative map is; ``bench/bench_learned_fusion.py`` measures it on synthetic scenes. It is not
wired into the engine: nothing runs it by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

MIN_PIXELS = 64
TRIM = 0.1  # share of the worst residuals left out of the refit
INTERIOR = 0.2  # the fit skips a rim of this share of the mask's radius: both maps blur edges, the metric one most


@dataclass
class Fit:
    """One mask's fit: ``1 / metric ~ a * relative + b``; ``used`` False when the metric depth was kept."""

    a: float
    b: float
    pixels: int
    rms_inverse: float  # RMS residual of the refit, in inverse metres
    used: bool
    why: str = ""


def _solve(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    design = np.stack([x, np.ones_like(x)], axis=1)
    (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(a), float(b)


def interior(mask: np.ndarray, share: float = INTERIOR) -> np.ndarray:
    """``mask`` eroded by ``share`` of its equivalent radius (itself when too little would be left)."""
    import cv2

    radius = int(round(share * np.sqrt(float(mask.sum()) / np.pi)))
    if radius < 1:
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    inner = cv2.erode(mask.astype(np.uint8), kernel).astype(bool)
    return inner if int(inner.sum()) >= MIN_PIXELS else mask


def fit_mask(relative: np.ndarray, metric: np.ndarray, mask: np.ndarray) -> Fit:
    """The affine fit of ``relative`` (inverse, larger = nearer) to ``1 / metric`` over ``mask``'s interior."""
    valid = interior(mask) & np.isfinite(relative) & np.isfinite(metric) & (metric > 0)
    n = int(valid.sum())
    if n < MIN_PIXELS:
        return Fit(0.0, 0.0, n, 0.0, False, "too few pixels")
    x = relative[valid].astype(np.float64)
    y = 1.0 / metric[valid].astype(np.float64)
    a, b = _solve(x, y)
    residual = np.abs(a * x + b - y)
    keep = residual <= np.quantile(residual, 1.0 - TRIM)
    if int(keep.sum()) >= MIN_PIXELS:
        a, b = _solve(x[keep], y[keep])
    rms = float(np.sqrt(np.mean((a * x[keep] + b - y[keep]) ** 2)))
    if not a > 0:
        return Fit(a, b, n, rms, False, "the maps order the object's depth differently")
    inverse = a * relative[mask].astype(np.float64) + b
    if not np.all(inverse > 0):
        return Fit(a, b, n, rms, False, "the fitted inverse depth reaches zero")
    return Fit(a, b, n, rms, True)


def fit_relative_inside(relative: np.ndarray, metric: np.ndarray, masks: Sequence[np.ndarray]
                        ) -> tuple[np.ndarray, list[Fit]]:
    """Metric depth (H, W float32) whose shape inside each mask is ``relative``'s, and each mask's fit.

    Masks are fitted in order; a pixel in several masks takes the last fit that was used."""
    if relative.shape != metric.shape:
        raise ValueError(f"the relative map is {relative.shape} and the metric map {metric.shape}; they must match")
    out = metric.astype(np.float32, copy=True)
    fits = []
    for mask in masks:
        m = np.asarray(mask, dtype=bool)
        fit = fit_mask(relative, metric, m)
        if fit.used:
            out[m] = (1.0 / (fit.a * relative[m].astype(np.float64) + fit.b)).astype(np.float32)
        fits.append(fit)
    return out, fits
