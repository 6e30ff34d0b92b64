"""numpy arrays -> Blender mesh, as fast as the Python API allows.

Blender 4.x stores mesh data as attributes; writing them through
``mesh.attributes[...].data.foreach_set`` is a raw memory copy, while the legacy
``mesh.vertices/loops`` wrappers go item by item (about 200x slower for corners).
The legacy path stays as a fallback for attribute names a future Blender may rename.

What is left is Blender's own cost (measured at 1M vertices, 4M corners, Blender 4.5):
- face starts: ``polygons.foreach_set("loop_start")`` goes item by item through RNA
  (33-60 ms, depending on the day); no other Python path writes face offsets;
- new arrays: ``loops.add`` and each FLOAT2 corner attribute (a UV map) cost 15-20 ms, all
  of it first-touch page faults (``uv_layers.new(do_init=False)`` costs the same, and
  converting a point attribute with ``geometry.attribute_convert`` costs 65 ms);
- running these calls while another thread does numpy work is slower than running the two
  in turn (124-145 against 100-102 ms): the calls hold the GIL and both sides fault pages.
  Only single GIL-free numpy calls (the UV gathers in ``scene.build``) overlap them well.
"""

from __future__ import annotations

from concurrent.futures import Future

import bpy
import numpy as np

POSITION = "position"
CORNER_VERT = ".corner_vert"
EDGE_VERTS = ".edge_verts"
CORNER_EDGE = ".corner_edge"


def _set_attribute(mesh: bpy.types.Mesh, name: str, prop: str, values: np.ndarray) -> bool:
    """Raw write of an existing attribute; False if Blender has no such attribute."""
    attr = mesh.attributes.get(name)
    if attr is None:
        return False
    attr.data.foreach_set(prop, values.ravel())
    return True


def check_topology(num_vertices: int, face_sizes: np.ndarray, loops: np.ndarray) -> None:
    """Reject arrays that would make Blender read out of bounds (it trusts corner indices)."""
    if face_sizes.size and int(face_sizes.min()) < 3:
        raise ValueError("every face needs at least 3 corners")
    if int(face_sizes.sum()) != loops.size:
        raise ValueError(f"face sizes add up to {int(face_sizes.sum())} corners but {loops.size} are given")
    if loops.size and (int(loops.min()) < 0 or int(loops.max()) >= num_vertices):
        raise ValueError("a face corner refers to a vertex that does not exist")


def check_edges(num_vertices: int, face_sizes: np.ndarray, loops: np.ndarray, edges: np.ndarray,
                corner_edges: np.ndarray) -> None:
    """Reject a supplied edge table unless every corner's edge joins it to the next corner
    (Blender trusts these arrays as much as the corners themselves).

    Expects int32 arrays (as ``mesh_from_arrays`` passes them); at 4M corners every full
    pass counts, so edge rows are gathered as one 8-byte word and the next corner's vertex
    comes from a shifted copy of ``loops`` instead of a corner index array.
    """
    if corner_edges.size != loops.size:
        raise ValueError(f"{corner_edges.size} corner edges for {loops.size} corners")
    if edges.size and (int(edges.min()) < 0 or int(edges.max()) >= num_vertices):
        raise ValueError("an edge refers to a vertex that does not exist")
    if corner_edges.size and (int(corner_edges.min()) < 0 or int(corner_edges.max()) >= edges.shape[0]):
        raise ValueError("a corner refers to an edge that does not exist")
    if loops.size == 0:
        return
    words = np.ascontiguousarray(edges, dtype=np.int32).reshape(-1, 2).view(np.int64).ravel()
    ends = words[corner_edges].view(np.int32).reshape(-1, 2)
    a = loops
    b = np.empty_like(a)
    b[:-1] = a[1:]
    starts = np.zeros(face_sizes.size, dtype=np.int64)
    np.cumsum(face_sizes[:-1], out=starts[1:])
    b[starts + face_sizes - 1] = a[starts]  # the last corner of a face wraps to its first
    e0, e1 = ends[:, 0], ends[:, 1]
    if not np.all(((e0 == a) & (e1 == b)) | ((e0 == b) & (e1 == a))):
        raise ValueError("a corner's edge does not join it to the next corner")
    used = np.zeros(edges.shape[0], dtype=bool)
    used[corner_edges] = True
    if not used.all():
        raise ValueError("an edge is used by no face")


def mesh_from_arrays(
    name: str, vertices: np.ndarray, face_sizes: np.ndarray, loops: np.ndarray,
    corner_uvs: dict[str, np.ndarray | Future] | None = None,
    edges: np.ndarray | None = None, corner_edges: np.ndarray | None = None, check: bool = True,
) -> bpy.types.Mesh:
    """A new mesh from vertex positions (N, 3), polygon sizes (F,), corner vertex indices (L,)
    and optional per-corner UV maps {name: (L, 2)}; the first UV map becomes the active one.
    A UV map may be a ``Future`` of its array (a gather still running on another thread): it
    is waited for only once the mesh's other arrays are in.

    With ``edges`` (E, 2) and ``corner_edges`` (L,) (each corner's edge to the next corner)
    the edge table is written as it is; otherwise ``mesh.update()`` builds it, which is the
    single most expensive step of the ingest: at 1M closed vertices the build's ingest takes
    0.23-0.25 s with Blender's edge builder against 0.14-0.16 s with a supplied table
    (``bench/bench_build_bound.py``, 2026-12; the builder alone once took 0.3-0.8 s here).
    ``check=False`` skips the index checks for arrays the caller has already checked
    (``check_topology``, ``check_edges``).
    """
    vertices = np.ascontiguousarray(vertices, dtype=np.float32).reshape(-1, 3)
    face_sizes = np.ascontiguousarray(face_sizes, dtype=np.int32).ravel()
    loops = np.ascontiguousarray(loops, dtype=np.int32).ravel()
    if check:
        check_topology(vertices.shape[0], face_sizes, loops)
    given_edges = edges is not None and corner_edges is not None
    if given_edges:
        edges = np.ascontiguousarray(edges, dtype=np.int32).reshape(-1, 2)
        corner_edges = np.ascontiguousarray(corner_edges, dtype=np.int32).ravel()
        if check:
            check_edges(vertices.shape[0], face_sizes, loops, edges, corner_edges)
    mesh = bpy.data.meshes.new(name)
    try:
        mesh.vertices.add(vertices.shape[0])
        if not _set_attribute(mesh, POSITION, "vector", vertices):
            mesh.vertices.foreach_set("co", vertices.ravel())
        if given_edges:
            mesh.edges.add(edges.shape[0])
            if not _set_attribute(mesh, EDGE_VERTS, "value", edges):
                mesh.edges.foreach_set("vertices", edges.ravel())
        mesh.loops.add(loops.size)
        if not _set_attribute(mesh, CORNER_VERT, "value", loops):
            mesh.loops.foreach_set("vertex_index", loops)
        if given_edges and not _set_attribute(mesh, CORNER_EDGE, "value", corner_edges):
            mesh.loops.foreach_set("edge_index", corner_edges)
        mesh.polygons.add(face_sizes.size)
        loop_start = np.zeros(face_sizes.size, dtype=np.int32)
        np.cumsum(face_sizes[:-1], out=loop_start[1:])
        # Setting loop_start defines the face offsets; loop_total alone does not (Blender 4.2-4.5).
        mesh.polygons.foreach_set("loop_start", loop_start)
        mesh.update()  # builds the edges only when the mesh has none
        for uv_name, uvs in (corner_uvs or {}).items():
            add_corner_uvs(mesh, uv_name, uvs.result() if isinstance(uvs, Future) else uvs)
        if corner_uvs:
            first = mesh.uv_layers[next(iter(corner_uvs))]
            mesh.uv_layers.active = first
            first.active_render = True
    except BaseException:
        bpy.data.meshes.remove(mesh)
        raise
    return mesh


def add_corner_uvs(mesh: bpy.types.Mesh, name: str, uvs: np.ndarray) -> None:
    """Add a UV map from per-corner coordinates (L, 2).

    A FLOAT2 corner attribute *is* a UV map in Blender 4.x; creating it through the
    attribute API and writing it raw is 4x faster than ``uv_layers.new().data``.
    """
    uvs = np.ascontiguousarray(uvs, dtype=np.float32).reshape(-1, 2)
    if uvs.shape[0] != len(mesh.loops):
        raise ValueError(f"UV map {name!r} has {uvs.shape[0]} corners, the mesh {len(mesh.loops)}")
    attr = mesh.attributes.new(name, "FLOAT2", "CORNER")
    attr.data.foreach_set("vector", uvs.ravel())
    if name not in mesh.uv_layers:  # an older Blender that does not treat FLOAT2 corners as UVs
        mesh.attributes.remove(mesh.attributes[name])
        mesh.uv_layers.new(name=name).data.foreach_set("uv", uvs.ravel())


def add_point_flags(mesh: bpy.types.Mesh, name: str, member: np.ndarray) -> bpy.types.Attribute:
    """A boolean point attribute, true where ``member`` (N,) is: a selection written in one raw
    copy (a vertex group takes ~90 ns per member through ``VertexGroup.add``)."""
    attr = mesh.attributes.new(name, "BOOLEAN", "POINT")
    attr.data.foreach_set("value", np.ascontiguousarray(member, dtype=bool))
    return attr
