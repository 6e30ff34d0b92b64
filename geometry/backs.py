"""The backs of an object's mesh, one unit per mode behind one interface (``Back``).

``plane.build_object_mesh`` builds the front surface; a back unit then prepares that front
for itself (the closed back splits it along its outline), says how many vertices the mesh
has, and writes its own rows, faces and edge table:

- ``open``: the front alone;
- ``solidify``: a back copy pushed ``thickness`` along the camera rays, walled at the outline;
- ``closed``: a mirrored back sharing the front's outline ("seam"), inflated by the smooth
  base's profile, so the mesh is closed and manifold.

The edge table is built on a worker thread (``pool``) while the main line goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .edges import closed_back_edges, lattice_mesh_edges, mesh_edges, solidify_edges
from .lattice import LatticeMesh, cells_around
from .texels import texel_layout, texel_texture, written_layout
from .topology import (
    corner_face_at,
    directed_edges,
    face_starts,
    faces_to_corners,
    insert_after_corners,
    leading_quads,
)

Edges = tuple[np.ndarray, np.ndarray]


@dataclass
class Front:
    """The front surface's vertices (pixel position, depth, lattice node or -1) and faces.

    ``border`` flags the boundary corners; ``lattice`` is the lattice mesh these are, when
    no face was removed (see ``_split_for_closed_back``); ``inner`` and ``renumber`` are set
    by the closed back (see ``_seam_last``)."""

    pixels: np.ndarray
    z: np.ndarray
    node: np.ndarray
    sizes: np.ndarray
    loops: np.ndarray
    border: np.ndarray
    nx: int
    ny: int
    lattice: LatticeMesh | None = None
    inner: int | None = None
    renumber: np.ndarray | None = None


@dataclass
class Surface:
    """The mesh's outputs with the front's ``n`` rows written: positions, relief (and its
    texture when one texel per vertex), UVs, and the front's camera rays and depths."""

    vertices: np.ndarray
    relief: np.ndarray
    texture: np.ndarray | None
    uvs: np.ndarray
    rx: np.ndarray
    ry: np.ndarray
    base_depth: np.ndarray
    relief_amount: np.ndarray
    inflation: Callable[[int], np.ndarray] | None = None  # the closed back's, at the first k vertices


@dataclass
class Finished:
    """What a back unit hands to the mesh: groups, relief texture and its UVs, faces and edges."""

    groups: dict[str, np.ndarray]
    texture: np.ndarray
    relief_uvs: np.ndarray
    sizes: np.ndarray
    loops: np.ndarray
    edges: np.ndarray
    corner_edges: np.ndarray


class Lap(Protocol):
    def lap(self, name: str) -> None: ...


class Back(Protocol):
    """One back mode."""

    closed: bool  # the smooth base also gives the inflation profile

    def prepare(self, front: Front, pool: ThreadPoolExecutor) -> Future[Edges]:
        """Adjust the front for this back (in place) and start its edge table on ``pool``."""

    def vertex_count(self, front: Front) -> int:
        """Vertices of the whole mesh."""

    def relief_buffers(self, total: int) -> tuple[np.ndarray | None, np.ndarray]:
        """(texture or None, relief (total, 3)) to write the relief into."""

    def finish(self, front: Front, out: Surface, clock: Lap, edges: Future[Edges]) -> Finished:
        """Write the back's rows and faces and collect the edge table."""


class OpenBack:
    """No back: the front surface alone."""

    closed = False

    def prepare(self, front: Front, pool: ThreadPoolExecutor) -> Future[Edges]:
        return pool.submit(_topology, front.sizes, front.loops, front.node, front.nx, front.ny)

    def vertex_count(self, front: Front) -> int:
        return int(front.pixels.shape[0])

    def relief_buffers(self, total: int) -> tuple[np.ndarray | None, np.ndarray]:
        return texel_texture(total)  # one texel per vertex: the relief is written straight into it

    def finish(self, front: Front, out: Surface, clock: Lap, edges: Future[Edges]) -> Finished:
        assert out.texture is not None
        texture, relief_uvs = written_layout(out.texture, out.relief, bool(out.relief_amount.any()))
        clock.lap("relief")
        edge_table, corner_edges = edges.result()
        clock.lap("edges")
        front_rows = np.zeros(out.vertices.shape[0], dtype=bool)
        front_rows[:] = True
        groups = {"front": front_rows, "back": ~front_rows}
        return Finished(groups, texture, relief_uvs, front.sizes, front.loops, edge_table, corner_edges)


class SolidifyBack:
    """A back copy of the front, ``thickness`` further along the camera rays, walled at the outline."""

    closed = False

    def __init__(self, thickness: float) -> None:
        self.thickness = thickness

    def prepare(self, front: Front, pool: ThreadPoolExecutor) -> Future[Edges]:
        return pool.submit(_topology, front.sizes, front.loops, front.node, front.nx, front.ny)

    def vertex_count(self, front: Front) -> int:
        return 2 * int(front.pixels.shape[0])

    def relief_buffers(self, total: int) -> tuple[np.ndarray | None, np.ndarray]:
        return None, np.empty((total, 3), dtype=np.float32)  # its back reuses the front's texels

    def finish(self, front: Front, out: Surface, clock: Lap, edges: Future[Edges]) -> Finished:
        n = front.pixels.shape[0]
        edge_table, corner_edges = edges.result()
        clock.lap("edges")
        vertices, relief, uvs, rx, ry = out.vertices, out.relief, out.uvs, out.rx, out.ry
        depth_back = out.base_depth + self.thickness / np.sqrt(1.0 + rx * rx + ry * ry)
        vertices[n:, 0] = rx * depth_back
        vertices[n:, 1] = ry * depth_back
        np.negative(depth_back, out=vertices[n:, 2], casting="same_kind")
        relief[n:] = relief[:n]
        uvs[n:] = uvs[:n]
        texture, relief_uvs = texel_layout(relief[:n])  # the back moves with the front: same texels
        relief_uvs = np.concatenate([relief_uvs, relief_uvs])
        sizes, loops, wall_corner = _solidify_faces(front.sizes, front.loops, n, front.border)
        front_rows = np.zeros(vertices.shape[0], dtype=bool)
        front_rows[:n] = True
        groups = {"front": front_rows, "back": ~front_rows}
        clock.lap("back")
        table = solidify_edges(front.sizes, edge_table, corner_edges, n, loops[2 * corner_edges.size + 1::4],
                               loops[2 * corner_edges.size::4], wall_corner)
        edge_table, corner_edges = table if table is not None else mesh_edges(sizes, loops)
        clock.lap("edges")
        return Finished(groups, texture, relief_uvs, sizes, loops, edge_table, corner_edges)


class ClosedBack:
    """A mirrored back sharing the front's outline, inflated by ``thickness`` times the base's profile."""

    closed = True

    def __init__(self, thickness: float) -> None:
        self.thickness = thickness

    def prepare(self, front: Front, pool: ThreadPoolExecutor) -> Future[Edges]:
        f = front
        f.pixels, f.z, f.node, f.sizes, f.loops, seam = _split_for_closed_back(f.pixels, f.z, f.node, f.sizes,
                                                                               f.loops, f.border, f.lattice)
        order, f.renumber, f.inner = _seam_last(seam)
        # the worker takes the edge table from the front as it is, naming the vertices by their new numbers
        job = pool.submit(_topology, f.sizes, f.loops, f.node, f.nx, f.ny, f.renumber, f.inner)
        if order is not None:  # (the corners are renumbered as the closed mesh's are laid out)
            f.pixels, f.z, f.node = np.take(f.pixels, order, axis=0), np.take(f.z, order), np.take(f.node, order)
        return job

    def vertex_count(self, front: Front) -> int:
        return int(front.pixels.shape[0]) + (front.inner or 0)

    def relief_buffers(self, total: int) -> tuple[np.ndarray | None, np.ndarray]:
        return texel_texture(total)

    def finish(self, front: Front, out: Surface, clock: Lap, edges: Future[Edges]) -> Finished:
        inner, n = front.inner, front.pixels.shape[0]
        assert inner is not None and out.inflation is not None and out.texture is not None  # set for a closed back
        groups = _closed_back_vertices(out.vertices, out.texture.reshape(-1, 4), out.uvs, n, inner, out.rx, out.ry,
                                       out.base_depth, out.relief_amount, self.thickness * out.inflation(inner))
        texture, relief_uvs = written_layout(out.texture, out.relief, bool(out.relief_amount.any()))
        # here: the worker has the edge tables
        sizes, loops = _closed_back_faces(front.sizes, front.loops, n, inner, front.renumber)
        clock.lap("back")
        edge_table, corner_edges = edges.result()
        clock.lap("edges")
        return Finished(groups, texture, relief_uvs, sizes, loops, edge_table, corner_edges)


BACK_UNITS: dict[str, Callable[[float], Back]] = {
    "open": lambda thickness: OpenBack(),
    "solidify": SolidifyBack,
    "closed": ClosedBack,
}
BACKS = tuple(BACK_UNITS)


def back_unit(name: str, thickness: float) -> Back:
    """The unit building back mode ``name``; ValueError for an unknown mode."""
    if name not in BACK_UNITS:
        raise ValueError(f"unknown back {name!r}; expected one of {BACKS}")
    return BACK_UNITS[name](thickness)


def _closed_back_vertices(
    vertices: np.ndarray, texels: np.ndarray, uvs: np.ndarray, n: int, inner: int,
    rx: np.ndarray, ry: np.ndarray, base_depth: np.ndarray, relief_amount: np.ndarray, inflation: np.ndarray,
) -> dict[str, np.ndarray]:
    """Fill rows ``n:`` of the outputs with the back and return the closed mesh's groups: a
    back copy ``n + k`` of every front vertex ``k < inner`` (those off the seam, see
    ``_seam_last``), pushed back by the inflation (``inflation``, one per copy) plus twice
    any outward relief, so the back never crosses the front at any strength.

    The back mirrors the front's relief: its texels (one per vertex, ``texels`` being the
    (h * w, 4) rows of ``texel_texture``, vertex ``k``'s relief in row ``k``) are the front's
    negated, so one Displace modifier moves both halves. Every row is a slice of the
    front's, so this is a few streaming passes and no gather.
    """
    depth_back = np.maximum(relief_amount[:inner], 0.0)
    depth_back *= 2.0
    depth_back += base_depth[:inner]
    depth_back += inflation
    np.multiply(rx[:inner], depth_back, out=vertices[n:, 0], casting="same_kind")
    np.multiply(ry[:inner], depth_back, out=vertices[n:, 1], casting="same_kind")
    np.negative(depth_back, out=vertices[n:, 2], casting="same_kind")
    flat = texels.reshape(-1)  # whole rows at once: contiguous, ~6x faster than the (k, 3) views
    np.negative(flat[:4 * inner], out=flat[4 * n:4 * (n + inner)])
    texels[n:n + inner, 3] = 1.0  # alpha
    uvs[n:] = uvs[:inner]
    total = vertices.shape[0]
    front = np.zeros(total, dtype=bool)
    front[:n] = True
    back = ~front
    back[inner:n] = True
    seam_group = np.zeros(total, dtype=bool)
    seam_group[inner:n] = True
    return {"front": front, "back": back, "seam": seam_group}


def _topology(
    sizes: np.ndarray, loops: np.ndarray, node: np.ndarray, nx: int, ny: int,
    renumber: np.ndarray | None = None, inner: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(edges, corner_edges) of the front (its vertices renamed by ``renumber`` when given) and,
    given ``inner`` (the closed back copies the vertices numbered below it, see ``_seam_last``),
    of the closed mesh as ``_closed_back_faces`` lays it out."""
    edges, corner_edges = lattice_mesh_edges(sizes, loops, node, nx, ny, renumber, inner)
    if inner is None:
        return edges, corner_edges
    return closed_back_edges(sizes, edges, corner_edges, node.size, inner)


def _seam_last(seam: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None, int]:
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


def _closed_back_faces(
    sizes: np.ndarray, loops: np.ndarray, n: int, inner: int, renumber: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(sizes, loops) of the closed mesh: the front faces (their vertices renamed by ``renumber``,
    see ``_seam_last``), then the reversed front faces on the back copies of their vertices
    (``v + n`` for ``v < inner``, the seam's own vertex otherwise)."""
    both = np.empty(2 * loops.size, dtype=np.int32)
    front, back = both[:loops.size], both[loops.size:]
    if renumber is None:
        front[:] = loops
    else:
        np.take(renumber, loops, out=front, mode="clip")  # every corner names a vertex: in range
    back[:] = front[::-1]  # the reversed faces
    np.add(back, n, out=back, where=back < inner)  # on the back copies
    return np.concatenate([sizes, sizes[::-1]]), both


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


def _split_for_closed_back(
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


def _solidify_faces(sizes: np.ndarray, loops: np.ndarray, n: int,
                    border: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Front faces, reversed back copies (vertex + n) and quads walling every outline edge;
    also returns the front corner each wall stands on."""
    a, b = directed_edges(sizes, loops)
    wall_corner = np.flatnonzero(border)
    ba, bb = a[wall_corner], b[wall_corner]
    new_sizes = np.empty(2 * sizes.size + ba.size, dtype=np.int32)
    new_sizes[:sizes.size] = sizes
    new_sizes[sizes.size:2 * sizes.size] = sizes[::-1]  # back: reversed faces (reversing all corners at once)
    new_sizes[2 * sizes.size:] = 4
    new_loops = np.empty(2 * loops.size + 4 * ba.size, dtype=np.int32)
    new_loops[:loops.size] = loops
    np.add(loops[::-1], n, out=new_loops[loops.size:2 * loops.size], casting="unsafe")
    walls = new_loops[2 * loops.size:].reshape(-1, 4)
    walls[:, 0], walls[:, 1], walls[:, 2], walls[:, 3] = bb, ba, ba + n, bb + n
    return new_sizes, new_loops, wall_corner
