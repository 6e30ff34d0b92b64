"""Turn the worker's depth map into camera-axis distances (scene units)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import CameraModel, MeshSettings

# a drawing's inflated silhouettes (the drawing engine): each pixel's height towards the camera above
# one base plane, as a fraction of the image's long side, in the proportions the drawing shows
RELIEF = "relief"
DEPTH_KINDS = ("metric", "relative_inverse", RELIEF)
# Robust range of a relative map: ignore this fraction of extreme pixels at each end.
RELATIVE_CLIP_PERCENT = 0.2
METRIC_BACKGROUND = 1e9  # metric values at or above this are "no surface" (e.g. a render's background)
METRIC_FLOOR = 1e-4  # metric values below this fraction of the farthest are treated as holes
PERCENTILE_SAMPLE = 2_000_000  # at most this many pixels set the robust range of a relative map
RELIEF_NEAREST = 0.8  # a relief reaches at most this share of the way from its base plane to the camera


def _fill_invalid(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Replace invalid pixels by the nearest valid one."""
    if valid.all():
        return values
    from scipy import ndimage

    idx = ndimage.distance_transform_edt(~valid, return_distances=False, return_indices=True)
    return values[idx[0], idx[1]]


def _union(masks: Sequence[np.ndarray] | np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    if masks is None:
        return np.ones(shape, dtype=bool)
    arr = masks if isinstance(masks, np.ndarray) and masks.ndim == 3 else None
    union = np.zeros(shape, dtype=bool)
    for m in arr if arr is not None else masks:
        m = np.asarray(m)
        if m.shape != shape:
            raise ValueError(f"mask shape {m.shape} does not match depth shape {shape}")
        union |= (m >= 0.5) if m.dtype != bool else m
    return union if union.any() else np.ones(shape, dtype=bool)


def _clean_metric(values: np.ndarray, masks: Sequence[np.ndarray] | np.ndarray | None) -> np.ndarray | None:
    """A metric map with no hole at all (every value finite, positive, below the background
    and above the near-zero floor), as float32; None when it has holes to fill. Two reductions
    and one per mask instead of building validity maps: a worker's map is usually clean."""
    lo, hi = float(values.min()), float(values.max())  # NaN when any value is NaN
    if not (lo > 0 and hi < METRIC_BACKGROUND):
        return None
    top = -np.inf  # the floor is relative to the farthest value inside the masks (all of them: as _union)
    for m in masks if masks is not None else ():
        m = np.asarray(m)
        if m.shape != values.shape:
            return None  # the full path reports it
        top = max(top, float(values.max(where=m if m.dtype == bool else m >= 0.5, initial=-np.inf)))
    if not lo > METRIC_FLOOR * (top if top > -np.inf else hi):
        return None
    return values.astype(np.float32, copy=False)


def measured_depth(depth: np.ndarray, kind: str) -> np.ndarray:
    """Which pixels of a worker's depth map hold a value (bool (H, W)): ``scene_depth`` fills the
    others (a render's background, a sensor's holes) from their neighbours."""
    values = np.asarray(depth)
    known = np.isfinite(values)
    if kind.replace("-", "_") == "metric":
        known &= values > 0
        known &= values < METRIC_BACKGROUND
    return known


def scene_depth(
    depth: np.ndarray,
    kind: str,
    masks: Sequence[np.ndarray] | np.ndarray | None,
    settings: MeshSettings,
    camera: CameraModel | None = None,
) -> np.ndarray:
    """Distance along the camera axis (positive, scene units) for every pixel.

    ``metric`` maps pass through (holes, non-positive and near-zero values filled from the
    nearest valid pixel).
    ``relative_inverse`` maps are normalised once over the pixels of all ``masks``
    together, so objects keep their relative placement: the nearest value lands at
    ``settings.distance`` and the farthest at ``settings.distance + settings.depth_range``.
    Such maps (MiDaS, Depth Anything) are affine in inverse depth (disparity), so the
    mapping is affine in ``1 / z``, not in ``z``: that keeps planes planar, where a
    linear mapping would bend them. The extreme 0.2 % at each end are clipped so a few
    outlier pixels cannot squash the scene. Pixels outside the masks follow the same
    mapping, clamped to ``[distance, distance + 2 * depth_range]``.
    ``relief`` maps (a drawing's) hold heights towards the camera above one base plane, in image
    long sides: a relief as high as the object is wide in the image comes out as deep as it is wide
    in the scene, whatever ``settings.depth_range`` says; the nearest point lands at
    ``settings.distance``. ``camera`` (default: 50 mm on the map's size) turns image sizes into
    scene sizes for them; the other kinds are already per pixel.
    """
    values = np.asarray(depth)
    if values.dtype != np.float32:  # float32 maps (the worker's) stay float32: at 12 MP copies cost
        values = values.astype(np.float64)
    if values.ndim != 2:
        raise ValueError(f"depth must be a 2D array, got shape {values.shape}")
    kind = kind.replace("-", "_")
    if kind not in DEPTH_KINDS:
        raise ValueError(f"unknown depth kind {kind!r}; expected one of {DEPTH_KINDS}")
    if kind == "metric":
        return _metric_depth(values, masks)
    if kind == RELIEF:
        return _relief_depth(values, masks, settings, camera)
    return _relative_depth(values, masks, settings)


def _metric_depth(values: np.ndarray, masks: Sequence[np.ndarray] | np.ndarray | None) -> np.ndarray:
    """A metric map with its holes, background and near-zero values filled (float32)."""
    if values.size:
        clean = _clean_metric(values, masks)
        if clean is not None:
            return clean
    # non-positive values are holes; renderers write ~1e10 for "nothing here" (Blender's Z pass)
    valid = values > 0  # False on NaN too
    valid &= values < METRIC_BACKGROUND  # and on infinities
    inside = valid & _union(masks, values.shape)
    where = inside if inside.any() else valid
    if where.any():  # near-zero distances are sensor garbage that would put vertices on the camera
        valid &= values > METRIC_FLOOR * float(values.max(where=where, initial=-np.inf))
    return _filled(values, valid).astype(np.float32, copy=False)


def _filled(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``values`` with the pixels not ``valid`` filled from their neighbours; ValueError when none is."""
    if not valid.any():
        raise ValueError("the depth map holds no valid values")
    return _fill_invalid(values, valid)


def _relative_depth(
    values: np.ndarray, masks: Sequence[np.ndarray] | np.ndarray | None, settings: MeshSettings,
) -> np.ndarray:
    """A relative inverse-depth map mapped affinely in ``1 / z`` onto the settings' depth span
    (see ``scene_depth``)."""
    valid = np.isfinite(values)
    values = _filled(values, valid)
    near = float(settings.distance)
    if not np.isfinite(near) or near <= 0:
        raise ValueError(f"settings.distance must be positive, got {settings.distance}")
    span = max(0.0, float(settings.depth_range)) if np.isfinite(settings.depth_range) else 0.0
    far = near + span
    union = _union(masks, values.shape)
    sample = values[union & valid]
    if sample.size == 0:
        sample = values[valid]
    if sample.size > PERCENTILE_SAMPLE:  # the robust range from an even spread of pixels (12 MP: 1 in 6)
        sample = sample[::-(-sample.size // PERCENTILE_SAMPLE)]
    lo, hi = np.percentile(sample.astype(np.float64), [RELATIVE_CLIP_PERCENT, 100.0 - RELATIVE_CLIP_PERCENT])
    if not hi > lo or span == 0.0:
        return np.full(values.shape, near, dtype=np.float32)
    inv_near, inv_far = 1.0 / near, 1.0 / far
    t_floor = (1.0 / (near + 2.0 * span) - inv_far) / (inv_near - inv_far)
    # in place, float32 (at 12 MP every float64 temporary is 96 MB): t = 1 nearest, 0 farthest
    t = np.subtract(values, lo, dtype=np.float32)
    t *= np.float32(1.0 / (hi - lo))
    np.clip(t, t_floor, 1.0, out=t)  # outside the masks: no farther than near + 2 * range
    np.maximum(t, 0.0, out=t, where=union)  # inside: within [near, far]
    t *= np.float32(inv_near - inv_far)
    t += np.float32(inv_far)
    return np.reciprocal(t, out=t)


def _relief_depth(
    values: np.ndarray, masks: Sequence[np.ndarray] | np.ndarray | None, settings: MeshSettings,
    camera: CameraModel | None,
) -> np.ndarray:
    """A relief map (see ``scene_depth``) as distances: a height ``v`` (image long sides) above a
    base plane at distance ``B`` lies at ``B * (1 - v * long / focal_px)``, its size in the scene
    at the base plane's scale, so every object keeps the proportions it has in the image."""
    near = float(settings.distance)
    if not np.isfinite(near) or near <= 0:
        raise ValueError(f"settings.distance must be positive, got {settings.distance}")
    h, w = values.shape
    cam = camera if camera is not None else CameraModel(w, h)
    per_long = float(max(cam.width, cam.height)) / cam.focal_px  # base-plane distances per image long side
    share = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
    share *= np.float32(per_long)
    np.clip(share, 0.0, RELIEF_NEAREST, out=share)
    top = float(share.max(where=_union(masks, values.shape), initial=0.0))
    base = near / (1.0 - top)  # the nearest point at the distance set
    np.subtract(np.float32(1.0), share, out=share)
    share *= np.float32(base)
    return share
