"""The Blender camera that matches the photo."""

from __future__ import annotations

import bpy
from mathutils import Matrix

from ..geometry import CameraModel

# Camera pose in the world: looking along +Y with +Z up (Blender's front view), so the
# camera's x/y/-z axes are the world's x/z/y. Objects keep the same axes (see build.py).
CAMERA_ROTATION = Matrix(((1.0, 0.0, 0.0), (0.0, 0.0, -1.0), (0.0, 1.0, 0.0)))


def camera_matrix(distance: float) -> Matrix:
    """World matrix of the camera placed ``distance`` in front of the world origin (on -Y)."""
    mat = CAMERA_ROTATION.to_4x4()
    mat.translation = (0.0, -distance, 0.0)
    return mat


def make_camera_data(name: str, model: CameraModel, photo: bpy.types.Image | None, clip_end: float) -> bpy.types.Camera:
    """Camera datablock with the photo's focal length (36 mm sensor on the long side, AUTO fit)
    and the photo as its background image."""
    cam = bpy.data.cameras.new(name)
    cam.type = "PERSP"
    cam.lens_unit = "MILLIMETERS"
    cam.lens = float(model.focal_mm)
    cam.sensor_fit = "AUTO"
    cam.sensor_width = float(model.sensor_mm)
    cam.sensor_height = float(model.sensor_mm) * min(model.width, model.height) / max(model.width, model.height)
    cam.shift_x = cam.shift_y = 0.0
    cam.clip_start = min(0.1, 0.01 * clip_end)
    cam.clip_end = max(100.0, clip_end)
    if photo is not None:
        bg = cam.background_images.new()
        bg.image = photo
        bg.frame_method = "FIT"
        bg.alpha = 1.0
        cam.show_background_images = True
    return cam


def set_render_size(scene: bpy.types.Scene, model: CameraModel, set_attr) -> None:
    """Render resolution = photo resolution, so the camera frame is the photo (``set_attr``
    records the old values for rollback)."""
    render = scene.render
    set_attr(render, "resolution_x", int(model.width))
    set_attr(render, "resolution_y", int(model.height))
    set_attr(render, "resolution_percentage", 100)
    set_attr(render, "pixel_aspect_x", 1.0)
    set_attr(render, "pixel_aspect_y", 1.0)
