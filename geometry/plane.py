"""One object's mesh: the photo's mask and depth turned into camera-space geometry.

Pipeline (all vectorised numpy): sub-pixel outline of the mask -> lattice mesh clipped
to it (``lattice.py``) -> depth per vertex from the object's own pixels -> faces
across depth jumps removed (tears) -> split into a smooth base (``membrane.py``) and a
relief along the camera rays -> back (``open`` / ``solidify`` / ``closed``) -> relief
texture for Blender's Displace (one texel per vertex, ``texels.py``).

Every vertex sits on the camera ray through its pixel, and so does every relief
vector, so the photo projects back onto the mesh exactly at any Displace strength.

Speed (a million vertices is a supported detail): every step is a handful of passes over
flat arrays, rows are gathered with ``np.take``, leading runs of lattice quads get
arithmetic instead of per-face walks, and two independent jobs (the smooth base, and the
edge table with the closed back's faces) run on a worker thread while the main line goes
on; numpy releases the GIL, so they overlap on a second core. The threads touch no ``bpy``.
A large object at a modest detail (a phone photo at the default detail) is read in pixel
blocks no wider than a third of a lattice cell, with a camera scaled to match, so the
work follows the vertex count rather than the photo's size.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import CameraModel, MeshData, MeshSettings
from .edges import closed_back_edges, lattice_mesh_edges, mesh_edges, solidify_edges
from .grid import nonzero_2d
from .lattice import LatticeMesh, build_lattice_mesh, cells_around, lattice_border, lattice_lines
from .membrane import BaseSurface, membrane_base
from .outline import Outline
from .sampling import DepthSampler, jump_pixels
from .texels import texel_layout, texel_texture, written_layout
from .topology import (
    compact_vertices,
    corner_face_at,
    directed_edges,
    face_reduce,
    face_starts,
    faces_to_corners,
    insert_after_corners,
    leading_quads,
    split_bowties,
)

BACKS = ("open", "solidify", "closed")
MIN_SPACING = 0.5  # pixels: finer lattices add vertices, not information
MIN_DETAIL, MAX_DETAIL = 16, 4_000_000
CROP_MARGIN = 6
# A large object at a modest detail has lattice cells many pixels wide (a 12 MP photo at the
# default detail: ~19 px): its mask and depth are read in blocks of up to 1 / REDUCE_CELL_PIXELS
# of a cell, which keeps the outline sub-pixel at the lattice's scale and makes the build ~10x
# faster; the reduction is skipped where it would drop more than REDUCE_MAX_LOSS of the area.
REDUCE_CELL_PIXELS = 3
REDUCE_MAX_LOSS = 0.02
SPARSE_NODES = 4  # fields are computed at the used lattice nodes alone below 1/4 of the lattice
SPARSE_PIXELS = 8  # an object under 1/8 of its crop is read pixel by pixel, not box-wide


def lattice_spacing(area: float, perimeter: float, detail: int) -> float:
    """Lattice spacing (pixels) giving about ``detail`` front vertices: area / s^2 + perimeter / s."""
    n = float(min(max(int(detail), MIN_DETAIL), MAX_DETAIL))
    s = (perimeter + math.sqrt(perimeter * perimeter + 4.0 * area * n)) / (2.0 * n)
    return max(MIN_SPACING, s)


class _StageClock:
    """Accumulates seconds per stage into an optional dict."""

    def __init__(self, out: dict[str, float] | None) -> None:
        self.out = out
        self.t = time.perf_counter()

    def lap(self, name: str) -> None:
        if self.out is not None:
            now = time.perf_counter()
            self.out[name] = self.out.get(name, 0.0) + now - self.t
            self.t = now


def _inside(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The mask as given, which pixels are inside (>= half coverage) and its full-coverage value.

    Bool masks are binary; integer masks are scaled by 255 (or their maximum); float masks
    are coverage in [0, 1].
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be a 2D array, got shape {m.shape}")
    if m.dtype == bool:
        return m, m, 1.0
    if np.issubdtype(m.dtype, np.integer):
        top = int(m.max()) if m.size else 0
        scale = 1.0 if top <= 1 else 255.0 if top <= 255 else float(top)
        return m, m >= scale / 2, scale
    m = np.nan_to_num(m.astype(np.float32, copy=False), nan=0.0)
    return m, m >= 0.5, 1.0


def _coverage(crop: np.ndarray, scale: float) -> tuple[np.ndarray, bool]:
    """A mask crop as float coverage and whether it is binary (only empty and full pixels)."""
    if crop.dtype == bool:
        return crop, True
    cov = crop.astype(np.float32) / np.float32(scale)
    return cov, not bool(np.any((cov > 0) & (cov < 1)))


def reduction_factor(area: int, detail: int) -> int:
    """How much coarser than the photo the mask and depth may be read for an object of ``area``
    pixels at ``detail``: the largest integer keeping ``REDUCE_CELL_PIXELS`` reduced pixels per
    lattice cell (1 below that: small objects and high details use every pixel)."""
    n = min(max(int(detail), MIN_DETAIL), MAX_DETAIL)
    return max(1, int(math.sqrt(max(area, 0) / n) // REDUCE_CELL_PIXELS))


def _block_mean(a: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """Mean of every ``factor`` x ``factor`` block of ``a`` (float32), zero-padded to ``shape`` blocks."""
    import cv2

    hr, wr = shape
    if a.shape != (hr * factor, wr * factor):
        padded = np.zeros((hr * factor, wr * factor), dtype=np.float32)
        padded[:a.shape[0], :a.shape[1]] = a
        a = padded
    return cv2.resize(np.ascontiguousarray(a, dtype=np.float32), (wr, hr), interpolation=cv2.INTER_AREA)


def _reduce(raw: np.ndarray, scale: float, inside: np.ndarray, depth: np.ndarray, bounds: tuple[int, int, int, int],
            factor: int, area: int) -> tuple[np.ndarray, np.ndarray, int, int] | None:
    """The object's crop read at 1 / ``factor`` of the resolution, on blocks aligned with the
    photo's origin, so reduced pixel coordinates are photo coordinates / ``factor`` and a
    camera of the photo's size / ``factor`` has exactly the same rays (and UVs).

    Returns (coverage (mean of the blocks), depth (mean over the block's pixels with valid
    depth, NaN where none), crop x, crop y) in reduced pixels, or None when the coarser mask
    would lose more than ``REDUCE_MAX_LOSS`` of the object's area (thin parts).
    """
    h, w = raw.shape
    r0, r1, c0, c1 = (int(b) for b in bounds)
    margin = CROP_MARGIN * factor
    ya, xa = max(0, r0 - margin) // factor * factor, max(0, c0 - margin) // factor * factor
    yb = min(-(-(r1 + 1 + margin) // factor), -(-h // factor)) * factor
    xb = min(-(-(c1 + 1 + margin) // factor), -(-w // factor)) * factor
    shape = ((yb - ya) // factor, (xb - xa) // factor)
    inside_c = inside[ya:yb, xa:xb]
    crop = raw[ya:yb, xa:xb]
    if crop.dtype != np.float32 or scale != 1.0:
        crop = crop.astype(np.float32) / np.float32(scale) if scale != 1.0 else crop.astype(np.float32)
    cov = _block_mean(crop, factor, shape)
    if np.count_nonzero(cov >= 0.5) * factor * factor < (1.0 - REDUCE_MAX_LOSS) * area:
        return None
    z = depth[ya:yb, xa:xb]
    if z.dtype != np.float32:
        z = z.astype(np.float32)
    z_ok = np.isfinite(z)
    z_ok &= z > 0
    if z_ok.all():  # scene_depth fills every hole: the usual case
        ok = inside_c
        weight = cov if raw.dtype == bool else _block_mean(inside_c.astype(np.float32), factor, shape)
    else:
        ok = inside_c & z_ok
        weight = _block_mean(ok.astype(np.float32), factor, shape)
    total = _block_mean(np.where(ok, z, np.float32(0.0)), factor, shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        z_r = np.where(weight > 0, total / weight, np.nan).astype(np.float32)
    return cov, z_r, xa // factor, ya // factor


def build_object_mesh(
    mask: np.ndarray, zdepth: np.ndarray, camera: CameraModel, settings: MeshSettings,
    *, timings: dict[str, float] | None = None,
) -> MeshData:
    """Mesh of one object (see the module docstring).

    ``mask`` is (H, W) bool or coverage in [0, 1] (uint8 0..255 accepted), at the
    photo's resolution; ``zdepth`` (H, W) is the distance along the camera axis from
    ``scene_depth``. Raises ``ValueError("empty mask")`` when the mask selects nothing.
    ``timings``, when given, receives seconds per stage (for benchmarks).
    """
    clock = _StageClock(timings)
    if settings.back not in BACKS:
        raise ValueError(f"unknown back {settings.back!r}; expected one of {BACKS}")
    raw, inside, scale = _inside(mask)
    depth = np.asarray(zdepth)
    if depth.shape != raw.shape:
        raise ValueError(f"mask shape {raw.shape} does not match depth shape {depth.shape}")
    rows = np.flatnonzero(inside.any(axis=1))
    if rows.size == 0:
        raise ValueError("empty mask")
    cols = np.flatnonzero(inside[rows[0]:rows[-1] + 1].any(axis=0))
    h, w = raw.shape
    ya, yb = max(0, rows[0] - CROP_MARGIN), min(h, rows[-1] + 1 + CROP_MARGIN)
    xa, xb = max(0, cols[0] - CROP_MARGIN), min(w, cols[-1] + 1 + CROP_MARGIN)
    area = int(np.count_nonzero(inside[ya:yb, xa:xb]))
    factor = reduction_factor(area, settings.detail)
    bounds = (rows[0], rows[-1], cols[0], cols[-1])
    reduced = _reduce(raw, scale, inside, depth, bounds, factor, area) if factor > 1 else None
    if reduced is not None:  # a large object at a modest detail: work at 1 / factor of the resolution
        cov_c, z_c, xa, ya = reduced
        binary, inside_c = False, cov_c >= 0.5
        area = int(np.count_nonzero(inside_c))  # in reduced pixels
        camera = CameraModel(w / factor, h / factor, camera.focal_mm, camera.sensor_mm)  # type: ignore[arg-type]  # the same rays: a fractional frame
    else:
        cov_c, binary = _coverage(raw[ya:yb, xa:xb], scale)
        inside_c = inside[ya:yb, xa:xb]
        z_c = depth[ya:yb, xa:xb]
        z_c = z_c if z_c.dtype == np.float32 else z_c.astype(np.float64)  # scene_depth gives float32
    valid, valid_px = _valid_depth(inside_c, z_c, area)
    if not valid.any():
        raise ValueError("no valid depth inside the mask")

    clock.lap("crop")
    outline = Outline.from_mask(cov_c, binary, xa, ya)
    clock.lap("outline")
    spacing = lattice_spacing(float(area), outline.length, settings.detail)
    tear = float(settings.tear_threshold)
    sampler = DepthSampler(z_c, valid, xa, ya, tear if tear > 0 else np.inf, valid_px)
    closed = settings.back == "closed"
    # Jobs that do not depend on the main line of work run on a second core while it goes on
    # (numpy releases the GIL): the depth on the lattice's nodes (it needs only the lattice's
    # lines, known before its mesh), the smooth base (it needs only the lattice's outline
    # depths) and the edge table (it needs only the front's faces).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="monocle-mesh") as pool:
        grid_job = None
        lines = lattice_lines(outline, spacing)
        if _dense_lattice_likely(float(area), spacing, lines):
            grid_job = pool.submit(sampler.sample_grid, *lines)
        lat = build_lattice_mesh(outline, spacing)
        if lat.face_sizes.size == 0 and spacing > MIN_SPACING:
            lat = build_lattice_mesh(outline, MIN_SPACING)
        if lat.face_sizes.size == 0:
            raise ValueError("empty mask")
        clock.lap("lattice")

        xs, ys = lines if lat.spacing == spacing else lattice_lines(outline, lat.spacing)
        at = _nodes_to_sample(lat)
        if grid_job is not None and at is None and lat.spacing == spacing:
            z_grid, z_flagged = grid_job.result()  # sampled on the same lines: the same numbers
        else:
            z_grid, z_flagged = sampler.sample_grid(xs, ys, at)
        z = z_lattice = _sample_vertices(lat.node, lat.pixels, z_grid, sampler.sample, z_flagged)
        clock.lap("depth")
        base_job = pool.submit(_base_fields, z_c, valid, valid_px, xa, ya, lat, z_lattice, xs, ys, at, closed)
        sizes, loops, keep = _tear(lat, z, z_c, valid, valid_px, xa, ya, tear,
                                   (z_grid, z_flagged) if at is None else None)
        kept = None
        if not (lat.all_used and keep.all()):
            kept, loops = compact_vertices(lat.pixels.shape[0], loops)
        if kept is None:
            pixels, node = lat.pixels, lat.node
        else:
            pixels, z, node = lat.pixels[kept], z[kept], lat.node[kept]
        clock.lap("tears")

        border = lattice_border(lat, keep)
        loops, source = split_bowties(sizes, loops, pixels.shape[0], border)
        if source.size:
            pixels, z = np.concatenate([pixels, pixels[source]]), np.concatenate([z, z[source]])
            node = np.concatenate([node, np.full(source.size, -1, dtype=node.dtype)])
        inner = None  # closed: the vertices off the seam are the first ``inner`` (the back copies them)
        if closed:
            as_built = lat if kept is None and keep.all() else None
            pixels, z, node, sizes, loops, seam = _split_for_closed_back(pixels, z, node, sizes, loops, border,
                                                                         as_built)
            order, renumber, inner = _seam_last(seam)
            # the worker takes the edge table from the front as it is, naming the vertices by their new numbers
            topology_job = pool.submit(_topology, sizes, loops, node, lat.nx, lat.ny, renumber, inner)
            if order is not None:  # (the corners are renumbered as the closed mesh's are laid out)
                pixels, z, node = np.take(pixels, order, axis=0), np.take(z, order), np.take(node, order)
        else:
            topology_job = pool.submit(_topology, sizes, loops, node, lat.nx, lat.ny)
        clock.lap("seam")

        base, base_grid, inflation_grid = base_job.result()
        clock.lap("membrane")
        relief_amount = z - _sample_vertices(node, pixels, base_grid, base.sample)
        if inner is not None:
            relief_amount[inner:] = 0.0  # the seam: shared by the front and the mirrored back, must not move
        base_depth = z - relief_amount
        n = pixels.shape[0]
        total = {"open": n, "solidify": 2 * n, "closed": n + (inner or 0)}[settings.back]

        # Everything is written straight into the float32 outputs: at 1M vertices copies cost.
        f = camera.focal_px
        rx = (pixels[:, 0] - 0.5 * camera.width) / f  # camera ray through the pixel, z = -1
        ry = (0.5 * camera.height - pixels[:, 1]) / f
        vertices = np.empty((total, 3), dtype=np.float32)
        if settings.back == "solidify":  # its back reuses the front's texels: a texture for n of them
            relief = np.empty((total, 3), dtype=np.float32)
        else:  # one texel per vertex: the relief is written straight into its texture (see texels.py)
            texture, relief = texel_texture(total)
        for out, depth_along in ((vertices, base_depth), (relief, relief_amount)):
            np.multiply(rx, depth_along, out=out[:n, 0], casting="same_kind")
            np.multiply(ry, depth_along, out=out[:n, 1], casting="same_kind")
            np.negative(depth_along, out=out[:n, 2], casting="same_kind")
        uvs = np.empty((total, 2), dtype=np.float32)
        np.multiply(pixels[:, 0], 1.0 / camera.width, out=uvs[:n, 0], casting="same_kind")
        np.multiply(pixels[:, 1], -1.0 / camera.height, out=uvs[:n, 1], casting="same_kind")
        uvs[:n, 1] += 1.0
        if settings.back == "open":
            texture, relief_uvs = written_layout(texture, relief, bool(relief_amount.any()))
        clock.lap("relief")

        if not closed:
            edges, corner_edges = topology_job.result()
            clock.lap("edges")
        front = np.zeros(total, dtype=bool)
        front[:n] = True
        if settings.back == "open":
            groups = {"front": front, "back": ~front}
        elif settings.back == "solidify":
            depth_back = base_depth + float(settings.thickness) / np.sqrt(1.0 + rx * rx + ry * ry)
            vertices[n:, 0] = rx * depth_back
            vertices[n:, 1] = ry * depth_back
            np.negative(depth_back, out=vertices[n:, 2], casting="same_kind")
            relief[n:] = relief[:n]
            uvs[n:] = uvs[:n]
            texture, relief_uvs = texel_layout(relief[:n])  # the back moves with the front: same texels
            relief_uvs = np.concatenate([relief_uvs, relief_uvs])
            front_sizes = sizes
            sizes, loops, wall_corner = _solidify_faces(sizes, loops, n, border)
            groups = {"front": front, "back": ~front}
            clock.lap("back")
            table = solidify_edges(front_sizes, edges, corner_edges, n, loops[2 * corner_edges.size + 1::4],
                                   loops[2 * corner_edges.size::4], wall_corner)
            edges, corner_edges = table if table is not None else mesh_edges(sizes, loops)
            clock.lap("edges")
        else:
            assert inner is not None and inflation_grid is not None  # a closed back has both
            inflation = _sample_vertices(node[:inner], pixels[:inner], inflation_grid, base.sample_inflation)
            groups = _closed_back_vertices(vertices, texture.reshape(-1, 4), uvs, n, inner, rx, ry, base_depth,
                                           relief_amount,
                                           float(settings.thickness) * inflation)
            texture, relief_uvs = written_layout(texture, relief, bool(relief_amount.any()))
            # here: the worker has the edge tables
            sizes, loops = _closed_back_faces(sizes, loops, n, inner, renumber)
            clock.lap("back")
            edges, corner_edges = topology_job.result()
            clock.lap("edges")
    data = MeshData(
        vertices=vertices,
        relief=relief,
        uvs=uvs,
        face_sizes=sizes.astype(np.int32, copy=False),
        loops=loops.astype(np.int32, copy=False),
        groups=groups,
        relief_texture=texture,
        relief_uvs=relief_uvs,
        edges=edges,
        corner_edges=corner_edges,
    )
    clock.lap("pack")
    return data


def _tear(lat: LatticeMesh, z: np.ndarray, z_c: np.ndarray, valid: np.ndarray,
          pixels: tuple[np.ndarray, np.ndarray] | None, xa: int, ya: int,
          tear: float, grid: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The lattice's faces without those that span a depth jump: (sizes, loops, kept-face flags).

    ``grid`` is the whole lattice's depth and flags from ``DepthSampler.sample_grid``, when
    sampled: the quads then get their depth span from it (see ``_steep_faces``).
    """
    sizes, loops = lat.face_sizes, lat.loops
    keep = np.ones(sizes.size, dtype=bool)
    if tear <= 0:
        return sizes, loops, keep
    steep = _steep_faces(lat, z, tear, grid)
    if not steep.any():
        return sizes, loops, keep
    # A steep face is torn only where the depth really jumps (surface on both sides),
    # not at a silhouette where a rounded object turns away from the camera.
    near_jump = _near_jump(lat, z_c, valid, pixels, xa, ya, tear)
    keep = ~(steep & face_reduce(near_jump[loops], sizes, np.logical_or))
    if keep.any() and not keep.all():
        return sizes[keep], loops[np.repeat(keep, sizes)], keep
    keep[:] = True
    return sizes, loops, keep


def _steep_faces(lat: LatticeMesh, z: np.ndarray, tear: float,
                 grid: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """Per face: its corners' depths span more than ``tear`` of the nearest.

    With the lattice's ``grid`` (depth (ny, nx) float32 and unusable-value flags) a quad whose
    corners are all unflagged lattice nodes has exactly the grid's values at its vertices
    (``_sample_vertices`` reads them from it), so the quads are tested on the grid's cells,
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


def _base_fields(z_c: np.ndarray, valid: np.ndarray, pixels: tuple[np.ndarray, np.ndarray] | None, xa: int, ya: int,
                 lat: LatticeMesh, z_lattice: np.ndarray, xs: np.ndarray, ys: np.ndarray, at: np.ndarray | None,
                 inflate: bool) -> tuple[BaseSurface, np.ndarray, np.ndarray | None]:
    """The smooth base pinned to the lattice's outline vertices, and its depth (and inflation
    profile, for a closed back) on the lattice nodes (only the nodes ``at`` when given)."""
    base = membrane_base(z_c, valid, xa, ya, lat.pixels[lat.boundary], z_lattice[lat.boundary], pixels)
    return base, base.sample_grid(xs, ys, at), base.sample_inflation_grid(xs, ys, at) if inflate else None


def _valid_depth(inside: np.ndarray, z: np.ndarray,
                 area: int) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """The crop's pixels inside the object with a usable (finite, positive) depth and, for an
    object covering under 1 / ``SPARSE_PIXELS`` of its crop (a thin one across its box), their
    (rows, columns): then only its own pixels are read, not the whole crop, here and later."""
    if area * SPARSE_PIXELS >= inside.size:
        valid = np.isfinite(z)
        valid &= z > 0
        valid &= inside
        return valid, None
    rr, cc = nonzero_2d(inside)
    zv = z[rr, cc]
    good = np.isfinite(zv) & (zv > 0)
    rr, cc = rr[good], cc[good]
    valid = np.zeros(inside.shape, dtype=bool)
    valid[rr, cc] = True
    return valid, (rr, cc)


def _dense_lattice_likely(area: float, spacing: float, lines: tuple[np.ndarray, np.ndarray]) -> bool:
    """Whether the object will clearly fill enough of its lattice (``lines``, see ``lattice_lines``)
    for ``_nodes_to_sample`` to choose the whole grid (its inside nodes, about ``area / spacing**2``,
    at least twice the threshold): then the grid's depth is worth sampling before the lattice's
    mesh exists."""
    xs, ys = lines
    return area / (spacing * spacing) * SPARSE_NODES >= 2.0 * xs.size * ys.size


def _nodes_to_sample(lat: LatticeMesh) -> np.ndarray | None:
    """The lattice nodes the mesh's vertices sit on, when they are few enough (under
    1 / ``SPARSE_NODES`` of the lattice: a thin object across its box) that fields are cheaper
    computed at them alone than on the whole lattice; None otherwise."""
    at = lat.node[lat.node >= 0]
    return at if at.size * SPARSE_NODES < lat.nx * lat.ny else None


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


def _near_jump(lat: LatticeMesh, z_c: np.ndarray, valid: np.ndarray, pixels: tuple[np.ndarray, np.ndarray] | None,
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


def _sample_vertices(node: np.ndarray, pixels: np.ndarray, grid: np.ndarray,
                     at_points: Callable[[np.ndarray], np.ndarray],
                     flagged: np.ndarray | None = None) -> np.ndarray:
    """A field at every vertex: read off its values on the lattice ``grid`` (ny, nx) for vertices
    on lattice nodes (separable, fast) and sampled point by point for the others (and for
    nodes whose grid value is ``flagged`` as unusable). Only the grid's values at the
    vertices' nodes are read (a grid may hold just those, see ``_nodes_to_sample``)."""
    own = node >= 0
    at = np.where(own, node, 0)
    out = np.take(grid.ravel(), at).astype(np.float64)
    slow = ~own
    if flagged is not None:
        slow |= own & np.take(flagged.ravel(), at)
    if slow.any():
        out[slow] = at_points(pixels[slow])
    return out


def outline_of(mask: np.ndarray) -> Outline:
    """The sub-pixel outline the mesh follows (for tests and previews)."""
    raw, _, scale = _inside(mask)
    cov, binary = _coverage(raw, scale)
    return Outline.from_mask(cov, binary)
