"""Shared helpers of the template tests: meshes from files, distances to a surface, a synthetic
photo of a template pushed through the real worker, and the matching statistics."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from conftest import run_worker
from PIL import Image

BUNNY = "meshes/common3d/stanford-bunny.obj"


def load_obj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (N, 3) and triangles (T, 3) of a Wavefront OBJ (polygons fanned)."""
    verts, tris = [], []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("v "):
                verts.append([float(x) for x in line.split()[1:4]])
            elif line.startswith("f "):
                idx = [int(tok.split("/")[0]) for tok in line.split()[1:]]
                idx = [i - 1 if i > 0 else len(verts) + i for i in idx]
                tris.extend([idx[0], idx[k], idx[k + 1]] for k in range(1, len(idx) - 1))
    return np.asarray(verts, dtype=np.float64), np.asarray(tris, dtype=np.int32)


def bunny_template(templates_lib, bench_data: Path):
    """The Stanford bunny as a template-like object: +Z up (the file is +Y up), base at the origin."""
    v, f = load_obj(bench_data / BUNNY)
    v = np.stack([v[:, 0], -v[:, 2], v[:, 1]], axis=1)
    lo, hi = v.min(axis=0), v.max(axis=0)
    v -= [0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1]), lo[2]]
    return templates_lib.Template("bunny", "bunny", ("bunny",), 1, v.astype(np.float32), f)


def mesh_template(templates_lib, path: Path, category: str = ""):
    """A bench mesh file (PLY or OBJ, read by Blender's importers) as a template-like object: +Z up
    (OBJ files are +Y up), base centre at the origin, longest side 1."""
    import bpy

    before = set(bpy.data.objects)
    if path.suffix == ".obj":
        bpy.ops.wm.obj_import(filepath=str(path))  # Y up in the file, Z up in Blender
    else:
        bpy.ops.wm.ply_import(filepath=str(path))
    obj = next(o for o in bpy.data.objects if o not in before and o.type == "MESH")
    mesh = obj.data
    mesh.calc_loop_triangles()
    v = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
    mesh.vertices.foreach_get("co", v)
    tris = np.empty(len(mesh.loop_triangles) * 3, dtype=np.int32)
    mesh.loop_triangles.foreach_get("vertices", tris)
    v = v.reshape(-1, 3).astype(np.float64)
    lo, hi = v.min(axis=0), v.max(axis=0)
    v = (v - [0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1]), lo[2]]) / float((hi - lo).max())
    return templates_lib.Template(path.stem, category or path.stem, (category or path.stem,), 1,
                                  v.astype(np.float32), tris.reshape(-1, 3))


def surface_distance(points: np.ndarray, vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Exact distance from each point to a triangle mesh (Blender's BVH tree)."""
    from mathutils.bvhtree import BVHTree

    tree = BVHTree.FromPolygons(np.asarray(vertices, dtype=np.float64).tolist(),
                                np.asarray(triangles, dtype=np.int64).tolist(), epsilon=0.0)
    return np.array([tree.find_nearest(p)[3] for p in np.asarray(points, dtype=np.float64).tolist()])


def write_photo(view, folder: Path) -> tuple[Path, Path, Path]:
    """photo.png (shaded by depth), mask.png and metric depth.npy (NaN off the object) of a view."""
    folder.mkdir(parents=True, exist_ok=True)
    z = np.where(view.mask, view.zdepth, np.nan)
    lo, hi = np.nanmin(z), np.nanmax(z)
    shade = np.where(view.mask, 220 - 160 * (z - lo) / max(hi - lo, 1e-9), 30)
    rgb = np.stack([shade, 0.8 * shade, 0.6 * shade], axis=-1)
    photo, mask, depth = folder / "photo.png", folder / "mask.png", folder / "depth.npy"
    Image.fromarray(np.nan_to_num(rgb).astype(np.uint8)).save(photo)
    Image.fromarray(view.mask.astype(np.uint8) * 255).save(mask)
    np.save(depth, z.astype(np.float32))
    return photo, mask, depth


def worker_result(ext_dir: Path, view, folder: Path, relative: bool = False) -> Path:
    """Run the real worker on a synthetic view (user mask + metric depth, or with ``relative`` the
    inverse depth a relative model gives); returns the result folder."""
    photo, mask, depth = write_photo(view, folder)
    kind = "metric"
    if relative:
        np.save(depth, np.where(view.mask, 1.0 / np.maximum(view.zdepth, 1e-6), np.nan).astype(np.float32))
        kind = "relative-inverse"
    out = folder / "result"
    code, events, err = run_worker(ext_dir, "run", "--image", str(photo), "--out", str(out), "--mask", str(mask),
                                   "--depth", str(depth), "--depth-kind", kind)
    assert code == 0, (events, err)
    return out


def matching_stats(match_mod, synthetic, library, views_per_template: int, seed: int,
                   templates: list | None = None) -> dict:
    """Render every template from random upright views (numpy, perspective, small roll and offset),
    match each render against the whole library with an unknown label; returns the rates."""
    rng = np.random.default_rng(seed)
    rows = []
    for tpl in templates or library.templates:
        for _ in range(views_per_template):
            az, el, roll = synthetic.random_viewpoint(rng)
            off = tuple(rng.uniform(-0.1, 0.1, 2))
            view = synthetic.render_view(tpl, az, el, roll, offset=off)
            res = match_mod.match_instance(view.mask, view.zdepth, view.camera, library, "object")
            cats = [m.category for m in res.matches]
            same = [m for m in res.matches if m.template == tpl.name]
            err = (match_mod.orientation_error(same[0].pose.rotation, view.rotation, tpl.symmetry)
                   if res.matches and res.matches[0].template == tpl.name else math.inf)
            rows.append({"template": tpl.name, "top1": bool(cats and cats[0] == tpl.category),
                         "top3": tpl.category in cats, "orientation": err,
                         "score": same[0].score if same else -1.0, "seconds": res.timings.get("total", 0.0),
                         "view": (round(az, 1), round(el, 1), round(roll, 1)),
                         "got": [(m.template, round(m.score, 3)) for m in res.matches]})
    n = len(rows)
    return {
        "views": n,
        "top1": sum(r["top1"] for r in rows) / n,
        "top3": sum(r["top3"] for r in rows) / n,
        "orientation_under_20": sum(r["orientation"] < 20.0 for r in rows) / n,
        "seconds_per_view": float(np.mean([r["seconds"] for r in rows])),
        "min_true_score": min(r["score"] for r in rows),  # -1 when the true template was not a candidate
        "min_true_score_found": min((r["score"] for r in rows if r["score"] >= 0.0), default=-1.0),
        "failures": [r for r in rows if not r["top1"] or r["orientation"] >= 20.0],
    }
