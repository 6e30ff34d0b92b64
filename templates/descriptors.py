"""Shape descriptors: scale-free silhouettes and relative depth on a small square grid.

A template is described from a few dozen upright viewpoints on the upper sphere (orthographic,
no roll); an instance from its mask and depth. Both are cropped to a square window around the
silhouette (``MARGIN`` of free space around the longer side) and sampled on ``GRID`` x ``GRID``
cells: coverage in [0, 1] and depth relative to the median visible depth, in window sides, so a
mug 10 cm away and a mug 1 m away give the same descriptor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import render

GRID = 48
MARGIN = 0.06
SUPERSAMPLE = 2
STRETCH_GRID = 24  # side of the proportion-free silhouettes the library is pruned with
VIEW_AZIMUTHS = tuple(range(0, 360, 30))
VIEW_ELEVATIONS = (0, 10, 20, 30, 45, 60, 80)


def view_angles() -> np.ndarray:
    """``(V, 2)`` azimuth, elevation in degrees of the library viewpoints (elevation-major)."""
    az, el = np.meshgrid(VIEW_AZIMUTHS, VIEW_ELEVATIONS)
    return np.stack([az.ravel(), el.ravel()], axis=1).astype(np.float64)


def view_rotations() -> np.ndarray:
    """``(V, 3, 3)`` camera-from-model rotations of the library viewpoints."""
    ang = view_angles()
    return render.look_rotation(ang[:, 0], ang[:, 1])


@dataclass
class ViewDescriptors:
    """Descriptors of one shape from several viewpoints.

    ``windows[v] = (cx, cy, side, dref)``: window centre in view coordinates (model units, x
    right, y up), window side, and the median visible depth in front of the view plane through
    the model origin (distance from the viewer grows with depth; the plane is at 0).
    """

    coverage: np.ndarray  # (V, G, G) float32, row 0 at the top
    depth: np.ndarray  # (V, G, G) float32 relative depth, NaN where coverage < 0.5
    windows: np.ndarray  # (V, 4) float64


def _window(xy_min: np.ndarray, xy_max: np.ndarray) -> tuple[np.ndarray, float]:
    centre = 0.5 * (xy_min + xy_max)
    side = float(max(xy_max - xy_min)) * (1.0 + 2.0 * MARGIN)
    return centre, max(side, 1e-9)


def _relative(depth_cells: np.ndarray, coverage: np.ndarray, side: float) -> tuple[np.ndarray, float]:
    solid = coverage >= 0.5
    if not solid.any():
        return np.full_like(depth_cells, np.nan, dtype=np.float32), float("nan")
    dref = float(np.median(depth_cells[solid]))
    rel = np.where(solid, (depth_cells - dref) / side, np.nan)
    return rel.astype(np.float32), dref


def render_views(vertices: np.ndarray, triangles: np.ndarray, rotations: np.ndarray | None = None) -> ViewDescriptors:
    """Descriptors of a mesh (model space) seen orthographically from ``rotations`` (default: library views)."""
    rots = view_rotations() if rotations is None else np.asarray(rotations, dtype=np.float64)
    verts = np.asarray(vertices, dtype=np.float64)
    tris = np.asarray(triangles, dtype=np.int64)
    n = GRID * SUPERSAMPLE
    cov = np.zeros((len(rots), GRID, GRID), dtype=np.float32)
    dep = np.full((len(rots), GRID, GRID), np.nan, dtype=np.float32)
    windows = np.zeros((len(rots), 4))
    for k, rot in enumerate(rots):  # one render per viewpoint (a few dozen)
        q = verts @ rot.T
        used = np.unique(tris)
        centre, side = _window(q[used, :2].min(axis=0), q[used, :2].max(axis=0))
        scale = n / side
        xy, z = render.project_orthographic(q - [centre[0], centre[1], 0.0], scale, 0.5 * n, 0.5 * n)
        ras = render.rasterize(xy, z, tris, (n, n), perspective=False)
        hit = ras.mask.reshape(GRID, SUPERSAMPLE, GRID, SUPERSAMPLE)
        zz = np.where(ras.mask, ras.depth, 0.0).reshape(GRID, SUPERSAMPLE, GRID, SUPERSAMPLE)
        count = hit.sum(axis=(1, 3))
        cov[k] = count / SUPERSAMPLE**2
        cells = zz.sum(axis=(1, 3)) / np.maximum(count, 1)
        dep[k], dref = _relative(cells, cov[k], side)
        windows[k] = (centre[0], centre[1], side, dref)
    return ViewDescriptors(cov, dep, windows)


@dataclass
class InstanceDescriptor:
    """An instance's descriptor and the pixel window it was sampled from."""

    coverage: np.ndarray  # (G, G) float32
    depth: np.ndarray  # (G, G) float32 relative depth (NaN where coverage < 0.5)
    window: tuple[float, float, float]  # x0, y0 (top-left, pixels), side (pixels)
    z_ref: float  # median depth of the covered cells (scene units)
    side_m: float  # window side in scene units at z_ref


def _box_sums(integral: np.ndarray, r0: np.ndarray, r1: np.ndarray, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    return integral[r1][:, c1] - integral[r0][:, c1] - integral[r1][:, c0] + integral[r0][:, c0]


def instance_descriptor(mask: np.ndarray, zdepth: np.ndarray, focal_px: float) -> InstanceDescriptor:
    """The descriptor of a masked object; ``zdepth`` is the distance along the camera axis per pixel."""
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        raise ValueError("the mask is empty")
    h, w = m.shape
    rows = np.nonzero(m.any(axis=1))[0]
    cols = np.nonzero(m.any(axis=0))[0]
    lo = np.array([cols[0], rows[0]], dtype=np.float64)
    hi = np.array([cols[-1] + 1, rows[-1] + 1], dtype=np.float64)
    centre, side = _window(lo, hi)
    x0, y0 = centre - 0.5 * side
    edges = np.arange(GRID + 1) * side / GRID
    cx = np.clip(np.round(x0 + edges), 0, w).astype(np.int64)
    cy = np.clip(np.round(y0 + edges), 0, h).astype(np.int64)
    z = np.where(m, np.asarray(zdepth, dtype=np.float64), 0.0)
    z = np.where(np.isfinite(z), z, 0.0)
    im = np.zeros((h + 1, w + 1))
    im[1:, 1:] = m.cumsum(0).cumsum(1)
    iz = np.zeros((h + 1, w + 1))
    iz[1:, 1:] = z.cumsum(0).cumsum(1)
    area = np.outer(cy[1:] - cy[:-1], cx[1:] - cx[:-1]).astype(np.float64)
    inside = _box_sums(im, cy[:-1], cy[1:], cx[:-1], cx[1:])
    zsum = _box_sums(iz, cy[:-1], cy[1:], cx[:-1], cx[1:])
    # cells smaller than a pixel read the pixel under their centre
    centres = x0 + (np.arange(GRID) + 0.5) * side / GRID, y0 + (np.arange(GRID) + 0.5) * side / GRID
    pj = np.clip(np.floor(centres[0]).astype(np.int64), 0, w - 1)
    pi = np.clip(np.floor(centres[1]).astype(np.int64), 0, h - 1)
    inb = np.outer((centres[1] >= 0) & (centres[1] < h), (centres[0] >= 0) & (centres[0] < w))
    point_m = m[pi][:, pj] & inb
    point_z = z[pi][:, pj]
    small = area <= 0
    cov = np.where(small, point_m, inside / np.maximum(area, 1))
    cells = np.where(small, point_z, zsum / np.maximum(inside, 1))
    solid = cov >= 0.5
    z_ref = float(np.median(cells[solid])) if solid.any() else float(np.median(z[m]))
    side_m = side * z_ref / focal_px
    rel = np.where(solid, (cells - z_ref) / side_m, np.nan).astype(np.float32)
    return InstanceDescriptor(cov.astype(np.float32), rel, (float(x0), float(y0), float(side)), z_ref, side_m)


def stretched_silhouettes(coverage: np.ndarray, k: int = STRETCH_GRID) -> tuple[np.ndarray, np.ndarray]:
    """``(N, k*k)`` uint8 silhouettes resampled so their bounding box fills the grid, and ``(N,)``
    log(height / width) of that box, from ``(N, G, G)`` coverage in [0, 1]: the outline's shape with
    its proportions taken out, and the proportions, which a lattice fit can change cheaply."""
    cov = np.asarray(coverage, dtype=np.float32)
    n, g = len(cov), cov.shape[-1]
    rows, cols = cov.max(axis=2), cov.max(axis=1)
    aspect = np.log(np.maximum(rows.sum(axis=1), 1e-3) / np.maximum(cols.sum(axis=1), 1e-3))

    def samples(profile: np.ndarray) -> np.ndarray:
        occupied = profile > 0
        lo = occupied.argmax(axis=1)
        hi = g - occupied[:, ::-1].argmax(axis=1)
        t = (np.arange(2 * k) + 0.5) / (2 * k)
        return np.clip(np.floor(lo[:, None] + t * (hi - lo)[:, None]).astype(np.int64), 0, g - 1)

    ri, ci = samples(rows), samples(cols)
    fine = cov[np.arange(n)[:, None, None], ri[:, :, None], ci[:, None, :]]
    pooled = fine.reshape(n, k, 2, k, 2).mean(axis=(2, 4))
    return np.round(pooled * 255.0).astype(np.uint8).reshape(n, k * k), aspect.astype(np.float32)


def quantize_depth(depth: np.ndarray) -> np.ndarray:
    """Relative depth -> uint8 (0 = empty, 1..255 = -1..1 window sides)."""
    q = np.round((np.clip(depth, -1.0, 1.0) + 1.0) * 127.0) + 1
    return np.where(np.isfinite(depth), q, 0).astype(np.uint8)


def dequantize_depth(q: np.ndarray) -> np.ndarray:
    """Inverse of ``quantize_depth`` (NaN where empty)."""
    q = np.asarray(q)
    return np.where(q > 0, (q.astype(np.float32) - 1.0) / 127.0 - 1.0, np.nan).astype(np.float32)
