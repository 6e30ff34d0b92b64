"""Depth proportions from the fitted template (issue 20, part 4).

A relative depth map (a learned model's, the classic engine's relief) has no scale of its own:
the build spreads it over the **Depth Range** setting, so a mug may come out as deep as a plate or
as a bottle. The template match fits that scale (``Match.depth_scale``: the object's relief over
the posed template's), so once a template is placed the reconstruction's depth about the object's
median distance is divided by it, along the camera rays: the object becomes about as deep as the
template that fits it, and the photo still projects onto it exactly. A metric map keeps its own
depth (its ``depth_scale`` is 1).

The factor applied is stored on the reconstruction, so swapping to another template rescales it
by the ratio, and ``depth_from_template(obj, 1.0)`` restores the original depth.
"""

from __future__ import annotations

import bpy
import numpy as np

SCALE_PROP = "monocle_depth_scale"  # on the reconstruction: the relief factor divided out (1 = as built)
CENTRE_PROP = "monocle_depth_centre"  # ... about this camera distance (scene units)
SCALE_LIMITS = (0.05, 20.0)  # factors outside are a failed fit, not a proportion


def applied_scale(obj: bpy.types.Object) -> float:
    """The relief factor divided out of the reconstruction ``obj`` (1: its depth as built)."""
    return float(obj.get(SCALE_PROP, 1.0))


def _local_to_camera(obj: bpy.types.Object, camera_obj: bpy.types.Object) -> np.ndarray:
    return np.array(camera_obj.matrix_world.inverted() @ obj.matrix_world, dtype=np.float64)


def _relief_image(obj: bpy.types.Object) -> bpy.types.Image | None:
    for mod in obj.modifiers:
        if mod.type == "DISPLACE" and mod.texture is not None and getattr(mod.texture, "image", None) is not None:
            return mod.texture.image
    return None


def depth_from_template(obj: bpy.types.Object, camera_obj: bpy.types.Object, scale: float,
                        centre: float | None = None) -> float:
    """Give the reconstruction ``obj`` the depth of its relief divided by ``scale`` about ``centre``
    (a camera distance; default: the one stored by an earlier call), undoing any factor applied
    before; returns the factor now applied (clamped to ``SCALE_LIMITS``).

    Vertices move along their camera rays and the relief image (the Displace modifier's camera-space
    vectors, along the same rays) is scaled alike, so every Relief strength keeps the proportions.
    """
    scale = float(np.clip(scale, *SCALE_LIMITS)) if np.isfinite(scale) else 1.0
    if centre is None:
        centre = float(obj.get(CENTRE_PROP, 0.0))
    step = applied_scale(obj) / scale  # undo the old factor, apply the new one
    if centre <= 0.0 or abs(step - 1.0) < 1e-9:
        return applied_scale(obj) if centre <= 0.0 else scale
    m = _local_to_camera(obj, camera_obj)
    mesh = obj.data
    co = np.empty(len(mesh.vertices) * 3, np.float64)
    mesh.vertices.foreach_get("co", co)
    local = co.reshape(-1, 3)
    cam = local @ m[:3, :3].T + m[:3, 3]
    z = np.maximum(-cam[:, 2], 1e-9)
    cam *= ((centre + (z - centre) * step) / z)[:, None]  # every vertex stays on its ray
    local = np.linalg.solve(m[:3, :3], (cam - m[:3, 3]).T).T
    mesh.vertices.foreach_set("co", local.astype(np.float32).ravel())
    mesh.update()
    image = _relief_image(obj)
    if image is not None:
        px = np.empty(len(image.pixels), np.float32)
        image.pixels.foreach_get(px)
        px = px.reshape(-1, 4)
        px[:, :3] *= np.float32(step)  # camera-space relief along the rays: a depth offset, scaled alike
        image.pixels.foreach_set(px.ravel())
        image.update()
        if image.packed_file is not None:
            image.pack()
    obj[SCALE_PROP] = scale
    obj[CENTRE_PROP] = float(centre)
    obj.update_tag()
    return scale
