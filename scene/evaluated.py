"""The one reader of an object's evaluated mesh (after its modifiers: Relief, lattice, pulls) into
numpy arrays, shared by the product, the tests and the benchmarks.

It imports nothing of the extension, so the benchmarks and tools that put the repository root on
``sys.path`` import it as ``scene.evaluated`` too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import bpy
import numpy as np


@contextmanager
def evaluated_mesh(obj: bpy.types.Object) -> Iterator[tuple[bpy.types.Mesh, np.ndarray]]:
    """The object's mesh after its modifiers (a temporary one, freed on leaving the block) and the
    evaluated object's world matrix (4x4 float64)."""
    ev = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = ev.to_mesh()
    try:
        yield mesh, np.array(ev.matrix_world, dtype=np.float64)
    finally:
        ev.to_mesh_clear()


@dataclass
class EvaluatedArrays:
    """The evaluated mesh as arrays; what was not asked for is empty."""

    vertices: np.ndarray  # (N, 3) float64, in world space or the space asked for
    face_sizes: np.ndarray  # (F,) int32 corners per face
    loops: np.ndarray  # (L,) int32 vertex index per face corner
    corner_edges: np.ndarray  # (L,) int32 edge index per face corner
    triangles: np.ndarray  # (T, 3) int64 the loop triangles' vertex indices


def _read(collection: bpy.types.bpy_prop_collection, attr: str, count: int, dtype: type) -> np.ndarray:
    out = np.empty(count, dtype=dtype)
    collection.foreach_get(attr, out)
    return out


def read_evaluated(obj: bpy.types.Object, from_world: np.ndarray | None = None, *, faces: bool = True,
                   corner_edges: bool = False, triangles: bool = False) -> EvaluatedArrays:
    """The object's evaluated vertices in world space (or mapped on by the 4x4 ``from_world``, e.g. a
    camera's inverse world matrix) and, as asked, its faces (sizes and corners), each corner's edge
    and its loop triangles."""
    none = np.zeros(0, dtype=np.int32)
    with evaluated_mesh(obj) as (mesh, world):
        co = _read(mesh.vertices, "co", 3 * len(mesh.vertices), np.float32)
        sizes = _read(mesh.polygons, "loop_total", len(mesh.polygons), np.int32) if faces else none
        loops = _read(mesh.loops, "vertex_index", len(mesh.loops), np.int32) if faces else none
        edges = _read(mesh.loops, "edge_index", len(mesh.loops), np.int32) if corner_edges else none
        tris = np.zeros((0, 3), dtype=np.int64)
        if triangles:
            mesh.calc_loop_triangles()
            tris = _read(mesh.loop_triangles, "vertices", 3 * len(mesh.loop_triangles), np.int64).reshape(-1, 3)
    m = world if from_world is None else np.asarray(from_world, dtype=np.float64) @ world
    vertices = co.reshape(-1, 3).astype(np.float64) @ m[:3, :3].T + m[:3, 3]
    return EvaluatedArrays(vertices, sizes, loops, edges, tris)
