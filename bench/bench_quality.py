"""Quality scoreboard: masks, depth and 3D reconstruction against ground truth, one command.

    .venv/bin/python bench/bench_quality.py [--quick]      (make bench-quality [QUICK=1])

* Masks: IoU of the classic engine (real worker subprocess) on the GrabCut photos, with and
  without the dataset's box hint.
* Depth: AbsRel / delta1 of the classic engine's relative inverse depth after a least-squares
  scale-and-shift fit in inverse-depth space, on the RGB-D frames of ../shared/bench-data/depth
  and on scikit-image's stereo_motorcycle (GT disparity).
* 3D: every mesh of ../shared/bench-data/meshes rendered by Cycles from 3 fixed upright cameras
  (RGB, alpha, Z pass), reconstructed by the real worker + ``scene.build.build_from_result`` in
  two modes, ``oracle`` (GT mask + Z pass as metric depth: the mesh builder alone) and
  ``classic`` (the offline engine), and scored in the GT-10 frame (bench/metrics.py), with and
  without a scale + rigid ICP alignment.

Writes bench/results/quality.json, quality.md and PNG plots. Metric definitions: bench/metrics.py
and ../shared/bench-data/METRICS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tools"))
import metrics  # noqa: E402

DATA = ROOT.parent / "shared" / "bench-data"
RESULTS = ROOT / "bench" / "results"
W, H = 512, 384  # a pixel must be finer than tau = 1 % of the object: at 256 px it is ~1 % and thin parts drop out
LENS = 35.0
SIZE = 2.0  # rendered objects: longest bbox edge in Blender units
CAM_DIST = 5.0
VIEWS = ((-35.0, 15.0), (40.0, 25.0), (160.0, 10.0))  # (azimuth, elevation) in degrees
N_SAMPLES = 20_000  # points per compared set (visible GT, visible prediction, whole GT, whole prediction)
VOL_POINTS = 5_000  # occupancy samples for the volumetric IoU
TAUS = (0.1, 0.3, 0.5)
QUICK_MESHES = ("spot", "teapot", "fandisk")


def log(*a: object) -> None:
    print(*a, file=sys.stderr, flush=True)


def worker(args: list[str]) -> tuple[dict, float]:
    """Run ``python -m inference run ARGS`` from this checkout; returns (result.json, wall s)."""
    out = Path(args[args.index("--out") + 1])
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "inference", "run", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed (exit {proc.returncode}): {proc.stdout[-800:]} {proc.stderr[-800:]}")
    return json.loads((out / "result.json").read_text()), wall


def mean(values: list[float]) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return round(statistics.mean(vals), 4) if vals else None


# --------------------------------------------------------------------------- masks


def bench_masks(tmp: Path, quick: bool) -> dict:
    import bench_masks

    data = DATA / "masks" / "grabcut"
    names = sorted(p.stem for p in (data / "imgs").glob("*.jpg"))
    if quick:
        names = names[:4]
    rows = []
    for name in names:
        gt = np.asarray(Image.open(data / "seg_GT" / f"{name}.bmp").convert("L")) > 127
        row: dict = {"image": name}
        for hint in ("none", "box"):
            out = tmp / f"mask-{name}-{hint}"
            args = ["--image", str(data / "imgs" / f"{name}.jpg"), "--out", str(out)]
            if hint == "box":
                args += ["--box", ",".join(map(str, bench_masks.read_box(data / "bboxes" / f"{name}.txt")))]
            result, wall = worker(args)
            row[hint] = {"iou": round(metrics.mask_iou(bench_masks.union_mask(result, out), gt), 4),
                         "segment_s": round(result["timings"]["segment"], 3), "wall_s": round(wall, 3)}
        rows.append(row)
        log(f"mask {name:10s} IoU {row['none']['iou']:.3f} / box {row['box']['iou']:.3f}")
    return {"items": rows, "mean": {h: {"iou": mean([r[h]["iou"] for r in rows]),
                                        "segment_s": mean([r[h]["segment_s"] for r in rows])}
                                    for h in ("none", "box")}}


# --------------------------------------------------------------------------- depth


def depth_frames(quick: bool) -> list[tuple[str, Path, np.ndarray]]:
    """(name, colour image, GT depth in metres with 0 = invalid) for the bundled RGB-D frames."""
    base = DATA / "depth" / "open3d_rgbd"
    frames = []
    # PIL returns the PGM's big-endian words as numbers; the Kinect raw value is their byte swap
    raw = np.asarray(Image.open(base / "NYU_depth.pgm")).astype(np.uint16).byteswap().astype(np.float64)
    nyu_d = np.where((raw > 0) & (raw < 1092), 351.3 / (1092.5 - raw), 0.0)
    frames.append(("NYU", base / "NYU_color.ppm", np.where(nyu_d < 10, nyu_d, 0)))
    v = np.asarray(Image.open(base / "SUN_depth.png")).astype(np.uint16)
    frames.append(("SUN", base / "SUN_color.jpg", ((v >> 3) | (v << 13)).astype(np.float64) / 1000.0))
    frames.append(("TUM", base / "TUM_color.png",
                   np.asarray(Image.open(base / "TUM_depth.png")).astype(np.float64) / 5000.0))
    for p in sorted((base / "redwood_depth").glob("*.png"))[: 1 if quick else None]:
        frames.append((f"Redwood {p.stem}", base / "redwood_color" / f"{p.stem}.jpg",
                       np.asarray(Image.open(p)).astype(np.float64) / 1000.0))
    return frames


def bench_depth(tmp: Path, quick: bool) -> dict:
    from skimage import data as skdata

    items = []
    frames = depth_frames(quick)
    left, _, disparity = skdata.stereo_motorcycle()
    moto = tmp / "motorcycle.png"
    Image.fromarray(left).save(moto)
    disp = np.asarray(disparity, np.float64)
    moto_gt = np.where(np.isfinite(disp) & (disp > 0), 1.0 / np.where(disp > 0, disp, 1), 0.0)
    frames.append(("stereo_motorcycle (depth = 1/disparity, up to scale)", moto, moto_gt))
    for name, image, gt in frames:
        out = tmp / f"depth-{len(items)}"
        try:
            result, wall = worker(["--image", str(image), "--out", str(out)])
        except RuntimeError as exc:
            items.append({"frame": name, "error": str(exc)[:300]})
            log(f"depth {name}: worker failed")
            continue
        pred = np.load(out / result["depth"]["file"])
        if pred.shape != gt.shape:
            pred = np.asarray(Image.fromarray(pred.astype(np.float32)).resize(gt.shape[::-1], Image.BILINEAR))
        m = metrics.relative_depth_metrics(pred, gt)
        items.append({"frame": name, "engine": "classic", "kind": result["depth"]["kind"],
                      **{k: round(v, 4) for k, v in m.items()}, "depth_s": round(result["timings"]["depth"], 3),
                      "wall_s": round(wall, 3)})
        log(f"depth {name}: AbsRel {m['abs_rel']:.3f} delta1 {m['delta1']:.3f}")
    ok = [i for i in items if "abs_rel" in i]
    return {"items": items, "mean": {"classic": {"abs_rel": mean([i["abs_rel"] for i in ok]),
                                                 "delta1": mean([i["delta1"] for i in ok])}},
            "transformers": "not available: no depth model in the local cache on this machine"}


# --------------------------------------------------------------------------- 3D


def mesh_files(quick: bool) -> list[Path]:
    files = sorted(p for p in (DATA / "meshes").rglob("*") if p.suffix in (".obj", ".ply"))
    if quick:
        files = [p for p in files if p.stem in QUICK_MESHES]
    return files


def _evaluated(obj) -> tuple[np.ndarray, list[list[int]]]:  # noqa: ANN001
    """World vertices and polygons of an object after its modifiers."""
    import bpy

    ev = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = ev.to_mesh()
    try:
        co = np.empty(len(mesh.vertices) * 3, np.float32)
        mesh.vertices.foreach_get("co", co)
        n = np.empty(len(mesh.polygons), np.int32)
        mesh.polygons.foreach_get("loop_total", n)
        loops = np.empty(len(mesh.loops), np.int32)
        mesh.loops.foreach_get("vertex_index", loops)
    finally:
        ev.to_mesh_clear()
    mat = np.array(ev.matrix_world, np.float64)
    verts = co.reshape(-1, 3).astype(np.float64) @ mat[:3, :3].T + mat[:3, 3]
    return verts, np.split(loops, np.cumsum(n)[:-1])


def is_closed(faces: list[np.ndarray]) -> bool:
    """Every edge is used by exactly two faces (a closed 2-manifold surface)."""
    if not faces:
        return False
    f = np.concatenate(faces).astype(np.int64)
    nxt = np.concatenate([np.roll(p, -1) for p in faces]).astype(np.int64)
    e = np.sort(np.stack([f, nxt], 1), 1)
    _, counts = np.unique(e, axis=0, return_counts=True)
    return bool((counts == 2).all())


def splat_depth(points_cam: np.ndarray, focal_px: float) -> np.ndarray:
    """A point-splat z-buffer (nearest axial depth per pixel) of dense surface samples; pixels no
    sample landed on take the nearest depth of their 3x3 neighbourhood, so a back surface cannot
    show through a hole in the splat of the front one."""
    from scipy import ndimage

    z = -points_cam[:, 2]
    x = np.floor(W / 2 + focal_px * points_cam[:, 0] / np.maximum(z, 1e-9)).astype(np.int64)
    y = np.floor(H / 2 - focal_px * points_cam[:, 1] / np.maximum(z, 1e-9)).astype(np.int64)
    ok = (z > 0) & (x >= 0) & (x < W) & (y >= 0) & (y < H)
    buf = np.full(H * W, np.inf)
    np.minimum.at(buf, y[ok] * W + x[ok], z[ok])
    buf = buf.reshape(H, W)
    holes = ~np.isfinite(buf)
    buf[holes] = ndimage.minimum_filter(np.where(holes, 1e30, buf), size=3)[holes]
    return np.where(buf < 1e29, buf, np.inf)


def _setup_scene(path: Path):  # noqa: ANN202
    """Fresh file with the mesh imported, centred, scaled to SIZE, lit, Cycles set up."""
    import bpy
    from render_util import use_cycles

    bpy.ops.wm.read_homefile(app_template="", use_empty=True)
    scene = bpy.context.scene
    if path.suffix == ".obj":
        bpy.ops.wm.obj_import(filepath=str(path))
    else:
        bpy.ops.wm.ply_import(filepath=str(path))
    objs = [o for o in scene.objects if o.type == "MESH"]
    obj = objs[0]
    for o in objs[1:]:
        bpy.data.objects.remove(o)
    v, _ = _evaluated(obj)
    lo, hi = v.min(0), v.max(0)
    s = SIZE / float((hi - lo).max())
    obj.scale = [c * s for c in obj.scale]
    obj.location = [obj.location[i] * s - (lo[i] + hi[i]) / 2 * s for i in range(3)]
    for mod in list(obj.modifiers):
        obj.modifiers.remove(mod)
    light = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
    light.rotation_euler = (0.6, 0.2, 0.4)
    light.data.energy = 3.0
    scene.collection.objects.link(light)
    world = bpy.data.worlds.new("World")
    world.color = (0.3, 0.3, 0.3)
    scene.world = world
    use_cycles(scene, W, H, samples=4)
    bpy.context.view_layer.update()
    return scene, obj


def _camera(scene, azimuth: float, elevation: float):  # noqa: ANN001, ANN202
    import bpy
    from mathutils import Vector

    cam = bpy.data.objects.new("GT Camera", bpy.data.cameras.new("GT Camera"))
    cam.data.lens = LENS
    cam.data.sensor_fit = "AUTO"
    cam.data.sensor_width = 36.0
    a, e = math.radians(azimuth), math.radians(elevation)
    loc = Vector((CAM_DIST * math.cos(e) * math.sin(a), -CAM_DIST * math.cos(e) * math.cos(a), CAM_DIST * math.sin(e)))
    cam.location = loc
    cam.rotation_euler = (-loc).to_track_quat("-Z", "Y").to_euler()
    scene.collection.objects.link(cam)
    scene.camera = cam
    bpy.context.view_layer.update()
    return cam


def _render(scene, folder: Path) -> np.ndarray:  # noqa: ANN001
    """Render photo.png, alpha.png and z.exr into ``folder``; returns the Z pass (H, W), top row first."""
    from render_util import render_rgba_depth  # imports bpy: only after blender_env chose the profile

    folder.mkdir(parents=True, exist_ok=True)
    rgba, z = render_rgba_depth(scene, folder)
    (folder / f"depth{scene.frame_current:04d}.exr").replace(folder / "z.exr")
    alpha = rgba[..., 3] > 0.5
    grey = 0.5 * (1 - rgba[..., 3:4])  # composite over mid grey: a photo-like background
    srgb = np.clip(rgba[..., :3] + grey, 0, 1) ** (1 / 2.2)
    Image.fromarray((srgb * 255).astype(np.uint8)).save(folder / "photo.png")
    Image.fromarray(alpha.astype(np.uint8) * 255).save(folder / "alpha.png")
    return np.where(alpha, z, np.nan)


def _score(pred_v: np.ndarray, pred_f, gt: dict, closed: bool) -> dict:  # noqa: ANN001
    """All mesh scores of one reconstruction (in the GT camera's world) without and with ICP."""
    timing: dict[str, float] = {}
    t = time.perf_counter()
    pred_f = metrics.triangulate(pred_f)  # once: sampling and occupancy both use the triangles
    scale, centre = gt["scale"], gt["centre"]
    pv = metrics.normalise(pred_v, scale, centre)
    # visible part of the prediction, judged by its own dense point-splat z-buffer from the input
    # camera; then N_SAMPLES of the visible points, so both visible sets have the same density
    # tens of samples per silhouette pixel: a sparse splat lets the closed back show through its holes
    dense, dense_n = metrics.sample_surface(pv, pred_f, max(15 * N_SAMPLES, 60 * gt["mask_pixels"]), seed=1)
    world_to_cam = gt["world_to_cam"]
    d_cam = metrics.apply(world_to_cam, dense / scale + centre)
    seen = metrics.visible_mask(d_cam, splat_depth(d_cam, gt["focal_px"]), gt["focal_px"], gt["tol"])
    rng = np.random.default_rng(3)
    vis_idx = rng.permutation(np.nonzero(seen)[0])[:N_SAMPLES]
    all_idx = rng.permutation(len(dense))[:N_SAMPLES]
    p_pts = np.concatenate([dense[vis_idx], dense[all_idx]])
    p_n = np.concatenate([dense_n[vis_idx], dense_n[all_idx]])
    p_vis = np.arange(len(p_pts)) < len(vis_idx)
    p_all = ~p_vis
    timing["visibility"] = time.perf_counter() - t
    t = time.perf_counter()
    out = {}
    for label, m in (("raw", np.eye(4)), ("icp", metrics.icp(p_pts[p_vis], gt["vis_pts"]))):
        pts = metrics.apply(m, p_pts)
        nrm = p_n @ m[:3, :3].T
        nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-30)
        res = {"visible": metrics.surface_metrics(pts[p_vis], nrm[p_vis], gt["vis_pts"], gt["vis_n"], TAUS)}
        if closed:
            res["full"] = metrics.surface_metrics(pts[p_all], nrm[p_all], gt["pts"], gt["n"], TAUS)
            if gt["closed"]:
                res["volumetric_iou"] = metrics.volumetric_iou(metrics.apply(m, pv), pred_f, gt["v"], gt["f"],
                                                               n=VOL_POINTS)
        if label == "icp":
            res["icp_scale"] = float(np.cbrt(np.linalg.det(m[:3, :3])))
        out[label] = res
        timing[label] = time.perf_counter() - t
        t = time.perf_counter()
    out["metric_seconds"] = {k: round(v, 3) for k, v in timing.items()}
    return out


def bench_3d(tmp: Path, quick: bool) -> dict:
    import blender_env

    blender_env.use_profile()
    import bpy

    module = blender_env.install_extension()
    import importlib

    geometry = importlib.import_module(module.__name__ + ".geometry")
    build = importlib.import_module(module.__name__ + ".scene.build")
    settings = geometry.MeshSettings()
    views = VIEWS[:1] if quick else VIEWS
    items = []
    for path in mesh_files(quick):
        for vi, (az, el) in enumerate(views):
            name = f"{path.stem} v{vi}"
            folder = tmp / f"3d-{path.stem}-{vi}"
            try:
                t = time.perf_counter()
                scene, obj = _setup_scene(path)
                gt_v, gt_polys = _evaluated(obj)
                gt_f = metrics.triangulate(gt_polys)
                cam = _camera(scene, az, el)
                gt_cam = np.array(cam.matrix_world, np.float64)
                z = _render(scene, folder)
                t_render = time.perf_counter() - t
            except Exception as exc:  # noqa: BLE001 - an unreadable mesh is reported, not fatal
                items.append({"item": name, "error": f"render: {exc}"[:300]})
                continue
            scale, centre = metrics.gt10_transform(gt_v)
            gv = metrics.normalise(gt_v, scale, centre)
            g_dense, g_dense_n = metrics.sample_surface(gv, gt_f, 8 * N_SAMPLES, seed=0)
            focal_px = LENS / 36.0 * W
            world_to_cam = np.linalg.inv(gt_cam)
            g_cam = metrics.apply(world_to_cam, g_dense / scale + centre)
            tol = 0.01 * SIZE  # 1 % of the object: Z is exact at pixel centres, a pixel is ~0.01 units here
            seen = metrics.visible_mask(g_cam, z, focal_px, tol)
            rng = np.random.default_rng(4)
            vis_idx = rng.permutation(np.nonzero(seen)[0])[:N_SAMPLES]
            all_idx = rng.permutation(len(g_dense))[:N_SAMPLES]
            g_pts, g_n = g_dense[all_idx], g_dense_n[all_idx]
            vis = np.zeros(len(g_dense), bool)
            vis[vis_idx] = True
            gt = {"scale": scale, "centre": centre, "pts": g_pts, "n": g_n,
                  "vis_pts": g_dense[vis], "vis_n": g_dense_n[vis],
                  "v": gv, "f": gt_f, "closed": is_closed(gt_polys), "world_to_cam": world_to_cam, "focal_px": focal_px,
                  "tol": tol, "mask_pixels": int(np.isfinite(z).sum())}
            item: dict = {"item": name, "mesh": str(path.relative_to(DATA)), "gt_closed": gt["closed"],
                          "mask_pixels": int(np.isfinite(z).sum()), "gt_visible_fraction": round(float(seen.mean()), 3),
                          "render_s": round(t_render, 3)}
            for mode in ("oracle", "classic"):
                out = folder / mode
                args = ["--image", str(folder / "photo.png"), "--out", str(out)]
                if mode == "oracle":
                    args += ["--mask", str(folder / "alpha.png"), "--depth", str(folder / "z.exr"),
                             "--depth-kind", "metric"]
                else:
                    args += ["--objects", "largest"]
                try:
                    result, wall = worker(args)
                    bpy.ops.wm.read_homefile(app_template="", use_empty=True)
                    report = build.build_from_result(out, settings, focal_mm=LENS)
                    to_gt = gt_cam @ np.linalg.inv(np.array(report.camera.matrix_world, np.float64))
                    pv_list, pf_list, off = [], [], 0
                    for o in report.objects:
                        v, f = _evaluated(o)
                        pv_list.append(v @ to_gt[:3, :3].T + to_gt[:3, 3])
                        pf_list += [p + off for p in f]
                        off += len(v)
                    pred_v = np.concatenate(pv_list)
                    closed = all(is_closed(_evaluated(o)[1]) for o in report.objects)
                    t = time.perf_counter()
                    scores = _score(pred_v, pf_list, gt, closed)
                    item[mode] = {"closed": closed, "objects": len(report.objects), "vertices": int(len(pred_v)),
                                  **scores,
                                  "seconds": {**{f"worker.{k}": round(v, 3) for k, v in result["timings"].items()},
                                              "worker_wall": round(wall, 3),
                                              **{f"build.{k}": round(v, 3) for k, v in report.timings.items()},
                                              "metrics": round(time.perf_counter() - t, 3)}}
                except Exception as exc:  # noqa: BLE001 - a failed reconstruction is a result, reported
                    item[mode] = {"error": str(exc)[:400]}
            items.append(item)
            o_f = item.get("oracle", {}).get("raw", {}).get("visible", {}).get("f@0.1")
            c_f = item.get("classic", {}).get("icp", {}).get("visible", {}).get("f@0.1")
            log(f"3d {name:22s} oracle visF@0.1 {o_f}  classic(icp) visF@0.1 {c_f}")
    return {"items": items, "mean": _means_3d(items), "settings": {
        "resolution": [W, H], "lens_mm": LENS, "views_az_el_deg": list(views), "samples": N_SAMPLES,
        "mesh_settings": vars(settings) if hasattr(settings, "__dict__") else str(settings)}}


def _get(item: dict, mode: str, align: str, part: str, key: str) -> float | None:
    return item.get(mode, {}).get(align, {}).get(part, {}).get(key) if part else \
        item.get(mode, {}).get(align, {}).get(key)


def _means_3d(items: list[dict]) -> dict:
    out: dict = {}
    for mode in ("oracle", "classic"):
        for align in ("raw", "icp"):
            d = {}
            for part in ("visible", "full"):
                for key in ("f@0.1", "f@0.3", "f@0.5", "chamfer_l1", "chamfer_l2", "normal_consistency"):
                    d[f"{part}.{key}"] = mean([_get(i, mode, align, part, key) for i in items])
            d["volumetric_iou"] = mean([_get(i, mode, align, "", "volumetric_iou") for i in items])
            out[f"{mode}.{align}"] = d
        secs: dict[str, list[float]] = {}
        for i in items:
            for k, v in i.get(mode, {}).get("seconds", {}).items():
                secs.setdefault(k, []).append(v)
        out[f"{mode}.seconds"] = {k: mean(v) for k, v in secs.items()}
    out["render_s"] = mean([i.get("render_s") for i in items])
    return out


# --------------------------------------------------------------------------- report


def _fmt(v: float | None, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def markdown(rep: dict) -> str:
    lines = ["## Quality scoreboard", "",
             f"`make bench-quality{' QUICK=1' if rep['quick'] else ''}` on {rep['machine']['cpus']} CPUs, "
             f"{rep['total_s']:.0f} s in all. Definitions: `bench/metrics.py`, `../shared/bench-data/METRICS.md`. "
             "Shapes are scored in the GT-10 frame (GT longest bbox edge = 10, so F@0.1 = within 1 % of the size); "
             "*visible* = GT points seen from the input camera vs the prediction's camera-visible points; "
             "*raw* = as built in the render's camera, *ICP* = after a scale + rigid ICP.", ""]
    d3 = rep.get("3d")
    if d3:
        lines += ["### 3D reconstruction (Cycles renders of the bench meshes)", "",
                  "| object / view | mode | vis F@0.1 raw | vis F@0.3 raw | vis CD-L1 raw | NC raw | vis F@0.1 ICP "
                  "| vis F@0.3 ICP | vis CD-L1 ICP | full F@0.1 ICP | vol IoU ICP |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for it in d3["items"]:
            for mode in ("oracle", "classic"):
                r = it.get(mode)
                if r is None:
                    continue
                if "error" in r:
                    lines.append(f"| {it['item']} | {mode} | error: {r['error'][:80]} |||||||||")
                    continue
                rv, iv = r["raw"]["visible"], r["icp"]["visible"]
                lines.append(f"| {it['item']} | {mode} | {_fmt(rv['f@0.1'])} | {_fmt(rv['f@0.3'])} "
                             f"| {_fmt(rv['chamfer_l1'])} | {_fmt(rv.get('normal_consistency'))} | {_fmt(iv['f@0.1'])} "
                             f"| {_fmt(iv['f@0.3'])} | {_fmt(iv['chamfer_l1'])} "
                             f"| {_fmt(r['icp'].get('full', {}).get('f@0.1'))} "
                             f"| {_fmt(r['icp'].get('volumetric_iou'))} |")
        lines += ["", "| mode | alignment | vis F@0.1 | vis F@0.3 | vis F@0.5 | vis CD-L1 | vis CD-L2 | vis NC "
                  "| full F@0.1 | full F@0.3 | full CD-L1 | vol IoU |", "|---" * 12 + "|"]
        for mode in ("oracle", "classic"):
            for align in ("raw", "icp"):
                m = d3["mean"][f"{mode}.{align}"]
                lines.append(f"| **{mode}** | {align} | " + " | ".join(_fmt(m[k]) for k in (
                    "visible.f@0.1", "visible.f@0.3", "visible.f@0.5", "visible.chamfer_l1", "visible.chamfer_l2",
                    "visible.normal_consistency", "full.f@0.1", "full.f@0.3", "full.chamfer_l1", "volumetric_iou"))
                             + " |")
        lines += ["", "Seconds per image (mean): render " + _fmt(d3["mean"]["render_s"], 2) + "; " + "; ".join(
            f"{mode}: " + ", ".join(f"{k} {_fmt(v, 2)}" for k, v in d3["mean"][f"{mode}.seconds"].items()
                                    if k in ("worker.segment", "worker.depth", "worker.total", "worker_wall",
                                             "build.geometry", "build.total", "metrics"))
            for mode in ("oracle", "classic")), "", "![F-score per object](quality_fscore.png)", ""]
    dd = rep.get("depth")
    if dd:
        lines += ["### Depth (classic engine, scale-and-shift fit in inverse depth)", "",
                  "| frame | AbsRel | δ1 | depth s |", "|---|---|---|---|"]
        for it in dd["items"]:
            if "error" in it:
                lines.append(f"| {it['frame']} | error | | |")
            else:
                lines.append(f"| {it['frame']} | {it['abs_rel']:.3f} | {it['delta1']:.3f} | {it['depth_s']:.2f} |")
        m = dd["mean"]["classic"]
        lines += [f"| **mean** | **{_fmt(m['abs_rel'])}** | **{_fmt(m['delta1'])}** | |", "",
                  f"transformers engine: {dd['transformers']}. For scale, Depth Anything V2 Small reports NYU "
                  "AbsRel 0.053 / δ1 0.973 zero-shot (METRICS.md).", "", "![depth error](quality_depth.png)", ""]
    dm = rep.get("masks")
    if dm:
        lines += ["### Masks (classic engine, GrabCut photos)", "",
                  "| photo | IoU no hint | IoU box |", "|---|---|---|"]
        for it in dm["items"]:
            lines.append(f"| {it['image']} | {it['none']['iou']:.3f} | {it['box']['iou']:.3f} |")
        lines += [f"| **mean** | **{_fmt(dm['mean']['none']['iou'])}** | **{_fmt(dm['mean']['box']['iou'])}** |", ""]
    return "\n".join(lines)


def plots(rep: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d3 = rep.get("3d")
    if d3 and d3["items"]:
        items = d3["items"]
        names = [i["item"] for i in items]
        series = [(mode, align) for mode in ("oracle", "classic") for align in ("raw", "icp")]
        fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(names)), 4))
        width = 0.8 / len(series)
        for k, (mode, align) in enumerate(series):
            vals = [_get(i, mode, align, "visible", "f@0.1") or 0.0 for i in items]
            ax.bar(np.arange(len(names)) + k * width, vals, width, label=f"{mode} {align}")
        ax.axhline(0.95, color="k", lw=0.8, ls="--")
        ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=70, fontsize=7)
        ax.set_ylabel("visible-surface F@0.1")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(RESULTS / "quality_fscore.png", dpi=110)
        plt.close(fig)
    dd = rep.get("depth")
    if dd:
        ok = [i for i in dd["items"] if "abs_rel" in i]
        fig, ax = plt.subplots(figsize=(7, 3.5))
        x = np.arange(len(ok))
        ax.bar(x - 0.2, [i["abs_rel"] for i in ok], 0.4, label="AbsRel")
        ax.bar(x + 0.2, [1 - i["delta1"] for i in ok], 0.4, label="1 - δ1")
        ax.set_xticks(x, [i["frame"].split(" (")[0] for i in ok], rotation=30, fontsize=8)
        ax.legend()
        ax.set_title("classic engine depth error per frame (lower is better)")
        fig.tight_layout()
        fig.savefig(RESULTS / "quality_depth.png", dpi=110)
        plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer photos, frames, meshes and views")
    parser.add_argument("--only", choices=("masks", "depth", "3d"), action="append", default=None)
    args = parser.parse_args()
    parts = args.only or ["masks", "depth", "3d"]
    t0 = time.perf_counter()
    rep: dict = {"quick": args.quick, "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}}
    with tempfile.TemporaryDirectory(prefix="monocle-quality-") as tmp:
        for part, fn in (("masks", bench_masks), ("depth", bench_depth), ("3d", bench_3d)):
            if part in parts:
                t = time.perf_counter()
                rep[part] = fn(Path(tmp), args.quick)
                rep[part]["seconds"] = round(time.perf_counter() - t, 1)
    rep["total_s"] = round(time.perf_counter() - t0, 1)
    rep["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "quality.json").write_text(json.dumps(rep, indent=1, default=float))
    md = markdown(rep)
    (RESULTS / "quality.md").write_text(md)
    plots(rep)
    print(md)
    fails = [i["item"] for i in rep.get("3d", {}).get("items", [])
             if (_get(i, "oracle", "raw", "visible", "f@0.1") or 0) < 0.95]
    if fails:
        log(f"oracle visible F@0.1 below 0.95 on: {', '.join(fails)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
