"""Geometry speed and memory: mask + depth -> MeshData, pure numpy (no Blender).

For each size a synthetic photo-sized mask (an ellipse) and a metric dome depth with a
fine ripple are meshed by ``geometry.plane.build_object_mesh`` from the source tree.
Rows: ``open`` with ``detail`` = SIZE front vertices, and ``closed`` / ``solidify`` with
``detail`` = SIZE / 2 so the whole object has about SIZE vertices (as bench_build.py
does). Reported per row: vertices, faces, best wall time of ``--repeat`` runs, time per
vertex, the best CPU time (less sensitive to other processes on a shared machine), the
slowest stages, and peak traced memory (tracemalloc, a separate run).
A last row meshes a real GrabCut mask at the default detail when ../shared/bench-data
is present.

    .venv/bin/python bench/bench_mesh.py [--sizes 10000 100000 1000000] [--repeat 5]

Writes bench/results/mesh.json and bench/results/mesh.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BENCH_DATA = ROOT.parent / "shared" / "bench-data"
sys.path.insert(0, str(ROOT))  # geometry/ is self-contained: import it from the source tree, without bpy

import geometry  # noqa: E402
from geometry import camera as camera_mod  # noqa: E402
from geometry import check, plane  # noqa: E402


def scene_for(size: int) -> tuple[np.ndarray, np.ndarray, object]:
    """An ellipse mask large enough for ``size`` vertices at >= 0.5 px spacing, with a dome depth."""
    width = int(np.clip(np.sqrt(size) * 1.6, 320, 1600))
    height = width * 3 // 4
    yy, xx = np.mgrid[0:height, 0:width]
    u = (xx + 0.5 - width / 2) / (0.45 * width)
    v = (yy + 0.5 - height / 2) / (0.45 * height)
    r2 = u**2 + v**2
    mask = r2 < 1
    depth = (4.0 - 0.8 * np.sqrt(np.clip(1 - r2, 0, None)) + 0.01 * np.sin(xx / 9.0) * np.cos(yy / 7.0))
    cam = camera_mod.camera_from_result(width, height, 50.0)
    return mask, depth.astype(np.float32), cam


def measure(mask: np.ndarray, depth: np.ndarray, cam, settings, repeat: int) -> dict:
    plane.build_object_mesh(mask, depth, cam, settings)  # warm-up (imports, allocator)
    best, best_cpu, best_stages, data = float("inf"), float("inf"), {}, None
    for _ in range(repeat):
        gc.collect()
        stages: dict[str, float] = {}
        t, c = time.perf_counter(), time.process_time()
        data = plane.build_object_mesh(mask, depth, cam, settings, timings=stages)
        dt, dc = time.perf_counter() - t, time.process_time() - c
        best_cpu = min(best_cpu, dc)
        if dt < best:
            best, best_stages = dt, stages
    gc.collect()
    tracemalloc.start()
    plane.build_object_mesh(mask, depth, cam, settings)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    report = check.edge_manifold_report(data.face_sizes, data.loops)
    slow = sorted(best_stages.items(), key=lambda kv: -kv[1])[:4]
    return {
        "back": settings.back,
        "detail": settings.detail,
        "image": f"{mask.shape[1]}x{mask.shape[0]}",
        "vertices": data.num_vertices,
        "faces": data.num_faces,
        "seconds": round(best, 4),
        "cpu_seconds": round(best_cpu, 4),
        "us_per_vertex": round(1e6 * best / data.num_vertices, 3),
        "peak_mb": round(peak / 2**20, 1),
        "stages": {k: round(v, 4) for k, v in best_stages.items()},
        "slowest": ", ".join(f"{k} {1000 * v:.0f}" for k, v in slow),
        "watertight": bool(report["watertight"]),
        "manifold": bool(report["manifold"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    rows = []
    for size in args.sizes:
        mask, depth, cam = scene_for(size)
        for back, detail in (("open", size), ("closed", size // 2), ("solidify", size // 2)):
            settings = geometry.MeshSettings(back=back, detail=detail)
            row = measure(mask, depth, cam, settings, args.repeat)
            row["size"] = size
            rows.append(row)
            print(json.dumps(row), flush=True)
    gc_path = BENCH_DATA / "masks" / "grabcut" / "seg_GT" / "llama.bmp"
    if gc_path.is_file():
        from PIL import Image
        from scipy import ndimage

        mask = np.asarray(Image.open(gc_path).convert("L")) > 127
        dome = 4.0 - 0.02 * np.sqrt(ndimage.distance_transform_edt(mask))
        cam = camera_mod.camera_from_result(mask.shape[1], mask.shape[0], None)
        row = measure(mask, dome.astype(np.float32), cam, geometry.MeshSettings(), args.repeat)
        row["size"] = "grabcut llama"
        rows.append(row)
        print(json.dumps(row), flush=True)

    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.machine(), "python": platform.python_version(), "numpy": np.__version__,
            "cpus": __import__("os").cpu_count()}
    (RESULTS / "mesh.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [
        "| case | back | detail | vertices | faces | wall (s) | CPU (s) | µs / vertex | peak MB | slowest (ms) | ok |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ok = "yes" if r["manifold"] and (r["back"] == "open" or r["watertight"]) else "NO"
        lines.append(
            f"| {r['size']} | {r['back']} | {r['detail']} | {r['vertices']} | {r['faces']} | {r['seconds']:.3f} | "
            f"{r['cpu_seconds']:.3f} | "
            f"{r['us_per_vertex']:.2f} | {r['peak_mb']:.0f} | {r['slowest']} | {ok} |"
        )
    (RESULTS / "mesh.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
