"""The live relief: a float image of displacement vectors read by Displace modifiers.

How the sampling is made exact (measured on Blender 4.5, see tests/test_scene.py):
- the texture is an Image Texture datablock with ``use_interpolation = False``,
  ``use_mipmap = False``, ``filter_type = 'BOX'`` and ``extension = 'EXTEND'``: the
  modifier then reads the single texel under ``floor(u * w), floor(v * h)``, so a
  vertex whose relief UV lies anywhere inside a texel gets that texel's value bit for bit
  (with interpolation on, a UV off the centre blends neighbouring texels, and even exact
  centres come back off by ~5e-6 of the value);
- ``use_clamp = False`` keeps negative values (Blender otherwise zeroes them), so no
  offset encoding is needed: ``mid_level = 0`` and displacement = strength * texel;
- the image holds float32 RGB, Non-Color, packed into the .blend as OpenEXR
  (``file_format = 'OPEN_EXR'`` before ``pack()`` stores full float, not half);
- direction ``RGB_TO_XYZ`` in ``LOCAL`` space: the object's axes are the camera's,
  and the vectors are camera-space, so displaced vertices stay on their rays.

The back half is displaced by a second modifier whose strength is driven to minus the
front's: texels shared by a front and a back vertex move them apart symmetrically.
"""

from __future__ import annotations

import logging
import math

import bpy
import numpy as np

from ..geometry import MeshData

log = logging.getLogger(__name__)

FRONT = "front"
BACK = "back"
RELIEF_UV = "Relief"
FRONT_MODIFIER = "Relief"
BACK_MODIFIER = "Relief Back"


def group_masks(data: MeshData) -> tuple[np.ndarray, np.ndarray]:
    """(front, back) bool per vertex; a missing front group means "everything not in back"."""
    n = data.num_vertices
    back = data.groups.get(BACK)
    back = np.zeros(n, dtype=bool) if back is None else np.asarray(back, dtype=bool)
    front = data.groups.get(FRONT)
    front = ~back if front is None else np.asarray(front, dtype=bool)
    return front, back


def displacement_sign(data: MeshData) -> np.ndarray:
    """Per-vertex factor applied to the sampled texel: +1 front, -1 back, 0 both or neither."""
    front, back = group_masks(data)
    return front.astype(np.float32) - back.astype(np.float32)


def sample_nearest(texture: np.ndarray, uvs: np.ndarray) -> np.ndarray:
    """What Blender's Displace reads with interpolation off: the texel under each UV.

    ``texture`` is (h, w, C) with row 0 at v = 0 (Blender's bottom-up order).
    """
    h, w = texture.shape[:2]
    col = np.clip(np.floor(uvs[:, 0].astype(np.float64) * w).astype(np.int64), 0, w - 1)
    row = np.clip(np.floor(uvs[:, 1].astype(np.float64) * h).astype(np.int64), 0, h - 1)
    return texture[row, col]


def per_vertex_layout(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One texel per vertex: a near-square bottom-up (h, w, 3) texture and texel-centre UVs (N, 2)."""
    n = values.shape[0]
    if n == 0 or not np.any(values):
        return np.zeros((1, 1, 3), dtype=np.float32), np.full((n, 2), 0.5, dtype=np.float32)
    w = int(math.ceil(math.sqrt(n)))
    h = int(math.ceil(n / w))
    texture = np.zeros((h * w, 3), dtype=np.float32)
    texture[:n] = values
    k = np.arange(n)
    uvs = np.stack([(k % w + 0.5) / w, (k // w + 0.5) / h], axis=1).astype(np.float32)
    return texture.reshape(h, w, 3), uvs


def relief_layout(data: MeshData) -> tuple[np.ndarray, np.ndarray]:
    """The bottom-up texture and per-vertex relief UVs that reproduce ``data.relief`` exactly.

    Uses the geometry's ``relief_texture`` (top row first, like the photo) when sampling it
    at ``relief_uvs`` gives back every vertex's relief; otherwise falls back to one texel per
    vertex, which is always exact.
    """
    relief = np.asarray(data.relief, dtype=np.float32).reshape(-1, 3)
    sign = displacement_sign(data)
    if data.relief_texture is not None and data.relief_uvs is not None and data.relief_texture.size:
        texture = np.ascontiguousarray(np.asarray(data.relief_texture, dtype=np.float32)[::-1, :, :3])
        uvs = np.asarray(data.relief_uvs, dtype=np.float32).reshape(-1, 2)
        got = sign[:, None] * sample_nearest(texture, uvs)
        tol = 1e-6 * max(1.0, float(np.abs(relief).max(initial=0.0)))
        if uvs.shape[0] == relief.shape[0] and float(np.abs(got - relief).max(initial=0.0)) <= tol:
            return texture, uvs
        log.warning("relief texture does not reproduce the relief at its UVs; using one texel per vertex")
    if np.any(relief[sign == 0]):
        raise ValueError("vertices in both or neither of the front/back groups cannot carry relief")
    return per_vertex_layout(sign[:, None] * relief)


def make_relief_image(name: str, texture: np.ndarray) -> bpy.types.Image:
    """A packed float image (Non-Color, OpenEXR full float) from a bottom-up (h, w, 3) array."""
    h, w = texture.shape[:2]
    image = bpy.data.images.new(name, w, h, alpha=False, float_buffer=True)
    try:
        image.colorspace_settings.is_data = True
        rgba = np.ones((h, w, 4), dtype=np.float32)
        rgba[..., :3] = texture
        image.pixels.foreach_set(rgba.ravel())
        image.file_format = "OPEN_EXR"
        image.pack()
    except BaseException:
        bpy.data.images.remove(image)
        raise
    return image


def make_relief_texture(name: str, image: bpy.types.Image) -> bpy.types.ImageTexture:
    """An Image Texture that samples ``image`` exactly (nearest texel, no clamping)."""
    tex = bpy.data.textures.new(name, "IMAGE")
    tex.image = image
    tex.use_interpolation = False
    tex.use_mipmap = False
    tex.filter_type = "BOX"
    tex.extension = "EXTEND"
    tex.use_clamp = False
    tex.use_alpha = False
    return tex


def add_relief_modifiers(
    obj: bpy.types.Object, texture: bpy.types.Texture, strength: float, front_group: str | None,
    back_group: str | None,
) -> tuple[bpy.types.Modifier, bpy.types.Modifier | None]:
    """The front Displace (strength the artist sets) and, with a back group, the back one driven
    to ``-strength``."""

    def displace(name: str, group: str | None, value: float) -> bpy.types.Modifier:
        mod = obj.modifiers.new(name, "DISPLACE")
        mod.texture = texture
        mod.texture_coords = "UV"
        mod.uv_layer = RELIEF_UV
        mod.direction = "RGB_TO_XYZ"
        mod.space = "LOCAL"
        mod.mid_level = 0.0
        mod.strength = value
        if group:
            mod.vertex_group = group
        return mod

    front = displace(FRONT_MODIFIER, front_group, strength)
    if not back_group:
        return front, None
    back = displace(BACK_MODIFIER, back_group, -strength)
    add_own_driver(obj, f'modifiers["{back.name}"].strength', f'modifiers["{front.name}"].strength', "-s")
    return front, back


def add_own_driver(obj: bpy.types.Object, target_path: str, source_path: str, expression: str) -> None:
    """Drive ``obj``'s ``target_path`` from its own ``source_path`` (the variable ``s``).

    Keep ``expression`` simple (e.g. ``-s``, ``1 - s``): Blender evaluates simple expressions
    without Python, so the driver works with auto-run of scripts off.
    """
    driver = obj.driver_add(target_path).driver
    driver.type = "SCRIPTED"
    var = driver.variables.new()
    var.name = "s"
    var.type = "SINGLE_PROP"
    var.targets[0].id_type = "OBJECT"
    var.targets[0].id = obj
    var.targets[0].data_path = source_path
    driver.expression = expression
