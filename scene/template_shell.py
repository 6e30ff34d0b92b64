"""The template blend's mesh when the reconstruction has a back: the reconstruction's own topology,
its vertices moved onto the fitted template along the camera rays (``templates.ray_shell``).

The front vertices get the template's nearest surface point on their ray and the back copies its
farthest, both stored in the template's rest model space, so the blend's modifiers work on it as
on the template itself: the Lattice (and the Fit slider) gives the fitted template, the Template
Weight's Shrinkwrap pulls the front (weight 1 in ``Monocle Visible``) back onto the
reconstruction, and the back (weight 0) keeps the fitted template. Where a ray misses the template
(the mask reaches past its outline), on the seam, and where the template's back would come in
front of the reconstruction, the vertex keeps the reconstruction's point and follows it like the
front; so do back copies whose front the template misses by more than ``AGREEMENT`` of its size
(divided by the depth's trust: a guessed relief does not veto the template), and all of them where
the fitted template matches the mask too poorly for trusted depth to be given up
(``templates.policy.template_back``). So at the default
weight the seen surface is the reconstruction's, vertex for vertex, the hidden side is the fitted
template's, and the two meet on the reconstruction's seam without a gap.
"""

from __future__ import annotations

import bpy
import numpy as np

from ..geometry import CameraModel
from ..templates.ffd_fit import LatticeFit
from ..templates.match import Match
from ..templates.mesh import densify
from ..templates.policy import template_back
from ..templates.ray_shell import resample
from .evaluated import read_evaluated

GROUPS = ("front", "back", "seam")
AGREEMENT = 0.02  # fraction of the template's size its front may lie off the reconstruction's for its back to count
MIN_TRUST = 0.05  # ... divided by the depth's trust, at least this


def _flags(mesh: bpy.types.Mesh, name: str) -> np.ndarray | None:
    attr = mesh.attributes.get(name)
    if attr is None or attr.domain != "POINT" or attr.data_type != "BOOLEAN":
        return None
    out = np.zeros(len(mesh.vertices), bool)
    attr.data.foreach_get("value", out)
    return out


def has_back(source: bpy.types.Object | None) -> bool:
    """Whether ``source`` is a reconstruction with a closed or solidified back (its vertex groups
    as the builder writes them), so the shell can be made from it."""
    if source is None or source.type != "MESH":
        return False
    flags = [_flags(source.data, g) for g in GROUPS[:2]]
    if any(f is None for f in flags):
        return False
    front, back = flags
    seam = _flags(source.data, "seam")
    copies = back & ~front & ~(seam if seam is not None else False)
    return bool(copies.any()) and int(copies.sum()) <= int(front.sum())


def _evaluated_camera_space(source: bpy.types.Object, camera_obj: bpy.types.Object) -> np.ndarray:
    return read_evaluated(source, np.array(camera_obj.matrix_world.inverted(), np.float64), faces=False).vertices


def shell_arrays(source: bpy.types.Object, camera_obj: bpy.types.Object, dense_vertices: np.ndarray,
                 dense_triangles: np.ndarray, match: Match, fit: LatticeFit, trust: float = 1.0
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(model-space vertices, face sizes, corners, weights, hit triangle per vertex) of the shell;
    ``trust`` is the depth's (``templates.fit.depth_trust``)."""
    mesh = source.data
    points = _evaluated_camera_space(source, camera_obj)
    front = _flags(mesh, "front")
    back = _flags(mesh, "back")
    seam = _flags(mesh, "seam")
    seam = seam if seam is not None else np.zeros(len(points), bool)
    n = int(front.sum())
    copies = back & ~front & ~seam
    floor = np.linalg.norm(points, axis=1)
    rows = np.nonzero(copies)[0]
    pair = rows - n  # the builder puts back copy n + k behind front vertex k
    if pair.size and pair.min() >= 0 and pair.max() < n:
        floor[rows] = np.linalg.norm(points[pair], axis=1)
    fitted = match.pose.apply(fit.lattice.deform(np.asarray(dense_vertices, np.float64)))
    rest, hit, tri, dist = resample(points, front & ~seam, copies, fitted, dense_vertices, dense_triangles, floor)
    if pair.size and pair.min() >= 0 and pair.max() < n:
        # the template's back only behind a front it agrees with: where its near side misses a
        # trusted front, its far side is no better a guess than the reconstruction's own back (a
        # guessed relief, the classic engine's, is no reason to doubt the template: the bar rises)
        size = float(np.linalg.norm(np.ptp(fitted, axis=0)))
        tolerance = AGREEMENT * size / max(float(trust), MIN_TRUST)
        agree = hit[pair] & (np.abs(dist[pair] - floor[rows]) < tolerance) & template_back(fit.iou, trust)
        hit[rows[~agree]] = False
    verts = np.where(hit[:, None], rest, match.pose.inverse_apply(points))
    weights = np.where(hit & copies, 0.0, 1.0)
    sizes = np.empty(len(mesh.polygons), np.int32)
    mesh.polygons.foreach_get("loop_total", sizes)
    loops = np.empty(len(mesh.loops), np.int32)
    mesh.loops.foreach_get("vertex_index", loops)
    return verts, sizes, loops, weights, tri


def shell_mesh(name: str, source: bpy.types.Object, camera_obj: bpy.types.Object, template_mesh, match: Match,
               fit: LatticeFit, camera: CameraModel, photo_material: bpy.types.Material | None,
               materials: list, material_index: np.ndarray, trust: float = 1.0) -> tuple[bpy.types.Mesh, np.ndarray]:
    """The shell as a Blender mesh with the template's materials on the hidden faces (each from the
    template face its vertices landed on), the photo's on the seen ones, and a ``Photo`` UV map;
    returns it with the per-vertex visibility weights."""
    from .ingest import mesh_from_arrays
    from .material import PHOTO_UV

    del camera  # the rays come from the reconstruction's own vertices
    dense, parents = densify(template_mesh)
    tris = dense.triangles()
    verts, sizes, loops, weights, tri = shell_arrays(source, camera_obj, dense.vertices, tris, match, fit, trust)
    mesh = mesh_from_arrays(name, verts, sizes, loops)
    mesh.uv_layers.new(name=PHOTO_UV)
    for mat in materials or [None]:
        mesh.materials.append(mat)
    ntri = np.maximum(dense.face_sizes.astype(np.int64) - 2, 0)
    tri_face = np.repeat(np.arange(dense.num_faces), ntri)  # fan triangles come face by face
    vert_mat = np.zeros(len(verts), np.int64)
    got = tri >= 0
    if np.asarray(material_index).size:
        vert_mat[got] = np.asarray(material_index)[parents[tri_face[tri[got]]]]
    face_of_loop = np.repeat(np.arange(len(sizes)), sizes)
    # a face takes the material of its highest-numbered corner (the back copies come last)
    last = np.zeros(len(sizes), np.int64)
    np.maximum.at(last, face_of_loop, loops.astype(np.int64))
    mat_index = vert_mat[last]
    if photo_material is not None:
        photo_slot = len(mesh.materials)
        mesh.materials.append(photo_material)
        face_weight = np.bincount(face_of_loop, weights[loops], len(sizes)) / np.maximum(sizes, 1)
        mat_index = np.where(face_weight >= 0.5, photo_slot, mat_index)
    mesh.polygons.foreach_set("material_index", mat_index.astype(np.int32))
    mesh.update()
    return mesh, weights


# --------------------------------------------------------------------------- the photo side

SNAP_MODIFIER = "Monocle Photo Side"
SNAP_GROUP = "Monocle Photo Side"  # the node group, shared by every shell blend of the file
SNAP_SOCKET = "Reconstruction"


def _snap_group(weight_name: str) -> bpy.types.NodeTree:
    """Geometry nodes: every vertex moves towards the same-numbered vertex of the reconstruction
    (its evaluated mesh, Relief included) by the vertex group ``weight_name``: exactly onto it at 1."""
    group = bpy.data.node_groups.get(SNAP_GROUP)
    if group is not None and group.bl_idname == "GeometryNodeTree" and group.get("monocle_weight") == weight_name:
        return group
    group = bpy.data.node_groups.new(SNAP_GROUP, "GeometryNodeTree")
    group["monocle_weight"] = weight_name
    group.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    group.interface.new_socket(SNAP_SOCKET, in_out="INPUT", socket_type="NodeSocketObject")
    group.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    nodes, links = group.nodes, group.links
    inp, out = nodes.new("NodeGroupInput"), nodes.new("NodeGroupOutput")
    info = nodes.new("GeometryNodeObjectInfo")
    info.transform_space = "RELATIVE"
    sample = nodes.new("GeometryNodeSampleIndex")
    sample.data_type = "FLOAT_VECTOR"
    sample.domain = "POINT"
    position, index = nodes.new("GeometryNodeInputPosition"), nodes.new("GeometryNodeInputIndex")
    weight = nodes.new("GeometryNodeInputNamedAttribute")
    weight.data_type = "FLOAT"
    weight.inputs["Name"].default_value = weight_name
    delta = nodes.new("ShaderNodeVectorMath")
    delta.operation = "SUBTRACT"
    scaled = nodes.new("ShaderNodeVectorMath")
    scaled.operation = "SCALE"
    move = nodes.new("GeometryNodeSetPosition")
    links.new(inp.outputs[SNAP_SOCKET], info.inputs["Object"])
    links.new(info.outputs["Geometry"], sample.inputs["Geometry"])
    links.new(position.outputs["Position"], sample.inputs["Value"])
    links.new(index.outputs["Index"], sample.inputs["Index"])
    links.new(sample.outputs["Value"], delta.inputs[0])
    links.new(position.outputs["Position"], delta.inputs[1])
    links.new(delta.outputs["Vector"], scaled.inputs[0])
    links.new(weight.outputs["Attribute"], scaled.inputs["Scale"])
    links.new(inp.outputs["Geometry"], move.inputs["Geometry"])
    links.new(scaled.outputs["Vector"], move.inputs["Offset"])
    links.new(move.outputs["Geometry"], out.inputs["Geometry"])
    return group


def add_snap_modifier(obj: bpy.types.Object, target: bpy.types.Object, weight_name: str) -> bpy.types.Modifier:
    """The shell's pull onto the reconstruction ``target``, vertex for vertex, by ``weight_name``."""
    group = _snap_group(weight_name)
    mod = obj.modifiers.new(SNAP_MODIFIER, "NODES")
    mod.node_group = group
    mod[group.interface.items_tree[SNAP_SOCKET].identifier] = target
    return mod


def snap_target(mod: bpy.types.Modifier) -> bpy.types.Object | None:
    """The reconstruction a snap modifier pulls onto."""
    group = mod.node_group
    if group is None or SNAP_SOCKET not in group.interface.items_tree:
        return None
    return mod.get(group.interface.items_tree[SNAP_SOCKET].identifier)
