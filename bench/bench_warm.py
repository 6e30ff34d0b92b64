"""What the warm worker saves an artist: the Reconstruct operator, run after run, from Blender.

Runs the installed extension through the ``bpy`` module (a private profile) and presses
Reconstruct from Image on several GrabCut photos in a row (cache cleared first, so every
press reaches a worker), once with Keep Worker Warm on and once with it off, for the
offline engine and for the transformers engine (random-weight Depth Anything V2 Small +
Mask2Former Swin-T built from their configs: the released models' compute, see
bench_learned.py). Reported per press: the operator's wall time and its inference part.

    .venv/bin/python bench/bench_warm.py [--images 5] [--engines classic,transformers] [--modes warm,cold]
                                         [--results DIR]

Writes warm.json and warm.md to bench/results (a full run) or ``--results``. Quick runs (fewer
engines or modes) go to /tmp. The 1-minute load average is recorded before and after: on a
shared machine compare runs only side by side.
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
IMAGES = ROOT.parent / "shared" / "bench-data" / "masks" / "grabcut" / "imgs"
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "tools"))


def press(bpy, photo: Path, engine: str, models: dict[str, Path]) -> dict[str, float]:
    """One click of Reconstruct from Image on ``photo`` (blocking path); returns its seconds."""
    bpy.ops.wm.read_homefile(app_template="", use_empty=True)
    s = bpy.context.scene.monocle
    s.image_path, s.engine, s.detail = str(photo), engine, 20_000
    if engine == "transformers":
        s.depth_model, s.seg_model = str(models["depth"]), str(models["seg"])
    t = time.perf_counter()
    if bpy.ops.monocle.reconstruct() != {"FINISHED"}:
        raise RuntimeError(f"reconstruct failed on {photo.name}")
    wall = time.perf_counter() - t
    summary = bpy.context.window_manager.monocle_status.summary
    inference = float(summary.split("inference ")[1].split(" s")[0])
    return {"wall_s": round(wall, 3), "inference_s": inference}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=5)
    ap.add_argument("--engines", default="classic,transformers")
    ap.add_argument("--modes", default="warm,cold")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args()
    import blender_env

    profile = blender_env.use_profile()
    import bpy

    _, pool, prefs = blender_env.installed_with_pool()
    from bench_learned import build_models

    tmp = Path(tempfile.mkdtemp(prefix="monocle-bench-warm-"))
    photos = []
    for src in sorted(IMAGES.glob("*.jpg"))[: args.images]:
        shutil.copy(src, tmp / src.name)
        photos.append(tmp / src.name)
    models = build_models(tmp / "models")
    load = {"before": os.getloadavg()[0]}
    runs: dict[str, dict] = {}
    for engine in args.engines.split(","):
        for warm in (mode == "warm" for mode in args.modes.split(",")):
            prefs.keep_worker_warm = warm
            pool.shutdown_all()
            bpy.ops.monocle.clear_cache()
            presses = [press(bpy, p, engine, models) for p in photos]
            workers = [w.describe() for w in pool.workers()]
            runs[f"{engine}.{'warm' if warm else 'cold'}"] = {"presses": presses, "workers": workers}
            print(engine, "warm" if warm else "cold", [p["wall_s"] for p in presses], file=sys.stderr)
    pool.shutdown_all()
    load["after"] = os.getloadavg()[0]
    report = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_1min": load},
              "photos": [p.name for p in photos], "runs": runs}
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "warm.json").write_text(json.dumps(report, indent=1))
    (args.results / "warm.md").write_text(markdown(report))
    print(markdown(report))
    shutil.rmtree(tmp, ignore_errors=True)
    blender_env.remove_profile(profile)
    sys.stdout.flush()
    os._exit(0)  # bpy + torch in one process can hang at interpreter exit


def markdown(r: dict) -> str:
    lines = [
        "# Warm worker (`bench/bench_warm.py`)",
        "",
        f"Reconstruct from Image pressed on {len(r['photos'])} photos in a row from Blender (bpy module, cache "
        "cleared, 20k detail), with Keep Worker Warm on and off. Transformers engine: random-weight Depth Anything "
        f"V2 Small + Mask2Former Swin-T (the released models' compute). {r['machine']['cpus']} CPUs; 1-minute load "
        f"{r['machine']['load_1min']['before']:.2f} before, {r['machine']['load_1min']['after']:.2f} after.",
        "",
        "| engine | worker | first press s | later presses, median s | later inference, median s | worker processes |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for key, run in r["runs"].items():
        engine, mode = key.split(".")
        p = run["presses"]
        later = p[1:] or p
        procs = len(run["workers"]) if mode == "warm" else len(p)
        wall = statistics.median(x["wall_s"] for x in later)
        inference = statistics.median(x["inference_s"] for x in later)
        lines.append(f"| {engine} | {mode} | {p[0]['wall_s']:.2f} | {wall:.2f} | {inference:.2f} | {procs} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
