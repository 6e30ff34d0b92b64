"""Planar mesh of a mask on a regular lattice, clipped to the mask's outline.

Cells fully inside the outline become quads. Cells the outline crosses are cut like
marching squares: their inside part becomes one polygon (triangle to hexagon) whose
new corners are the outline crossings on the cell edges, so the mesh follows the
outline exactly, keeps holes and separate parts, and stays conforming (neighbouring
cells share crossing vertices). To avoid slivers, a lattice node closer than
``WARP`` spacings to a crossing is moved onto it ("warped", as in isosurface
stuffing); a warp that would collapse or flip a polygon is undone. Last, outline
vertices are projected onto the full-resolution outline (the lattice only samples
it), and any projection that would flip a face is undone.

Polygons run counter-clockwise as seen on screen (x right, y down), which is
counter-clockwise in camera space too, so front faces face the camera.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .grid import nonzero_2d
from .outline import Outline
from .topology import corner_faces, face_starts, polygon_areas

WARP = 0.3
MIN_AREA = 1e-4  # relative to spacing**2

# Slots of a cell polygon walk: corner k then the edge from corner k to corner k + 1.
# Corners: 0 top-left, 1 bottom-left, 2 bottom-right, 3 top-right (counter-clockwise on screen).
_SEPARATED_SADDLE = {
    0: ((0, 1, 7), (3, 4, 5)),  # corners 0 and 2 inside: triangles around them
    1: ((1, 2, 3), (5, 6, 7)),  # corners 1 and 3 inside
}


@dataclass
class LatticeMesh:
    """A planar polygon mesh in pixel coordinates plus its lattice."""

    pixels: np.ndarray  # (N, 2) float64 pixel coordinates
    node: np.ndarray  # (N,) flat lattice index of vertices sitting on their node, else -1
    boundary: np.ndarray  # (N,) bool: vertex lies on the outline
    face_sizes: np.ndarray  # (F,) int64
    loops: np.ndarray  # (L,) int64
    x0: float
    y0: float
    spacing: float
    nx: int
    ny: int
    full: np.ndarray  # (ny - 1, nx - 1) cells meshed as quads (the first faces, row-major)
    cut_cells: np.ndarray  # (P,) flat cell index of each cut polygon (the faces after the quads)
    cut_side: np.ndarray  # per cut-polygon corner: lattice side 0-3 its edge runs along, else -1
    all_used: bool = True  # every vertex is a corner of some face (else some dropped polygon left one alone)
    near_quads: np.ndarray | None = None  # the quads (face indices) with a warped corner, among others near one

    def node_xy(self, flat: np.ndarray) -> np.ndarray:
        out = np.empty((flat.shape[0], 2))
        out[:, 0] = self.x0 + (flat % self.nx) * self.spacing
        out[:, 1] = self.y0 + (flat // self.nx) * self.spacing
        return out


def _screen_ccw(pts: np.ndarray) -> np.ndarray:
    out = pts.copy()
    out[:, 1] = -out[:, 1]
    return out


class _Cells:
    """The cells the outline touches, with what their polygons need."""

    def __init__(self, cj: np.ndarray, ci: np.ndarray, nx: int, inside: np.ndarray, eid_h: np.ndarray,
                 eid_v: np.ndarray, centre_in: np.ndarray) -> None:
        self.corner = np.stack([cj * nx + ci, (cj + 1) * nx + ci, (cj + 1) * nx + ci + 1, cj * nx + ci + 1], axis=1)
        self.edge = np.stack([eid_v[cj, ci], eid_h[cj + 1, ci], eid_v[cj, ci + 1], eid_h[cj, ci]], axis=1)
        self.inside = inside.ravel()[self.corner]
        self.centre_in = centre_in

    def polygons(self, on: np.ndarray, sub: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per polygon of the cells ``sub`` (all when None): its cell row and an (P, 8) mask
        of emitted walk slots."""
        rows = np.arange(self.corner.shape[0]) if sub is None else sub
        cin = self.inside[rows]
        con = on[self.corner[rows]]
        nxt = [1, 2, 3, 0]
        emit = np.empty((rows.size, 8), dtype=bool)
        emit[:, 0::2] = cin | con
        emit[:, 1::2] = (self.edge[rows] >= 0) & ~con & ~con[:, nxt]
        alternating = (cin[:, 0] == cin[:, 2]) & (cin[:, 1] == cin[:, 3]) & (cin[:, 0] != cin[:, 1])
        separated = alternating & ~con.any(axis=1) & ~self.centre_in[rows]
        if not separated.any():
            return rows, emit
        keep_rows, keep_emit = rows[~separated], emit[~separated]
        sep = np.flatnonzero(separated)
        extra_rows, extra_emit = [], []
        for case, tris in _SEPARATED_SADDLE.items():
            sel = sep[~cin[sep, 0]] if case else sep[cin[sep, 0]]
            for tri in tris:
                e = np.zeros((sel.size, 8), dtype=bool)
                e[:, list(tri)] = True
                extra_rows.append(rows[sel])
                extra_emit.append(e)
        return np.concatenate([keep_rows, *extra_rows]), np.concatenate([keep_emit, *extra_emit])


def cells_around(nodes: np.ndarray, nx: int, ny: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of the lattice cells (up to four) that have each of ``nodes`` (flat node
    indices) as a corner, for all the nodes together; repeats are possible."""
    j, i = np.divmod(np.asarray(nodes, dtype=np.int64), nx)
    rows, cols = [], []
    for dj in (-1, 0):
        for di in (-1, 0):
            cj, ci = j + dj, i + di
            ok = (cj >= 0) & (ci >= 0) & (cj < ny - 1) & (ci < nx - 1)
            rows.append(cj[ok])
            cols.append(ci[ok])
    return np.concatenate(rows), np.concatenate(cols)


def lattice_lines(outline: Outline, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel x of the columns and y of the rows of the lattice ``build_lattice_mesh`` lays over
    ``outline`` at ``spacing`` (its nodes: every (x, y) pair). Raises on an empty outline."""
    s = float(spacing)
    pts = outline.points
    if pts.shape[0] == 0:
        raise ValueError("empty mask")
    (xmin, ymin), (xmax, ymax) = pts.min(axis=0), pts.max(axis=0)
    x0 = math.floor(xmin - s - 0.5) + 0.5  # a pixel centre, so s = 1 puts nodes on pixel centres
    y0 = math.floor(ymin - s - 0.5) + 0.5
    nx = int(math.ceil((xmax + s - x0) / s)) + 1
    ny = int(math.ceil((ymax + s - y0) / s)) + 1
    return x0 + s * np.arange(nx), y0 + s * np.arange(ny)


def build_lattice_mesh(outline: Outline, spacing: float) -> LatticeMesh:
    """Mesh the inside of ``outline`` with a lattice of ``spacing`` pixels (see module docstring)."""
    s = float(spacing)
    xs, ys = lattice_lines(outline, s)
    x0, y0, nx, ny = float(xs[0]), float(ys[0]), xs.size, ys.size
    g = outline.sample_grid(xs, ys)
    inside = g > 0.5
    gf = g.ravel()

    def node_xy(flat: np.ndarray) -> np.ndarray:
        return np.stack([x0 + (flat % nx) * s, y0 + (flat // nx) * s], axis=1)

    # Outline crossings on lattice edges (t measured from endpoint a).
    hj, hi = nonzero_2d(inside[:, :-1] != inside[:, 1:])
    vj, vi = nonzero_2d(inside[:-1] != inside[1:])
    ea = np.concatenate([hj * nx + hi, vj * nx + vi])
    eb = np.concatenate([hj * nx + hi + 1, (vj + 1) * nx + vi])
    ga, gb = gf[ea].astype(np.float64), gf[eb].astype(np.float64)
    t = np.clip((0.5 - ga) / (gb - ga), 0.0, 1.0)
    pa = node_xy(ea)
    epos = pa + t[:, None] * (node_xy(eb) - pa)
    eid_h = np.full((ny, nx - 1), -1, dtype=np.int32)
    eid_h[hj, hi] = np.arange(hj.size)
    eid_v = np.full((ny - 1, nx), -1, dtype=np.int32)
    eid_v[vj, vi] = hj.size + np.arange(vj.size)

    # Warp candidates: each node's nearest crossing closer than WARP spacings.
    cand_node = np.concatenate([ea, eb])
    cand_dist = np.concatenate([t, 1.0 - t])
    cand_edge = np.concatenate([np.arange(ea.size), np.arange(ea.size)])
    sel = cand_dist < WARP
    cand_node, cand_dist, cand_edge = cand_node[sel], cand_dist[sel], cand_edge[sel]
    order = np.lexsort((cand_dist, cand_node))
    cand_node, cand_edge = cand_node[order], cand_edge[order]
    first = np.ones(cand_node.size, dtype=bool)
    first[1:] = cand_node[1:] != cand_node[:-1]
    warp_node, warp_edge = cand_node[first], cand_edge[first]
    on = np.zeros(nx * ny, dtype=bool)
    on[warp_node] = True
    node_pos_override = np.full(nx * ny, -1, dtype=np.int32)
    node_pos_override[warp_node] = warp_edge

    # Cells the outline touches: some corner inside and some outside, or all-outside
    # cells around warped nodes (kept when their all-warped polygon lies inside).
    cin = (inside[:-1, :-1].astype(np.int8) + inside[1:, :-1] + inside[1:, 1:] + inside[:-1, 1:])
    touched = (cin > 0) & (cin < 4)
    cj, ci = cells_around(warp_node, nx, ny)
    empty = cin[cj, ci] == 0
    touched[cj[empty], ci[empty]] = True
    cj, ci = nonzero_2d(touched)
    corner_g = np.stack([g[cj, ci], g[cj + 1, ci], g[cj + 1, ci + 1], g[cj, ci + 1]], axis=1)
    cells = _Cells(cj, ci, nx, inside, eid_h, eid_v, corner_g.mean(axis=1) > 0.5)
    has_inside = cells.inside.any(axis=1)

    def slot_positions(on_now: np.ndarray, rows: np.ndarray) -> np.ndarray:
        corner = cells.corner[rows]
        pos = np.empty((rows.size, 8, 2))
        corner_pos = node_xy(corner.ravel()).reshape(-1, 4, 2)
        moved = on_now[corner]
        corner_pos[moved] = epos[node_pos_override[corner[moved]]]
        pos[:, 0::2] = corner_pos
        pos[:, 1::2] = epos[np.maximum(cells.edge[rows], 0)] if epos.shape[0] else 0.0
        return pos

    def assemble(on_now: np.ndarray, sub: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        rows, emit = cells.polygons(on_now, sub)
        sizes = emit.sum(axis=1)
        areas = np.zeros(sizes.shape[0])
        real = sizes >= 3
        pos = slot_positions(on_now, rows[real])[emit[real]]
        areas[real] = polygon_areas(_screen_ccw(pos), sizes[real], np.arange(pos.shape[0]))
        return rows, emit, sizes, areas

    # Undo warps that collapse or flip a polygon, re-checking only the cells they touch.
    min_area = MIN_AREA * s * s
    sub = None
    for _ in range(12):
        rows, emit, sizes, areas = assemble(on, sub)
        bad = has_inside[rows] & ((sizes < 3) | (areas <= min_area))
        if not bad.any():
            break
        undo = cells.corner[rows[bad]].ravel()
        undo = undo[on[undo]]
        on[undo] = False
        hit = np.zeros(nx * ny, dtype=bool)
        hit[undo] = True
        sub = np.flatnonzero(hit[cells.corner].any(axis=1))
    else:
        on[:] = False
    if sub is not None:
        rows, emit, sizes, areas = assemble(on)

    # All-warped polygons (no inside corner) count when their centre is inside.
    keep = (sizes >= 3) & (areas > min_area)
    orphan = keep & ~has_inside[rows]
    if orphan.any():
        pos = slot_positions(on, rows[orphan])
        w = emit[orphan][..., None]
        centre = (pos * w).sum(axis=1) / w.sum(axis=1)
        keep[np.flatnonzero(orphan)[outline.sample(centre) <= 0.5]] = False
    rows, emit, sizes = rows[keep], emit[keep], sizes[keep]

    # Vertices: inside or warped nodes, then crossings on edges without a warped endpoint.
    node_used = inside.ravel() | on
    node_vid = (np.cumsum(node_used, dtype=np.int32) - 1).astype(np.int32, copy=False)
    n_nodes = int(node_vid[-1]) + 1 if node_vid.size else 0
    edge_live = ~on[ea] & ~on[eb]
    n_cross = int(edge_live.sum())
    edge_vid = np.full(ea.size, -1, dtype=np.int32)
    edge_vid[edge_live] = n_nodes + np.arange(n_cross, dtype=np.int32)

    nj, ni = nonzero_2d(node_used.reshape(ny, nx))
    pixels = np.empty((n_nodes + n_cross, 2))
    pixels[:n_nodes, 0] = xs[ni]
    pixels[:n_nodes, 1] = ys[nj]
    pixels[n_nodes:] = epos[edge_live]
    node_flat = (nj * nx + ni).astype(np.int32)
    moved = on[node_flat]
    pixels[:n_nodes][moved] = epos[node_pos_override[node_flat[moved]]]
    node = np.full(n_nodes + n_cross, -1, dtype=np.int32)
    node[:n_nodes] = np.where(moved, -1, node_flat)
    boundary = np.ones(n_nodes + n_cross, dtype=bool)
    boundary[:n_nodes] = moved

    # Faces: quads of fully inside cells, then the cut polygons.
    full = cin == 4
    vg = node_vid.reshape(ny, nx)
    n_quads = int(full.sum())
    loops = np.empty(4 * n_quads + int(sizes.sum()), dtype=np.int32)
    quad_loops = loops[: 4 * n_quads].reshape(n_quads, 4)
    quad_loops[:, 0] = vg[:-1, :-1][full]
    quad_loops[:, 1] = vg[1:, :-1][full]
    quad_loops[:, 2] = vg[1:, 1:][full]
    quad_loops[:, 3] = vg[:-1, 1:][full]
    slot_vid = np.empty((cells.corner.shape[0], 8), dtype=np.int32)
    slot_vid[:, 0::2] = node_vid[cells.corner]
    slot_vid[:, 1::2] = edge_vid[np.maximum(cells.edge, 0)] if ea.size else -1
    loops[4 * n_quads:] = slot_vid[rows][emit]
    # which cut-polygon corners start a whole lattice side (corner k to corner k + 1, no crossing between)
    side_slot = np.full(emit.shape, -1, dtype=np.int8)
    for k in range(4):
        whole = emit[:, 2 * k] & ~emit[:, 2 * k + 1] & emit[:, (2 * k + 2) % 8]
        side_slot[:, 2 * k] = np.where(whole, k, -1)
    face_sizes = np.empty(n_quads + sizes.size, dtype=np.int32)
    face_sizes[:n_quads] = 4
    face_sizes[n_quads:] = sizes

    mesh = LatticeMesh(pixels=pixels, node=node, boundary=boundary, face_sizes=face_sizes, loops=loops,
                       x0=x0, y0=y0, spacing=s, nx=nx, ny=ny, full=full,
                       cut_cells=(cj[rows] * (nx - 1) + ci[rows]).astype(np.int64), cut_side=side_slot[emit])
    # Vertices no face uses (a polygon that was dropped can leave one): counted on the cell grid,
    # so the mesh need not scatter all its corners to find out.
    corner_of_full = np.zeros((ny, nx), dtype=bool)
    corner_of_full[:-1, :-1] = full
    corner_of_full[1:, :-1] |= full
    corner_of_full[1:, 1:] |= full
    corner_of_full[:-1, 1:] |= full
    used = np.zeros(pixels.shape[0], dtype=bool)
    used[loops[4 * n_quads:]] = True
    used[:n_nodes] |= corner_of_full.ravel()[node_flat]
    mesh.all_used = bool(used.all())
    # Faces that can flip when outline vertices move: the cut polygons and the quads
    # around warped nodes.
    near_cells = np.zeros((ny - 1, nx - 1), dtype=bool)
    near_cells[cells_around(np.flatnonzero(on), nx, ny)] = True
    near_quads = np.flatnonzero(near_cells[full])
    mesh.near_quads = near_quads
    near_sizes = np.concatenate([np.full(near_quads.size, 4, dtype=np.int32), sizes.astype(np.int32)])
    near_loops = np.concatenate([quad_loops[near_quads].ravel(), loops[4 * n_quads:]])
    _snap_to_outline(mesh, outline, near_sizes, near_loops)
    return mesh


def _snap_to_outline(mesh: LatticeMesh, outline: Outline, sizes: np.ndarray, loops: np.ndarray) -> None:
    """Move outline vertices onto the full-resolution outline unless that flips a face.

    ``sizes`` and ``loops`` are the faces that contain outline vertices (the only ones that
    can flip); the checks run on their few vertices only, never on the whole mesh.
    """
    s = mesh.spacing
    bidx = np.flatnonzero(mesh.boundary)
    if bidx.size == 0 or sizes.size == 0:
        return
    target, dist = outline.project(mesh.pixels[bidx])
    ok = dist <= 0.6 * s + 0.5
    bidx, target = bidx[ok], target[ok]
    original = mesh.pixels[bidx].copy()
    mesh.pixels[bidx] = target
    verts, local = np.unique(loops, return_inverse=True)  # the faces' vertices, numbered locally
    pos = np.minimum(np.searchsorted(verts, bidx), verts.size - 1)
    in_faces = verts[pos] == bidx
    moved = np.zeros(verts.size, dtype=bool)
    moved[pos[in_faces]] = True
    which = np.full(verts.size, -1, dtype=np.int64)  # local vertex -> its row in bidx
    which[pos[in_faces]] = np.flatnonzero(in_faces)
    pts = _screen_ccw(mesh.pixels[verts])
    starts = face_starts(sizes)
    min_area = MIN_AREA * s * s
    for _ in range(6):
        touched = np.logical_or.reduceat(moved[local], starts)
        if not touched.any():
            break
        corner_sel = np.repeat(touched, sizes)
        areas = polygon_areas(pts, sizes[touched], local[corner_sel])
        bad_faces = np.flatnonzero(touched)[areas <= min_area]
        if bad_faces.size == 0:
            break
        bad_corner = np.isin(corner_faces(sizes), bad_faces)
        revert = np.zeros_like(moved)
        revert[local[bad_corner]] = True
        revert &= moved
        rows = which[revert]
        mesh.pixels[bidx[rows]] = original[rows]
        pts[revert] = _screen_ccw(original[rows])
        moved &= ~revert
