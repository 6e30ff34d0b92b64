"""The backdrop: the rest of the photo (table, floor, wall) as one mesh behind the objects.

The pixels outside every object keep their depth and colour; behind each object the hole
is filled by inpainting both (OpenCV's Telea method), so a camera moved a little sees a
plausible surface rather than a hole. The mesh covers the whole frame and is made by the
same builder as the objects (``plane.build_object_mesh``), open, with no tears:

- ``plane``: flat, at the depth the map gives the backdrop (its median), pushed behind
  every object so it never hides one;
- ``relief``: displaced by the filled depth, never in front of an object's visible surface.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from . import Back, Backdrop, CameraModel, MeshData, MeshSettings

# (identifier, name, description): the one source of the setting for the panel, F9 and the command line
INPAINT_MAX_SIZE = 1024  # holes are filled at most at this long side, then scaled up into the holes alone
INPAINT_RADIUS = 3  # pixels at the inpainting size
DEPTH_MARGIN_PX = 3  # object-edge depths are mixed: they are refilled from the backdrop too
NO_TEAR = 1e6  # the backdrop is one sheet: a face spanning a million times its distance is never torn
BEHIND = 1.01  # a flat backdrop sits at least this factor beyond the farthest object point


def union_of(masks: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Pixels that belong to some object (bool (H, W))."""
    union = np.zeros(shape, dtype=bool)
    for m in masks:
        union |= m if m.dtype == bool else m >= 0.5
    return union


def _dilate(mask: np.ndarray, px: int) -> np.ndarray:
    import cv2

    if px <= 0:
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def _inpaint(values: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``values`` (H, W) float32 or (H, W, 3) uint8 with ``hole`` filled from around it.

    Large images are filled at ``INPAINT_MAX_SIZE`` and the fill scaled up: the filled
    surface is smooth, so nothing is lost, and the cost stays that of a 1 MP image.
    """
    import cv2

    if not hole.any():
        return values.copy()
    if hole.all():
        raise ValueError("nothing outside the objects to fill the backdrop from")
    h, w = hole.shape
    k = max(1, -(-max(h, w) // INPAINT_MAX_SIZE))
    small_v, small_h = values, hole
    if k > 1:
        size = (max(1, w // k), max(1, h // k))
        small_v = cv2.resize(values, size, interpolation=cv2.INTER_AREA)
        small_h = cv2.resize(hole.astype(np.uint8), size, interpolation=cv2.INTER_AREA) > 0
        small_h = _dilate(small_h, 1)
    filled = cv2.inpaint(np.ascontiguousarray(small_v), small_h.astype(np.uint8), INPAINT_RADIUS, cv2.INPAINT_TELEA)
    if k > 1:
        filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
    out = values.copy()
    out[hole] = filled[hole]
    return out


def fill_depth(zdepth: np.ndarray, union: np.ndarray) -> np.ndarray:
    """Camera-axis depth (H, W) float32 with the objects' pixels (and a thin margin round them)
    replaced by the backdrop's depth continued underneath, never nearer than the object seen there."""
    z = np.asarray(zdepth, dtype=np.float32)
    hole = _dilate(union, DEPTH_MARGIN_PX)
    if hole.all():
        raise ValueError("nothing outside the objects to make a backdrop from")
    filled = _inpaint(z, hole)
    np.maximum(filled, z, out=filled, where=union)  # behind the visible surface, never in front of it
    return filled


def fill_colour(rgb: np.ndarray, union: np.ndarray) -> np.ndarray:
    """The photo (H, W, 3) uint8 with the objects' pixels (and their one-pixel fringe) painted over
    from the colours around them."""
    return _inpaint(np.ascontiguousarray(rgb, dtype=np.uint8), _dilate(union, 1))


def read_rgb(path: str | Path, shape: tuple[int, int]) -> np.ndarray | None:
    """The photo as (H, W, 3) uint8 RGB, or None when OpenCV cannot read it at ``shape``
    (the backdrop then shows the photo itself behind the objects)."""
    import cv2

    try:
        data = np.fromfile(str(path), dtype=np.uint8)  # not imread: it fails on non-ASCII paths on Windows
    except OSError:
        return None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None or image.shape[:2] != tuple(shape):
        return None
    return np.ascontiguousarray(image[:, :, ::-1])


def write_rgb(path: Path, rgb: np.ndarray) -> None:
    """Save (H, W, 3) uint8 RGB as a PNG (raises OSError)."""
    import cv2

    # light compression: written once per result, where a 12 MP photo at the default level takes seconds
    ok, data = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise OSError(f"cannot encode {path.name}")
    tmp = path.with_name(path.name + ".part")
    data.tofile(str(tmp))
    tmp.replace(path)


def plane_depth(filled: np.ndarray, union: np.ndarray, far: float) -> float:
    """Depth of a flat backdrop: the backdrop pixels' median, but behind ``far`` (the farthest
    object point)."""
    outside = filled[~union]
    median = float(np.median(outside)) if outside.size else float(np.median(filled))
    return max(median, BEHIND * float(far))


def backdrop_mesh(mode: str, filled: np.ndarray, union: np.ndarray, camera: CameraModel, settings: MeshSettings,
                  far: float) -> MeshData:
    """The backdrop's mesh over the whole frame (``mode`` ``plane`` or ``relief``), from the
    filled depth of ``fill_depth``; ``far`` is the farthest object point's depth."""
    if mode not in (Backdrop.PLANE, Backdrop.RELIEF):
        raise ValueError(f"unknown backdrop {mode!r}; expected plane or relief")
    if mode == Backdrop.PLANE:
        z = np.full(filled.shape, plane_depth(filled, union, far), dtype=np.float32)
    else:
        z = filled
    flat = replace(settings, back=Back.OPEN, tear_threshold=NO_TEAR, outline_alpha=False)
    return build_object_mesh_full(z, camera, flat)


def build_object_mesh_full(z: np.ndarray, camera: CameraModel, settings: MeshSettings) -> MeshData:
    """The builder's mesh of the whole frame."""
    from .plane import build_object_mesh

    return build_object_mesh(np.ones(z.shape, dtype=bool), z, camera, settings)
