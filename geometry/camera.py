"""The photo's pinhole camera, from what the worker knows about it."""

from __future__ import annotations

import math
from typing import Any

from . import DEFAULT_FOCAL_MM, DEFAULT_SENSOR_MM, CameraModel


def _positive(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def camera_from_result(
    width: int,
    height: int,
    focal_35mm: float | None = None,
    fallback_focal_mm: float = DEFAULT_FOCAL_MM,
    *,
    focal_px: float | None = None,
) -> CameraModel:
    """Camera for a ``width`` x ``height`` photo.

    ``focal_35mm`` (EXIF ``FocalLengthIn35mmFilm``) is read as the focal length on a
    36 mm sensor spanning the image's long side, which is what Blender's
    ``sensor_fit = 'AUTO'`` does with ``sensor_width = 36``; for 3:2 photos that is the
    exact 35 mm equivalent. Without it, ``focal_px`` (an engine's estimate in pixels)
    is converted, and failing both ``fallback_focal_mm`` is used.
    """
    w, h = int(width), int(height)
    if w <= 0 or h <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    focal_mm = _positive(focal_35mm)
    if focal_mm is None and (fpx := _positive(focal_px)) is not None:
        focal_mm = fpx * DEFAULT_SENSOR_MM / max(w, h)
    if focal_mm is None:
        focal_mm = _positive(fallback_focal_mm) or DEFAULT_FOCAL_MM
    return CameraModel(width=w, height=h, focal_mm=focal_mm, sensor_mm=DEFAULT_SENSOR_MM)


def photo_focal_known(result: dict[str, Any]) -> bool:
    """Whether a parsed ``result.json`` knows the focal length (EXIF or the depth model), not just a default."""
    cam = result.get("camera") or {}
    source = cam.get("focal_source")
    if source:
        return source != "default"
    return _positive(cam.get("focal_35mm")) is not None or _positive(cam.get("focal_px")) is not None


def camera_from_result_json(result: dict[str, Any], fallback_focal_mm: float = DEFAULT_FOCAL_MM) -> CameraModel:
    """``camera_from_result`` on a parsed worker ``result.json``; a focal length the worker only
    defaulted to gives way to ``fallback_focal_mm``."""
    image = result["image"]
    cam = result.get("camera") or {}
    focal_px = None if cam.get("focal_source") == "default" else cam.get("focal_px")
    return camera_from_result(image["width"], image["height"], cam.get("focal_35mm"), fallback_focal_mm,
                              focal_px=focal_px)
