"""Measurements on built scenes (evaluated geometry, reprojection, watertightness) and a
small hand-made mesh generator, shared by the scene and render round-trip tests."""

from __future__ import annotations

import bmesh
import bpy
import numpy as np
from mathutils import Matrix
from monocle.geometry.check import is_closed
from monocle.scene.evaluated import read_evaluated


def evaluated_world(obj: bpy.types.Object) -> np.ndarray:
    """World positions (N, 3) of the object's vertices after its modifiers."""
    return read_evaluated(obj, faces=False).vertices


def evaluated_triangles(obj: bpy.types.Object) -> tuple[np.ndarray, np.ndarray]:
    """World positions (N, 3) and loop triangles (T, 3) of the object's mesh after its modifiers."""
    ev = read_evaluated(obj, faces=False, triangles=True)
    return ev.vertices, ev.triangles


def is_watertight(obj: bpy.types.Object) -> bool:
    """Every edge of the evaluated mesh is shared by exactly two faces (the product's check)."""
    ev = read_evaluated(obj)
    return is_closed(ev.face_sizes, ev.loops, oriented=False)


def photo_uv_per_vertex(obj: bpy.types.Object, name: str = "Photo") -> np.ndarray:
    """(N, 2) UV of each vertex (from any of its corners) in the object's original mesh."""
    mesh = obj.data
    n = len(mesh.loops)
    uv = np.empty(n * 2, dtype=np.float32)
    mesh.uv_layers[name].data.foreach_get("uv", uv)
    vi = np.empty(n, dtype=np.int32)
    mesh.loops.foreach_get("vertex_index", vi)
    out = np.full((len(mesh.vertices), 2), np.nan)
    out[vi] = uv.reshape(-1, 2)
    return out


def project_to_pixels(cam: bpy.types.Object, scene: bpy.types.Scene, world: np.ndarray) -> np.ndarray:
    """Pixel coordinates (x right, y down, top-left origin) of world points through Blender's
    own camera matrices (``calc_matrix_camera``), at the scene's render resolution."""
    w, h = scene.render.resolution_x, scene.render.resolution_y
    depsgraph = bpy.context.evaluated_depsgraph_get()
    proj = np.array(cam.calc_matrix_camera(depsgraph, x=w, y=h), dtype=np.float64)
    view = np.linalg.inv(np.array(cam.matrix_world, dtype=np.float64))
    hom = np.c_[world, np.ones(len(world))] @ (proj @ view).T
    ndc = hom[:, :2] / hom[:, 3:4]
    return np.stack([(ndc[:, 0] + 1) * 0.5 * w, (1 - ndc[:, 1]) * 0.5 * h], axis=1)


def reprojection_error(obj: bpy.types.Object, cam: bpy.types.Object, scene: bpy.types.Scene) -> np.ndarray:
    """Per-vertex distance in pixels between where the evaluated vertex projects and the pixel
    its "Photo" UV points to."""
    w, h = scene.render.resolution_x, scene.render.resolution_y
    px = project_to_pixels(cam, scene, evaluated_world(obj))
    uv = photo_uv_per_vertex(obj)
    target = np.stack([uv[:, 0] * w, (1 - uv[:, 1]) * h], axis=1)
    return np.linalg.norm(px - target, axis=1)


# -- hand-made meshes ---------------------------------------------------------------------------


def grid_mesh(mdl, camera, mask: np.ndarray, depth: float, bump: float = 0.0, closed: bool = False,
              thickness: float = 0.2, photo_texture: bool = False):
    """A MeshData (module ``mdl`` = the installed ``geometry`` package) with one vertex per mask
    pixel centre at z = -depth, quads between 2x2 blocks of mask pixels, and a relief of
    ``bump`` scene units along each ray (a bump peaking in the middle). ``closed`` adds a back
    copy ``thickness`` behind, with the mirrored relief, and side walls; ``photo_texture``
    supplies a relief texture at photo resolution (twice as tall when closed: the back's
    negated texels below the front's), otherwise Monocle lays out one texel per vertex."""
    h, w = mask.shape
    index = np.full(mask.shape, -1, dtype=np.int64)
    ys, xs = np.nonzero(mask)
    n = ys.size
    index[ys, xs] = np.arange(n)
    px = np.stack([xs + 0.5, ys + 0.5], axis=1)
    rays = camera.rays(px)
    cx, cy = xs.mean(), ys.mean()
    rad = max(np.ptp(xs), np.ptp(ys), 1) / 2 + 1
    r = bump * np.clip(1 - ((xs - cx) ** 2 + (ys - cy) ** 2) / rad**2, 0, None)
    front_v = rays * depth
    front_relief = rays * r[:, None]  # scaled so |z| = r: moves along the ray
    a, b = index[:-1, :-1], index[:-1, 1:]
    c, d = index[1:, 1:], index[1:, :-1]
    ok = (a >= 0) & (b >= 0) & (c >= 0) & (d >= 0)
    # counter-clockwise seen from the camera (y down in pixels): a, d, c, b
    quads = np.stack([a[ok], d[ok], c[ok], b[ok]], axis=1)
    uvs = np.stack([px[:, 0] / w, 1 - px[:, 1] / h], axis=1)
    if not closed:
        verts, relief, faces, uv_all = front_v, front_relief, quads, uvs
        groups = {"front": np.ones(n, bool), "back": np.zeros(n, bool)}
    else:
        back_v = rays * (depth + thickness)
        e0 = quads.ravel()
        e1 = np.roll(quads, -1, axis=1).ravel()
        key = e0 * n + e1
        boundary = ~np.isin(e1 * n + e0, key)
        s0, s1 = e0[boundary], e1[boundary]
        sides = np.stack([s1, s0, s0 + n, s1 + n], axis=1)
        faces = np.concatenate([quads, quads[:, ::-1] + n, sides])
        verts = np.concatenate([front_v, back_v])
        relief = np.concatenate([front_relief, -front_relief])
        uv_all = np.concatenate([uvs, uvs])
        groups = {"front": np.r_[np.ones(n, bool), np.zeros(n, bool)],
                  "back": np.r_[np.zeros(n, bool), np.ones(n, bool)]}
    tex = tex_uv = None
    if photo_texture:  # (rows, w, 4) RGBA, row 0 at the bottom like Blender's pixels
        tex = np.zeros(((2 if closed else 1) * h, w, 4), np.float32)
        tex[..., 3] = 1.0
        tex[(2 if closed else 1) * h - 1 - ys, xs, :3] = front_relief
        tex_uv = uv_all.copy()
        if closed:  # the front in the top half, the back's negated relief in the bottom half
            tex[h - 1 - ys, xs, :3] = -front_relief
            tex_uv[:, 1] = np.r_[0.5 + uvs[:, 1] / 2, uvs[:, 1] / 2]
    return mdl.MeshData(
        vertices=verts.astype(np.float32), relief=relief.astype(np.float32), uvs=uv_all.astype(np.float32),
        face_sizes=np.full(len(faces), 4, np.int32), loops=faces.ravel().astype(np.int32), groups=groups,
        relief_texture=tex, relief_uvs=None if tex_uv is None else tex_uv.astype(np.float32),
    )


def add_bmesh_object(scene: bpy.types.Scene, name: str, bm: bmesh.types.BMesh, matrix: Matrix) -> bpy.types.Object:
    """A mesh object made from ``bm`` (freed here), placed at ``matrix`` and linked into the scene."""
    mesh = bpy.data.meshes.new(name)
    bm.to_mesh(mesh)
    bm.free()
    obj = bpy.data.objects.new(name, mesh)
    obj.matrix_world = matrix
    scene.collection.objects.link(obj)
    return obj
