"""The offline ``classic`` engine: no learned models, always available.

Segmentation comes from :mod:`.classic_segment`. Depth is a guess from the
silhouette: each object is inflated like a balloon from its mask's distance
field (a disk becomes a hemisphere), the way sketch-based modelling tools
inflate outlines, optionally with a fine relief taken from image detail. Use it
when no learned depth model is available; it cannot see real concavities.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import DepthMap, EngineHooks, Instance, ProgressFn
from .classic_segment import segment as classic_segment


def _smooth_inside(values: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur that only averages pixels inside ``mask`` (normalised convolution)."""
    import cv2

    if sigma <= 0.3:
        return values
    m = mask.astype(np.float32)
    num = cv2.GaussianBlur(values * m, (0, 0), sigma)
    den = cv2.GaussianBlur(m, (0, 0), sigma)
    return np.where(mask, num / np.maximum(den, 1e-6), 0.0).astype(np.float32)


def inflate(mask: np.ndarray) -> np.ndarray:
    """Height field (in pixels) of a rounded inflation of ``mask``.

    Uses the circle profile h = sqrt(2 R d - d^2) on the Euclidean distance ``d``
    to the outline, with R the largest inscribed radius, so a disk of radius R
    becomes a hemisphere of height R and thin parts stay thin.
    """
    import cv2

    m = mask.astype(np.uint8)
    if not m.any():
        return np.zeros(mask.shape, np.float32)
    # pad so objects touching the image border are not treated as open there
    d = cv2.distanceTransform(np.pad(m, 1), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    r = float(d.max())
    h = np.sqrt(np.clip(2.0 * r * d - d * d, 0.0, None)).astype(np.float32)
    # the medial axis leaves creases in the distance field; smooth them at a scale of the object's radius
    return _smooth_inside(h, mask, sigma=max(0.0, 0.15 * r))


class ClassicEngine(EngineHooks):
    name = "classic"

    def __init__(self, relief: float = 0.0, **_: Any) -> None:
        self.relief = float(relief)

    def settings(self) -> dict[str, Any]:
        return {"relief": self.relief}

    def segment(
        self, rgb: np.ndarray, alpha: np.ndarray | None, box: tuple[int, int, int, int] | None, objects: str,
        progress: ProgressFn,
    ) -> list[Instance]:
        progress("segment", 0.1, "Finding objects")
        return classic_segment(rgb, alpha=alpha, box=box, objects=objects)

    def depth(self, rgb: np.ndarray, instances: list[Instance], progress: ProgressFn) -> DepthMap:
        """Relative inverse depth (larger is nearer) for the whole image.

        Objects whose base sits lower in the frame are placed nearer (the usual
        ground-plane prior for photos taken from eye height); each object bulges
        towards the camera by its inflation height. The rest of the photo is that
        ground: inverse depth linear in the row is a plane seen by a pinhole camera,
        and each object's base row has the ground's value there, so it stands on it.
        """
        import cv2

        h, w = rgb.shape[:2]
        size = float(max(h, w))
        rows = (np.arange(h, dtype=np.float32) + 1.0) / h
        out = np.repeat((0.5 + 0.5 * rows)[:, None], w, axis=1)  # the ground, as the objects' bases
        gray = None
        if self.relief > 0:
            gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        for i, inst in enumerate(instances):
            progress("depth", (i + 0.5) / max(1, len(instances)), f"Inflating object {i + 1}")
            ys = np.nonzero(inst.mask.any(axis=1))[0]
            if ys.size == 0:
                continue
            bottom = float(ys[-1] + 1) / h
            base = 0.5 + 0.5 * bottom  # lower in the frame: nearer
            height = inflate(inst.mask) / size
            values = base + height
            if gray is not None:
                detail = gray - cv2.GaussianBlur(gray, (0, 0), 3.0)
                values = values + self.relief * 0.02 * detail
            out = np.where(inst.mask & (values > out), values, out)
        return DepthMap(out.astype(np.float32), kind="relative_inverse")
