"""Which corners of a lattice mesh start a boundary edge, once some of its faces are dropped
(torn across depth jumps): the open edges the back is joined along.
"""

from __future__ import annotations

import numpy as np

from .lattice import LatticeMesh
from .topology import next_corner


def lattice_border(lat: LatticeMesh, keep: np.ndarray) -> np.ndarray:
    """Boundary flags (outgoing edge used by one face) for the corners of the faces ``keep`` selects.

    Edges along lattice sides are counted on the cell grid (each side is shared by the
    two cells beside it), so this costs a few passes over the grid instead of sorting
    every edge; only the few edges through outline crossings are sorted.
    """
    nx, ny = lat.nx, lat.ny
    n_quads = int(np.count_nonzero(lat.full))
    keep_q, keep_c = keep[:n_quads], keep[n_quads:]
    kept = lat.full.copy()
    kept[lat.full] = keep_q
    k8 = kept.view(np.int8)
    h_count = np.zeros((ny, nx - 1), dtype=np.int8)  # side between (j, i) and (j, i + 1)
    v_count = np.zeros((ny - 1, nx), dtype=np.int8)  # side between (j, i) and (j + 1, i)
    h_count[:-1] += k8
    h_count[1:] += k8
    v_count[:, :-1] += k8
    v_count[:, 1:] += k8
    cut_sizes = lat.face_sizes[n_quads:]
    cut_face = np.repeat(np.arange(cut_sizes.size), cut_sizes)
    cut_keep = keep_c[cut_face]
    side = lat.cut_side
    sel = cut_keep & (side >= 0)
    cj, ci = np.divmod(lat.cut_cells[cut_face[sel]], nx - 1)
    k = side[sel]
    sj = np.where(k == 1, cj + 1, cj)  # side 0: left, 1: bottom, 2: right, 3: top
    si = np.where(k == 2, ci + 1, ci)
    vertical = (k == 0) | (k == 2)
    np.add.at(v_count, (sj[vertical], si[vertical]), 1)
    np.add.at(h_count, (sj[~vertical], si[~vertical]), 1)

    n_kept_q = int(np.count_nonzero(keep_q))
    cut_loops_kept = int(cut_sizes[keep_c].sum())
    border = np.zeros(4 * n_kept_q + cut_loops_kept, dtype=bool)
    sides = (v_count[:, :-1] == 1, h_count[1:] == 1, v_count[:, 1:] == 1, h_count[:-1] == 1)
    lonely = (sides[0] | sides[1] | sides[2] | sides[3]) & kept
    if lonely.any():
        rank = np.cumsum(kept.ravel()) - 1
        cells = np.flatnonzero(lonely)
        for k_side, grid in enumerate(sides):
            on_side = grid.ravel()[cells]
            border[4 * rank[cells[on_side]] + k_side] = True

    # cut polygons: whole sides from the counts, the other edges by sorting
    tail = border[4 * n_kept_q:]
    side_k = side[cut_keep]
    cells_k = lat.cut_cells[cut_face[cut_keep]]
    whole = side_k >= 0
    cj, ci = np.divmod(cells_k[whole], nx - 1)
    k = side_k[whole]
    sj = np.where(k == 1, cj + 1, cj)
    si = np.where(k == 2, ci + 1, ci)
    tail[whole] = np.where((k == 0) | (k == 2), v_count[np.minimum(sj, ny - 2), si] == 1,
                           h_count[sj, np.minimum(si, nx - 2)] == 1)
    cut_lp = lat.loops[4 * n_quads:][cut_keep].astype(np.int64)
    sizes_k = cut_sizes[keep_c]
    if cut_lp.size:
        nxt = cut_lp[next_corner(sizes_k)]
        other = ~whole
        if other.any():
            a, b = cut_lp[other], nxt[other]
            n = int(max(a.max(), b.max())) + 1
            _, inv, cnt = np.unique(np.minimum(a, b) * n + np.maximum(a, b), return_inverse=True,
                                    return_counts=True)
            tail[other] = cnt[inv] == 1
    return border
