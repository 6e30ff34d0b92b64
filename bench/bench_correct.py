"""How long a segment correction takes to come back into the viewport, from Blender, worker warm.

Reconstructs a photo with the classic engine (largest object only, so one object is missed),
then presses Add Object with a click on the missed one, Paint Outline with a stroke, Split and
Remove, several times each (each press a new prompt, so none is a cache hit), through the
installed extension in the ``bpy`` module with Keep Worker Warm on. Reported per correction:
the operator's wall time (worker request + rebuild of the changed objects), the worker's own
time and the rebuild's. The photo is the two-object test scene drawn at the given size
(default 4000 x 3000, 12 MP).

    .venv/bin/python bench/bench_correct.py [--width 4000 --height 3000 --repeats 3]

Writes bench/results/correct.json and bench/results/correct.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "tools"))


def _points(*xy_sign: tuple[float, float, bool]) -> list[dict]:
    return [{"name": "", "x": x, "y": y, "positive": s} for x, y, s in xy_sign]


def press(bpy, op: str, **props) -> dict[str, float]:
    """One correction; returns its wall seconds and the worker's and the rebuild's parts."""
    coll = next(c for c in bpy.data.collections if "monocle_result" in c)
    t, c = time.perf_counter(), time.process_time()
    if getattr(bpy.ops.monocle, op)("EXEC_DEFAULT", True, **props) != {"FINISHED"}:
        raise RuntimeError(f"{op} failed")
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    result = json.loads((Path(coll["monocle_result"]) / "result.json").read_text())
    summary = bpy.context.window_manager.monocle_status.summary
    build = float(summary.split("build ")[1].split(" s")[0])
    worker = float(summary.split("worker ")[1].split(" s")[0]) if "worker " in summary else 0.0
    print(op, f"{wall:.2f} s wall, {cpu:.2f} s Blender CPU", summary, result["timings"], file=sys.stderr)
    return {"wall_s": round(wall, 3), "request_s": worker, "refine_s": result["timings"]["total"], "build_s": build,
            "cpu_s": round(cpu + result["timings"].get("cpu", 0.0), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=4000)
    ap.add_argument("--height", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import blender_env

    profile = blender_env.use_profile()
    import bpy
    from segment_scene import write_scene

    _, pool, prefs = blender_env.installed_with_pool()
    prefs.keep_worker_warm = True
    tmp = Path(tempfile.mkdtemp(prefix="monocle-bench-correct-"))
    w, h = args.width, args.height
    photo, disc, box = write_scene(tmp, w, h)
    load = {"before": os.getloadavg()[0]}
    bpy.ops.monocle.clear_cache()
    bpy.ops.wm.read_homefile(app_template="", use_empty=True)
    s = bpy.context.scene.monocle
    s.image_path, s.engine, s.objects = str(photo), "classic", "LARGEST"
    t = time.perf_counter()
    assert bpy.ops.monocle.reconstruct() == {"FINISHED"}
    first = time.perf_counter() - t
    bpy.ops.ed.undo_push(message="reconstructed")
    dx, dy = 0.28 * w, 0.5 * h  # the disc's centre
    rows = [int(r) for r in (0.31 * h, 0.73 * h)]
    cols = [int(c) for c in (0.62 * w, 0.87 * w)]
    runs: dict[str, list[dict]] = {"add (click)": [], "paint (stroke)": [], "split (box)": [], "remove (click)": []}
    for k in range(args.repeats):
        j = 0.01 * k * w  # a new prompt each time: never a cache hit
        runs["add (click)"].append(press(bpy, "segment_add", points=_points((dx + j, dy, True))))
        y = rows[0] + 0.02 * h + j
        runs["paint (stroke)"].append(press(bpy, "segment_paint", brush=0.01 * w, erase=True, stroke=_points(
            (cols[0] - 0.02 * w, y, True), (cols[1] + 0.02 * w, y, True))))
        runs["split (box)"].append(press(bpy, "segment_split", use_box=True, box=(
            cols[0] - 0.02 * w, rows[0] + 0.1 * h + j, cols[1] + 0.02 * w, rows[1] + 0.02 * h)))
        runs["remove (click)"].append(press(bpy, "segment_remove", points=_points(
            (cols[0] + 0.05 * w, rows[1] - 0.02 * h, True))))
        bpy.ops.ed.undo()  # back to the first reconstruction: undo is part of the loop an artist runs
        bpy.ops.ed.undo()
        bpy.ops.ed.undo()
        bpy.ops.ed.undo()
    pool.shutdown_all()
    load["after"] = os.getloadavg()[0]
    report = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_1min": load},
              "photo": {"width": w, "height": h}, "reconstruct_s": round(first, 3), "runs": runs}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "correct.json").write_text(json.dumps(report, indent=1))
    (RESULTS / "correct.md").write_text(markdown(report))
    print(markdown(report))
    shutil.rmtree(tmp, ignore_errors=True)
    blender_env.remove_profile(profile)
    sys.stdout.flush()
    os._exit(0)


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [
        "# Segment corrections (`bench/bench_correct.py`)",
        "",
        f"A {r['photo']['width']}x{r['photo']['height']} photo reconstructed with the classic engine "
        f"({r['reconstruct_s']:.1f} s, worker started cold), then each correction pressed from Blender with the "
        f"worker warm, a new prompt each time. {m['cpus']} CPUs; 1-minute load {m['load_1min']['before']:.2f} "
        f"before, {m['load_1min']['after']:.2f} after.",
        "",
        "CPU is the processor time Blender and the worker spent on the correction: what it takes on a machine "
        "with nothing else running (the wall times include waiting for a busy machine's processors).",
        "",
        "| correction | presses | wall, median s | worst s | CPU (Blender + worker), median s | worker request, "
        "median s | refine in worker, median s | rebuild, median s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, presses in r["runs"].items():
        def med(key: str, p: list[dict] = presses) -> float:
            return statistics.median(x[key] for x in p)

        lines.append(f"| {name} | {len(presses)} | {med('wall_s'):.2f} | {max(x['wall_s'] for x in presses):.2f} | "
                     f"{med('cpu_s'):.2f} | {med('request_s'):.2f} | {med('refine_s'):.2f} | {med('build_s'):.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
