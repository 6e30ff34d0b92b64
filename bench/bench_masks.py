"""Quality and speed of the classic engine's foreground extraction on the GrabCut photos.

Runs the real worker (``python -m inference run``, PYTHONPATH = this checkout) as a
subprocess on the 13 photos of ../shared/bench-data/masks/grabcut, once without a
hint and once with the dataset's box as ``--box``. Scores the union of the returned
masks against the ground truth (IoU), and reports the worker's own segmentation
time (``timings.segment`` in result.json) next to the wall time of the whole
subprocess (start-up, imports, depth and writing included). Writes
bench/results/masks.json and masks.md.

    .venv/bin/python bench/bench_masks.py [--data DIR] [--max-size 1024]
"""

from __future__ import annotations

import argparse
import json
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
DATA = ROOT.parent / "shared" / "bench-data" / "masks" / "grabcut"
RESULTS = ROOT / "bench" / "results"
TARGET_IOU = {"none": 0.80, "box": 0.88}
TARGET_SECONDS = 1.0


def read_box(path: Path) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (int(round(float(v))) for v in path.read_text().split())
    return x0, y0, x1, y1


def run_worker(image: Path, out: Path, box: tuple[int, int, int, int] | None, max_size: int) -> tuple[dict, float]:
    """One worker run; returns (result.json, wall seconds of the subprocess)."""
    cmd = [sys.executable, "-m", "inference", "run", "--image", str(image), "--out", str(out),
           "--max-size", str(max_size)]
    if box is not None:
        cmd += ["--box", ",".join(str(v) for v in box)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed on {image.name} (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return json.loads((out / "result.json").read_text()), wall


def union_mask(result: dict, out: Path) -> np.ndarray:
    masks = [np.asarray(Image.open(out / inst["mask"])) > 0 for inst in result["instances"]]
    return np.logical_or.reduce(masks)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.logical_and(a, b).sum() / max(1, np.logical_or(a, b).sum()))


def bench(data: Path, max_size: int) -> dict:
    names = sorted(p.stem for p in (data / "imgs").glob("*.jpg"))
    if not names:
        raise SystemExit(f"no photos in {data / 'imgs'}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="monocle-bench-masks-") as tmp:
        for name in names:
            image = data / "imgs" / f"{name}.jpg"
            gt = np.asarray(Image.open(data / "seg_GT" / f"{name}.bmp").convert("L")) > 127
            row: dict = {"image": name}
            for hint, box in (("none", None), ("box", read_box(data / "bboxes" / f"{name}.txt"))):
                out = Path(tmp) / f"{name}-{hint}"
                result, wall = run_worker(image, out, box, max_size)
                row[hint] = {
                    "iou": round(iou(union_mask(result, out), gt), 4),
                    "instances": len(result["instances"]),
                    "scores": [inst["score"] for inst in result["instances"]],
                    "segment_s": result["timings"]["segment"],
                    "wall_s": round(wall, 3),
                }
            rows.append(row)
            print(f"{name:10s} IoU {row['none']['iou']:.3f} / box {row['box']['iou']:.3f}   "
                  f"segment {row['none']['segment_s']:.2f} / {row['box']['segment_s']:.2f} s", file=sys.stderr)
    summary = {}
    for hint in ("none", "box"):
        summary[hint] = {
            "mean_iou": round(statistics.mean(r[hint]["iou"] for r in rows), 4),
            "median_segment_s": round(statistics.median(r[hint]["segment_s"] for r in rows), 3),
            "max_segment_s": round(max(r[hint]["segment_s"] for r in rows), 3),
            "median_wall_s": round(statistics.median(r[hint]["wall_s"] for r in rows), 3),
        }
        summary[hint]["meets_target"] = (summary[hint]["mean_iou"] >= TARGET_IOU[hint]
                                         and summary[hint]["median_segment_s"] <= TARGET_SECONDS)
    return {
        "dataset": str(data),
        "engine": "classic",
        "max_size": max_size,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average_after": [round(v, 2) for v in os.getloadavg()]},
        "targets": {"mean_iou": TARGET_IOU, "median_segment_s": TARGET_SECONDS},
        "summary": summary,
        "images": rows,
    }


def markdown(report: dict) -> str:
    s = report["summary"]
    lines = [
        "# Foreground extraction (classic engine) on the GrabCut photos",
        "",
        f"Worker subprocess, `--max-size {report['max_size']}`, {report['machine']['cpus']} CPUs; "
        f"load average after the run {report['machine']['load_average_after']} "
        "(other jobs on the machine slow the timings). IoU = union of the returned masks vs ground truth; "
        "segment = the worker's `timings.segment`; wall = the whole subprocess (start-up, imports, depth, writing).",
        "",
        "| image | IoU no hint | IoU box | segment s (no hint) | segment s (box) | wall s (no hint) | wall s (box) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["images"]:
        n, b = r["none"], r["box"]
        lines.append(f"| {r['image']} | {n['iou']:.3f} | {b['iou']:.3f} | {n['segment_s']:.2f} | {b['segment_s']:.2f} "
                     f"| {n['wall_s']:.2f} | {b['wall_s']:.2f} |")
    lines.append(f"| **mean IoU / median s** | **{s['none']['mean_iou']:.3f}** | **{s['box']['mean_iou']:.3f}** "
                 f"| **{s['none']['median_segment_s']:.2f}** | **{s['box']['median_segment_s']:.2f}** "
                 f"| {s['none']['median_wall_s']:.2f} | {s['box']['median_wall_s']:.2f} |")
    lines += [
        "",
        f"Targets: mean IoU >= {TARGET_IOU['none']} without a hint, >= {TARGET_IOU['box']} with the box; "
        f"median segmentation <= {TARGET_SECONDS} s. "
        f"Met: no hint {s['none']['meets_target']}, box {s['box']['meets_target']}.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="folder with imgs/, seg_GT/, bboxes/")
    parser.add_argument("--max-size", type=int, default=1024)
    args = parser.parse_args()
    report = bench(args.data, args.max_size)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "masks.json").write_text(json.dumps(report, indent=1))
    md = markdown(report)
    (RESULTS / "masks.md").write_text(md)
    print(md)
    return 0 if all(v["meets_target"] for v in report["summary"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
