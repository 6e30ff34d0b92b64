"""The closed back's seam: the front made ready to share its outline with a mirrored back.

``split_for_closed_back`` keeps the mesh manifold once the back reuses the outline's vertices;
``seam_last`` numbers the seam's vertices last, so the back is a slice of the front.
"""

from __future__ import annotations

import numpy as np

from .lattice import LatticeMesh, cells_around
from .topology import (
    corner_face_at,
    directed_edges,
    face_starts,
    faces_to_corners,
    insert_after_corners,
    leading_quads,
)


def seam_last(seam: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None, int]:
    """A renumbering of the front's vertices that puts the seam's last: ``(order, renumber,
    inner)``, vertex ``order[k]`` becoming ``k`` and ``v`` becoming ``renumber[v]`` (int32),
    ``inner`` the count off the seam; ``(None, None, n)`` when no vertex is on the seam.

    The closed back then copies the slice of vertices below ``inner``, and a back corner is
    its front corner plus ``n`` wherever the vertex is below ``inner``: streaming passes
    instead of gathers through a scattered selection (about a sixth of the geometry at 1M
    vertices). Vertices keep their order within each part, so the mesh stays cache-friendly.
    """
    off = np.flatnonzero(~seam)
    if off.size == seam.size:
        return None, None, off.size
    order = np.concatenate([off, np.flatnonzero(seam)])
    renumber = np.empty(seam.size, dtype=np.int32)
    renumber[order] = np.arange(seam.size, dtype=np.int32)
    return order, renumber, off.size


def _quads_near(lat: LatticeMesh, nodes: np.ndarray) -> np.ndarray:
    """The lattice's quads (face indices) with a corner off the lattice, and those of the
    cells around the ``nodes`` given (flat lattice indices; negative ones are skipped)."""
    nodes = nodes[nodes >= 0]
    if nodes.size == 0:
        assert lat.near_quads is not None  # set by every lattice the builder makes
        return lat.near_quads
    cj, ci = cells_around(nodes, lat.nx, lat.ny)
    cj, ci = np.divmod(np.unique(cj * (lat.nx - 1) + ci), lat.nx - 1)
    full = lat.full
    keep = full[cj, ci]
    cj, ci = cj[keep], ci[keep]
    # quad k is the k-th full cell in row-major order: count the full cells before each one,
    # in the rows before its own and, within its row, up to it (only the rows involved)
    before_row = np.concatenate([[0], np.cumsum(np.count_nonzero(full, axis=1))])
    rows, row_of = np.unique(cj, return_inverse=True)
    within = np.cumsum(full[rows], axis=1)
    quads = before_row[cj] + within[row_of, ci] - 1
    return np.concatenate([lat.near_quads, quads.astype(np.int64, copy=False)])


def _copy_quads_except(quad_loops: np.ndarray, skip: np.ndarray, out: np.ndarray) -> int:
    """Copy the quads' corners (4 per quad) to the start of ``out`` without the quads ``skip``
    (sorted indices); returns how many corners were written. A few skipped quads cost a few
    runs of plain copies; many, one boolean pass."""
    if skip.size > 4096:
        keep = np.ones(quad_loops.size // 4, dtype=bool)
        keep[skip] = False
        kept = quad_loops.reshape(-1, 4)[keep].ravel()
        out[:kept.size] = kept
        return kept.size
    done = start = 0
    for q in skip.tolist():
        run = quad_loops[4 * start:4 * q]
        out[done:done + run.size] = run
        done += run.size
        start = q + 1
    run = quad_loops[4 * start:]
    out[done:done + run.size] = run
    return done + run.size


def split_for_closed_back(
    pixels: np.ndarray, z: np.ndarray, node: np.ndarray, sizes: np.ndarray, loops: np.ndarray, border: np.ndarray,
    lattice: LatticeMesh | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Prepare the front so a back can share its outline and stay manifold.

    The back reuses the front's outline ("seam") vertices. An inner edge joining two
    seam vertices would then be used by four faces, so it gets a midpoint; a face made
    only of seam vertices would coincide with its back copy, so it becomes a fan
    around a new centre vertex. ``border`` flags the boundary corners.

    ``lattice``: the lattice mesh these faces and vertices are, as it was built (no face
    removed, vertices only added): a seam vertex then lies on a cut polygon (the faces after
    the lattice's quads), on a quad with a corner off the lattice (its ``near_quads``) or, on
    the lattice, on the quads of the cells around its node; only those faces' corners are
    looked at, not every corner's.
    """
    n0 = n = pixels.shape[0]
    seam = np.zeros(n, dtype=bool)
    ends = loops[border]
    seam[ends] = True
    # Only faces with a seam vertex can change: work on them and put them last.
    touch = np.zeros(sizes.size, dtype=bool)
    if lattice is not None:
        near, lattice_quads = _quads_near(lattice, node[ends]), int(np.count_nonzero(lattice.full))
        corners = np.concatenate([(4 * near[:, None] + np.arange(4)).ravel(),
                                  np.arange(4 * lattice_quads, loops.size)])
        touch[corner_face_at(sizes, corners[np.take(seam, loops[corners])])] = True
    else:
        touch[corner_face_at(sizes, np.flatnonzero(np.take(seam, loops)))] = True
    # The touched faces: a few of the leading quads (picked by index) and, among the faces after
    # them, a mask; the quads between touched ones are later copied as whole runs.
    quads = leading_quads(sizes)
    touched_quads = np.flatnonzero(touch[:quads])
    quad_corners = (4 * touched_quads[:, None] + np.arange(4)).ravel()
    tail_touch = faces_to_corners(touch[quads:], sizes[quads:])
    rest_sizes, all_loops = sizes[~touch], loops
    sizes = sizes[touch]
    loops = np.concatenate([all_loops[quad_corners], all_loops[4 * quads:][tail_touch]])
    border = np.concatenate([border[quad_corners], border[4 * quads:][tail_touch]])
    new_pixels, new_z = [], []  # added vertices, appended once at the end (the arrays are large)
    a, b = directed_edges(sizes, loops)
    chord = ~border & seam[a] & seam[b]
    if chord.any():
        ca, cb = a[chord].astype(np.int64), b[chord].astype(np.int64)
        _, rank = np.unique(np.minimum(ca, cb) * n + np.maximum(ca, cb), return_inverse=True)
        count = int(rank.max()) + 1
        first = np.zeros(count, dtype=np.int64)
        first[rank] = np.flatnonzero(chord)
        ea, eb = a[first], b[first]
        new_pixels.append(0.5 * (pixels[ea] + pixels[eb]))
        new_z.append(0.5 * (z[ea] + z[eb]))
        seam = np.concatenate([seam, np.zeros(count, dtype=bool)])
        sizes, loops = insert_after_corners(sizes, loops, chord, n + rank)
        n += count
    starts = face_starts(sizes)
    all_seam = np.minimum.reduceat(seam[loops].astype(np.int8), starts) > 0
    if all_seam.any():
        fan = np.flatnonzero(all_seam)
        corner_sel = np.repeat(all_seam, sizes)
        f_sizes = sizes[fan]
        f_loops = loops[corner_sel]  # seam vertices only, so all of them are below n0
        f_starts = face_starts(f_sizes)
        new_pixels.append(np.add.reduceat(pixels[f_loops], f_starts) / f_sizes[:, None])
        new_z.append(np.add.reduceat(z[f_loops], f_starts) / f_sizes)
        centre_id = n + np.arange(fan.size)
        face_of = np.repeat(np.arange(fan.size), f_sizes)
        nxt = np.arange(1, f_loops.size + 1)
        nxt[f_starts + f_sizes - 1] = f_starts
        tris = np.stack([f_loops, f_loops[nxt], centre_id[face_of]], axis=1).ravel()
        seam = np.concatenate([seam, np.zeros(fan.size, dtype=bool)])
        loops = np.concatenate([loops[~corner_sel], tris])
        sizes = np.concatenate([sizes[~all_seam], np.full(f_loops.size, 3, dtype=sizes.dtype)])
        n += fan.size
    if n > n0:
        pixels = np.concatenate([pixels, *new_pixels])
        z = np.concatenate([z, *new_z])
        node = np.concatenate([node, np.full(n - n0, -1, dtype=node.dtype)])
    out_sizes = np.empty(rest_sizes.size + sizes.size, dtype=np.int32)
    out_sizes[:rest_sizes.size] = rest_sizes
    out_sizes[rest_sizes.size:] = sizes
    out_loops = np.empty(out_sizes.sum(dtype=np.int64), dtype=np.int32)
    kept = out_loops.size - loops.size
    done = _copy_quads_except(all_loops[:4 * quads], touched_quads, out_loops)
    out_loops[done:kept] = all_loops[4 * quads:][~tail_touch]  # a bool index: faster than compress(out=), which buffers
    out_loops[kept:] = loops
    return pixels, z, node, out_sizes, out_loops, seam
