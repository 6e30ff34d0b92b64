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
reconstruction, or meeting it far off (``templates.body.MAX_GAP``), weigh 0 and keep the template.
With measured depth the reconstruction's front faces the template does not cover are kept too, as
a fringe of the same mesh pulled like the seen side (``body_arrays``).
"""

from __future__ import annotations

import bpy
import numpy as np

from ..geometry import CameraModel
from ..templates.body import body_weights, submesh, uncovered_faces
from ..templates.ffd_fit import LatticeFit
from ..templates.match import Match
from ..templates.mesh import PolyMesh, densify
from ..templates.policy import MEASURED_TRUST

RAY_MODIFIER = "Monocle Photo Ray"
RAY_GROUP = "Monocle Photo Ray"  # the node group, shared by every body blend of the file
TARGET_SOCKET = "Reconstruction"
CAMERA_SOCKET = "Camera"
EDGE_FRACTION = 1.0 / 100.0  # the body's edges, as a fraction of its size: fine enough for the photo's relief
MAX_LOOPS = 200_000  # ... at most this many face corners
RAY_LENGTH = 1.0e6


def body_densify(mesh: PolyMesh) -> tuple[PolyMesh, np.ndarray]:
    """The template mesh subdivided as the body uses it, with each face's original face."""
    return densify(mesh, max_faces=MAX_LOOPS, edge_fraction=EDGE_FRACTION)


def camera_space_surface(source: bpy.types.Object, camera_obj: bpy.types.Object) -> tuple[np.ndarray, np.ndarray]:
    """The evaluated reconstruction (Relief included) in the camera's space: vertices and triangles."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    ev = source.evaluated_get(depsgraph)
    me = ev.to_mesh()
    try:
        co = np.empty(len(me.vertices) * 3, np.float64)
        me.vertices.foreach_get("co", co)
        me.calc_loop_triangles()
        tris = np.empty(len(me.loop_triangles) * 3, np.int64)
        me.loop_triangles.foreach_get("vertices", tris)
    finally:
        ev.to_mesh_clear()
    m = np.array(camera_obj.matrix_world.inverted() @ source.matrix_world, np.float64)
    return co.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3], tris.reshape(-1, 3)


def _front(source: bpy.types.Object) -> np.ndarray:
    """The reconstruction's front vertices (all of them where it has no ``front`` attribute: open)."""
    mesh = source.data
    attr = mesh.attributes.get("front")
    out = np.ones(len(mesh.vertices), bool)
    if attr is not None and attr.domain == "POINT" and attr.data_type == "BOOLEAN":
        attr.data.foreach_get("value", out)
    return out


def body_arrays(source: bpy.types.Object, camera_obj: bpy.types.Object, dense: PolyMesh, match: Match,
                fit: LatticeFit, camera: CameraModel, trust: float
                ) -> tuple[PolyMesh, np.ndarray, int]:
    """The body over the reconstruction ``source`` seen through ``camera_obj``: (its mesh in the
    template's rest model space, per-vertex pull weights, how many faces at its end are the fringe).

    With measured depth (``templates.policy.MEASURED_TRUST``) the reconstruction's front faces the
    template leaves uncovered (``templates.body.uncovered_faces``: where the mask reaches past the
    fitted template's outline) are kept as a fringe, weight 1, so the whole seen surface stays."""
    surface, tris = camera_space_surface(source, camera_obj)
    fitted = fit.lattice.deform(dense.vertices)
    dense_tris = dense.triangles()
    weights, _ = body_weights(fitted, dense_tris, match.pose, camera, trust, surface, tris)
    if trust < MEASURED_TRUST or len(surface) != len(source.data.vertices):
        return dense, weights, 0
    mesh = source.data
    sizes = np.empty(len(mesh.polygons), np.int32)
    mesh.polygons.foreach_get("loop_total", sizes)
    loops = np.empty(len(mesh.loops), np.int32)
    mesh.loops.foreach_get("vertex_index", loops)
    bare = uncovered_faces(surface, _front(source), sizes, loops, match.pose.apply(fitted), dense_tris)
    if not bare.any():
        return dense, weights, 0
    used, fsizes, floops = submesh(sizes, loops, bare)
    n = dense.num_vertices
    body = PolyMesh(np.vstack([dense.vertices, match.pose.inverse_apply(surface[used])]),
                    np.concatenate([dense.face_sizes, fsizes]), np.concatenate([dense.loops, floops + n]))
    return body, np.concatenate([weights, np.ones(len(used))]), int(fsizes.size)


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
