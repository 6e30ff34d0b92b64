"""One object's mesh: the photo's mask and depth turned into camera-space geometry.

Pipeline (all vectorised numpy): sub-pixel outline of the mask -> lattice mesh clipped
to it (``lattice.py``) -> depth per vertex from the object's own pixels -> faces
across depth jumps removed (tears) -> split into a smooth base (``membrane.py``) and a
relief along the camera rays -> relief texture for Blender's Displace -> back
(``open`` / ``solidify`` / ``closed``).

Every vertex sits on the camera ray through its pixel, and so does every relief
vector, so the photo projects back onto the mesh exactly at any Displace strength.
"""

from __future__ import annotations

import math

import numpy as np

from . import CameraModel, MeshData, MeshSettings
from .lattice import LatticeMesh, build_lattice_mesh
from .membrane import membrane_base
from .outline import Outline
from .sampling import DepthSampler
from .topology import (
    compact_vertices,
    directed_edges,
    edge_table,
    face_starts,
    insert_after_corners,
    reverse_faces,
)

BACKS = ("open", "solidify", "closed")
MIN_SPACING = 0.5  # pixels: finer lattices add vertices, not information
MIN_DETAIL, MAX_DETAIL = 16, 4_000_000
CROP_MARGIN = 6
SMOOTHNESS = 0.1  # weight of the smoothness term when extrapolating relief texels


def lattice_spacing(area: float, perimeter: float, detail: int) -> float:
    """Lattice spacing (pixels) giving about ``detail`` front vertices: area / s^2 + perimeter / s."""
    n = float(min(max(int(detail), MIN_DETAIL), MAX_DETAIL))
    s = (perimeter + math.sqrt(perimeter * perimeter + 4.0 * area * n)) / (2.0 * n)
    return max(MIN_SPACING, s)


def _coverage(mask: np.ndarray) -> tuple[np.ndarray, bool]:
    """Mask as float coverage in [0, 1] and whether it is binary."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be a 2D array, got shape {m.shape}")
    if m.dtype == bool:
        return m, True
    cov = m.astype(np.float32)
    if np.issubdtype(m.dtype, np.integer) and m.size and int(m.max()) > 1:
        cov /= 255.0 if int(m.max()) <= 255 else float(m.max())
    cov = np.nan_to_num(cov, nan=0.0)
    return cov, False


def build_object_mesh(
    mask: np.ndarray, zdepth: np.ndarray, camera: CameraModel, settings: MeshSettings
) -> MeshData:
    """Mesh of one object (see the module docstring).

    ``mask`` is (H, W) bool or coverage in [0, 1] (uint8 0..255 accepted), at the
    photo's resolution; ``zdepth`` (H, W) is the distance along the camera axis from
    ``scene_depth``. Raises ``ValueError("empty mask")`` when the mask selects nothing.
    """
    if settings.back not in BACKS:
        raise ValueError(f"unknown back {settings.back!r}; expected one of {BACKS}")
    cov, binary = _coverage(mask)
    depth = np.asarray(zdepth)
    if depth.shape != cov.shape:
        raise ValueError(f"mask shape {cov.shape} does not match depth shape {depth.shape}")
    inside = cov if binary else cov >= 0.5
    rows = np.flatnonzero(inside.any(axis=1))
    if rows.size == 0:
        raise ValueError("empty mask")
    cols = np.flatnonzero(inside[rows[0]:rows[-1] + 1].any(axis=0))
    h, w = cov.shape
    ya, yb = max(0, rows[0] - CROP_MARGIN), min(h, rows[-1] + 1 + CROP_MARGIN)
    xa, xb = max(0, cols[0] - CROP_MARGIN), min(w, cols[-1] + 1 + CROP_MARGIN)
    cov_c = cov[ya:yb, xa:xb]
    inside_c = inside[ya:yb, xa:xb]
    z_c = depth[ya:yb, xa:xb].astype(np.float64)
    valid = inside_c & np.isfinite(z_c) & (z_c > 0)
    if not valid.any():
        raise ValueError("no valid depth inside the mask")

    outline = Outline.from_mask(cov_c, binary, xa, ya)
    area = float(np.count_nonzero(inside_c))
    spacing = lattice_spacing(area, outline.length, settings.detail)
    lat = build_lattice_mesh(outline, spacing)
    if lat.face_sizes.size == 0 and spacing > MIN_SPACING:
        lat = build_lattice_mesh(outline, MIN_SPACING)
    if lat.face_sizes.size == 0:
        raise ValueError("empty mask")

    tear = float(settings.tear_threshold)
    sampler = DepthSampler(z_c, valid, xa, ya, tear if tear > 0 else np.inf)
    z = sampler.sample(lat.pixels)
    sizes, loops = lat.face_sizes, lat.loops
    if tear > 0:
        starts = face_starts(sizes)
        zl = z[loops]
        zmin, zmax = np.minimum.reduceat(zl, starts), np.maximum.reduceat(zl, starts)
        keep = zmax - zmin <= tear * zmin
        if keep.any() and not keep.all():
            loops = loops[np.repeat(keep, sizes)]
            sizes = sizes[keep]
    kept, loops = compact_vertices(lat.pixels.shape[0], loops)
    pixels, z, node = lat.pixels[kept], z[kept], lat.node[kept]

    seam = None
    if settings.back == "closed":
        pixels, z, node, sizes, loops, seam = _split_for_closed_back(pixels, z, node, sizes, loops)

    base = membrane_base(z_c, valid, xa, ya)
    target = z - base.sample(pixels)
    texels, relief_amount, relief_uvs = _relief_field(lat, pixels, node, target)
    base_depth = z - relief_amount
    rays = camera.rays(pixels)
    n = pixels.shape[0]

    uvs = np.empty((n, 2))
    uvs[:, 0] = pixels[:, 0] / camera.width
    uvs[:, 1] = 1.0 - pixels[:, 1] / camera.height
    node_px = lat.node_xy(np.arange(lat.nx * lat.ny))
    texture = (texels[:, None] * camera.rays(node_px)).reshape(lat.ny, lat.nx, 3)[::-1]

    front_pos = rays * base_depth[:, None]
    front_relief = rays * relief_amount[:, None]
    ones = np.ones(n, dtype=bool)
    if settings.back == "open":
        positions, relief, sign = front_pos, front_relief, np.ones(n, dtype=np.int8)
        all_uvs, all_ruvs = uvs, relief_uvs
        groups = {"front": ones, "back": ~ones}
    elif settings.back == "solidify":
        offset = float(settings.thickness) / np.linalg.norm(rays, axis=1)
        back_pos = rays * (base_depth + offset)[:, None]
        positions = np.concatenate([front_pos, back_pos])
        relief = np.concatenate([front_relief, front_relief])
        sign = np.ones(2 * n, dtype=np.int8)
        all_uvs, all_ruvs = np.concatenate([uvs, uvs]), np.concatenate([relief_uvs, relief_uvs])
        sizes, loops = _solidify_faces(sizes, loops, n)
        groups = {"front": np.concatenate([ones, ~ones]), "back": np.concatenate([~ones, ones])}
    else:
        assert seam is not None
        inner = np.flatnonzero(~seam)
        infl = float(settings.thickness) * base.sample_inflation(pixels[inner])
        back_depth = base_depth[inner] + infl + 2.0 * np.maximum(relief_amount[inner], 0.0)
        positions = np.concatenate([front_pos, rays[inner] * back_depth[:, None]])
        relief = np.concatenate([front_relief, -front_relief[inner]])
        sign = np.concatenate([np.ones(n, dtype=np.int8), -np.ones(inner.size, dtype=np.int8)])
        all_uvs = np.concatenate([uvs, uvs[inner]])
        all_ruvs = np.concatenate([relief_uvs, relief_uvs[inner]])
        remap = np.arange(n, dtype=np.int64)
        remap[inner] = n + np.arange(inner.size)
        back_loops = reverse_faces(sizes, remap[loops])
        sizes, loops = np.concatenate([sizes, sizes]), np.concatenate([loops, back_loops])
        m = inner.size
        groups = {
            "front": np.concatenate([ones, np.zeros(m, dtype=bool)]),
            "back": np.concatenate([seam, np.ones(m, dtype=bool)]),
            "seam": np.concatenate([seam, np.zeros(m, dtype=bool)]),
        }

    return MeshData(
        vertices=positions.astype(np.float32),
        relief=relief.astype(np.float32),
        uvs=all_uvs.astype(np.float32),
        face_sizes=sizes.astype(np.int32),
        loops=loops.astype(np.int32),
        groups=groups,
        relief_texture=np.ascontiguousarray(texture, dtype=np.float32),
        relief_uvs=all_ruvs.astype(np.float32),
        relief_sign=sign,
    )


def _relief_field(
    lat: LatticeMesh, pixels: np.ndarray, node: np.ndarray, target: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Relief texels (one per lattice node), per-vertex relief amounts and relief UVs.

    Vertices on a lattice node own their texel. The other vertices (on the outline,
    or added for the closed back) read the texture bilinearly, as Blender will; the
    texels around them that no vertex owns are solved for (least squares, with a weak
    smoothness term) so that reading gives back each vertex's target relief. The
    relief returned for those vertices is what the texture gives, so the mesh and the
    Displace modifier agree exactly; the base absorbs the tiny difference.
    """
    from scipy import sparse
    from scipy.sparse.linalg import splu

    nx, ny, s = lat.nx, lat.ny, lat.spacing
    cf = (pixels[:, 0] - lat.x0) / s
    rf = (pixels[:, 1] - lat.y0) / s
    relief_uvs = np.stack([(cf + 0.5) / nx, (ny - 0.5 - rf) / ny], axis=1)

    texels = np.zeros(nx * ny)
    known = np.zeros(nx * ny, dtype=bool)
    own = node >= 0
    texels[node[own]] = target[own]
    known[node[own]] = True
    amount = target.copy()
    off = np.flatnonzero(~own)
    if off.size == 0:
        return texels, amount, relief_uvs

    i0 = np.clip(np.floor(cf[off]).astype(np.int64), 0, nx - 2)
    j0 = np.clip(np.floor(rf[off]).astype(np.int64), 0, ny - 2)
    tx, ty = cf[off] - i0, rf[off] - j0
    corner = np.stack([j0 * nx + i0, j0 * nx + i0 + 1, (j0 + 1) * nx + i0, (j0 + 1) * nx + i0 + 1], axis=1)
    wts = np.stack([(1 - tx) * (1 - ty), tx * (1 - ty), (1 - tx) * ty, tx * ty], axis=1)
    free = ~known[corner] & (wts > 1e-9)
    if free.any():
        unknown = np.unique(corner[free])
        local = np.full(nx * ny, -1, dtype=np.int64)
        local[unknown] = np.arange(unknown.size)
        # data rows: sum_free w x = target - sum_known w t
        rows_with = np.flatnonzero(free.any(axis=1))
        cw = corner[rows_with]
        rhs_data = target[off][rows_with] - (wts[rows_with] * texels[cw] * known[cw]).sum(axis=1)
        fr = free[rows_with]
        r_idx = np.repeat(np.arange(rows_with.size), fr.sum(axis=1))
        c_idx = local[corner[rows_with][fr]]
        vals = wts[rows_with][fr]
        n_rows = rows_with.size
        # smoothness rows: SMOOTHNESS * (x_u - x_nb) for lattice neighbours that are known or unknown
        uj, ui = unknown // nx, unknown % nx
        s_rows, s_cols, s_vals, s_rhs = [], [], [], []
        for dj, di in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            nj, ni = uj + dj, ui + di
            ok = (nj >= 0) & (nj < ny) & (ni >= 0) & (ni < nx)
            nb = np.where(ok, nj * nx + ni, 0)
            nb_known = ok & known[nb]
            nb_free = ok & (local[nb] >= 0)
            use = nb_known | nb_free
            k = np.flatnonzero(use)
            row = n_rows + np.arange(k.size)
            n_rows += k.size
            s_rows += [row, row[nb_free[k]]]
            s_cols += [np.arange(unknown.size)[k], local[nb[k][nb_free[k]]]]
            s_vals += [np.full(k.size, SMOOTHNESS), np.full(int(nb_free[k].sum()), -SMOOTHNESS)]
            s_rhs.append(np.where(nb_known[k], SMOOTHNESS * texels[nb[k]], 0.0))
        mat = sparse.csr_matrix(
            (np.concatenate([vals, *s_vals]), (np.concatenate([r_idx, *s_rows]), np.concatenate([c_idx, *s_cols]))),
            shape=(n_rows, unknown.size),
        )
        rhs = np.concatenate([rhs_data, *s_rhs])
        normal = (mat.T @ mat + sparse.identity(unknown.size) * 1e-9).tocsc()
        texels[unknown] = splu(normal).solve(mat.T @ rhs)
    amount[off] = (wts * texels[corner]).sum(axis=1)
    return texels, amount, relief_uvs


def _split_for_closed_back(
    pixels: np.ndarray, z: np.ndarray, node: np.ndarray, sizes: np.ndarray, loops: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Prepare the front so a back can share its outline and stay manifold.

    The back reuses the front's outline ("seam") vertices. An inner edge joining two
    seam vertices would then be used by four faces, so it gets a midpoint; a face made
    only of seam vertices would coincide with its back copy, so it becomes a fan
    around a new centre vertex.
    """
    n = pixels.shape[0]
    keys, inverse, counts = edge_table(sizes, loops)
    a, b = directed_edges(sizes, loops)
    seam = np.zeros(n, dtype=bool)
    border = counts[inverse] == 1
    seam[a[border]] = True
    seam[b[border]] = True
    chord = (counts[inverse] == 2) & seam[a] & seam[b]
    if chord.any():
        edge_ids, rank = np.unique(inverse[chord], return_inverse=True)
        first = np.zeros(edge_ids.size, dtype=np.int64)
        first[rank] = np.flatnonzero(chord)
        ea, eb = a[first], b[first]
        pixels = np.concatenate([pixels, 0.5 * (pixels[ea] + pixels[eb])])
        z = np.concatenate([z, 0.5 * (z[ea] + z[eb])])
        node = np.concatenate([node, np.full(edge_ids.size, -1, dtype=node.dtype)])
        seam = np.concatenate([seam, np.zeros(edge_ids.size, dtype=bool)])
        sizes, loops = insert_after_corners(sizes, loops, chord, n + rank)
        n = pixels.shape[0]
    starts = face_starts(sizes)
    all_seam = np.minimum.reduceat(seam[loops].astype(np.int8), starts) > 0
    if all_seam.any():
        fan = np.flatnonzero(all_seam)
        corner_sel = np.repeat(all_seam, sizes)
        f_sizes = sizes[fan]
        f_loops = loops[corner_sel]
        f_starts = face_starts(f_sizes)
        centre_pix = np.add.reduceat(pixels[f_loops], f_starts) / f_sizes[:, None]
        centre_z = np.add.reduceat(z[f_loops], f_starts) / f_sizes
        centre_id = n + np.arange(fan.size)
        face_of = np.repeat(np.arange(fan.size), f_sizes)
        nxt = np.arange(1, f_loops.size + 1)
        nxt[f_starts + f_sizes - 1] = f_starts
        tris = np.stack([f_loops, f_loops[nxt], centre_id[face_of]], axis=1).ravel()
        pixels = np.concatenate([pixels, centre_pix])
        z = np.concatenate([z, centre_z])
        node = np.concatenate([node, np.full(fan.size, -1, dtype=node.dtype)])
        seam = np.concatenate([seam, np.zeros(fan.size, dtype=bool)])
        loops = np.concatenate([loops[~corner_sel], tris])
        sizes = np.concatenate([sizes[~all_seam], np.full(f_loops.size, 3, dtype=sizes.dtype)])
    return pixels, z, node, sizes, loops, seam


def _solidify_faces(sizes: np.ndarray, loops: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Front faces, reversed back copies (vertex + n) and quads walling every outline edge."""
    keys, inverse, counts = edge_table(sizes, loops)
    a, b = directed_edges(sizes, loops)
    border = counts[inverse] == 1
    ba, bb = a[border], b[border]
    walls = np.stack([bb, ba, ba + n, bb + n], axis=1).ravel()
    back = reverse_faces(sizes, loops + n)
    new_sizes = np.concatenate([sizes, sizes, np.full(ba.size, 4, dtype=sizes.dtype)])
    return new_sizes, np.concatenate([loops, back, walls])


def outline_of(mask: np.ndarray) -> Outline:
    """The sub-pixel outline the mesh follows (for tests and previews)."""
    cov, binary = _coverage(mask)
    return Outline.from_mask(cov, binary)
