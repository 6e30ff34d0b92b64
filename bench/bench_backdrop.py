"""Backdrop and ground benchmark: does the scene seen through the camera give back the photo, and do
the objects stand on their ground?

    .venv/bin/python bench/bench_backdrop.py [--quick] [--only renders|photo|ground] [--results DIR]

* renders: the quality benchmark's Cycles renders (bench_quality's scenes, cameras and render,
  first view) reconstructed with each backdrop (none, plane, relief) by the ``oracle`` (GT alpha
  + Z pass) and ``classic``; the reconstruction is rendered by Cycles from its camera with flat
  textures (each photo texture as an emission, ``tools/floor_scene.flat_render``) and compared
  with the photo: PSNR over the whole frame (goal >= 30 dB).
* photo: scikit-image's ``coffee`` photo (CC0) through the classic engine, rendered by Workbench
  (flat light, texture colour): PSNR over the whole frame with each backdrop, and inside the
  objects' masks alone (goal >= 24 dB over the whole frame).
* ground: 3 shared meshes standing on a textured floor, Cycles-rendered with ground-truth masks
  (object index pass) and depth (Z pass), reconstructed by ``oracle`` (GT labels + Z as metric
  depth) and ``classic``: instance IoU (each GT object's best mask), the ground plane's normal
  error (goal <= 5 degrees), each object's placement error (its centre against the GT centre,
  camera space, over the scene's size; for relative depth after the one scale that fits best),
  with the ground placement on and off, and the contact gap of the standing objects (over their size).
* speed: seconds of each backdrop and ground step on a synthetic 12 MP photo.

Writes backdrop.json and backdrop.md into bench/results (``--quick``: bench/results/quick).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import bench_quality as bq  # noqa: E402

RESULTS = ROOT / "bench" / "results"
MODES = ("none", "plane", "relief")
GROUND_SCENES = (  # (meshes, camera elevation in degrees)
    (("spot", "teapot", "stanford-bunny"), 30.0),
    (("beetle", "cow", "homer"), 22.0),
    (("suzanne", "fandisk", "rocker-arm"), 40.0),
)
GROUND_W, GROUND_H = 384, 288
GROUND_SAMPLES = 8


def log(*a: object) -> None:
    print(*a, file=sys.stderr, flush=True)


def _mean(values: list) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return round(float(np.mean(vals)), 4) if vals else None


def _build(mod: dict, result: Path, photo: Path, mode: str, ground: bool, focal: float | None):
    import bpy

    bpy.ops.wm.read_homefile(app_template="", use_empty=True)
    settings = mod["geometry"].MeshSettings(backdrop=mode, ground=ground)
    return mod["build"].build_from_result(result, settings, focal_mm=focal, image_path=photo)


# --------------------------------------------------------------------------- renders and photo


def bench_renders(tmp: Path, quick: bool, worker: bq.ServeWorker, mod: dict) -> dict:
    import bpy
    from floor_scene import flat_render, psnr

    items = []
    for subject in bq.subjects(quick, mod["module"], sets=("meshes",)):
        folder = tmp / f"render-{subject['name']}"
        scene, _ = bq._setup_scene(subject, mod["ingest"])
        bq._camera(scene, *bq.VIEWS[0])
        bq._render(scene, folder)
        photo = np.asarray(Image.open(folder / "photo.png").convert("RGB"))
        row: dict = {"item": subject["name"]}
        for engine, eargs in (("oracle", ["--mask", str(folder / "alpha.png"), "--depth", str(folder / "z.exr"),
                                          "--depth-kind", "metric"]),
                              ("classic", ["--engine", "classic", "--objects", "largest"])):
            try:
                result, _ = worker.run(["--image", str(folder / "photo.png"), "--out", str(folder / engine), *eargs])
            except RuntimeError as exc:
                row[engine] = {"error": str(exc)[:300]}
                continue
            row[engine] = {}
            for mode in MODES:
                _build(mod, folder / engine, folder / "photo.png", mode, True, bq.LENS)
                row[engine][mode] = round(psnr(flat_render(bpy.context.scene, folder / engine / mode), photo), 3)
        log(f"renders {subject['name']}: {json.dumps({k: v for k, v in row.items() if k != 'item'})}")
        items.append(row)
    means = {e: {m: _mean([i[e].get(m) for i in items if m in i.get(e, {})]) for m in MODES}
             for e in ("oracle", "classic")}
    return {"items": items, "mean_psnr_db": means, "goal_db": 30.0, "size": [bq.W, bq.H]}


def bench_photo(tmp: Path, worker: bq.ServeWorker, mod: dict) -> dict:
    import bpy
    import skimage
    from floor_scene import flat_render, psnr

    src = Path(skimage.data.__file__).parent / "coffee.png"
    photo_path = tmp / "coffee.png"
    photo_path.write_bytes(src.read_bytes())
    photo = np.asarray(Image.open(photo_path).convert("RGB"))
    result, _ = worker.run(["--image", str(photo_path), "--out", str(tmp / "coffee"), "--engine", "classic"])
    masks = [np.asarray(Image.open(tmp / "coffee" / inst["mask"]).convert("L")) > 127 for inst in result["instances"]]
    union = np.any(masks, axis=0)
    out: dict = {"objects": len(masks), "object_fraction": round(float(union.mean()), 4)}
    for mode in MODES:
        _build(mod, tmp / "coffee", photo_path, mode, True, None)
        render = flat_render(bpy.context.scene, tmp / "coffee" / mode, engine="WORKBENCH")
        out[mode] = {"frame_db": round(psnr(render, photo), 3), "objects_db": round(psnr(render, photo, union), 3)}
        log(f"photo coffee {mode}: {out[mode]}")
    out["goal_db"] = 24.0
    return out


# --------------------------------------------------------------------------- ground


def _import_mesh(scene, path: Path):
    import bpy

    before = set(scene.objects)
    if path.suffix == ".obj":
        bpy.ops.wm.obj_import(filepath=str(path))
    else:
        bpy.ops.wm.ply_import(filepath=str(path))
    new = [o for o in scene.objects if o not in before and o.type == "MESH"]
    for o in new[1:]:
        bpy.data.objects.remove(o)
    for m in list(new[0].modifiers):
        new[0].modifiers.remove(m)
    return new[0]


def _world_points(obj) -> np.ndarray:
    return bq._evaluated(obj)[0]


def _to_camera(points: np.ndarray, cam_matrix: np.ndarray) -> np.ndarray:
    m = np.linalg.inv(cam_matrix)
    return points @ m[:3, :3].T + m[:3, 3]


def _centre(points: np.ndarray) -> np.ndarray:
    return 0.5 * (points.min(0) + points.max(0))


def _match(gt_labels: np.ndarray, masks: list[np.ndarray], n_gt: int) -> tuple[list[float], list[int | None]]:
    """Per GT object: the best IoU among the predicted masks and that mask's index."""
    ious, owners = [], []
    for k in range(1, n_gt + 1):
        g = gt_labels == k
        scores = [float((g & m).sum() / max(1, (g | m).sum())) for m in masks]
        best = int(np.argmax(scores)) if scores else None
        ious.append(scores[best] if best is not None else 0.0)
        owners.append(best if best is not None and scores[best] > 0.1 else None)
    return ious, owners


def _placement(pred: list[np.ndarray | None], gt: list[np.ndarray], size: float) -> dict:
    """Centre errors over the scene size: as built, and after the one scale about the camera that fits best."""
    pairs = [(p, g) for p, g in zip(pred, gt) if p is not None]
    if not pairs:
        return {"raw": None, "scaled": None}
    p, g = np.array([a for a, _ in pairs]), np.array([b for _, b in pairs])
    s = float((p * g).sum() / (p * p).sum())
    return {"raw": _mean(list(np.linalg.norm(p - g, axis=1) / size)),
            "scaled": _mean(list(np.linalg.norm(s * p - g, axis=1) / size)), "fit_scale": round(s, 4)}


def bench_ground(tmp: Path, quick: bool, worker: bq.ServeWorker, mod: dict) -> dict:
    import bpy
    from floor_scene import camera, floor, light, render_floor_scene, stand

    meshes = {p.stem: p for p in (bq.DATA / "meshes").rglob("*") if p.suffix in (".obj", ".ply")}
    items = []
    for si, (names, elevation) in enumerate(GROUND_SCENES[:1] if quick else GROUND_SCENES):
        folder = tmp / f"ground-{si}"
        bpy.ops.wm.read_homefile(app_template="", use_empty=True)
        scene = bpy.context.scene
        light(scene)
        floor(scene)
        objs = []
        for k, name in enumerate(names):
            obj = _import_mesh(scene, meshes[name])
            stand(obj, 1.0, -1.3 + 1.3 * k, 0.5 * (k % 2), 0.4 * k)
            objs.append(obj)
        cam = camera(scene, 6.0, elevation)
        bpy.context.view_layer.update()
        cam_matrix = np.array(cam.matrix_world)
        gt_up = np.linalg.inv(cam_matrix[:3, :3]) @ np.array([0.0, 0.0, 1.0])
        gt_pts = [_to_camera(_world_points(o), cam_matrix) for o in objs]
        gt_centres = [_centre(p) for p in gt_pts]
        everything = np.concatenate(gt_pts)
        scene_size = float(np.linalg.norm(everything.max(0) - everything.min(0)))
        t = time.perf_counter()
        gt = render_floor_scene(scene, objs, folder, GROUND_W, GROUND_H, samples=GROUND_SAMPLES)
        item: dict = {"item": "+".join(names), "elevation": elevation, "render_s": round(time.perf_counter() - t, 2),
                      "scene_size": round(scene_size, 4)}
        for engine, eargs in (("oracle", ["--mask", str(folder / "labels.png"), "--depth", str(folder / "depth.npy"),
                                          "--depth-kind", "metric"]),
                              ("classic", ["--engine", "classic", "--objects", "all"])):
            try:
                result, _ = worker.run(["--image", str(folder / "photo.png"), "--out", str(folder / engine), *eargs])
            except RuntimeError as exc:
                item[engine] = {"error": str(exc)[:300]}
                continue
            masks = [np.asarray(Image.open(folder / engine / inst["mask"]).convert("L")) > 127
                     for inst in result["instances"]]
            ious, owners = _match(gt["labels"], masks, len(objs))
            row: dict = {"instances": len(masks), "iou": [round(v, 4) for v in ious], "mean_iou": _mean(ious)}
            for ground in (True, False):
                report = _build(mod, folder / engine, folder / "photo.png", "relief", ground, 35.0)
                rec_matrix = np.array(report.camera.matrix_world)
                pts = [_to_camera(_world_points(o), rec_matrix) for o in report.objects]
                centres = [_centre(pts[i]) if i is not None else None for i in owners]
                key = "ground" if ground else "no_ground"
                row[key] = _placement(centres, gt_centres, scene_size)
                if ground:
                    plane = report.ground
                    row["plane"] = plane
                    if plane is not None:
                        n = np.array(plane["normal"])
                        row["normal_error_deg"] = round(math.degrees(math.acos(min(1.0, float(n @ gt_up)))), 3)
                        gaps = [abs(float((p @ n).min()) + plane["offset"]) / float(np.linalg.norm(p.max(0) - p.min(0)))
                                for p, placed in zip(pts, plane["objects"]) if placed["standing"]]
                        row["standing"] = sum(1 for o in plane["objects"] if o["standing"])
                        row["max_contact_gap"] = round(max(gaps), 6) if gaps else None
                    else:
                        row["normal_error_deg"] = None
            item[engine] = row
            log(f"ground {item['item']} {engine}: IoU {row['mean_iou']} normal {row.get('normal_error_deg')} deg "
                f"placement {row['ground']} (off: {row['no_ground']})")
        items.append(item)
    summary = {}
    for engine in ("oracle", "classic"):
        rows = [i[engine] for i in items if "error" not in i.get(engine, {"error": 1})]
        summary[engine] = {
            "mean_iou": _mean([r["mean_iou"] for r in rows]),
            "normal_error_deg": _mean([r.get("normal_error_deg") for r in rows]),
            "planes_found": sum(1 for r in rows if r.get("plane")),
            "placement_raw": _mean([r["ground"]["raw"] for r in rows]),
            "placement_scaled": _mean([r["ground"]["scaled"] for r in rows]),
            "placement_scaled_no_ground": _mean([r["no_ground"]["scaled"] for r in rows]),
        }
    return {"items": items, "summary": summary, "goal_normal_deg": 5.0, "size": [GROUND_W, GROUND_H]}


# --------------------------------------------------------------------------- speed


def bench_speed(tmp: Path, mod: dict, width: int = 4000, height: int = 3000) -> dict:
    """Seconds of each backdrop and ground step on a synthetic 12 MP photo (a floor seen from above
    with two objects on it), best of two runs."""
    geometry = mod["geometry"]
    bd = importlib.import_module(mod["module"].__name__ + ".geometry.backdrop")
    gr = importlib.import_module(mod["module"].__name__ + ".geometry.ground")
    cam = geometry.CameraModel(width, height, 35.0)
    e = math.radians(25)
    normal, offset = np.array([0.0, math.cos(e), math.sin(e)]), 1.5
    ray_y = (0.5 * height - (np.arange(height) + 0.5)) / cam.focal_px
    t = -offset / (ray_y * normal[1] - normal[2])
    z = np.repeat(np.minimum(np.where(t > 0, t, 50.0), 50.0)[:, None], width, axis=1).astype(np.float32)
    jj, ii = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    masks = [(jj - 1300) ** 2 + (ii - 2100) ** 2 < 500 ** 2, (jj - 2700) ** 2 + (ii - 1900) ** 2 < 400 ** 2]
    for m in masks:
        z[m] -= 0.3
    rgb = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    union = bd.union_of(masks, z.shape)
    settings = geometry.MeshSettings()
    steps = {
        "fill_depth": lambda: bd.fill_depth(z, union),
        "fill_colour": lambda: bd.fill_colour(rgb, union),
        "find_ground": lambda: gr.find_ground(masks, z, cam),
        "mesh_plane": lambda: bd.backdrop_mesh("plane", z, union, cam, settings, 10.0),
        "mesh_relief": lambda: bd.backdrop_mesh("relief", z, union, cam, settings, 10.0),
        "write_png": lambda: bd.write_rgb(tmp / "speed.png", rgb),
    }
    out: dict = {"size": [width, height]}
    for name, step in steps.items():
        best = math.inf
        for _ in range(2):
            t0 = time.perf_counter()
            value = step()
            best = min(best, time.perf_counter() - t0)
        out[name] = round(best, 3)
        if name == "find_ground":
            out["normal_error_deg"] = round(math.degrees(math.acos(min(1.0, float(value.normal @ normal)))), 4)
    log(f"speed: {out}")
    return out


# --------------------------------------------------------------------------- report


def markdown(rep: dict) -> str:
    lines = ["# Backdrop and ground", "", f"`{rep['command']}`", ""]
    if "renders" in rep:
        r = rep["renders"]
        lines += ["## Flat Cycles render vs photo, whole frame (PSNR dB, goal >= 30)", "",
                  "| engine | " + " | ".join(MODES) + " |", "|---|" + "---|" * len(MODES)]
        lines += [f"| {e} | " + " | ".join(str(means[m]) for m in MODES) + " |"
                  for e, means in r["mean_psnr_db"].items()]
        lines += ["", "| item | " + " | ".join(f"{e} {m}" for e in ("oracle", "classic") for m in MODES) + " |",
                  "|---|" + "---|" * 6]
        lines += [f"| {i['item']} | " + " | ".join(str(i.get(e, {}).get(m)) for e in ("oracle", "classic")
                                                     for m in MODES) + " |" for i in r["items"]]
        lines.append("")
    if "photo" in rep:
        p = rep["photo"]
        lines += ["## coffee (classic), Workbench flat texture vs photo (PSNR dB, goal >= 24 over the frame)", "",
                  "| backdrop | whole frame | inside the objects |", "|---|---|---|"]
        lines += [f"| {m} | {p[m]['frame_db']} | {p[m]['objects_db']} |" for m in MODES]
        lines.append("")
    if "ground" in rep:
        g = rep["ground"]
        lines += ["## Objects on a floor (normal goal <= 5 deg; placement = centre error / scene size)", "",
                  "| engine | mean IoU | planes found | normal error deg | placement | placement, scale fitted | "
                  "same, ground off |", "|---|---|---|---|---|---|---|"]
        for e, s in g["summary"].items():
            lines.append(f"| {e} | {s['mean_iou']} | {s['planes_found']}/{len(g['items'])} | {s['normal_error_deg']} | "
                         f"{s['placement_raw']} | {s['placement_scaled']} | {s['placement_scaled_no_ground']} |")
        lines.append("")
    if "speed" in rep:
        sp = rep["speed"]
        lines += [f"## Seconds per step on a {sp['size'][0]} x {sp['size'][1]} photo (best of two)", "",
                  "| " + " | ".join(k for k in sp if k != "size") + " |", "|---" * (len(sp) - 1) + "|",
                  "| " + " | ".join(str(v) for k, v in sp.items() if k != "size") + " |", ""]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="three render subjects, one floor scene")
    parser.add_argument("--only", choices=("renders", "photo", "ground", "speed"), action="append", default=None)
    parser.add_argument("--results", type=Path, default=None)
    args = parser.parse_args()
    parts = args.only or ["renders", "photo", "ground", "speed"]
    out_dir = args.results or (RESULTS / "quick" if args.quick or args.only else RESULTS)
    import blender_env

    profile = blender_env.use_profile()
    module = blender_env.install_extension()
    mod = {"module": module, "build": importlib.import_module(module.__name__ + ".scene.build"),
           "geometry": importlib.import_module(module.__name__ + ".geometry"),
           "ingest": importlib.import_module(module.__name__ + ".scene.ingest")}
    rep: dict = {"command": "bench/bench_backdrop.py " + " ".join(sys.argv[1:])}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="monocle-backdrop-") as tmp_name:
        tmp = Path(tmp_name)
        worker = bq.ServeWorker(tmp / "worker.log")
        try:
            if "renders" in parts:
                rep["renders"] = bench_renders(tmp, args.quick, worker, mod)
            if "photo" in parts:
                rep["photo"] = bench_photo(tmp, worker, mod)
            if "ground" in parts:
                rep["ground"] = bench_ground(tmp, args.quick, worker, mod)
            if "speed" in parts:
                rep["speed"] = bench_speed(tmp, mod)
        finally:
            worker.close()
            blender_env.remove_profile(profile)
    rep["seconds"] = round(time.perf_counter() - t0, 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "backdrop.json").write_text(json.dumps(rep, indent=1, default=float))
    (out_dir / "backdrop.md").write_text(markdown(rep))
    log(markdown(rep))
    return 0


if __name__ == "__main__":
    sys.exit(main())
