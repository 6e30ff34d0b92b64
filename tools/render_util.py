"""Cycles helpers shared by the tests and the quality benchmark: a fast CPU setup and a render of the
scene camera's RGBA and Z pass."""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np


def use_cycles(scene: bpy.types.Scene, width: int, height: int, samples: int) -> None:
    """Fast, sharp CPU Cycles with a transparent film (alpha is the mask)."""
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = False
    scene.cycles.filter_width = 0.01
    scene.render.film_transparent = True
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100


def render_passes(scene: bpy.types.Scene, folder: Path, passes: dict[str, str], write_still: bool = False,
                  ) -> dict[str, np.ndarray]:
    """Render the scene camera through the compositor's file output; returns {slot: (H, W, 4) float32},
    top row first, for each ``slot: render layer socket`` of ``passes`` (``Depth``, ``Image``, ``IndexOB``...).

    Leaves ``<slot><frame>.exr`` in ``folder``; ``write_still`` also writes the render to
    ``scene.render.filepath``. Turn on the view layer's passes the sockets need first (Z is turned on here).
    """
    scene.view_layers[0].use_pass_z = True
    scene.use_nodes = True
    tree = scene.node_tree
    tree.nodes.clear()
    layers = tree.nodes.new("CompositorNodeRLayers")
    out = tree.nodes.new("CompositorNodeOutputFile")
    out.base_path = str(folder)
    out.format.file_format = "OPEN_EXR"
    out.format.color_depth = "32"
    out.format.color_mode = "RGBA"
    while len(out.file_slots):
        out.file_slots.remove(out.inputs[0])
    for k, (slot, socket) in enumerate(passes.items()):
        out.file_slots.new(slot)
        tree.links.new(layers.outputs[socket], out.inputs[k])
    tree.links.new(layers.outputs["Image"], tree.nodes.new("CompositorNodeComposite").inputs[0])
    bpy.ops.render.render(write_still=write_still)
    w = scene.render.resolution_x * scene.render.resolution_percentage // 100
    h = scene.render.resolution_y * scene.render.resolution_percentage // 100
    arrays = {}
    for name in passes:
        img = bpy.data.images.load(str(Path(folder) / f"{name}{scene.frame_current:04d}.exr"))
        px = np.empty(w * h * 4, np.float32)
        img.pixels.foreach_get(px)
        arrays[name] = px.reshape(h, w, 4)[::-1].copy()
        bpy.data.images.remove(img)
    return arrays


def render_rgba_depth(scene: bpy.types.Scene, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Render the scene camera; returns (RGBA (H, W, 4), Z (H, W)), top row first.

    Leaves ``depth<frame>.exr`` (Cycles' Z pass: distance along the camera axis, 1e10 on the
    background) and ``rgba<frame>.exr`` in ``folder``.
    """
    arrays = render_passes(scene, folder, {"depth": "Depth", "rgba": "Image"})
    return arrays["rgba"], arrays["depth"][..., 0]
