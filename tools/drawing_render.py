"""Industrial-design drawings rendered with Blender's Freestyle, and their ground-truth masks.

The object is shaded pure white (a white emission override on a transparent film, laid on white
paper), so only the Freestyle strokes show, in the ID line language: silhouettes, borders and the
external contour thick; creases and material boundaries medium; contours and suggestive contours
thin; optionally the hidden edges thin and dashed (the X-ray style). The same render's Z pass
gives the object's exact silhouette.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import bpy
import numpy as np
from mathutils import Vector
from render_util import render_rgba_depth, use_cycles

OUTLINE_PX = 4.0  # thick line width; medium is half of it, thin a quarter
FOCAL_MM = 50.0  # the pipeline's camera when a drawing carries no EXIF focal length
FILL = 0.6  # the object spans about this much of the shorter image side


def _line_set(layer: bpy.types.ViewLayer, name: str, width: float, edges: tuple[str, ...],
              hidden: bool = False, grey: float = 0.0) -> None:
    ls = layer.freestyle_settings.linesets.new(name)
    ls.select_by_visibility = True
    ls.visibility = "HIDDEN" if hidden else "VISIBLE"
    ls.select_by_edge_types = True
    for attr in ("silhouette", "border", "crease", "contour", "external_contour", "material_boundary",
                 "suggestive_contour", "ridge_valley", "edge_mark"):
        setattr(ls, f"select_{attr}", attr in edges)
    style = bpy.data.linestyles.new(name)
    style.thickness = width
    style.thickness_position = "CENTER"
    style.color = (grey, grey, grey)
    if hidden:
        style.use_dashed_line = True
        style.dash1, style.gap1 = 8, 5
    ls.linestyle = style


def setup_scene(width: int, height: int, xray: bool = False) -> bpy.types.Scene:
    """An empty scene set up for Freestyle drawings: Cycles (one sample: the strokes are drawn by
    Freestyle, the surface is flat white), the line sets of the ID line language."""
    bpy.ops.wm.read_homefile(app_template="")
    for ob in list(bpy.data.objects):
        bpy.data.objects.remove(ob)
    scene = bpy.context.scene
    use_cycles(scene, width, height, samples=1)
    scene.view_settings.view_transform = "Standard"
    scene.render.use_freestyle = True
    scene.render.line_thickness_mode = "ABSOLUTE"
    scene.render.line_thickness = 1.0
    layer = scene.view_layers[0]
    layer.use_freestyle = True
    settings = layer.freestyle_settings
    settings.use_culling = False
    settings.use_smoothness = True
    settings.use_suggestive_contours = True
    settings.crease_angle = math.radians(140.0)
    while len(settings.linesets):
        settings.linesets.remove(settings.linesets[0])
    _line_set(layer, "outline", OUTLINE_PX, ("silhouette", "border", "external_contour"))
    _line_set(layer, "internal", OUTLINE_PX / 2, ("crease", "material_boundary"))
    _line_set(layer, "contour", OUTLINE_PX / 4, ("contour", "suggestive_contour"), grey=0.35)
    if xray:
        _line_set(layer, "hidden", OUTLINE_PX / 4, ("silhouette", "border", "crease"), hidden=True)
    white = bpy.data.materials.new("Paper White")
    white.use_nodes = True
    nodes = white.node_tree.nodes
    nodes.clear()
    emit = nodes.new("ShaderNodeEmission")
    emit.inputs["Color"].default_value = (1.0, 1.0, 1.0, 1.0)
    emit.inputs["Strength"].default_value = 1.0
    white.node_tree.links.new(emit.outputs[0], nodes.new("ShaderNodeOutputMaterial").inputs["Surface"])
    layer.material_override = white
    cam_data = bpy.data.cameras.new("Drawing Camera")
    cam_data.lens = FOCAL_MM
    cam_data.sensor_width = 36.0
    cam_data.sensor_fit = "AUTO"
    cam = bpy.data.objects.new("Drawing Camera", cam_data)
    scene.collection.objects.link(cam)
    scene.camera = cam
    return scene


def mesh_object(name: str, vertices: np.ndarray, triangles: np.ndarray) -> bpy.types.Object:
    """A mesh object from numpy arrays (Z up), linked to the scene."""
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(vertices))
    mesh.vertices.foreach_set("co", np.asarray(vertices, np.float32).ravel())
    tris = np.asarray(triangles, np.int32)
    mesh.loops.add(tris.size)
    mesh.loops.foreach_set("vertex_index", tris.ravel())
    mesh.polygons.add(len(tris))
    mesh.polygons.foreach_set("loop_start", np.arange(0, tris.size, 3, dtype=np.int32))
    mesh.update()
    mesh.validate()
    ob = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(ob)
    return ob


def template_objects(blend: Path, names: list[str] | None = None) -> list[bpy.types.Object]:
    """The template objects of ``blend`` (all, or those named), appended, unlinked from any scene."""
    with bpy.data.libraries.load(str(blend), link=False) as (src, dst):
        dst.objects = [n for n in src.objects if names is None or n in names]
    return [ob for ob in dst.objects if ob is not None and ob.type == "MESH"]


def aim(scene: bpy.types.Scene, ob: bpy.types.Object, azimuth: float, elevation: float) -> None:
    """Point the camera at ``ob`` from (azimuth, elevation) degrees, the object filling FILL."""
    corners = [ob.matrix_world @ Vector(c) for c in ob.bound_box]
    lo = Vector(np.min(corners, axis=0))
    hi = Vector(np.max(corners, axis=0))
    centre, size = (lo + hi) / 2, (hi - lo).length
    w, h = scene.render.resolution_x, scene.render.resolution_y
    focal_px = FOCAL_MM / 36.0 * max(w, h)
    dist = size * focal_px / (FILL * min(w, h))
    az, el = math.radians(azimuth), math.radians(elevation)
    direction = Vector((math.cos(el) * math.sin(az), -math.cos(el) * math.cos(az), math.sin(el)))
    cam = scene.camera
    cam.location = centre + direction * dist
    cam.rotation_euler = (-direction).to_track_quat("-Z", "Y").to_euler()
    cam.data.clip_start, cam.data.clip_end = dist * 0.01, dist * 10.0


def render_drawing(scene: bpy.types.Scene) -> tuple[np.ndarray, np.ndarray]:
    """(drawing RGB uint8 on white paper, ground-truth silhouette mask) of what the camera sees."""
    with tempfile.TemporaryDirectory() as tmp:
        rgba, z = render_rgba_depth(scene, Path(tmp))
    alpha = np.clip(rgba[..., 3:4], 0.0, 1.0)
    rgb = np.clip(rgba[..., :3] + (1.0 - alpha), 0.0, 1.0)  # premultiplied, over white paper
    return (rgb * 255.0 + 0.5).astype(np.uint8), z < 1e9
