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
from .lattice import LatticeMesh
from .seam import seam_last, split_for_closed_back
from .settings import Back as BackMode
from .texels import texel_layout, texel_texture, written_layout
from .topology import directed_edges

Edges = tuple[np.ndarray, np.ndarray]


@dataclass
class Front:
    """The front surface's vertices (pixel position, depth, lattice node or -1) and faces.

    ``border`` flags the boundary corners; ``lattice`` is the lattice mesh these are, when
    no face was removed (see ``split_for_closed_back``); ``inner`` and ``renumber`` are set
    by the closed back (see ``seam_last``)."""

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
        front_rows = np.ones(out.vertices.shape[0], dtype=bool)  # every vertex: there is no back
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
        f.pixels, f.z, f.node, f.sizes, f.loops, seam = split_for_closed_back(f.pixels, f.z, f.node, f.sizes,
                                                                               f.loops, f.border, f.lattice)
        order, f.renumber, f.inner = seam_last(seam)
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
    BackMode.OPEN: lambda thickness: OpenBack(),
    BackMode.SOLIDIFY: SolidifyBack,
    BackMode.CLOSED: ClosedBack,
}
BACKS = tuple(str(m) for m in BackMode)


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
    ``seam_last``), pushed back by the inflation (``inflation``, one per copy) plus twice
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
    given ``inner`` (the closed back copies the vertices numbered below it, see ``seam_last``),
    of the closed mesh as ``_closed_back_faces`` lays it out."""
    edges, corner_edges = lattice_mesh_edges(sizes, loops, node, nx, ny, renumber, inner)
    if inner is None:
        return edges, corner_edges
    return closed_back_edges(sizes, edges, corner_edges, node.size, inner)


def _closed_back_faces(
    sizes: np.ndarray, loops: np.ndarray, n: int, inner: int, renumber: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(sizes, loops) of the closed mesh: the front faces (their vertices renamed by ``renumber``,
    see ``seam_last``), then the reversed front faces on the back copies of their vertices
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
