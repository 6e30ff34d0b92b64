"""Polygon meshes as arrays: the parametric builders of the template library and the few
operations matching and blending need (triangulation, subdivision, closedness checks).

Meshes are quad-based with outward normals (counter-clockwise corners seen from outside).
Surfaces of revolution end in triangle fans at the poles, like Blender's UV sphere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PolyMesh:
    """Vertices ``(N, 3)``, corner counts per face ``(F,)`` and corner vertex indices ``(L,)``."""

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
        return np.concatenate([[0], np.cumsum(self.face_sizes)[:-1]]).astype(np.int64)

    def next_corners(self) -> np.ndarray:
        """For every corner, the index of the following corner of the same face (wrapping)."""
        nxt = np.arange(1, self.loops.size + 1, dtype=np.int64)
        starts = self.face_starts
        nxt[starts + self.face_sizes - 1] = starts
        return nxt

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
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
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


def _divide(points: np.ndarray, max_len: float, closed: bool = False) -> np.ndarray:
    """Insert points so no segment of the polyline is longer than ``max_len`` (corners are kept)."""
    pts = np.asarray(points, dtype=np.float64)
    nxt = np.roll(pts, -1, axis=0) if closed else pts[1:]
    base = pts if closed else pts[:-1]
    lengths = np.linalg.norm(nxt - base, axis=1)
    n = np.maximum(1, np.ceil(lengths / max_len - 1e-9).astype(int))
    t = np.concatenate([np.arange(k) / k for k in n])
    seg = np.repeat(np.arange(base.shape[0]), n)
    out = base[seg] + t[:, None] * (nxt - base)[seg]
    return out if closed else np.vstack([out, pts[-1:]])


def _ring_quads(n_rings: int, m: int, closed_rings: bool = False) -> np.ndarray:
    """Quads between consecutive rings of ``m`` vertices (ring k holds vertices k*m .. k*m+m-1)."""
    k = np.arange(n_rings if closed_rings else n_rings - 1)
    j = np.arange(m)
    kk, jj = np.meshgrid(k, j, indexing="ij")
    k1 = (kk + 1) % n_rings
    j1 = (jj + 1) % m
    return np.stack([kk * m + jj, kk * m + j1, k1 * m + j1, k1 * m + jj], axis=-1).reshape(-1, 4)


def _assemble(vertices: np.ndarray, quads: np.ndarray, tris: list[np.ndarray]) -> PolyMesh:
    tri = np.concatenate(tris) if tris else np.zeros((0, 3), dtype=np.int64)
    sizes = np.concatenate([np.full(len(quads), 4), np.full(len(tri), 3)])
    loops = np.concatenate([quads.ravel(), tri.ravel()])
    return PolyMesh(vertices, sizes, loops)


def lathe(profile: np.ndarray, segments: int = 32, max_len: float | None = None, closed: bool = False) -> PolyMesh:
    """Surface of revolution about +Z of a profile of ``(r, z)`` points.

    An open profile must start and end on the axis (``r == 0``): the ends become poles.
    Walk the profile counter-clockwise in the (r, z) half-plane (bottom, out, up, in) for
    outward normals; a ``closed`` profile (a loop off the axis) gives a ring-shaped solid.
    """
    prof = np.asarray(profile, dtype=np.float64)
    if max_len is not None:
        prof = _divide(prof, max_len, closed=closed)
    theta = 2.0 * np.pi * np.arange(segments) / segments
    c, s = np.cos(theta), np.sin(theta)
    if closed:
        ring = prof
        verts = np.stack([ring[:, :1] * c, ring[:, :1] * s, np.repeat(ring[:, 1:2], segments, axis=1)], axis=-1)
        return _assemble(verts.reshape(-1, 3), _ring_quads(len(ring), segments, closed_rings=True), [])
    if prof[0, 0] > 1e-12 or prof[-1, 0] > 1e-12:
        raise ValueError("an open lathe profile must start and end on the axis")
    ring = prof[1:-1]
    nr = len(ring)
    verts = np.stack([ring[:, :1] * c, ring[:, :1] * s, np.repeat(ring[:, 1:2], segments, axis=1)], axis=-1)
    verts = np.vstack([verts.reshape(-1, 3), [[0.0, 0.0, prof[0, 1]], [0.0, 0.0, prof[-1, 1]]]])
    bottom, top = nr * segments, nr * segments + 1
    j = np.arange(segments)
    j1 = (j + 1) % segments
    last = (nr - 1) * segments
    tris = [
        np.stack([np.full(segments, bottom), j1, j], axis=1),
        np.stack([last + j, last + j1, np.full(segments, top)], axis=1),
    ]
    return _assemble(verts, _ring_quads(nr, segments), tris)


def _frames(path: np.ndarray, closed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Rotation-minimising normal/binormal frames along a polyline."""
    nxt = np.roll(path, -1, axis=0) if closed else np.vstack([path[1:], 2 * path[-1] - path[-2]])
    prv = np.roll(path, 1, axis=0) if closed else np.vstack([2 * path[0] - path[1], path[:-1]])
    tang = nxt - prv
    tang /= np.linalg.norm(tang, axis=1, keepdims=True)
    ref = np.array([0.0, 0.0, 1.0]) if abs(tang[0, 2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    normals = np.empty_like(path)
    n = ref - tang[0] * (ref @ tang[0])
    normals[0] = n / np.linalg.norm(n)
    for k in range(1, len(path)):  # one step per path point (a few dozen), not per vertex
        n = normals[k - 1] - tang[k] * (normals[k - 1] @ tang[k])
        normals[k] = n / np.linalg.norm(n)
    return normals, np.cross(tang, normals)


def sweep(path: np.ndarray, radius: float | np.ndarray, segments: int = 12, closed: bool = False) -> PolyMesh:
    """A round tube along a polyline; an open path is capped with flat fans at both ends."""
    path = np.asarray(path, dtype=np.float64)
    radii = np.broadcast_to(np.asarray(radius, dtype=np.float64), (len(path),))
    normals, binormals = _frames(path, closed)
    theta = 2.0 * np.pi * np.arange(segments) / segments
    offs = np.cos(theta)[None, :, None] * normals[:, None, :] + np.sin(theta)[None, :, None] * binormals[:, None, :]
    verts = (path[:, None, :] + radii[:, None, None] * offs).reshape(-1, 3)
    quads = _ring_quads(len(path), segments, closed_rings=closed)
    if closed:
        return _assemble(verts, quads, [])
    n = len(path) * segments
    verts = np.vstack([verts, path[:1], path[-1:]])
    j = np.arange(segments)
    j1 = (j + 1) % segments
    last = (len(path) - 1) * segments
    tris = [
        np.stack([np.full(segments, n), j1, j], axis=1),
        np.stack([last + j, last + j1, np.full(segments, n + 1)], axis=1),
    ]
    return _assemble(verts, quads, tris)


def torus(major: float, minor: float, segments: int = 32, ring_segments: int = 12) -> PolyMesh:
    """A torus about +Z centred at the origin."""
    t = 2.0 * np.pi * np.arange(ring_segments) / ring_segments
    profile = np.stack([major + minor * np.cos(t), minor * np.sin(t)], axis=1)
    return lathe(profile, segments, closed=True)


def _axis_coords(size: float, radius: float, max_len: float, round_segments: int) -> np.ndarray:
    half = 0.5 * size
    inner = max(half - radius, 0.0)
    n = max(1, int(np.ceil(2 * inner / max_len - 1e-9))) if inner > 0 else 0
    mid = np.linspace(-inner, inner, n + 1) if n else np.array([0.0])
    if radius <= 0 or round_segments == 0:
        if n == 0:
            return np.array([-half, half])
        return np.linspace(-half, half, n + 1)
    edge = inner + (half - inner) * np.arange(1, round_segments + 1) / round_segments
    if n == 0:
        return np.concatenate([-edge[::-1], [0.0], edge])
    return np.concatenate([-edge[::-1], mid, edge])


def box(
    size: tuple[float, float, float], centre: tuple[float, float, float] = (0.0, 0.0, 0.0),
    max_len: float | None = None, radius: float = 0.0, round_segments: int = 3,
) -> PolyMesh:
    """An axis-aligned box of quads, edges no longer than ``max_len``; ``radius`` rounds its edges."""
    size_arr = np.asarray(size, dtype=np.float64)
    radius = float(min(radius, 0.5 * size_arr.min()))
    step = max_len or float(size_arr.max())
    coords = [_axis_coords(float(s), radius, step, round_segments if radius > 0 else 0) for s in size_arr]
    lo = np.array([c[0] for c in coords])
    hi = np.array([c[-1] for c in coords])
    pts, quads = [], []
    offset = 0
    for a in range(3):
        b, c = (a + 1) % 3, (a + 2) % 3
        cb, cc = coords[b], coords[c]
        gb, gc = np.meshgrid(cb, cc, indexing="ij")
        nb, nc = len(cb), len(cc)
        i, j = np.meshgrid(np.arange(nb - 1), np.arange(nc - 1), indexing="ij")
        q = np.stack([i * nc + j, (i + 1) * nc + j, (i + 1) * nc + j + 1, i * nc + j + 1], axis=-1).reshape(-1, 4)
        for side, value in ((1, hi[a]), (-1, lo[a])):
            p = np.empty((nb * nc, 3))
            p[:, a] = value
            p[:, b] = gb.ravel()
            p[:, c] = gc.ravel()
            pts.append(p)
            quads.append((q if side > 0 else q[:, ::-1]) + offset)
            offset += nb * nc
    allp = np.vstack(pts)
    uniq, inverse = np.unique(np.round(allp, 12), axis=0, return_inverse=True)
    faces = inverse.ravel()[np.vstack(quads)]
    verts = uniq
    if radius > 0:
        inner = 0.5 * size_arr - radius
        q = np.clip(verts, -inner, inner)
        d = verts - q
        norm = np.linalg.norm(d, axis=1, keepdims=True)
        moved = norm[:, 0] > 1e-12
        verts = verts.copy()
        verts[moved] = q[moved] + radius * d[moved] / norm[moved]
    return _assemble(verts + np.asarray(centre, dtype=np.float64), faces, [])


def uv_sphere(radius: float, segments: int = 32, rings: int = 16, centre_z: float = 0.0) -> PolyMesh:
    """A UV sphere about +Z."""
    phi = np.linspace(-0.5 * np.pi, 0.5 * np.pi, rings + 1)
    profile = np.stack([radius * np.cos(phi), centre_z + radius * np.sin(phi)], axis=1)
    profile[0, 0] = profile[-1, 0] = 0.0
    return lathe(profile, segments)


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
    nxt, prv = loops[following], loops[preceding]
    nv = mesh.num_vertices
    edges, edge_of_loop = _edge_ids(loops, nxt)
    _, edge_of_prev = _edge_ids(prv, loops, edges)
    v = mesh.vertices
    mids = 0.5 * (v[edges[:, 0]] + v[edges[:, 1]])
    sums = np.zeros((sizes.size, 3))
    np.add.at(sums, face_of_loop, v[loops])
    centres = sums / sizes[:, None]
    ne = len(edges)
    quads = np.stack([loops, nv + edge_of_loop, nv + ne + face_of_loop, nv + edge_of_prev], axis=1)
    return PolyMesh(np.vstack([v, mids, centres]), np.full(len(quads), 4), quads.ravel()), face_of_loop


def densify(mesh: PolyMesh, max_faces: int = 60_000, edge_fraction: float = 1.0 / 50.0) -> tuple[PolyMesh, np.ndarray]:
    """Subdivide (flat) until three edges in four are under ``edge_fraction`` of the mesh's size,
    staying under ``max_faces``; returns the mesh and each face's original face index."""
    size = float(np.linalg.norm(np.ptp(mesh.vertices, axis=0)))
    parents = np.arange(mesh.num_faces)
    while True:
        nxt = mesh.next_corners()
        lengths = np.linalg.norm(mesh.vertices[mesh.loops] - mesh.vertices[mesh.loops[nxt]], axis=1)
        if float(np.percentile(lengths, 75)) <= edge_fraction * size or int(mesh.loops.size) > max_faces:
            return mesh, parents
        mesh, up = subdivide(mesh)
        parents = parents[up]


def _edge_ids(a: np.ndarray, b: np.ndarray, edges: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Undirected edges (sorted pairs) and the index of each (a, b) pair among them."""
    pairs = np.sort(np.stack([a, b], axis=1), axis=1)
    if edges is None:
        edges, inverse = np.unique(pairs, axis=0, return_inverse=True)
        return edges, inverse.ravel()
    key_all = edges[:, 0] * (edges.max() + 1) + edges[:, 1]
    key = pairs[:, 0] * (edges.max() + 1) + pairs[:, 1]
    return edges, np.searchsorted(key_all, key)


def edge_face_counts(mesh: PolyMesh) -> np.ndarray:
    """How many faces use each undirected edge (2 everywhere on a closed manifold mesh)."""
    loops = mesh.loops.astype(np.int64)
    _, inverse = _edge_ids(loops, loops[mesh.next_corners()])
    return np.bincount(inverse)


def is_closed(mesh: PolyMesh) -> bool:
    """True when every edge is shared by exactly two faces with opposite directions (watertight, oriented)."""
    loops = mesh.loops.astype(np.int64)
    directed = np.stack([loops, loops[mesh.next_corners()]], axis=1)
    if np.any(directed[:, 0] == directed[:, 1]):
        return False
    uniq, counts = np.unique(directed, axis=0, return_counts=True)
    if np.any(counts != 1):
        return False
    rev = uniq[:, ::-1]
    key = uniq[:, 0] * (mesh.num_vertices + 1) + uniq[:, 1]
    rkey = rev[:, 0] * (mesh.num_vertices + 1) + rev[:, 1]
    return bool(np.isin(rkey, key).all())


def signed_volume(mesh: PolyMesh) -> float:
    """Enclosed volume (positive for outward-facing closed meshes)."""
    tri = mesh.triangles()
    v = mesh.vertices
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
