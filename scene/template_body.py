"""The template body blend in Blender: the fitted template's own mesh (densified), its seen side
pulled along the camera rays onto the reconstruction (``templates.body``).

Unlike the ray shell (``scene.template_shell``), the body keeps every surface of the template,
those no camera ray's first or last hit reaches included (a mug's handle and the hole it leaves, a
cup's inside, a chair's legs and the space under its seat). Its modifiers, after the Lattice (Fit
slider) and the Template Weight's Vertex Weight Mix, end in ``Monocle Photo Ray``: geometry nodes
that cast the ray from the camera through each vertex *as the lattice left it* and move the vertex
onto the reconstruction's first hit (its evaluated mesh, Relief included) by the ``Monocle Visible``
weight. So the seen side lands on the photo's surface whatever Fit is and however the lattice is
edited (both reshape only what the pull leaves to the template: the hidden side, and the seen side
as far as the weight lets the template take over); vertices the placement found missing the
reconstruction, or meeting it far off (``templates.body.MAX_GAP``), weigh 0 there; they are the
overhang, which the Shrinkwrap ``Monocle Photo Outline`` moves onto the reconstruction's nearest
surface point (the camera sees them where the photo shows something else: a fitted outline past the
mask, a rim above the photo's).
The body stays the template's closed mesh: where the template's outline misses part of the mask,
that part of the photo's surface is not shown (a fringe of the reconstruction's front faces kept
there measured no better and leaves the object open).
"""

from __future__ import annotations

import bpy
import numpy as np

from ..geometry import CameraModel
from ..templates.body import body_pulls
from ..templates.ffd_fit import LatticeFit
from ..templates.match import Match
from ..templates.mesh import PolyMesh
from .evaluated import read_evaluated

RAY_MODIFIER = "Monocle Photo Ray"
RAY_GROUP = "Monocle Photo Ray"  # the node group, shared by every body blend of the file
TARGET_SOCKET = "Reconstruction"
CAMERA_SOCKET = "Camera"
RAY_LENGTH = 1.0e6
OUTLINE_MODIFIER = "Monocle Photo Outline"  # the overhang onto the reconstruction's nearest surface point


def camera_space_surface(source: bpy.types.Object, camera_obj: bpy.types.Object) -> tuple[np.ndarray, np.ndarray]:
    """The evaluated reconstruction (Relief included) in the camera's space: vertices and triangles."""
    ev = read_evaluated(source, np.array(camera_obj.matrix_world.inverted(), np.float64), faces=False,
                        triangles=True)
    return ev.vertices, ev.triangles


def body_arrays(source: bpy.types.Object, camera_obj: bpy.types.Object, dense: PolyMesh, match: Match,
                fit: LatticeFit, camera: CameraModel, trust: float) -> tuple[np.ndarray, np.ndarray]:
    """The body's per-vertex pull weights and overhang weights over the reconstruction ``source`` seen
    through ``camera_obj`` (``templates.body.body_pulls``)."""
    surface, tris = camera_space_surface(source, camera_obj)
    fitted = fit.deform(dense.vertices)
    weights, _, overhang = body_pulls(fitted, dense.triangles(), match.pose, camera, trust, surface, tris)
    return weights, overhang


def _ray_group(weight_name: str) -> bpy.types.NodeTree:
    """Geometry nodes: each vertex moves, by the vertex group ``weight_name``, onto the first point
    where the ray from the camera through it meets the reconstruction (where the ray meets it)."""
    group = bpy.data.node_groups.get(RAY_GROUP)
    if group is not None and group.bl_idname == "GeometryNodeTree" and group.get("monocle_weight") == weight_name:
        return group
    group = bpy.data.node_groups.new(RAY_GROUP, "GeometryNodeTree")
    group["monocle_weight"] = weight_name
    group.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    group.interface.new_socket(TARGET_SOCKET, in_out="INPUT", socket_type="NodeSocketObject")
    group.interface.new_socket(CAMERA_SOCKET, in_out="INPUT", socket_type="NodeSocketObject")
    group.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    nodes, links = group.nodes, group.links
    inp, out = nodes.new("NodeGroupInput"), nodes.new("NodeGroupOutput")
    target, eye = nodes.new("GeometryNodeObjectInfo"), nodes.new("GeometryNodeObjectInfo")
    target.transform_space = eye.transform_space = "RELATIVE"
    position = nodes.new("GeometryNodeInputPosition")
    weight = nodes.new("GeometryNodeInputNamedAttribute")
    weight.data_type = "FLOAT"
    weight.inputs["Name"].default_value = weight_name
    ray = nodes.new("ShaderNodeVectorMath")
    ray.operation = "SUBTRACT"
    unit = nodes.new("ShaderNodeVectorMath")
    unit.operation = "NORMALIZE"
    cast = nodes.new("GeometryNodeRaycast")
    cast.inputs["Ray Length"].default_value = RAY_LENGTH
    delta = nodes.new("ShaderNodeVectorMath")
    delta.operation = "SUBTRACT"
    share = nodes.new("ShaderNodeMath")
    share.operation = "MULTIPLY"
    scaled = nodes.new("ShaderNodeVectorMath")
    scaled.operation = "SCALE"
    move = nodes.new("GeometryNodeSetPosition")
    links.new(inp.outputs[TARGET_SOCKET], target.inputs["Object"])
    links.new(inp.outputs[CAMERA_SOCKET], eye.inputs["Object"])
    links.new(position.outputs["Position"], ray.inputs[0])
    links.new(eye.outputs["Location"], ray.inputs[1])
    links.new(ray.outputs["Vector"], unit.inputs[0])
    links.new(target.outputs["Geometry"], cast.inputs["Target Geometry"])
    links.new(eye.outputs["Location"], cast.inputs["Source Position"])
    links.new(unit.outputs["Vector"], cast.inputs["Ray Direction"])
    links.new(cast.outputs["Hit Position"], delta.inputs[0])
    links.new(position.outputs["Position"], delta.inputs[1])
    links.new(weight.outputs["Attribute"], share.inputs[0])
    links.new(cast.outputs["Is Hit"], share.inputs[1])
    links.new(delta.outputs["Vector"], scaled.inputs[0])
    links.new(share.outputs["Value"], scaled.inputs["Scale"])
    links.new(inp.outputs["Geometry"], move.inputs["Geometry"])
    links.new(scaled.outputs["Vector"], move.inputs["Offset"])
    links.new(move.outputs["Geometry"], out.inputs["Geometry"])
    return group


def add_ray_modifier(obj: bpy.types.Object, target: bpy.types.Object, camera_obj: bpy.types.Object,
                     weight_name: str) -> bpy.types.Modifier:
    """The body's pull onto the reconstruction ``target`` along ``camera_obj``'s rays, by ``weight_name``."""
    group = _ray_group(weight_name)
    mod = obj.modifiers.new(RAY_MODIFIER, "NODES")
    mod.node_group = group
    items = group.interface.items_tree
    mod[items[TARGET_SOCKET].identifier] = target
    mod[items[CAMERA_SOCKET].identifier] = camera_obj
    return mod


def ray_target(mod: bpy.types.Modifier) -> bpy.types.Object | None:
    """The reconstruction a ray modifier pulls onto."""
    group = mod.node_group
    if group is None or TARGET_SOCKET not in group.interface.items_tree:
        return None
    return mod.get(group.interface.items_tree[TARGET_SOCKET].identifier)


def add_outline_modifier(obj: bpy.types.Object, target: bpy.types.Object, weight_name: str,
                         name: str = OUTLINE_MODIFIER) -> bpy.types.Modifier:
    """A Shrinkwrap moving the vertices of group ``weight_name`` onto the reconstruction ``target``'s
    nearest surface point: the body's overhang (seen vertices the ray pull leaves:
    ``templates.body.body_pulls``), or under another ``name`` the template copy's seen side."""
    wrap = obj.modifiers.new(name, "SHRINKWRAP")
    wrap.target = target
    wrap.wrap_method = "NEAREST_SURFACEPOINT"
    wrap.wrap_mode = "ON_SURFACE"
    wrap.vertex_group = weight_name
    return wrap
