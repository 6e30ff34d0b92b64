"""How close to its floor can a closed 1M-vertex build get on this machine? A bound from parts.

A build's total is its numpy geometry plus its Blender ingest (``bench_build.py``). This script
measures, in one process and taking turns so all see the same machine state:

- the floor (``bench_build.push_grid``: a plain grid of the same vertex count, foreach_set only)
  and its steps;
- the build's ingest alone, of the geometry layer's own meshes (trusted, as ``build_from_result``
  ingests them), with its parts, and the same ingest when Blender builds the edge table itself;
- the build's geometry (``meshes_from_result``);
- the *least layout*: the fewest numpy passes that lay out a closed grid mesh of the same size
  from the same mask and depth: front vertices on the camera rays of lattice nodes inside the
  mask, the front's quads, a back one thickness behind with reversed quads, per-vertex UVs.
  No outline snapping, tears, seam, relief texture or edge table: each is work the real
  geometry adds, so ``(ingest + least layout) / floor`` bounds ``total / floor`` from below.

    .venv/bin/python bench/bench_build_bound.py [--size 1000000] [--repeat 10]

Writes bench/results/build_bound.json and bench/results/build_bound.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def least_layout(mask: np.ndarray, depth: np.ndarray, focal_px: float, front_vertices: int,
                 thickness: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions (2N, 3), corners (8Q,) and per-vertex UVs (2N, 2) of a closed grid mesh with about
    ``front_vertices`` front vertices: lattice nodes inside ``mask`` placed at ``depth`` on their
    camera rays, a back ``thickness`` behind, reversed. float32 and int32 throughout."""
    h, w = mask.shape
    step = float(np.sqrt(np.count_nonzero(mask) / front_vertices))
    ys = np.arange(0.5, h, step)
    xs = np.arange(0.5, w, step)
    rows, cols = ys.astype(np.intp), xs.astype(np.intp)
    inside = mask[rows][:, cols]
    index = np.cumsum(inside.ravel(), dtype=np.int32).reshape(inside.shape)
    index -= 1
    n = int(index[-1, -1]) + 1
    quad = inside[:-1, :-1] & inside[1:, :-1] & inside[1:, 1:] & inside[:-1, 1:]
    nq = int(np.count_nonzero(quad))
    corners = np.empty((2 * nq, 4), np.int32)
    corners[:nq, 0] = index[:-1, :-1][quad]
    corners[:nq, 1] = index[1:, :-1][quad]
    corners[:nq, 2] = index[1:, 1:][quad]
    corners[:nq, 3] = index[:-1, 1:][quad]
    np.add(corners[:nq, ::-1], n, out=corners[nq:])
    r, c = np.nonzero(inside)
    x = xs.astype(np.float32)[c]
    y = ys.astype(np.float32)[r]
    z = depth[rows[r], cols[c]]
    co = np.empty((2 * n, 3), np.float32)
    np.multiply(x - 0.5 * w, z, out=co[:n, 0])
    co[:n, 0] /= focal_px
    np.multiply(0.5 * h - y, z, out=co[:n, 1])
    co[:n, 1] /= focal_px
    np.negative(z, out=co[:n, 2])
    co[n:] = co[:n]
    co[n:, 2] -= thickness
    uv = np.empty((2 * n, 2), np.float32)
    np.multiply(x, 1.0 / w, out=uv[:n, 0])
    np.multiply(y, -1.0 / h, out=uv[:n, 1])
    uv[:n, 1] += 1.0
    uv[n:] = uv[:n]
    return co, corners.ravel(), uv


def median(values: list[float]) -> float:
    return round(float(np.median(values)), 4)


def measure(result: Path, size: int, repeat: int) -> dict:
    from bench_build import installed_extension, push_grid

    with installed_extension(result) as (bpy, geometry, build):
        settings = geometry.MeshSettings(detail=size // 2, back="closed")
        info = build.read_result(result)
        camera = build.camera_for_result(info)
        mask = build.load_mask(info.instances[0].mask_path, info.width, info.height)
        depth = build.load_depth(info)
        meshes, _ = build.meshes_from_result(info, settings, camera)
        own_edges = [(label, dataclasses.replace(data, edges=None, corner_edges=None)) for label, data in meshes]
        vertices = sum(data.num_vertices for _, data in meshes)
        front = int(np.count_nonzero(meshes[0][1].groups["front"]))
        co, _, _ = least_layout(mask, depth, camera.focal_px, front)
        floor_parts: dict[str, list[float]] = {}
        rows: dict[str, list[float]] = {"floor": [], "geometry": [], "ingest": [], "ingest, Blender's edges": [],
                                        "least layout": []}
        ingest_parts: dict[str, list[float]] = {}
        for _ in range(repeat):
            bpy.ops.wm.read_homefile(app_template="", use_empty=True)
            rows["floor"].append(push_grid(bpy, vertices, floor_parts))
            bpy.ops.wm.read_homefile(app_template="", use_empty=True)
            report = build.build_scene(meshes, camera, info.image_path, settings, trusted=True)
            rows["ingest"].append(report.timings["ingest"])
            for key in ("prepare", "mesh", "attributes", "relief"):
                ingest_parts.setdefault(key, []).append(report.timings[key])
            bpy.ops.wm.read_homefile(app_template="", use_empty=True)
            report = build.build_scene(own_edges, camera, info.image_path, settings, trusted=True)
            rows["ingest, Blender's edges"].append(report.timings["ingest"])
            bpy.ops.wm.read_homefile(app_template="", use_empty=True)
            t = time.perf_counter()
            build.meshes_from_result(info, settings, camera)
            rows["geometry"].append(time.perf_counter() - t)
            t = time.perf_counter()
            least_layout(mask, depth, camera.focal_px, front)
            rows["least layout"].append(time.perf_counter() - t)
        bpy.ops.wm.read_homefile(app_template="", use_empty=True)
    med = {k: float(np.median(v)) for k, v in rows.items()}
    return {
        "vertices": vertices, "least_layout_vertices": int(co.shape[0]),
        "median_s": {k: round(v, 4) for k, v in med.items()},
        "best_s": {k: round(min(v), 4) for k, v in rows.items()},
        "floor_parts_median_s": {k: median(v) for k, v in floor_parts.items()},
        "ingest_parts_median_s": {k: median(v) for k, v in ingest_parts.items()},
        "ratios_of_medians": {
            "ingest / floor": round(med["ingest"] / med["floor"], 2),
            "(ingest + least layout) / floor": round((med["ingest"] + med["least layout"]) / med["floor"], 2),
            "(ingest + geometry) / floor": round((med["ingest"] + med["geometry"]) / med["floor"], 2),
        },
        "geometry_allowed_at_1_5x_s": round(1.5 * med["floor"] - med["ingest"], 4),
    }


def markdown(report: dict) -> str:
    lines = [f"# Build bound at {report['vertices']} vertices (closed back)\n",
             f"Median and best of {report['repeat']} turns; 1-minute load {report['load']}.\n",
             "| measure | median s | best s |", "|---|---:|---:|"]
    for key, value in report["median_s"].items():
        lines.append(f"| {key} | {value} | {report['best_s'][key]} |")
    lines += ["", "| floor step | median s |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in report["floor_parts_median_s"].items()]
    lines += ["", "| ingest part | median s |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in report["ingest_parts_median_s"].items()]
    lines += ["", "| ratio (of medians) | value |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in report["ratios_of_medians"].items()]
    lines += ["", f"Geometry time that would keep the build within 1.5x of the floor: "
                  f"{report['geometry_allowed_at_1_5x_s']} s (1.5 x floor - ingest, medians).", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--result", help="a worker result folder (default: the 1600x1200 ellipse of bench_build)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="monocle-bench-bound-") as tmp:
        result = Path(args.result) if args.result else None
        if result is None:
            folder = Path(tmp) / "1600x1200"
            subprocess.run([sys.executable, str(ROOT / "bench" / "bench_build.py"), "--make", str(folder),
                            "1600", "1200", "ellipse"], check=True)
            result = folder / "result"
        report = measure(result, args.size, args.repeat)
    report["repeat"] = args.repeat
    report["load"] = f"{load:.1f}-{os.getloadavg()[0]:.1f}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "build_bound.json").write_text(json.dumps(report, indent=1))
    text = markdown(report)
    (RESULTS / "build_bound.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
