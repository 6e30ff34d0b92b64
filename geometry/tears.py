"""Tears: the lattice's faces that span a depth jump, removed so objects in front of others
do not drape over them (a silhouette where a rounded object turns away is kept)."""

from __future__ import annotations

import math

import numpy as np

from .lattice import LatticeMesh
from .sampling import jump_pixels
from .topology import face_reduce


def tear_faces(lat: LatticeMesh, z: np.ndarray, z_c: np.ndarray, valid: np.ndarray,
          pixels: tuple[np.ndarray, np.ndarray] | None, xa: int, ya: int,
          tear: float, grid: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The lattice's faces without those that span a depth jump: (sizes, loops, kept-face flags).

    ``grid`` is the whole lattice's depth and flags from ``DepthSampler.sample_grid``, when
    sampled: the quads then get their depth span from it (see ``steep_faces``).
    """
    sizes, loops = lat.face_sizes, lat.loops
    keep = np.ones(sizes.size, dtype=bool)
    if tear <= 0:
        return sizes, loops, keep
    steep = steep_faces(lat, z, tear, grid)
    if not steep.any():
        return sizes, loops, keep
    # A steep face is torn only where the depth really jumps (surface on both sides),
    # not at a silhouette where a rounded object turns away from the camera.
    jumping = near_jump(lat, z_c, valid, pixels, xa, ya, tear)
    keep = ~(steep & face_reduce(jumping[loops], sizes, np.logical_or))
    if keep.any() and not keep.all():
        return sizes[keep], loops[np.repeat(keep, sizes)], keep
    keep[:] = True
    return sizes, loops, keep


def steep_faces(lat: LatticeMesh, z: np.ndarray, tear: float,
                 grid: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """Per face: its corners' depths span more than ``tear`` of the nearest.

    With the lattice's ``grid`` (depth (ny, nx) float32 and unusable-value flags) a quad whose
    corners are all unflagged lattice nodes has exactly the grid's values at its vertices
    (``plane._sample_vertices`` reads them from it), so the quads are tested on the grid's cells,
    a few passes over the grid instead of a gather of every corner; the quads near a warped
    node or a flagged value, and the cut polygons, are tested through their corners.
    """
    sizes, loops = lat.face_sizes, lat.loops
    t = np.float32(tear)
    quads = int(np.count_nonzero(lat.full))
    if grid is None or lat.near_quads is None or quads == 0:
        zl = z.astype(np.float32)[loops]
        zmin, zmax = face_reduce(zl, sizes, np.minimum), face_reduce(zl, sizes, np.maximum)
        return zmax - zmin > t * zmin
    g, flagged = grid
    lo = np.minimum(g[:-1, :-1], g[1:, :-1])
    np.minimum(lo, np.minimum(g[1:, 1:], g[:-1, 1:]), out=lo)
    hi = np.maximum(g[:-1, :-1], g[1:, :-1])
    np.maximum(hi, np.maximum(g[1:, 1:], g[:-1, 1:]), out=hi)
    hi -= lo
    lo *= t
    with np.errstate(invalid="ignore"):
        cell = hi > lo
    cell |= flagged[:-1, :-1]  # a flagged corner: decided through the corners below
    cell |= flagged[1:, :-1]
    cell |= flagged[1:, 1:]
    cell |= flagged[:-1, 1:]
    steep = np.empty(sizes.size, dtype=bool)
    steep[:quads] = cell[lat.full]
    redo = np.concatenate([lat.near_quads, np.flatnonzero(steep[:quads]), np.arange(quads, sizes.size)])
    if redo.size:  # the faces to test through their corners (quads lead, four corners each)
        corner = np.concatenate([(4 * redo[redo < quads, None] + np.arange(4)).ravel(),
                                 np.arange(4 * quads, loops.size)])
        zl = z.astype(np.float32)[loops[corner]]
        sub = np.concatenate([np.full(int(np.count_nonzero(redo < quads)), 4), sizes[quads:]])
        zmin, zmax = face_reduce(zl, sub, np.minimum), face_reduce(zl, sub, np.maximum)
        steep[redo] = zmax - zmin > t * zmin
    return steep


def near_jump(lat: LatticeMesh, z_c: np.ndarray, valid: np.ndarray, pixels: tuple[np.ndarray, np.ndarray] | None,
               xa: int, ya: int, tear: float) -> np.ndarray:
    """Per lattice-mesh vertex: whether a depth discontinuity passes within a cell of it."""
    import cv2

    jumps = jump_pixels(z_c, valid, tear, pixels)
    if not jumps.any():
        return np.zeros(lat.pixels.shape[0], dtype=bool)
    radius = int(math.ceil(0.75 * lat.spacing)) + 1
    near = cv2.dilate(jumps.astype(np.uint8), np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)) > 0
    c = np.clip(np.floor(lat.pixels[:, 0] - xa).astype(np.int64), 0, near.shape[1] - 1)
    r = np.clip(np.floor(lat.pixels[:, 1] - ya).astype(np.int64), 0, near.shape[0] - 1)
    return near[r, c]
