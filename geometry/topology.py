"""Vectorised helpers on polygon meshes stored as ``face_sizes`` + ``loops`` (the layout of
``geometry.mesh.PolyMesh``, and so of ``MeshData``): corner walks, edges, areas, reversal, compaction.
"""

from __future__ import annotations

import numpy as np


def row_items(a: np.ndarray) -> np.ndarray:
    """A C-contiguous (N, k) array as N opaque items, so ``np.take``/``np.put`` move whole rows
    at once (fancy indexing of 2D rows is several times slower)."""
    a = np.asarray(a)
    return a.view(np.dtype((np.void, a.dtype.itemsize * a.shape[1]))).reshape(-1)


def face_starts(face_sizes: np.ndarray) -> np.ndarray:
    """Index of each face's first corner in ``loops``."""
    sizes = np.asarray(face_sizes, dtype=np.int64)
    starts = np.zeros(sizes.shape[0], dtype=np.int64)
    if sizes.shape[0] > 1:
        np.cumsum(sizes[:-1], out=starts[1:])
    return starts


def next_corner(face_sizes: np.ndarray) -> np.ndarray:
    """For every corner, the index of the following corner of the same face (wrapping)."""
    sizes = np.asarray(face_sizes)
    total = int(sizes.sum(dtype=np.int64))
    dtype = np.int32 if total < 2**31 - 1 else np.int64
    nxt = np.arange(1, total + 1, dtype=dtype)
    if sizes.shape[0]:
        starts = face_starts(sizes)
        nxt[starts + sizes - 1] = starts
    return nxt


def next_corner_at(face_sizes: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """The corner after each of ``corners`` (indices into ``loops``) in its face, without
    walking the whole mesh: arithmetic on the leading quads, ``next_corner`` on the rest."""
    sizes = np.asarray(face_sizes)
    c = np.asarray(corners, dtype=np.int64)
    quads = leading_quads(sizes)
    nxt = c + 1
    nxt[(c < 4 * quads) & ((c & 3) == 3)] -= 4
    tail = c >= 4 * quads
    if tail.any():
        nxt[tail] = 4 * quads + next_corner(sizes[quads:])[c[tail] - 4 * quads]
    return nxt


def corner_face_at(face_sizes: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Face index of each of ``corners`` (indices into ``loops``), arithmetic on the leading quads."""
    sizes = np.asarray(face_sizes)
    c = np.asarray(corners, dtype=np.int64)
    quads = leading_quads(sizes)
    face = c >> 2
    tail = c >= 4 * quads
    if tail.any():
        starts = face_starts(sizes[quads:])
        face[tail] = quads + np.searchsorted(starts, c[tail] - 4 * quads, side="right") - 1
    return face


def faces_to_corners(face_mask: np.ndarray, face_sizes: np.ndarray) -> np.ndarray:
    """Per-face flags repeated onto every corner of the face (``np.repeat`` by a constant on the
    leading quads, which is several times faster than by a sizes array)."""
    sizes = np.asarray(face_sizes)
    quads = leading_quads(sizes)
    out = np.empty(int(sizes.sum(dtype=np.int64)), dtype=face_mask.dtype)
    out[:4 * quads] = np.repeat(face_mask[:quads], 4)
    out[4 * quads:] = np.repeat(face_mask[quads:], sizes[quads:])
    return out


def corner_faces(face_sizes: np.ndarray) -> np.ndarray:
    """Face index of every corner."""
    sizes = np.asarray(face_sizes, dtype=np.int64)
    return np.repeat(np.arange(sizes.shape[0], dtype=np.int64), sizes)


def leading_quads(face_sizes: np.ndarray) -> int:
    """How many faces at the start of ``face_sizes`` are quads (lattice meshes put theirs first)."""
    sizes = np.asarray(face_sizes)
    other = sizes != 4
    first = int(np.argmax(other)) if sizes.size else 0
    return first if sizes.size and other[first] else sizes.size


def directed_edges(face_sizes: np.ndarray, loops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(a, b)`` vertex pairs of every corner's outgoing edge, in face winding order."""
    lp = np.asarray(loops)
    sizes = np.asarray(face_sizes)
    b = np.empty_like(lp)
    if lp.size == 0:
        return lp, b
    quads = leading_quads(sizes)
    # shift by one corner (a contiguous copy), then wrap the last corner of every leading quad
    b[:-1] = lp[1:]
    b[3:4 * quads:4] = lp[0:4 * quads:4]
    if quads < sizes.size:
        tail = lp[4 * quads:]
        b[4 * quads:] = tail[next_corner(sizes[quads:])]
    return lp, b


def edge_table(face_sizes: np.ndarray, loops: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undirected edges of the mesh.

    Returns ``(keys, inverse, counts)``: ``keys`` (E,) are ``min * n + max`` codes with
    ``n = loops.max() + 1``, ``inverse`` maps every corner to its edge and ``counts``
    says how many corners (faces) use each edge.
    """
    a, b = directed_edges(face_sizes, loops)
    if a.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    n = int(max(a.max(), b.max())) + 1
    key = np.minimum(a, b) * n + np.maximum(a, b)
    keys, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    return keys, inverse, counts


def polygon_areas(points: np.ndarray, face_sizes: np.ndarray, loops: np.ndarray) -> np.ndarray:
    """Signed areas of polygons over 2D ``points`` (positive when counter-clockwise in x/y)."""
    sizes = np.asarray(face_sizes, dtype=np.int64)
    if sizes.shape[0] == 0:
        return np.zeros(0)
    lp = np.asarray(loops, dtype=np.int64)
    nxt = lp[next_corner(sizes)]
    p, q = points[lp], points[nxt]
    cross = p[:, 0] * q[:, 1] - q[:, 0] * p[:, 1]
    return 0.5 * np.add.reduceat(cross, face_starts(sizes))


def reverse_faces(face_sizes: np.ndarray, loops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same faces with their winding reversed: ``(face_sizes, loops)`` (face order reversed too).

    Reversing the whole corner array reverses every face's corner order at once.
    """
    return np.asarray(face_sizes)[::-1].copy(), np.asarray(loops)[::-1].copy()


def compact_vertices(num_vertices: int, loops: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """Drop vertices no face uses. Returns ``(kept_old_ids, remapped_loops)``, or
    ``(None, loops)`` when every vertex is used."""
    used = np.zeros(num_vertices, dtype=bool)
    used[loops] = True
    if used.all():
        return None, loops
    kept = np.flatnonzero(used)
    remap = np.full(num_vertices, -1, dtype=loops.dtype)
    remap[kept] = np.arange(kept.size, dtype=loops.dtype)
    return kept, remap[loops]


def insert_after_corners(
    face_sizes: np.ndarray, loops: np.ndarray, corner_mask: np.ndarray, new_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Insert vertex ``new_ids[k]`` after every corner selected by ``corner_mask`` (k-th selected).

    Used to split an edge inside both faces that share it.
    """
    sizes = np.asarray(face_sizes, dtype=np.int64)
    lp = np.asarray(loops, dtype=np.int64)
    reps = 1 + corner_mask.astype(np.int64)
    out = np.repeat(lp, reps)
    pos = np.cumsum(reps) - 1  # position of the last copy of each corner
    out[pos[corner_mask]] = new_ids
    added = np.add.reduceat(corner_mask.astype(np.int64), face_starts(sizes)) if sizes.size else sizes
    return sizes + added, out


def face_reduce(values: np.ndarray, face_sizes: np.ndarray, ufunc: np.ufunc) -> np.ndarray:
    """``ufunc.reduceat`` of per-corner ``values`` over each face, fast on a leading run of quads."""
    sizes = np.asarray(face_sizes)
    if sizes.size == 0:
        return values[:0]
    quads = leading_quads(sizes)
    r = values[: 4 * quads].reshape(quads, 4)
    head = ufunc(ufunc(r[:, 0], r[:, 1]), ufunc(r[:, 2], r[:, 3]))  # much faster than reduce(axis=1)
    if quads == sizes.size:
        return head
    tail = ufunc.reduceat(values[4 * quads:], face_starts(sizes[quads:]))
    return np.concatenate([head, tail])


def boundary_corners(
    face_sizes: np.ndarray, loops: np.ndarray, lattice_node: np.ndarray | None = None, nx: int = 0, ny: int = 0
) -> np.ndarray:
    """For every corner, whether its outgoing edge is a boundary edge (used by one face).

    With ``lattice_node`` (flat lattice index per vertex, -1 when off the lattice) edges
    between lattice neighbours are counted with a bincount over lattice edge ids, which
    avoids sorting millions of edge keys; the few remaining edges are sorted.
    """
    a, b = directed_edges(face_sizes, loops)
    out = np.zeros(a.size, dtype=bool)
    rest = np.ones(a.size, dtype=bool)
    if lattice_node is not None and a.size:
        na, nb = np.take(lattice_node, a), np.take(lattice_node, b)
        lo = np.minimum(na, nb)
        d = np.maximum(na, nb)
        d -= lo
        horizontal = d == 1
        on_lattice = (horizontal | (d == nx)) & (lo >= 0)
        # edge id: lo for horizontal, lo + nx * ny for vertical, a spare bucket for the rest
        eid = np.where(on_lattice, lo.astype(np.int64) + np.where(horizontal, 0, nx * ny), 2 * nx * ny)
        count = np.bincount(eid, minlength=2 * nx * ny + 1)
        out = (np.take(count, eid) == 1) & on_lattice
        rest = ~on_lattice
    if rest.any():
        ra, rb = a[rest].astype(np.int64), b[rest].astype(np.int64)
        n = int(max(ra.max(), rb.max())) + 1
        _, inv, cnt = np.unique(np.minimum(ra, rb) * n + np.maximum(ra, rb), return_inverse=True, return_counts=True)
        out[rest] = cnt[inv] == 1
    return out


def split_bowties(
    face_sizes: np.ndarray, loops: np.ndarray, n_vertices: int, border: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Give every fan of faces around a "bowtie" vertex (where boundary loops touch) its own vertex.

    ``border`` flags boundary corners (``boundary_corners``). Returns ``(loops, source)``:
    the new loops and, for each added vertex, the vertex it copies.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    lp = np.asarray(loops)
    degree = np.bincount(lp[border], minlength=n_vertices)
    bowtie = degree > 1
    if not bowtie.any():
        return lp, np.zeros(0, dtype=np.int64)
    corners = np.flatnonzero(bowtie[lp])
    nxt = next_corner(face_sizes)
    prv = np.empty_like(nxt)
    prv[nxt] = np.arange(nxt.size)
    v = lp[corners].astype(np.int64)
    k_out = v * n_vertices + lp[nxt[corners]]
    k_in = v * n_vertices + lp[prv[corners]]
    order = np.argsort(k_in)
    pos = np.clip(np.searchsorted(k_in[order], k_out), 0, corners.size - 1)
    match = k_in[order][pos] == k_out
    m = corners.size
    src, dst = np.flatnonzero(match), order[pos[match]]
    graph = coo_matrix((np.ones(src.size), (src, dst)), shape=(m, m))
    _, fan = connected_components(graph, directed=False)
    pair = v * m + fan
    uniq, inv = np.unique(pair, return_inverse=True)
    owner = uniq // m
    first = np.ones(uniq.size, dtype=bool)
    first[1:] = owner[1:] != owner[:-1]
    new_id = np.where(first, owner, 0)
    extra = np.flatnonzero(~first)
    new_id[extra] = n_vertices + np.arange(extra.size)
    out = lp.copy()
    out[corners] = new_id[inv]
    return out, owner[extra].astype(np.int64)
