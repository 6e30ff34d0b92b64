"""The drawing engine on industrial-design drawings: masks, annotations, template retrieval and speed.

1. Freestyle drawings (``tools/drawing_render.py``, real ``bpy`` renders) of the shared meshes
   (``../shared/bench-data/meshes``: every ``category`` mesh and a few ``common3d`` ones, three
   views, the middle one X-ray) and of the bundled templates (``assets/templates.blend``, one view
   each, views taking turns, every other one X-ray). Each goes through the worker's ``run`` with
   ``--engine auto``; the largest instance is scored against the render's own silhouette (IoU),
   and the drawings of templates are matched the way the template blend does it
   (``templates.retrieve`` on the result's mask and depth): is the top-1 template of the drawn
   template's category? The object the build makes (closed back, camera space) is measured against
   the mesh seen from the render's camera: depth over width and over height, built over true, and
   the same with the relief spread over the Depth Range as a relative map (how drawings were built
   before their reliefs had proportions of their own).
2. The synthetic sheets of ``tests/drawing_sheets.py`` (two objects with text, arrows, hatching
   and a frame, at 72, 150 and 300 dpi; a phone photo of paper; an A4 sheet of 18 objects and its
   photo): each drawn object's best instance IoU, and instances that match no drawn object
   (drawn from text, arrows, hatching or frames).
3. Speed: the engine on the A4 sheet (1754x1240, its full resolution), best of three in process,
   and one whole worker run in a subprocess.

    .venv/bin/python bench/bench_drawing.py [--quick] [--only REGEX] [--keep DIR]

Writes bench/results/drawing.json and drawing.md (``--quick``: a few subjects, into bench/results/quick/).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tools"), str(ROOT / "tests")]
MESHES = ROOT.parent / "shared" / "bench-data" / "meshes"
COMMON = ("teapot", "cow", "stanford-bunny", "spot", "fandisk", "suzanne")
VIEWS = ((-35.0, 15.0), (40.0, 25.0), (160.0, 10.0))  # as bench_retrieval.py and bench_quality.py
SIZE = (800, 600)
WORST = 8  # the lowest-IoU drawings listed by name
GOALS = {"freestyle_iou": 0.95, "sheet_iou": 0.90, "spurious": 0, "template_top1": 0.80, "a4_seconds": 1.0}

import drawing_render as dr  # noqa: E402
from bench_retrieval import candidate_terms, subject  # noqa: E402
from drawing_sheets import a4_sheet, draw_sheet, phone_photo  # noqa: E402

from geometry import MeshSettings  # noqa: E402
from geometry.camera import camera_from_result_json  # noqa: E402
from geometry.depth import scene_depth  # noqa: E402
from geometry.plane import build_object_mesh  # noqa: E402
from inference.depthfile import load_depth_file  # noqa: E402
from inference.protocol import Emitter, WorkerError  # noqa: E402
from inference.run import RunOptions, run  # noqa: E402
from templates import descriptors as desc  # noqa: E402
from templates import match as tmatch  # noqa: E402
from templates.fit import depth_trust  # noqa: E402
from templates.library import bundled_library  # noqa: E402
from templates.retrieve import retrieve  # noqa: E402


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = int((a | b).sum())
    return float((a & b).sum()) / union if union else 0.0


def run_engine(rgb: np.ndarray, folder: Path, name: str, max_size: int = 1024) -> tuple[dict, list[np.ndarray]]:
    """The worker's run on ``rgb`` (written as ``name``) with ``--engine auto``: result.json and the masks."""
    folder.mkdir(parents=True, exist_ok=True)
    image = folder / name
    cv2.imwrite(str(image), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
    out = folder / (Path(name).stem + "_result")
    try:
        run(RunOptions(image=str(image), out=str(out), engine="auto", max_size=max_size), Emitter(io.StringIO()))
    except WorkerError as exc:  # no object found: scored as an empty result
        return {"engine": {"name": "drawing"}, "error": exc.code}, []
    result = json.loads((out / "result.json").read_text())
    masks = [cv2.imread(str(out / r["mask"]), cv2.IMREAD_GRAYSCALE) > 0 for r in result["instances"]]
    result["folder"] = str(out)
    return result, masks


def camera_extent(ob, cam) -> np.ndarray:
    """(width, height, depth) of ``ob``'s vertices in the camera's axes (the ground truth's proportions)."""
    m = np.array(cam.matrix_world.inverted() @ ob.matrix_world, np.float64)
    co = np.empty(len(ob.data.vertices) * 3, np.float32)
    ob.data.vertices.foreach_get("co", co)
    p = co.reshape(-1, 3).astype(np.float64) @ m[:3, :3].T + m[:3, 3]
    return p.max(axis=0) - p.min(axis=0)


def built_extent(result: dict, masks: list[np.ndarray], mask: np.ndarray, kind: str | None = None) -> np.ndarray:
    """(width, height, depth) in camera space of the object the build makes from ``mask`` (default
    settings: closed back, Relief at 1), the depth read as the build reads it (``kind`` overrides the
    result's depth kind: ``relative_inverse`` spreads the relief over the Depth Range)."""
    camera = camera_from_result_json(result, fallback_focal_mm=dr.FOCAL_MM)
    depth = load_depth_file(Path(result["folder"]) / result["depth"]["file"])
    if kind == "relative_inverse" and result["depth"]["kind"] != kind:
        depth = depth + np.float32(0.5)
    settings = MeshSettings()
    zdepth = scene_depth(depth, kind or result["depth"]["kind"], masks, settings, camera)
    data = build_object_mesh(mask, zdepth, camera, settings)
    p = np.asarray(data.vertices, np.float64).reshape(-1, 3) + np.asarray(data.relief, np.float64).reshape(-1, 3)
    return p.max(axis=0) - p.min(axis=0)


def proportions(truth: np.ndarray, built: np.ndarray) -> dict[str, float]:
    """Depth over width and over height, built against true (1 = the drawing's true proportions)."""
    return {"depth_width": round(float((built[2] / built[0]) / (truth[2] / truth[0])), 3),
            "depth_height": round(float((built[2] / built[1]) / (truth[2] / truth[1])), 3)}


def template_top1(result: dict, mask: np.ndarray, library) -> tuple[str, str, bool, list]:
    """(category of the top-1 template, its name, whether retrieval accepts it, the candidates' score
    terms for calibrate_retrieval.py) for the drawing's object, with the mask and relief depth the
    build reads and the template blend's retrieve."""
    camera = camera_from_result_json(result, fallback_focal_mm=dr.FOCAL_MM)
    depth = load_depth_file(Path(result["folder"]) / result["depth"]["file"])
    zdepth = scene_depth(depth, result["depth"]["kind"], [mask], MeshSettings(), camera)
    # as scene.result reads it: the user's own file, else the engine that estimated the depth
    source = "file" if result["depth"].get("extra", {}).get("source") == "file" else result["engine"]["name"]
    try:
        found, fits = retrieve(mask, zdepth, camera, library, "drawing", depth_scale=True,
                            trust=depth_trust(result["depth"]["kind"], source))
    except ValueError as exc:  # a failure inside retrieval counts as a miss, and is reported
        return "", f"error: {exc}", False, []
    if not found.matches:
        return "", "", False, []
    best = found.matches[0]
    inst = desc.instance_descriptor(mask, zdepth, float(camera.focal_px))
    size = tmatch.score_window(inst, mask, zdepth, camera)[1]  # the object's size, as retrieval's
    return best.category, best.template, bool(found.accepted), candidate_terms(found, fits, library, size)


def freestyle_rows(work: Path, quick: bool, keep: Path | None = None, only: str = "") -> list[dict]:
    """Render, run and score every Freestyle drawing (those whose subject matches the regular
    expression ``only``, when given)."""
    library = bundled_library()
    rows = []
    scene = dr.setup_scene(*SIZE, xray=True)
    hidden = scene.view_layers[0].freestyle_settings.linesets["hidden"]

    def score(ob, kind: str, category: str, view: tuple[float, float], xray: bool) -> None:
        if only and not re.search(only, ob.name, re.IGNORECASE):
            return
        scene.collection.objects.link(ob)
        hidden.show_render = xray
        dr.aim(scene, ob, *view)
        rgb, truth = dr.render_drawing(scene)
        true_extent = camera_extent(ob, scene.camera)
        scene.collection.objects.unlink(ob)
        tag = f"{ob.name}_{view[0]:.0f}{'_xray' if xray else ''}".replace(" ", "_")
        t = time.perf_counter()
        result, masks = run_engine(rgb, work / kind, tag + ".png")
        seconds = time.perf_counter() - t
        best = max(masks, key=lambda m: int(m.sum())) if masks else np.zeros_like(truth)
        row = {"kind": kind, "subject": ob.name, "category": category, "view": list(view), "xray": xray,
               "engine": result["engine"]["name"], "instances": len(masks), "iou": round(iou(best, truth), 4),
               "seconds": round(seconds, 3)}
        if masks:
            built = built_extent(result, masks, best)
            row["extent_true"], row["extent_built"] = np.round(true_extent, 4).tolist(), np.round(built, 4).tolist()
            row["proportions"] = proportions(true_extent, built)
            row["proportions_depth_range"] = proportions(true_extent,
                                                         built_extent(result, masks, best, "relative_inverse"))
        if masks and kind == "template":
            got, name, accepted, top = template_top1(result, best, library)
            row.update(top1=name, top1_category=got, right=got == category, accepted=accepted, top=top)
        elif kind == "template":
            row.update(top1="", top1_category="", right=False, accepted=False)
        rows.append(row)
        print(json.dumps(row), flush=True)
        if keep is not None:
            cv2.imwrite(str(keep / (tag + ".png")), rgb[..., ::-1])
            cv2.imwrite(str(keep / (tag + "_truth.png")), truth.astype(np.uint8) * 255)
            cv2.imwrite(str(keep / (tag + "_mask.png")), best.astype(np.uint8) * 255)

    meshes = sorted((MESHES / "category").rglob("*.ply")) + sorted(
        p for p in (MESHES / "common3d").glob("*") if p.stem in COMMON)
    if quick:
        meshes = meshes[::4]
    for path in meshes:
        category = path.parent.name if path.parent.parent.name == "category" else ""
        tpl = subject(path, category or None)
        ob = dr.mesh_object(path.stem, tpl.vertices, tpl.triangles)
        scene.collection.objects.unlink(ob)
        for i, view in enumerate(VIEWS[:1] if quick else VIEWS):
            score(ob, "mesh", category, view, xray=i == 1)
    templates = dr.template_objects(ROOT / "assets" / "templates.blend")
    templates.sort(key=lambda o: o.name)
    if quick:
        templates = templates[::12]
    for i, ob in enumerate(templates):
        ob.location = (0.0, 0.0, 0.0)
        score(ob, "template", str(ob.get("monocle_category", "")), VIEWS[i % len(VIEWS)], xray=i % 2 == 1)
    return rows


def sheet_rows(work: Path, quick: bool) -> list[dict]:
    """Every synthetic sheet: best IoU per drawn object, instances matching none."""
    sheets = [("sheet 72 dpi", draw_sheet(72)), ("sheet 150 dpi", draw_sheet(150)), ("sheet 300 dpi", draw_sheet(300))]
    photo, truth = phone_photo(draw_sheet(200))
    variants = [(name, s.rgb, s.silhouettes) for name, s in sheets] + [("phone photo 200 dpi", photo, truth)]
    a4 = a4_sheet()
    variants.append(("A4 150 dpi, 18 objects", a4.rgb, a4.silhouettes))
    if not quick:
        variants.append(("A4 phone photo, 18 objects", *phone_photo(a4)))
    rows = []
    for name, rgb, truth in variants:
        h, w = rgb.shape[:2]
        suffix = ".jpg" if "photo" in name else ".png"  # a scan kept lossless, a phone photo as it comes
        result, masks = run_engine(rgb, work / "sheets", name.replace(" ", "_").replace(",", "") + suffix,
                                   max_size=max(h, w))
        ious = [max((iou(m, g) for m in masks), default=0.0) for g in truth]
        spurious = sum(max((iou(m, g) for g in truth), default=0.0) < 0.5 for m in masks)
        row = {"sheet": name, "size": [w, h], "engine": result["engine"]["name"], "objects": len(truth),
               "instances": len(masks), "iou_mean": round(float(np.mean(ious)), 4),
               "iou_min": round(float(np.min(ious)), 4), "spurious": int(spurious)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def a4_speed(work: Path) -> dict:
    """The engine on the A4 sheet at full resolution: in process (best of three) and one worker subprocess."""
    from inference.engines.drawing import DrawingEngine

    sheet = a4_sheet()
    times, cpu = [], []
    load = os.getloadavg()[0]
    for _ in range(3):
        engine = DrawingEngine()
        t, c = time.perf_counter(), time.process_time()
        instances = engine.segment(sheet.rgb, None, None, "all", lambda *a: None)
        engine.depth(sheet.rgb, instances, lambda *a: None)
        engine.maps(1.0)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    image = work / "a4.png"
    cv2.imwrite(str(image), sheet.rgb[..., ::-1])
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "inference", "run", "--image", str(image), "--out",
                           str(work / "a4_result"), "--engine", "drawing", "--max-size", "1754"],
                          cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    timings = json.loads((work / "a4_result" / "result.json").read_text())["timings"]
    return {"size": [sheet.rgb.shape[1], sheet.rgb.shape[0]], "objects": len(instances),
            "engine_best_s": round(min(times), 3), "engine_median_s": round(statistics.median(times), 3),
            "engine_cpu_best_s": round(min(cpu), 3), "load_average": round(load, 2), "cpus": os.cpu_count(),
            "worker_wall_s": round(wall, 3), "worker_timings": timings}


def proportion_stats(rows: list[dict], key: str) -> dict[str, float | None]:
    """Median built-over-true depth/width and depth/height ratios of ``rows[key]``, and their mean
    |log2| (1: a factor of two off)."""
    got = [r[key] for r in rows if key in r]
    if not got:
        return {"depth_width": None, "depth_height": None, "log2_error": None}
    dw = np.array([g["depth_width"] for g in got])
    dh = np.array([g["depth_height"] for g in got])
    return {"depth_width": round(float(np.median(dw)), 3), "depth_height": round(float(np.median(dh)), 3),
            "log2_error": round(float(np.mean(np.abs(np.log2(np.concatenate([dw, dh]))))), 3)}


def summary(free: list[dict], sheets: list[dict], speed: dict) -> dict:
    mesh = [r for r in free if r["kind"] == "mesh"]
    tpl = [r for r in free if r["kind"] == "template"]
    s = {
        "freestyle_iou": round(float(np.mean([r["iou"] for r in free])), 4) if free else None,
        "freestyle_iou_min": round(float(np.min([r["iou"] for r in free])), 4) if free else None,
        "freestyle_iou_meshes": round(float(np.mean([r["iou"] for r in mesh])), 4) if mesh else None,
        "freestyle_iou_templates": round(float(np.mean([r["iou"] for r in tpl])), 4) if tpl else None,
        "freestyle_iou_xray": round(float(np.mean([r["iou"] for r in free if r["xray"]])), 4) if free else None,
        "freestyle_one_instance": round(float(np.mean([r["instances"] == 1 for r in free])), 4) if free else None,
        "auto_chose_drawing": round(float(np.mean([r["engine"] == "drawing" for r in free + sheets])), 4),
        "sheet_iou": round(float(np.mean([r["iou_mean"] for r in sheets])), 4),
        "spurious": int(sum(r["spurious"] for r in sheets)),
        "template_top1": round(float(np.mean([r["right"] for r in tpl])), 4) if tpl else None,
        "template_errors": sum(r.get("top1", "").startswith("error") for r in tpl),
        "template_accepted_right": (round(float(np.mean([r["right"] and r["accepted"] for r in tpl])), 4)
                                    if tpl else None),
        "a4_seconds": speed["engine_best_s"],
        **{f"{key}_{stat}": value for key in ("proportions", "proportions_depth_range")
           for stat, value in proportion_stats(free, key).items()},
    }
    s["meets"] = {
        "freestyle_iou": s["freestyle_iou"] is not None and s["freestyle_iou"] >= GOALS["freestyle_iou"],
        "sheet_iou": s["sheet_iou"] >= GOALS["sheet_iou"],
        "spurious": s["spurious"] <= GOALS["spurious"],
        "template_top1": s["template_top1"] is not None and s["template_top1"] >= GOALS["template_top1"],
        "a4_seconds": s["a4_seconds"] <= GOALS["a4_seconds"],
    }
    return s


def markdown(report: dict) -> str:
    s, sp = report["summary"], report["speed"]
    ok = {k: "yes" if v else "**no**" for k, v in s["meets"].items()}
    lines = [
        "## Drawings (the drawing engine)",
        "",
        f"Freestyle drawings rendered with `bpy` {report['bpy']} (Cycles, white paper; silhouette/border thick, "
        "crease/material boundary medium, contour/suggestive thin, hidden lines dashed on the X-ray ones) of "
        f"the shared meshes ({s.get('n_mesh', 0)} drawings) and the bundled templates ({s.get('n_template', 0)}); "
        "synthetic sheets from `tests/drawing_sheets.py`; every drawing through the worker with `--engine auto`.",
        "",
        "| measure | result | goal | met |",
        "|---|---|---|---|",
        f"| instance mask IoU, Freestyle drawings (mean) | {s['freestyle_iou']} | >= {GOALS['freestyle_iou']} | "
        f"{ok['freestyle_iou']} |",
        f"| ... lowest | {s['freestyle_iou_min']} | | |",
        f"| ... meshes / templates / X-ray ones | {s['freestyle_iou_meshes']} / {s['freestyle_iou_templates']} / "
        f"{s['freestyle_iou_xray']} | | |",
        f"| drawings giving exactly one instance | {s['freestyle_one_instance']} | | |",
        f"| instance mask IoU, synthetic sheets (mean) | {s['sheet_iou']} | >= {GOALS['sheet_iou']} | "
        f"{ok['sheet_iou']} |",
        f"| instances from text, arrows, hatching, frames | {s['spurious']} | {GOALS['spurious']} | {ok['spurious']} |",
        f"| right-category template top-1, drawings of the templates | {s['template_top1']} | "
        f">= {GOALS['template_top1']} | {ok['template_top1']} |",
        f"| ... and accepted by retrieval | {s['template_accepted_right']} | | |",
        f"| ... retrieval failures (counted as misses) | {s['template_errors']} | 0 | |",
        f"| `--engine auto` chose drawing | {s['auto_chose_drawing']} | 1.0 | |",
        "| depth over width / over height of the built objects (closed back), over the true ones' (median; "
        f"1 = the drawn object's true proportions) | {s.get('proportions_depth_width')} / "
        f"{s.get('proportions_depth_height')} | about 1 | |",
        f"| ... mean abs log2 of those ratios (1 = a factor of two off) | {s.get('proportions_log2_error')} | | |",
        "| ... the same relief spread over the Depth Range (1.0) as a relative map instead (before) | "
        f"{s.get('proportions_depth_range_depth_width')} / {s.get('proportions_depth_range_depth_height')}, "
        f"error {s.get('proportions_depth_range_log2_error')} | | |",
        f"| A4 150 dpi ({sp['size'][0]}x{sp['size'][1]}, {sp['objects']} objects), engine, best of 3 | "
        f"{sp['engine_best_s']} s | <= {GOALS['a4_seconds']} s | {ok['a4_seconds']} |",
        f"| ... its CPU time (the machine's load average was {sp['load_average']} on {sp['cpus']} CPUs) | "
        f"{sp['engine_cpu_best_s']} s | | |",
        f"| ... whole worker run (subprocess: start-up, reading, writing) | {sp['worker_wall_s']} s | | |",
        "",
        "| sheet | size | objects | instances | IoU mean | IoU min | spurious |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {r['sheet']} | {r['size'][0]}x{r['size'][1]} | {r['objects']} | {r['instances']} | "
              f"{r['iou_mean']} | {r['iou_min']} | {r['spurious']} |" for r in report["sheets"]]
    worst = sorted(report["freestyle"], key=lambda r: r["iou"])[:WORST]
    lines += ["", f"The {len(worst)} Freestyle drawings with the lowest IoU (min {worst[0]['iou'] if worst else '-'}; "
              "look at them with `--only NAME --keep DIR`):", "",
              "| drawing | view | X-ray | instances | IoU |", "|---|---|---|---|---|"]
    lines += [f"| {r['subject']} | {r['view'][0]:g} | {'yes' if r['xray'] else ''} | {r['instances']} | {r['iou']} |"
              for r in worst]
    lines += ["", f"Machine: {report['machine']}. `.venv/bin/python bench/bench_drawing.py`.", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few subjects, into bench/results/quick/")
    parser.add_argument("--keep", type=Path, default=None,
                        help="save the Freestyle drawings (with their true and found masks) into this folder")
    parser.add_argument("--only", default="", help="only the Freestyle drawings of subjects whose name matches "
                        "this regular expression ('.': all; no sheets, no speed, no result files: "
                        "a loop for looking at failures)")
    args = parser.parse_args()
    import bpy

    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)

    if args.only:
        with tempfile.TemporaryDirectory() as tmp:
            rows = freestyle_rows(Path(tmp), False, args.keep, args.only)
        print(f"mean IoU {np.mean([r['iou'] for r in rows]):.4f} over {len(rows)} drawings")
        for key in ("proportions", "proportions_depth_range"):
            got = [r[key] for r in rows if key in r]
            print(key, {k: round(float(np.median([g[k] for g in got])), 3) for k in got[0]} if got else "-")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        speed = a4_speed(work)
        sheets = sheet_rows(work, args.quick)
        free = freestyle_rows(work, args.quick, args.keep)
    s = summary(free, sheets, speed)
    s["n_mesh"] = sum(r["kind"] == "mesh" for r in free)
    s["n_template"] = sum(r["kind"] == "template" for r in free)
    report = {"bpy": bpy.app.version_string, "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
              "quick": args.quick, "summary": s, "speed": speed, "sheets": sheets, "freestyle": free}
    results = ROOT / "bench" / "results" / ("quick" if args.quick else "")
    results.mkdir(parents=True, exist_ok=True)
    (results / "drawing.json").write_text(json.dumps(report, indent=1))
    md = markdown(report)
    (results / "drawing.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
