"""Scenes of objects standing on a textured floor, rendered by Cycles with ground truth, and the
flat render that checks a reconstruction against its photo (shared by the tests and the backdrop
benchmark).

``render_floor_scene`` writes ``photo.png``, ``labels.png`` (0 floor, k the k-th object, from
the object-index pass), ``depth.npy`` (Cycles' Z pass: distance along the camera axis) into a
folder; ``flat_render`` renders the scene camera with every image-textured material shown
as the texture's colour alone (an emission), so a faithful reconstruction gives back the photo.
"""

from __future__ import annotations

import math
from pathlib import Path

import bpy
import numpy as np
from mathutils import Vector
from PIL import Image
from render_util import render_passes, use_cycles

FLOOR_SIZE = 200.0


def floor(scene: bpy.types.Scene) -> bpy.types.Object:
    """A large floor at z = 0 with a procedural, photo-like texture (checker under noise)."""
    mesh = bpy.data.meshes.new("Floor")
    h = FLOOR_SIZE / 2
    mesh.from_pydata([(-h, -h, 0), (h, -h, 0), (h, h, 0), (-h, h, 0)], [], [(0, 1, 2, 3)])
    obj = bpy.data.objects.new("Floor", mesh)
    mat = bpy.data.materials.new("Floor")
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes["Principled BSDF"]
    checker = nodes.new("ShaderNodeTexChecker")
    checker.inputs["Scale"].default_value = 60.0
    checker.inputs["Color1"].default_value = (0.55, 0.42, 0.3, 1)
    checker.inputs["Color2"].default_value = (0.35, 0.3, 0.25, 1)
    noise = nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = 40.0
    mix = nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    mix.blend_type = "MULTIPLY"
    mix.inputs["Factor"].default_value = 0.5
    links.new(checker.outputs["Color"], mix.inputs[6])
    links.new(noise.outputs["Color"], mix.inputs[7])
    links.new(mix.outputs[2], bsdf.inputs["Base Color"])
    mesh.materials.append(mat)
    scene.collection.objects.link(obj)
    return obj


def stand(obj: bpy.types.Object, size: float, x: float, y: float, turn: float) -> None:
    """Scale ``obj`` to ``size`` (longest side), turn it about z and stand it on the floor at (x, y)."""
    bpy.context.view_layer.update()
    corners = np.array([obj.matrix_world @ Vector(c) for c in obj.bound_box])
    s = size / float((corners.max(0) - corners.min(0)).max())
    obj.scale = [c * s for c in obj.scale]
    obj.rotation_euler.z += turn
    bpy.context.view_layer.update()
    v = np.array([obj.matrix_world @ Vector(c) for c in obj.bound_box])
    mesh_v = np.empty(len(obj.data.vertices) * 3, np.float32)
    obj.data.vertices.foreach_get("co", mesh_v)
    m = np.array(obj.matrix_world)
    world = mesh_v.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3]
    centre = 0.5 * (v.min(0) + v.max(0))
    obj.location = (obj.location.x + x - centre[0], obj.location.y + y - centre[1], obj.location.z - world[:, 2].min())


def camera(scene: bpy.types.Scene, distance: float, elevation: float, lens: float = 35.0,
           target: tuple[float, float, float] = (0.0, 0.0, 0.3)) -> bpy.types.Object:
    cam = bpy.data.objects.new("GT Camera", bpy.data.cameras.new("GT Camera"))
    cam.data.lens = lens
    cam.data.sensor_fit = "AUTO"
    cam.data.sensor_width = 36.0
    e = math.radians(elevation)
    t = Vector(target)
    cam.location = t + Vector((0.0, -distance * math.cos(e), distance * math.sin(e)))
    cam.rotation_euler = (t - cam.location).to_track_quat("-Z", "Y").to_euler()
    scene.collection.objects.link(cam)
    scene.camera = cam
    return cam


def light(scene: bpy.types.Scene) -> None:
    sun = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
    sun.rotation_euler = (0.6, 0.2, 0.4)
    sun.data.energy = 3.0
    scene.collection.objects.link(sun)
    world = bpy.data.worlds.new("World")
    world.color = (0.3, 0.3, 0.3)
    scene.world = world


def render_floor_scene(scene: bpy.types.Scene, objects: list[bpy.types.Object], folder: Path, width: int,
                       height: int, samples: int = 4) -> dict[str, np.ndarray]:
    """Render the scene camera; returns ``rgb`` (H, W, 3) uint8, ``labels`` (H, W) uint8 and
    ``depth`` (H, W) float32, top row first, and writes them into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    use_cycles(scene, width, height, samples=samples)
    scene.render.film_transparent = False
    scene.view_settings.view_transform = "Standard"
    for k, obj in enumerate(objects, start=1):
        obj.pass_index = k
    scene.view_layers[0].use_pass_object_index = True
    scene.render.filepath = str(folder / "render.png")
    scene.render.image_settings.file_format = "PNG"
    planes = render_passes(scene, folder, {"depth": "Depth", "index": "IndexOB"}, write_still=True)
    planes = {name: values[..., 0] for name, values in planes.items()}
    rgb = np.asarray(Image.open(folder / "render.png").convert("RGB"))
    labels = np.rint(planes["index"]).astype(np.uint8)
    depth = planes["depth"].astype(np.float32)
    Image.fromarray(rgb).save(folder / "photo.png")
    Image.fromarray(labels).save(folder / "labels.png")
    np.save(folder / "depth.npy", depth)
    return {"rgb": rgb, "labels": labels, "depth": depth}


def flat_materials() -> None:
    """Every material whose Base Color comes from an Image Texture shows that colour alone (an
    emission of strength 1): a render then shows the textures as they are, with no lighting."""
    for mat in bpy.data.materials:
        if not mat.use_nodes:
            continue
        tree = mat.node_tree
        tex = next((n for n in tree.nodes if n.type == "TEX_IMAGE" and n.image is not None
                    and any(link.to_socket.name == "Base Color" for link in n.outputs["Color"].links)), None)
        out = next((n for n in tree.nodes if n.type == "OUTPUT_MATERIAL"), None)
        if tex is None or out is None:
            continue
        emit = tree.nodes.new("ShaderNodeEmission")
        tree.links.new(tex.outputs["Color"], emit.inputs["Color"])
        tree.links.new(emit.outputs["Emission"], out.inputs["Surface"])


def flat_render(scene: bpy.types.Scene, folder: Path, engine: str = "CYCLES", samples: int = 1) -> np.ndarray:
    """Render the scene camera with flat textures (Cycles emission, or Workbench flat light and
    texture colour): (H, W, 3) uint8, top row first."""
    folder.mkdir(parents=True, exist_ok=True)
    scene.use_nodes = False
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0
    if engine == "CYCLES":
        flat_materials()
        use_cycles(scene, scene.render.resolution_x, scene.render.resolution_y, samples=samples)
        scene.render.film_transparent = False
        if scene.world is not None:
            scene.world.color = (0, 0, 0)
    else:
        scene.render.engine = "BLENDER_WORKBENCH"
        shading = scene.display.shading
        shading.light = "FLAT"
        shading.color_type = "TEXTURE"
        scene.display.render_aa = "OFF"
        scene.render.film_transparent = False
    scene.render.filepath = str(folder / f"flat-{engine.lower()}.png")
    scene.render.image_settings.file_format = "PNG"
    bpy.ops.render.render(write_still=True)
    return np.asarray(Image.open(scene.render.filepath).convert("RGB"))


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio (dB) of two uint8 images, over ``where`` (default: every pixel)."""
    d = a.astype(np.float64) - b.astype(np.float64)
    if where is not None:
        d = d[where]
    mse = float(np.mean(d * d))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)
