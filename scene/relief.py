"""The live relief: a float image of displacement vectors read by a Displace modifier.

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
  ``pack()`` keeps the pixels in memory. Handing ``pack(data=...)`` an EXR encoded with
  numpy is quicker (~10 against 22-26 ms at 1M texels), but the image must then become
  a FILE image, which drops its pixels and decodes them again on first use (31-65 ms);
- direction ``RGB_TO_XYZ`` in ``LOCAL`` space: the object's axes are the camera's,
  and the vectors are camera-space, so displaced vertices stay on their rays.

One modifier displaces the whole object at the strength the artist sets: every vertex
reads a texel of its own (``geometry/texels.py``), and the closed back's texels hold its
mirrored (negated) relief, so no vertex group and no second modifier are needed, which
at 1M vertices saved about a fifth of the build (``VertexGroup.add`` costs ~90 ns per
member).

The geometry's selections (front, back, seam) are stored as boolean point attributes,
written in one raw copy each (Edit Mode > Select > By Attribute, Geometry Nodes).
"""

from __future__ import annotations

import logging

import bpy
import numpy as np

from ..geometry import MeshData
from ..geometry.texels import texel_layout

log = logging.getLogger(__name__)

RELIEF_UV = "Relief"
RELIEF_MODIFIER = "Relief"


def sample_nearest(texture: np.ndarray, uvs: np.ndarray) -> np.ndarray:
    """What Blender's Displace reads with interpolation off: the texel under each UV.

    ``texture`` is (h, w, C) with row 0 at v = 0 (Blender's bottom-up order).
    """
    h, w = texture.shape[:2]
    col = np.clip(np.floor(uvs[:, 0].astype(np.float64) * w).astype(np.int64), 0, w - 1)
    row = np.clip(np.floor(uvs[:, 1].astype(np.float64) * h).astype(np.int64), 0, h - 1)
    return texture[row, col]


def relief_layout(data: MeshData) -> tuple[np.ndarray, np.ndarray]:
    """The (h, w, 4) bottom-up texture and per-vertex relief UVs that reproduce ``data.relief``.

    Uses the mesh's own ``relief_texture`` when sampling it at ``relief_uvs`` gives back every
    vertex's relief; otherwise lays out one texel per vertex, which is always exact.
    """
    relief = np.asarray(data.relief, dtype=np.float32).reshape(-1, 3)
    if data.relief_texture is not None and data.relief_uvs is not None and data.relief_texture.size:
        texture = np.asarray(data.relief_texture, dtype=np.float32)
        uvs = np.asarray(data.relief_uvs, dtype=np.float32).reshape(-1, 2)
        tol = 1e-6 * max(1.0, float(np.abs(relief).max(initial=0.0)))
        if (texture.ndim == 3 and texture.shape[2] == 4 and uvs.shape[0] == relief.shape[0]
                and float(np.abs(sample_nearest(texture, uvs)[:, :3] - relief).max(initial=0.0)) <= tol):
            return texture, uvs
        log.warning("relief texture does not reproduce the relief at its UVs; using one texel per vertex")
    return texel_layout(relief)


def make_relief_image(name: str, texture: np.ndarray) -> bpy.types.Image:
    """A packed float image (Non-Color, OpenEXR full float) from Blender-ordered (h, w, 4) RGBA
    pixels (row 0 at the bottom), or (h, w, 3) RGB that gets alpha 1."""
    h, w = texture.shape[:2]
    if texture.shape[2] == 3:
        rgba = np.ones((h, w, 4), dtype=np.float32)
        rgba[..., :3] = texture
        texture = rgba
    image = bpy.data.images.new(name, w, h, alpha=False, float_buffer=True)
    try:
        image.colorspace_settings.is_data = True
        image.pixels.foreach_set(np.ascontiguousarray(texture, dtype=np.float32).ravel())
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


def add_relief_modifier(obj: bpy.types.Object, texture: bpy.types.Texture, strength: float) -> bpy.types.Modifier:
    """The Displace modifier that carries the relief (its strength is the artist's slider)."""
    mod = obj.modifiers.new(RELIEF_MODIFIER, "DISPLACE")
    mod.texture = texture
    mod.texture_coords = "UV"
    mod.uv_layer = RELIEF_UV
    mod.direction = "RGB_TO_XYZ"
    mod.space = "LOCAL"
    mod.mid_level = 0.0
    mod.strength = strength
    return mod


def add_own_driver(obj: bpy.types.Object, target_path: str, source_path: str, expression: str,
                   owner: bpy.types.ID | None = None) -> None:
    """Drive ``obj``'s ``target_path`` (or ``owner``'s: an ID of ``obj``'s, e.g. its mesh's shape keys)
    from ``obj``'s own ``source_path`` (the variable ``s``).

    Keep ``expression`` simple (e.g. ``-s``, ``1 - s``): Blender evaluates simple expressions
    without Python, so the driver works with auto-run of scripts off.
    """
    driver = (owner if owner is not None else obj).driver_add(target_path).driver
    driver.type = "SCRIPTED"
    var = driver.variables.new()
    var.name = "s"
    var.type = "SINGLE_PROP"
    var.targets[0].id_type = "OBJECT"
    var.targets[0].id = obj
    var.targets[0].data_path = source_path
    driver.expression = expression
