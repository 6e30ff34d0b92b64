"""Edge tables for ``MeshData``: the undirected edges (E, 2) and, per face corner, the edge
from that corner to the next corner of its face.

Blender builds this table itself when a mesh arrives without one, and at a million
vertices that is the most expensive step of the ingest. The geometry layer knows most
edges for free: nearly all of them join neighbouring lattice nodes, so they get an id
from their position on the lattice (a bucket per horizontal and per vertical lattice
side) instead of from a sort; only the few edges that touch an off-lattice vertex
(outline crossings, warped nodes, added midpoints and centres) are sorted. The backs
reuse the front's table: a back face is a reversed front face, so its corners use the
mirrored front edges.
"""

from __future__ import annotations

import numpy as np

from .topology import directed_edges, face_starts, leading_quads, next_corner_at


def _sorted_edges(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique undirected edges of the corner pairs ``(a, b)`` and each pair's edge index, by a sort
    of ``min * n + max`` int64 keys (the generic path)."""
    if a.size == 0:
        return np.zeros((0, 2), dtype=np.int32), np.zeros(0, dtype=np.int32)
    lo = np.minimum(a, b).astype(np.int64)
    hi = np.maximum(a, b).astype(np.int64)
    n = int(hi.max()) + 1
    lo *= n
    lo += hi
    keys, inverse = np.unique(lo, return_inverse=True)
    edges = np.empty((keys.size, 2), dtype=np.int32)
    np.floor_divide(keys, n, out=edges[:, 0], casting="unsafe")
    np.remainder(keys, n, out=edges[:, 1], casting="unsafe")
    return edges, inverse.astype(np.int32, copy=False)


def mesh_edges(face_sizes: np.ndarray, loops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edge table of any polygon mesh: ``(edges (E, 2) int32, corner_edges (L,) int32)``,
    ``corner_edges[i]`` being the edge from corner ``i`` to the next corner of its face."""
    a, b = directed_edges(face_sizes, loops)
    return _sorted_edges(a, b)


def lattice_mesh_edges(
    face_sizes: np.ndarray, loops: np.ndarray, node: np.ndarray, nx: int, ny: int,
    renumber: np.ndarray | None = None, shared_from: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Edge table (as ``mesh_edges``) of a mesh whose vertices mostly sit on lattice nodes.

    ``node`` is each vertex's flat lattice index (``row * nx + column``), -1 when it is off
    the lattice; no two vertices may share a node. An edge between horizontal or vertical
    lattice neighbours gets bucket ``2 * lower_node + vertical``; the used buckets, in
    order, are the first edges, and the remaining edges are sorted after them.

    With ``renumber`` (int32, one per vertex) the edges name vertex ``v`` as ``renumber[v]``:
    the table of the same mesh with its vertices renumbered, at no extra cost (a corner's
    edge does not depend on the numbering). With ``shared_from``, the off-lattice edges whose
    two ends are both numbered ``shared_from`` or above come last (see ``closed_back_edges``).
    """
    loops = np.asarray(loops)
    if loops.size == 0:
        return _sorted_edges(np.zeros(0, np.int32), np.zeros(0, np.int32))
    node = np.asarray(node, dtype=np.int32)
    sizes = np.asarray(face_sizes)
    spare = 2 * nx * ny
    # buckets index several passes (scatter, gathers): as numpy's own index type they are never
    # converted on the fly, which costs more than the wider array (2.6 ms against 7 ms at 2M)
    dtype = np.intp
    bucket = np.empty(loops.size, dtype=dtype)
    # Leading quads whose corners sit on the nodes (j, i), (j + 1, i), (j + 1, i + 1), (j, i + 1)
    # in that order (nearly all of a lattice mesh): their four sides follow from the first node.
    quads = leading_quads(sizes)
    corners = np.take(node, loops[:4 * quads]).reshape(quads, 4)
    n0 = corners[:, 0]
    clean = n0 >= 0
    clean &= corners[:, 1] == n0 + nx
    clean &= corners[:, 2] == n0 + (nx + 1)
    clean &= corners[:, 3] == n0 + 1
    # left (vertical from n0), bottom (horizontal from n0 + nx), right (vertical from n0 + 1), top
    head, twice = bucket[:4 * quads].reshape(quads, 4), n0.astype(dtype)
    twice *= 2
    for k, step in enumerate((1, 2 * nx, 3, 0)):  # a column at a time: broadcasting over 4 is slow
        np.add(twice, step, out=head[:, k])
    # every other corner the general way, from its node and the next corner's node
    odd = np.flatnonzero(~clean)
    rest = np.concatenate([(4 * odd[:, None] + np.arange(4)).ravel(), np.arange(4 * quads, loops.size)])
    na = np.take(node, np.take(loops, rest)).astype(dtype, copy=False)
    nb = np.take(node, np.take(loops, next_corner_at(sizes, rest))).astype(dtype, copy=False)
    lo = np.minimum(na, nb)
    d = np.maximum(na, nb) - lo
    vertical = d == nx
    on = ((d == 1) | vertical) & (lo >= 0)
    bucket[rest] = np.where(on, 2 * lo + vertical, spare)
    off = rest[~on]
    used = np.zeros(spare + 1, dtype=bool)
    used[bucket] = True
    used[spare] = False
    if used[:spare].reshape(ny, nx, 2)[:, nx - 1, 0].any():
        # a "horizontal" pair across a row end: not a lattice side
        return mesh_edges(face_sizes, loops if renumber is None else np.take(renumber, loops))
    rank = np.cumsum(used, dtype=np.int32)
    rank -= 1
    corner_edges = np.take(rank, bucket, mode="clip")  # buckets are in range: no checked copy
    slots = np.flatnonzero(used)
    vertex_of = np.full(nx * ny, -1, dtype=np.int32)
    has = np.flatnonzero(node >= 0)
    vertex_of[node[has]] = has if renumber is None else np.take(renumber, has)
    n_lattice = slots.size
    # only the off-lattice corners need their vertex pairs
    ends = np.take(loops, next_corner_at(face_sizes, off))
    rest_edges, rest_index = (_sorted_edges(np.take(loops, off), ends) if renumber is None
                              else _sorted_edges(renumber[loops[off]], np.take(renumber, ends)))
    if shared_from is not None and rest_edges.size:
        last = rest_edges.min(axis=1) >= shared_from
        order = np.concatenate([np.flatnonzero(~last), np.flatnonzero(last)])
        place = np.empty_like(order)
        place[order] = np.arange(order.size)
        rest_edges, rest_index = rest_edges[order], place[rest_index].astype(np.int32)
    edges = np.empty((n_lattice + rest_edges.shape[0], 2), dtype=np.int32)
    lo_node = slots >> 1
    np.take(vertex_of, lo_node, out=edges[:n_lattice, 0], mode="clip")  # in range: no checked copy
    slots &= 1  # vertical: the other end is a row below, else the next column
    slots *= nx - 1
    slots += 1
    lo_node += slots
    np.take(vertex_of, lo_node, out=edges[:n_lattice, 1], mode="clip")
    edges[n_lattice:] = rest_edges
    corner_edges[off] = n_lattice + rest_index
    return edges, corner_edges


def _previous_corner_edges(face_sizes: np.ndarray, corner_edges: np.ndarray,
                           out: np.ndarray | None = None) -> np.ndarray:
    """For every corner, the edge that arrives at it (the previous corner's edge), written into
    ``out`` when given (any view of the right size, e.g. a reversed one)."""
    out = np.empty_like(corner_edges) if out is None else out
    if out.size == 0:
        return out
    sizes = np.asarray(face_sizes)
    quads = leading_quads(sizes)
    # shift by one corner (a contiguous copy), then wrap the first corner of every leading quad
    out[1:] = corner_edges[:-1]
    out[0:4 * quads:4] = corner_edges[3:4 * quads:4]
    if quads < sizes.size:
        tail_sizes = sizes[quads:].astype(np.int64)
        starts = 4 * quads + face_starts(tail_sizes)
        out[starts] = corner_edges[starts + tail_sizes - 1]
    return out


def solidify_edges(
    face_sizes: np.ndarray, edges: np.ndarray, corner_edges: np.ndarray, n: int,
    wall_a: np.ndarray, wall_b: np.ndarray, wall_corner: np.ndarray,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Edge table of the solidified mesh from the front's (see ``backs._solidify_faces``):
    front faces, their reversed copies on vertices ``+ n``, then one wall quad
    ``(b, a, a + n, b + n)`` per outline edge ``a -> b`` of front corner ``wall_corner``.

    Returns None when the outline is not made of simple loops (a vertex starting two
    outline edges), where the walls' side edges cannot be numbered per vertex.
    """
    e = edges.shape[0]
    side = np.full(n, -1, dtype=np.int32)
    side[wall_a] = np.arange(wall_a.size, dtype=np.int32)
    if np.unique(wall_a).size != wall_a.size or np.any(side[wall_b] < 0):
        return None
    out_edges = np.empty((2 * e + wall_a.size, 2), dtype=np.int32)
    out_edges[:e] = edges
    np.add(edges, n, out=out_edges[e:2 * e], casting="unsafe")
    out_edges[2 * e:, 0] = wall_a
    out_edges[2 * e:, 1] = wall_a + n
    lf = corner_edges.size
    out = np.empty(2 * lf + 4 * wall_a.size, dtype=np.int32)
    out[:lf] = corner_edges
    # back corner k mirrors front corner lf - 1 - k and runs along the edge arriving there
    np.add(_previous_corner_edges(face_sizes, corner_edges)[::-1], e, out=out[lf:2 * lf])
    walls = out[2 * lf:].reshape(-1, 4)
    front = corner_edges[wall_corner]
    walls[:, 0] = front
    walls[:, 1] = 2 * e + side[wall_a]
    walls[:, 2] = front + e
    walls[:, 3] = 2 * e + side[wall_b]
    return out_edges, out


def closed_back_edges(
    face_sizes: np.ndarray, edges: np.ndarray, corner_edges: np.ndarray, n: int, inner: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Edge table of the closed mesh from the front's (see ``plane.build_object_mesh``): front
    faces on vertices ``0 .. n - 1``, then the reversed faces on their back copies (vertex
    ``v + n`` for ``v < inner``; the seam's vertices, ``inner`` and up, are their own copy).

    An edge joining two seam vertices is the outline, shared by front and back; every
    other front edge gets a back copy, numbered after the front's in the same order. When
    the shared edges are the front's last (``lattice_mesh_edges(..., shared_from=inner)``
    puts them there unless a tear runs along lattice sides), a back edge is its front edge
    plus ``e`` and every pass streams; otherwise the back's ids are gathered.
    """
    e = edges.shape[0]
    own = np.minimum(edges[:, 0], edges[:, 1]) < inner  # not both ends on the seam
    count = int(np.count_nonzero(own))
    out_edges = np.empty((e + count, 2), dtype=np.int32)
    out_edges[:e] = edges
    moved = out_edges[e:]
    lf = corner_edges.size
    out = np.empty(2 * lf, dtype=np.int32)
    out[:lf] = corner_edges
    back = out[lf:]  # back corner k mirrors front corner lf - 1 - k and runs along the edge arriving there
    if own[:count].all():
        moved[:] = edges[:count]
        np.add(moved, n, out=moved, where=moved < inner)
        _previous_corner_edges(face_sizes, corner_edges, out=back[::-1])
        np.add(back, e, out=back, where=back < count)
        return out_edges, out
    back_id = np.cumsum(own, dtype=np.int32)
    back_id += e - 1
    shared = np.flatnonzero(~own)
    back_id[shared] = shared
    # rows moved as one 8-byte word each: much faster than boolean-indexing (E, 2) rows
    moved.view(np.int64)[:, 0] = np.ascontiguousarray(edges, dtype=np.int32).view(np.int64).ravel()[own]
    np.add(moved, n, out=moved, where=moved < inner)
    np.take(back_id, _previous_corner_edges(face_sizes, corner_edges)[::-1], out=back, mode="clip")
    return out_edges, out
