"""Mesh sanity checks used by the product, tests and benchmarks (pure numpy): the one closedness
test (``is_closed``) and the full edge-level report."""

from __future__ import annotations

from typing import Any

import numpy as np

from .topology import directed_edges, edge_table


def is_closed(face_sizes: np.ndarray, loops: np.ndarray, oriented: bool = True) -> bool:
    """Whether every edge of the polygons is used by exactly two faces (watertight and edge-manifold,
    what ray-parity inside tests need) and, with ``oriented``, the two walk it in opposite directions
    (consistent normals, no degenerate edge). An empty mesh is closed."""
    a, b = directed_edges(face_sizes, loops)
    keys, inverse, counts = edge_table(face_sizes, loops)
    if not (counts == 2).all():
        return False
    if not oriented:
        return True
    forward = np.bincount(inverse, weights=(a < b), minlength=keys.size)
    return bool((forward == 1).all())


def edge_manifold_report(face_sizes: np.ndarray, loops: np.ndarray) -> dict[str, Any]:
    """Edge-level manifold report of a polygon mesh.

    Keys: ``vertices`` (referenced by faces), ``edges``, ``faces``, ``boundary_edges``
    (used by one face), ``nonmanifold_edges`` (used by more than two), ``inconsistent_edges``
    (two faces that walk the edge in the same direction, i.e. flipped normals),
    ``degenerate_faces`` (a corner repeating its successor), ``boundary_loops``
    (connected groups of boundary edges), ``euler`` (V - E + F), ``watertight`` and
    ``manifold``.
    """
    sizes = np.asarray(face_sizes, dtype=np.int64)
    lp = np.asarray(loops, dtype=np.int64)
    a, b = directed_edges(sizes, lp)
    keys, inverse, counts = edge_table(sizes, lp)
    n_vertices = int(np.unique(lp).size)

    # An edge used twice is consistently oriented when the two uses run in opposite directions.
    forward = (a < b).astype(np.int64)
    fwd_count = np.bincount(inverse, weights=forward, minlength=keys.size) if keys.size else np.zeros(0)
    twice = counts == 2
    inconsistent = int(np.count_nonzero(twice & (fwd_count != 1)))

    boundary = counts == 1
    loops_count = 0
    if boundary.any():
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        n = int(max(a.max(), b.max())) + 1
        bk = keys[boundary]
        u, v = bk // n, bk % n
        verts, idx = np.unique(np.concatenate([u, v]), return_inverse=True)
        m = verts.size
        graph = coo_matrix((np.ones(u.size), (idx[: u.size], idx[u.size:])), shape=(m, m))
        loops_count = int(connected_components(graph, directed=False)[0])

    result = {
        "vertices": n_vertices,
        "edges": int(keys.size),
        "faces": int(sizes.size),
        "boundary_edges": int(np.count_nonzero(boundary)),
        "nonmanifold_edges": int(np.count_nonzero(counts > 2)),
        "inconsistent_edges": inconsistent,
        "degenerate_faces": int(np.unique(np.repeat(np.arange(sizes.size), sizes)[a == b]).size),
        "boundary_loops": loops_count,
        "euler": n_vertices - int(keys.size) + int(sizes.size),
    }
    result["watertight"] = result["boundary_edges"] == 0 and result["nonmanifold_edges"] == 0
    result["manifold"] = result["nonmanifold_edges"] == 0 and inconsistent == 0
    return result
