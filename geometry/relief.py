"""The front's vertices placed in camera space: each on the smooth base along its camera ray,
with the relief (the Displace modifier's vector) the rest of the way to its depth.

Fields (the base's depth, the closed back's inflation) are read at the vertices off their values
on the lattice's nodes (separable, fast), point by point only where a vertex is off its node.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import CameraModel
from .backs import Back, Front, Surface
from .lattice import LatticeMesh
from .membrane import BaseSurface, membrane_base


def front_surface(front: Front, back: Back, camera: CameraModel, base: BaseSurface, base_grid: np.ndarray,
                  inflation_grid: np.ndarray | None) -> Surface:
    """The mesh's outputs, sized for ``back``, with the front's rows written: every vertex on
    the smooth base along its camera ray, and the relief the rest of the way to its depth."""
    pixels, node, inner = front.pixels, front.node, front.inner
    relief_amount = front.z - sample_vertices(node, pixels, base_grid, base.sample)
    if inner is not None:
        relief_amount[inner:] = 0.0  # the seam: shared by the front and the mirrored back, must not move
    base_depth = front.z - relief_amount
    n = pixels.shape[0]
    total = back.vertex_count(front)
    # Everything is written straight into the float32 outputs: at 1M vertices copies cost.
    f = camera.focal_px
    rx = (pixels[:, 0] - 0.5 * camera.width) / f  # camera ray through the pixel, z = -1
    ry = (0.5 * camera.height - pixels[:, 1]) / f
    vertices = np.empty((total, 3), dtype=np.float32)
    texture, relief = back.relief_buffers(total)
    for out, depth_along in ((vertices, base_depth), (relief, relief_amount)):
        np.multiply(rx, depth_along, out=out[:n, 0], casting="same_kind")
        np.multiply(ry, depth_along, out=out[:n, 1], casting="same_kind")
        np.negative(depth_along, out=out[:n, 2], casting="same_kind")
    uvs = np.empty((total, 2), dtype=np.float32)
    np.multiply(pixels[:, 0], 1.0 / camera.width, out=uvs[:n, 0], casting="same_kind")
    np.multiply(pixels[:, 1], -1.0 / camera.height, out=uvs[:n, 1], casting="same_kind")
    uvs[:n, 1] += 1.0
    inflation = None
    if inflation_grid is not None:
        def inflation(k: int) -> np.ndarray:
            return sample_vertices(node[:k], pixels[:k], inflation_grid, base.sample_inflation)
    return Surface(vertices, relief, texture, uvs, rx, ry, base_depth, relief_amount, inflation)


def base_fields(z_c: np.ndarray, valid: np.ndarray, pixels: tuple[np.ndarray, np.ndarray] | None, xa: int, ya: int,
                lat: LatticeMesh, z_lattice: np.ndarray, xs: np.ndarray, ys: np.ndarray, at: np.ndarray | None,
                inflate: bool) -> tuple[BaseSurface, np.ndarray, np.ndarray | None]:
    """The smooth base pinned to the lattice's outline vertices, and its depth (and inflation
    profile, for a closed back) on the lattice nodes (only the nodes ``at`` when given)."""
    base = membrane_base(z_c, valid, xa, ya, lat.pixels[lat.boundary], z_lattice[lat.boundary], pixels)
    return base, base.sample_grid(xs, ys, at), base.sample_inflation_grid(xs, ys, at) if inflate else None


def sample_vertices(node: np.ndarray, pixels: np.ndarray, grid: np.ndarray,
                    at_points: Callable[[np.ndarray], np.ndarray],
                    flagged: np.ndarray | None = None) -> np.ndarray:
    """A field at every vertex: read off its values on the lattice ``grid`` (ny, nx) for vertices
    on lattice nodes (separable, fast) and sampled point by point for the others (and for
    nodes whose grid value is ``flagged`` as unusable). Only the grid's values at the
    vertices' nodes are read (a grid may hold just those, see ``plane._nodes_to_sample``)."""
    own = node >= 0
    at = np.where(own, node, 0)
    out = np.take(grid.ravel(), at).astype(np.float64)
    slow = ~own
    if flagged is not None:
        slow |= own & np.take(flagged.ravel(), at)
    if slow.any():
        out[slow] = at_points(pixels[slow])
    return out
