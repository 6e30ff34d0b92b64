"""Throughput of the headless command: images per minute at --jobs 1 and --jobs 2.

Runs the real command line (``scripts/monocle.py``, i.e. the same handler as
``blender -b -c monocle``) over the 13 GrabCut photos in ../shared/bench-data, with
a cold inference cache each time, and writes bench/results/batch.json and batch.md.

    .venv/bin/python bench/bench_batch.py [--jobs 1 2] [--format glb]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT.parent / "shared" / "bench-data" / "masks" / "grabcut" / "imgs"
RESULTS = ROOT / "bench" / "results"


def run(jobs: int, fmt: str, detail: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="monocle-bench-") as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, MONOCLE_PROFILE=str(tmp / "profile"))
        # install once (not timed), so the timed run measures reconstruction, not packaging
        subprocess.run([sys.executable, str(ROOT / "scripts" / "monocle.py"), "reconstruct", "--help"],
                       env=env, check=True, capture_output=True)
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "monocle.py"), "reconstruct", str(PHOTOS), "-o", str(tmp / "out"),
             "--format", fmt, "--jobs", str(jobs), "--detail", str(detail), "--report", str(tmp / "report.json")],
            env=env, capture_output=True, text=True,
        )
        seconds = time.perf_counter() - t
        report = json.loads((tmp / "report.json").read_text())
        shutil.rmtree(tmp / "out", ignore_errors=True)
    ok = report["totals"]["ok"]
    stages: dict[str, float] = {}
    for item in report["items"]:
        for k, v in item["timings"].items():
            stages[k] = stages.get(k, 0.0) + v
    return {
        "jobs": jobs, "format": fmt, "detail": detail, "images": len(report["items"]), "ok": ok,
        "exit_code": proc.returncode, "seconds": round(seconds, 2),
        "images_per_minute": round(60.0 * ok / seconds, 1),
        "mean_stage_seconds": {k: round(v / max(1, len(report["items"])), 3) for k, v in stages.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--format", default="glb")
    parser.add_argument("--detail", type=int, default=20_000)
    args = parser.parse_args()
    rows = [run(j, args.format, args.detail) for j in args.jobs]
    load = os.getloadavg()[0]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "batch.json").write_text(json.dumps({"rows": rows, "cpus": os.cpu_count(), "load1": load}, indent=1))
    lines = [
        f"Headless batch over {rows[0]['images']} GrabCut photos, `--format {args.format} --detail {args.detail}`, "
        f"{os.cpu_count()} CPUs (load {load:.1f} at the end):",
        "",
        "| --jobs | images ok | wall s | images / min | mean inference s | mean build s | mean export s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        m = r["mean_stage_seconds"]
        lines.append(f"| {r['jobs']} | {r['ok']}/{r['images']} | {r['seconds']:.1f} | {r['images_per_minute']:.1f} | "
                     f"{m.get('inference', 0):.2f} | {m.get('build', 0):.2f} | {m.get('export', 0):.2f} |")
    (RESULTS / "batch.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
