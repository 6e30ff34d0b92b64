"""The material that shows the photo through the "Photo" UV map."""

from __future__ import annotations

import bpy

PHOTO_UV = "Photo"


def make_photo_material(name: str, photo: bpy.types.Image) -> bpy.types.Material:
    """Image Texture (photo, UV "Photo") -> Principled BSDF Base Color -> Material Output."""
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
    return mat
