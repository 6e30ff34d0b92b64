"""The template blend's weight groups and modifier stack (``scene.template_blend`` describes them):
the visibility groups written from per-vertex weights, the slider's Vertex Weight Mix modifiers with
their drivers, the pull onto the reconstruction and the photo's UV projection."""

from __future__ import annotations

import bpy
import numpy as np

from ..geometry import CameraModel
from ..templates.policy import takeover, takeover_full, takeover_knee
from .material import PHOTO_UV
from .relief import add_own_driver
from .template_body import add_outline_modifier, add_ray_modifier
from .template_shell import add_snap_modifier

WEIGHT_PROP = "monocle_template_weight"
TRUST_PROP = "monocle_template_trust"
VISIBLE_GROUP = "Monocle Visible"
OVERHANG_GROUP = "Monocle Overhang"  # the body's seen vertices off the reconstruction's rays
MIX_MODIFIER = "Monocle Template Weight"
OVERHANG_MIX_MODIFIER = "Monocle Overhang Weight"
WRAP_MODIFIER = "Monocle Shrinkwrap"
PROJECT_MODIFIER = "Monocle Photo Projection"
WEIGHT_LEVELS = 256  # visibility weights are written in this many steps (one group.add per step)


def write_weights(obj: bpy.types.Object, weights: np.ndarray, name: str = VISIBLE_GROUP) -> bpy.types.VertexGroup:
    """(Re)fill the visibility group (or group ``name``): every vertex gets its weight (0 included)."""
    group = obj.vertex_groups.get(name) or obj.vertex_groups.new(name=name)
    levels = np.round(np.clip(weights, 0.0, 1.0) * (WEIGHT_LEVELS - 1)).astype(np.int64)
    order = np.argsort(levels, kind="stable")
    bounds = np.flatnonzero(np.diff(levels[order])) + 1
    for chunk in np.split(order, bounds):  # one call per weight level (at most WEIGHT_LEVELS)
        if chunk.size:
            group.add(chunk.tolist(), float(levels[chunk[0]]) / (WEIGHT_LEVELS - 1), "REPLACE")
    return group


def weight_expression(trust: float) -> str:
    """The driver expression of the Mix modifier's factor (``1 - takeover``) for depth ``trust``:
    a simple expression, ``s`` the slider."""
    knee = takeover_knee(trust)
    return f"1 - min(1, max(0, (s - {knee:.4f}) / {takeover_full(trust) - knee:.4f}))"


def add_modifiers(obj: bpy.types.Object, target: bpy.types.Object, camera_obj: bpy.types.Object,
                   camera: CameraModel, kind: str = "copy") -> None:
    trust = float(obj.get(TRUST_PROP, 0.0))
    for name, group in ((MIX_MODIFIER, VISIBLE_GROUP), (OVERHANG_MIX_MODIFIER, OVERHANG_GROUP)):
        if group not in obj.vertex_groups:
            continue
        mix = obj.modifiers.new(name, "VERTEX_WEIGHT_MIX")
        mix.vertex_group_a = group
        mix.mix_mode = "MUL"
        mix.mix_set = "A"
        mix.default_weight_b = 1.0 - takeover(float(obj[WEIGHT_PROP]), trust)
        add_own_driver(obj, f'modifiers["{name}"].default_weight_b', f'["{WEIGHT_PROP}"]', weight_expression(trust))
    if kind == "body":  # along the camera's rays onto the reconstruction, the overhang onto its nearest point
        add_ray_modifier(obj, target, camera_obj, VISIBLE_GROUP)
        if OVERHANG_GROUP in obj.vertex_groups:
            add_outline_modifier(obj, target, OVERHANG_GROUP)
    elif kind == "shell":  # vertex for vertex onto the reconstruction it was made from
        add_snap_modifier(obj, target, VISIBLE_GROUP)
    else:  # the template copy's seen side onto the reconstruction's nearest surface point
        add_outline_modifier(obj, target, VISIBLE_GROUP, WRAP_MODIFIER)
    proj = obj.modifiers.new(PROJECT_MODIFIER, "UV_PROJECT")
    proj.uv_layer = PHOTO_UV
    proj.projector_count = 1
    proj.projectors[0].object = camera_obj
    w, h = camera.width, camera.height
    proj.aspect_x, proj.aspect_y = (w / h, 1.0) if w >= h else (1.0, h / w)
    proj.scale_x = proj.scale_y = 1.0
