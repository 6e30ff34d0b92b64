"""One object's mesh: the photo's mask and depth turned into camera-space geometry.

Pipeline (all vectorised numpy): sub-pixel outline of the mask -> lattice mesh clipped
to it (``lattice.py``) -> depth per vertex from the object's own pixels -> faces
across depth jumps removed (``tears.py``) -> split into a smooth base (``membrane.py``) and
a relief along the camera rays -> back (``open`` / ``solidify`` / ``closed``, one unit each
in ``backs.py``) -> relief texture for Blender's Displace (one texel per vertex, ``texels.py``).

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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from . import CameraModel, MeshData, MeshSettings
from .backs import Front, back_unit
from .grid import nonzero_2d
from .lattice import LatticeMesh, build_lattice_mesh, lattice_lines
from .lattice_border import lattice_border
from .outline import Outline
from .relief import base_fields, front_surface, sample_vertices
from .sampling import DepthSampler
from .tears import tear_faces
from .topology import compact_vertices, split_bowties

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


@dataclass
class _Crop:
    """The object's crop as the mesh reads it: coverage (binary or not), inside pixels, depth
    and its usable pixels, the crop's origin and the object's area, all in the pixels of
    ``camera`` (the photo's, or reduced ones for a large object at a modest detail)."""

    cov: np.ndarray
    binary: bool
    inside: np.ndarray
    z: np.ndarray
    xa: int
    ya: int
    area: int
    camera: CameraModel
    valid: np.ndarray
    valid_px: tuple[np.ndarray, np.ndarray] | None


def _object_crop(mask: np.ndarray, zdepth: np.ndarray, camera: CameraModel, detail: int) -> _Crop:
    """The object's crop (see ``_Crop``); ValueError for a mask or depth that gives no mesh."""
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
    factor = reduction_factor(area, detail)
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
    return _Crop(cov_c, binary, inside_c, z_c, int(xa), int(ya), area, camera, valid, valid_px)


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
    back = back_unit(settings.back, float(settings.thickness))
    crop = _object_crop(mask, zdepth, camera, settings.detail)
    clock.lap("crop")
    outline = Outline.from_mask(crop.cov, crop.binary, crop.xa, crop.ya)
    clock.lap("outline")
    spacing = lattice_spacing(float(crop.area), outline.length, settings.detail)
    tear = float(settings.tear_threshold)
    sampler = DepthSampler(crop.z, crop.valid, crop.xa, crop.ya, tear if tear > 0 else np.inf, crop.valid_px)
    # Jobs that do not depend on the main line of work run on a second core while it goes on
    # (numpy releases the GIL): the depth on the lattice's nodes (it needs only the lattice's
    # lines, known before its mesh), the smooth base (it needs only the lattice's outline
    # depths) and the edge table (it needs only the front's faces).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="monocle-mesh") as pool:
        lat, (xs, ys), at, grid = _lattice_with_depth(outline, spacing, crop.area, sampler, pool, clock)
        z_lattice = sample_vertices(lat.node, lat.pixels, grid[0], sampler.sample, grid[1])
        clock.lap("depth")
        base_job = pool.submit(base_fields, crop.z, crop.valid, crop.valid_px, crop.xa, crop.ya, lat, z_lattice,
                               xs, ys, at, back.closed)
        front = _torn_front(lat, z_lattice, crop, tear, grid if at is None else None, clock)
        topology_job = back.prepare(front, pool)
        clock.lap("seam")
        base, base_grid, inflation_grid = base_job.result()
        clock.lap("membrane")
        out = front_surface(front, back, crop.camera, base, base_grid, inflation_grid)
        clock.lap("relief")
        done = back.finish(front, out, clock, topology_job)
    data = MeshData(
        vertices=out.vertices,
        relief=out.relief,
        uvs=out.uvs,
        face_sizes=done.sizes.astype(np.int32, copy=False),
        loops=done.loops.astype(np.int32, copy=False),
        groups=done.groups,
        relief_texture=done.texture,
        relief_uvs=done.relief_uvs,
        edges=done.edges,
        corner_edges=done.corner_edges,
    )
    clock.lap("pack")
    return data


def _lattice_with_depth(
    outline: Outline, spacing: float, area: int, sampler: DepthSampler, pool: ThreadPoolExecutor, clock: _StageClock,
) -> tuple[LatticeMesh, tuple[np.ndarray, np.ndarray], np.ndarray | None, tuple[np.ndarray, np.ndarray]]:
    """The lattice mesh clipped to the outline, its lines, the nodes sampled (None: all) and the
    depth (and unusable-value flags) on them; the grid's depth is sampled on ``pool`` while the
    mesh is built when the lattice will clearly be dense."""
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
        grid = grid_job.result()  # sampled on the same lines: the same numbers
    else:
        grid = sampler.sample_grid(xs, ys, at)
    return lat, (xs, ys), at, grid


def _torn_front(lat: LatticeMesh, z: np.ndarray, crop: _Crop, tear: float,
                grid: tuple[np.ndarray, np.ndarray] | None, clock: _StageClock) -> Front:
    """The front surface: the lattice without the faces across depth jumps, its unused vertices
    dropped and its bow-tie vertices split."""
    sizes, loops, keep = tear_faces(lat, z, crop.z, crop.valid, crop.valid_px, crop.xa, crop.ya, tear, grid)
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
    as_built = lat if kept is None and keep.all() else None
    return Front(pixels, z, node, sizes, loops, border, lat.nx, lat.ny, as_built)


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


_sample_vertices = sample_vertices  # the name the tests reach it by


def outline_of(mask: np.ndarray) -> Outline:
    """The sub-pixel outline the mesh follows (for tests and previews)."""
    raw, _, scale = _inside(mask)
    cov, binary = _coverage(raw, scale)
    return Outline.from_mask(cov, binary)
