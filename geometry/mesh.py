"""The polygon mesh as arrays, the one mesh type of the numpy core (never imports ``bpy``).

``PolyMesh`` holds vertices, corner counts per face and corner vertex indices, Blender's own layout
(``face_sizes`` are its ``loop_total``s, ``loops`` its corner ``vertex_index``es), so a mesh goes in
and out of Blender with ``foreach_get``/``foreach_set``. ``geometry.MeshData`` is this mesh plus the
photo's fields (relief, UVs, groups); the template library's meshes are plain ``PolyMesh``es. The
corner walks and edge tables are ``geometry.topology``'s; the operations matching and blending need
(fan triangulation, flat subdivision, closedness, volume, normals) live here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .check import is_closed as _closed
from .topology import edge_table, face_starts, next_corner


@dataclass
class PolyMesh:
    """Vertices ``(N, 3)``, corner counts per face ``(F,)`` and corner vertex indices ``(L,)``.

    Made as ``PolyMesh(...)`` the arrays become float64 vertices and int32 sizes and corners;
    ``MeshData`` keeps the arrays (and dtypes) it is given."""

    vertices: np.ndarray
    face_sizes: np.ndarray
    loops: np.ndarray

    def __post_init__(self) -> None:
        self.vertices = np.asarray(self.vertices, dtype=np.float64).reshape(-1, 3)
        self.face_sizes = np.asarray(self.face_sizes, dtype=np.int32).ravel()
        self.loops = np.asarray(self.loops, dtype=np.int32).ravel()

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def num_faces(self) -> int:
        return int(self.face_sizes.shape[0])

    @property
    def face_starts(self) -> np.ndarray:
        """Index of each face's first corner in ``loops``."""
        return face_starts(self.face_sizes)

    def next_corners(self) -> np.ndarray:
        """For every corner, the index of the following corner of the same face (wrapping)."""
        return next_corner(self.face_sizes)

    def triangles(self) -> np.ndarray:
        """Fan triangulation ``(T, 3)`` (the faces built here are convex)."""
        return fan_triangles(self.face_sizes, self.loops)

    def transformed(self, matrix: np.ndarray) -> PolyMesh:
        """A copy with vertices mapped by a 4x4 (or 3x3) matrix."""
        m = np.asarray(matrix, dtype=np.float64)
        v = self.vertices @ m[:3, :3].T
        if m.shape == (4, 4):
            v = v + m[:3, 3]
        return PolyMesh(v, self.face_sizes.copy(), self.loops.copy())

    def translated(self, offset: np.ndarray | tuple[float, float, float]) -> PolyMesh:
        return PolyMesh(self.vertices + np.asarray(offset, dtype=np.float64), self.face_sizes.copy(), self.loops.copy())


def fan_triangles(face_sizes: np.ndarray, loops: np.ndarray) -> np.ndarray:
    """Triangles ``(T, 3)`` of polygons given by corner counts and corner indices (fans from the first corner)."""
    sizes = np.asarray(face_sizes, dtype=np.int64)
    loops = np.asarray(loops, dtype=np.int64)
    starts = face_starts(sizes)
    ntri = np.maximum(sizes - 2, 0)
    face = np.repeat(np.arange(sizes.size), ntri)
    k = np.arange(int(ntri.sum())) - np.repeat(np.cumsum(ntri) - ntri, ntri)
    s = starts[face]
    return np.stack([loops[s], loops[s + k + 1], loops[s + k + 2]], axis=1).astype(np.int32)


def merge(*meshes: PolyMesh) -> PolyMesh:
    """One mesh holding all parts (each part stays its own closed shell)."""
    verts, sizes, loops = [], [], []
    offset = 0
    for m in meshes:
        verts.append(m.vertices)
        sizes.append(m.face_sizes)
        loops.append(m.loops + offset)
        offset += m.num_vertices
    return PolyMesh(np.concatenate(verts), np.concatenate(sizes), np.concatenate(loops))


def subdivide(mesh: PolyMesh) -> tuple[PolyMesh, np.ndarray]:
    """One level of simple (flat) subdivision: every n-gon becomes n quads, the shape is unchanged.

    Returns the new mesh and, per new face, the index of the face it came from. New vertices
    follow the old ones (which keep their indices): edge midpoints, then face centres.
    """
    sizes = mesh.face_sizes.astype(np.int64)
    loops = mesh.loops.astype(np.int64)
    face_of_loop = np.repeat(np.arange(sizes.size), sizes)
    following = mesh.next_corners()
    preceding = np.empty_like(following)
    preceding[following] = np.arange(following.size)
    nv = mesh.num_vertices
    keys, edge_of_loop, _ = edge_table(mesh.face_sizes, loops)  # each corner's outgoing edge
    n = int(loops.max()) + 1 if loops.size else 1
    edges = np.stack([keys // n, keys % n], axis=1)
    edge_of_prev = edge_of_loop[preceding]  # the edge coming into each corner: its preceding corner's
    v = mesh.vertices
    mids = 0.5 * (v[edges[:, 0]] + v[edges[:, 1]])
    sums = np.zeros((sizes.size, 3))
    np.add.at(sums, face_of_loop, v[loops])
    centres = sums / sizes[:, None]
    ne = len(edges)
    quads = np.stack([loops, nv + edge_of_loop, nv + ne + face_of_loop, nv + edge_of_prev], axis=1)
    return PolyMesh(np.vstack([v, mids, centres]), np.full(len(quads), 4), quads.ravel()), face_of_loop


def densify(mesh: PolyMesh, max_faces: int = 60_000, edge_fraction: float = 1.0 / 50.0) -> tuple[PolyMesh, np.ndarray]:
    """Subdivide (flat) until three quarters of the edges' total length lies in edges under
    ``edge_fraction`` of the mesh's size, staying under ``max_faces``; returns the mesh and each
    face's original face index. (Counted by length, not by edge: a bevelled box's many short bevel
    edges would otherwise leave its faces one quad each, which a pull onto the photo moves by their
    corners only.)"""
    size = float(np.linalg.norm(np.ptp(mesh.vertices, axis=0)))
    parents = np.arange(mesh.num_faces)
    while True:
        nxt = mesh.next_corners()
        lengths = np.sort(np.linalg.norm(mesh.vertices[mesh.loops] - mesh.vertices[mesh.loops[nxt]], axis=1))
        share = np.cumsum(lengths) / max(float(lengths.sum()), 1e-30)
        long = lengths[min(int(np.searchsorted(share, 0.75)), len(lengths) - 1)] if len(lengths) else 0.0
        if float(long) <= edge_fraction * size or int(mesh.loops.size) > max_faces:
            return mesh, parents
        mesh, up = subdivide(mesh)
        parents = parents[up]


def edge_face_counts(mesh: PolyMesh) -> np.ndarray:
    """How many faces use each undirected edge (2 everywhere on a closed manifold mesh)."""
    return edge_table(mesh.face_sizes, mesh.loops)[2]


def is_closed(mesh: PolyMesh) -> bool:
    """True when every edge is shared by exactly two faces with opposite directions (watertight, oriented)."""
    return _closed(mesh.face_sizes, mesh.loops)


def signed_volume(mesh: PolyMesh) -> float:
    """Enclosed volume (positive for outward-facing closed meshes), summed in float64."""
    tri = mesh.triangles()
    v = np.asarray(mesh.vertices, dtype=np.float64)
    return float(np.einsum("ij,ij->i", v[tri[:, 0]], np.cross(v[tri[:, 1]], v[tri[:, 2]])).sum() / 6.0)


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals (unit length; zero for unused vertices)."""
    v = np.asarray(vertices, dtype=np.float64)
    t = np.asarray(triangles, dtype=np.int64)
    fn = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
    idx = t.T.ravel()
    out = np.stack([np.bincount(idx, np.tile(fn[:, c], 3), minlength=len(v)) for c in range(3)], axis=1)
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norm, out=np.zeros_like(out), where=norm > 0)
