"""The materials of the reconstructed objects: the photo through the "Photo" UV map, optionally
cut out by the object's mask (the outline alpha), or for a drawing light clay with the drawing's
lines drawn on it (a line-art texture on a 3D surface looks odd)."""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

PHOTO_UV = "Photo"
ALPHA_NODE = "Outline Alpha"


def make_photo_material(name: str, photo: bpy.types.Image, mask: bpy.types.Image | None = None) -> bpy.types.Material:
    """Image Texture (photo, UV "Photo") -> Principled BSDF Base Color -> Material Output.

    With ``mask`` (the object's mask image, read as data) the mask is sampled through the
    same UVs into the BSDF's Alpha, so the soft edge of the mask, not the mesh's polygon
    outline, decides where the object ends, and wherever the mask is 0 the background shows.
    EEVEE draws it dithered: no sorting problems between the front and back of a closed
    object, shadows follow the alpha, and the edge converges to the mask's soft ramp;
    Cycles reads the Principled alpha as it is.
    """
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    tree = mat.node_tree
    tree.nodes.clear()
    out = tree.nodes.new("ShaderNodeOutputMaterial")
    bsdf = tree.nodes.new("ShaderNodeBsdfPrincipled")
    tex = tree.nodes.new("ShaderNodeTexImage")
    uv = tree.nodes.new("ShaderNodeUVMap")
    uv.uv_map = PHOTO_UV
    tex.image = photo
    tex.interpolation = "Linear"
    tex.extension = "EXTEND"
    bsdf.inputs["Roughness"].default_value = 0.8
    tree.links.new(uv.outputs["UV"], tex.inputs["Vector"])
    tree.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    tree.links.new(bsdf.outputs["BSDF"], out.inputs["Surface"])
    uv.location = (-700, 0)
    tex.location = (-450, 0)
    bsdf.location = (-150, 0)
    out.location = (200, 0)
    if mask is not None:
        alpha = tree.nodes.new("ShaderNodeTexImage")
        alpha.name = alpha.label = ALPHA_NODE
        alpha.image = mask
        alpha.interpolation = "Linear"  # a 0/1 mask becomes a one-pixel soft ramp
        alpha.extension = "EXTEND"
        alpha.location = (-450, -300)
        tree.links.new(uv.outputs["UV"], alpha.inputs["Vector"])
        tree.links.new(alpha.outputs["Color"], bsdf.inputs["Alpha"])
        mat.surface_render_method = "DITHERED"
        mat.use_transparent_shadow = True
    return mat


CLAY_COLOUR = (0.72, 0.70, 0.66, 1.0)
LINE_COLOUR = (0.03, 0.03, 0.035, 1.0)
# darkness of each class of the line-class map (0 paper, 1 outline, 2 internal, 3 contour, 4 annotation)
LINE_INK = np.array([0.0, 1.0, 0.9, 0.55, 0.0], np.float32)
LINES_NODE = "Drawing Lines"


def make_line_ink_image(name: str, lines_path: str | Path) -> bpy.types.Image:
    """A packed one-channel-in-RGB image of how dark the drawing's lines are, from the worker's
    line-class map (``lines.png``); raises RuntimeError when it cannot be read."""
    classes = bpy.data.images.load(str(lines_path), check_existing=False)
    try:
        classes.colorspace_settings.is_data = True
        w, h = classes.size
        px = np.empty(w * h * 4, np.float32)
        classes.pixels.foreach_get(px)
    finally:
        bpy.data.images.remove(classes)
    index = np.clip(np.rint(px[0::4] * 255.0).astype(np.int64), 0, len(LINE_INK) - 1)
    ink = np.repeat(LINE_INK[index], 4)
    ink[3::4] = 1.0
    image = bpy.data.images.new(name, w, h, alpha=False)
    try:
        image.colorspace_settings.is_data = True
        image.pixels.foreach_set(ink)
        image.pack()
    except BaseException:
        bpy.data.images.remove(image)
        raise
    return image


def make_clay_lines_material(name: str, ink: bpy.types.Image) -> bpy.types.Material:
    """Light clay (Principled BSDF) darkened to the line colour where the drawing has lines:
    ``ink`` (``make_line_ink_image``) sampled through the "Photo" UVs mixes the two."""
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    mat.diffuse_color = CLAY_COLOUR  # the Solid viewport's object colour
    tree = mat.node_tree
    tree.nodes.clear()
    out = tree.nodes.new("ShaderNodeOutputMaterial")
    bsdf = tree.nodes.new("ShaderNodeBsdfPrincipled")
    mix = tree.nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    tex = tree.nodes.new("ShaderNodeTexImage")
    tex.name = tex.label = LINES_NODE
    uv = tree.nodes.new("ShaderNodeUVMap")
    uv.uv_map = PHOTO_UV
    tex.image = ink
    tex.interpolation = "Linear"
    tex.extension = "EXTEND"
    a, b, factor, result = (_enabled(mix.inputs, "A"), _enabled(mix.inputs, "B"), _enabled(mix.inputs, "Factor"),
                            _enabled(mix.outputs, "Result"))
    a.default_value = CLAY_COLOUR
    b.default_value = LINE_COLOUR
    bsdf.inputs["Roughness"].default_value = 0.6
    tree.links.new(uv.outputs["UV"], tex.inputs["Vector"])
    tree.links.new(tex.outputs["Color"], factor)
    tree.links.new(result, bsdf.inputs["Base Color"])
    tree.links.new(bsdf.outputs["BSDF"], out.inputs["Surface"])
    for node, x in ((uv, -900), (tex, -650), (mix, -350), (bsdf, -150), (out, 200)):
        node.location = (x, 0)
    return mat


def _enabled(sockets, name: str):
    """The socket called ``name`` that the node's current data type uses (the Mix node has one per type)."""
    return next(s for s in sockets if s.name == name and s.enabled)
