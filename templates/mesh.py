"""The parametric builders of the template library (lathe, sweep, torus, box, UV sphere).

Meshes are quad-based with outward normals (counter-clockwise corners seen from outside).
Surfaces of revolution end in triangle fans at the poles, like Blender's UV sphere. The mesh type
and the operations matching and blending need (triangulation, subdivision, closedness checks)
are ``geometry.mesh``'s, importable from here under the same names.
"""

from __future__ import annotations

import numpy as np

try:
    from ..geometry import mesh as _core
except ImportError:  # imported as a top-level ``templates`` (tools/, bench/: the repository root on sys.path)
    from geometry import mesh as _core  # type: ignore[no-redef]

PolyMesh = _core.PolyMesh
densify, subdivide, merge = _core.densify, _core.subdivide, _core.merge
fan_triangles, vertex_normals, signed_volume = _core.fan_triangles, _core.vertex_normals, _core.signed_volume
is_closed, edge_face_counts = _core.is_closed, _core.edge_face_counts

__all__ = [
    "PolyMesh", "box", "densify", "edge_face_counts", "fan_triangles", "is_closed", "lathe", "merge",
    "signed_volume", "subdivide", "sweep", "torus", "uv_sphere", "vertex_normals",
]


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
