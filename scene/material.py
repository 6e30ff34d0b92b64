"""The material that shows the photo through the "Photo" UV map, optionally cut out by the
object's mask (the outline alpha)."""

from __future__ import annotations

import bpy

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
