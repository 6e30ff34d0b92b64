"""Template retrieval quality and speed on the full view set (the tests use a subset).

Every bundled template is rendered (numpy z-buffer, perspective, 256 x 256, 50 mm) from
``--views`` random upright viewpoints (azimuth uniform, elevation 5-50 degrees, roll +-3 degrees,
up to 10 % off-centre) and matched against the whole library with an unknown label, with:

- ``exact``: the ground-truth depth;
- ``squashed``: depth relief halved about its median plus noise (2 % of the relief), as a
  monocular depth estimate with the wrong depth range would give, matched with ``depth_scale``
  (the relief scale is fitted, as for relative depth maps).

Unknown objects (meshes of ../shared/bench-data not in the library) must stay under the score
threshold. Also timed: ``tools/make_templates.py`` (assets + descriptors).

    .venv/bin/python bench/bench_templates.py [--views 8] [--seed 0]

Writes bench/results/templates.json and bench/results/templates.md.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
BENCH_DATA = ROOT.parent / "shared" / "bench-data"
UNKNOWN = ("stanford-bunny", "cow", "spot", "homer", "teapot", "beetle")

from templates import match, synthetic  # noqa: E402
from templates.library import Template, TemplateLibrary, bundled_library  # noqa: E402


def load_obj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    verts, tris = [], []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("v "):
            verts.append([float(x) for x in line.split()[1:4]])
        elif line.startswith("f "):
            idx = [int(tok.split("/")[0]) - 1 for tok in line.split()[1:]]
            tris.extend([idx[0], idx[k], idx[k + 1]] for k in range(1, len(idx) - 1))
    return np.asarray(verts, dtype=np.float64), np.asarray(tris, dtype=np.int32)


def unknown_template(name: str) -> Template:
    """A bench-data mesh, +Y up in the file, turned +Z up with its base at the origin."""
    v, f = load_obj(BENCH_DATA / "meshes" / "common3d" / f"{name}.obj")
    v = np.stack([v[:, 0], -v[:, 2], v[:, 1]], axis=1)
    lo, hi = v.min(axis=0), v.max(axis=0)
    v -= [0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1]), lo[2]]
    return Template(name, name, (name,), 1, v.astype(np.float32), f)


def squash(zdepth: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    z = zdepth.astype(np.float64)
    med = float(np.median(z[mask]))
    extent = float(np.ptp(z[mask]))
    out = med + 0.5 * (z - med) + rng.normal(0.0, 0.02 * extent, z.shape)
    return np.where(mask, out, 0.0)


def run_views(library: TemplateLibrary, views: int, seed: int, mode: str) -> dict:
    rng = np.random.default_rng(seed)
    rows = []
    for tpl in library.templates:
        for _ in range(views):
            az, el, roll = synthetic.random_viewpoint(rng)
            view = synthetic.render_view(tpl, az, el, roll, offset=tuple(rng.uniform(-0.1, 0.1, 2)))
            z = view.zdepth if mode == "exact" else squash(view.zdepth, view.mask, rng)
            res = match.match_instance(view.mask, z, view.camera, library, "object", depth_scale=mode != "exact")
            cats = [m.category for m in res.matches]
            hit = res.matches[0].template == tpl.name if res.matches else False
            err = (match.orientation_error(res.matches[0].pose.rotation, view.rotation, tpl.symmetry)
                   if hit else math.inf)
            own = [m.score for m in res.matches if m.template == tpl.name]
            rows.append((tpl.name, bool(cats and cats[0] == tpl.category), tpl.category in cats, err,
                         own[0] if own else float("nan"), res.accepted and cats[0] == tpl.category,
                         res.timings["total"]))
    n = len(rows)
    per = {}
    for name, top1, *_ in rows:
        per.setdefault(name, []).append(top1)
    return {
        "views": n,
        "top1": round(sum(r[1] for r in rows) / n, 4),
        "top3": round(sum(r[2] for r in rows) / n, 4),
        "orientation_under_20": round(sum(r[3] < 20 for r in rows) / n, 4),
        "orientation_median_deg": round(float(np.median([r[3] for r in rows if np.isfinite(r[3])])), 2),
        "accepted_and_right": round(sum(r[5] for r in rows) / n, 4),
        "true_score_p5": round(float(np.nanpercentile([r[4] for r in rows], 5)), 4),
        "seconds_per_view_mean": round(float(np.mean([r[6] for r in rows])), 3),
        "seconds_per_view_median": round(float(np.median([r[6] for r in rows])), 3),
        "seconds_per_view_p95": round(float(np.percentile([r[6] for r in rows], 95)), 3),
        "worst_templates": sorted(((round(float(np.mean(v)), 2), k) for k, v in per.items()))[:5],
    }


def run_unknown(library: TemplateLibrary, views: int, seed: int, depth_scale: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for name in UNKNOWN:
        if not (BENCH_DATA / "meshes" / "common3d" / f"{name}.obj").is_file():
            continue
        tpl = unknown_template(name)
        scores = []
        for _ in range(views):
            view = synthetic.render_view(tpl, *synthetic.random_viewpoint(rng))
            res = match.match_instance(view.mask, view.zdepth, view.camera, library, "object",
                                       depth_scale=depth_scale)
            scores.append((round(res.matches[0].score, 3), res.matches[0].template))
        best = max(scores)
        accepted = sum(s >= match.THRESHOLD for s, _ in scores)
        out[name] = {"max_score": best[0], "as": best[1], "accepted_views": accepted, "views": views}
    return out


def time_generator() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "tools" / "make_templates.py"), "--out", tmp], check=True,
                       capture_output=True)
        return time.perf_counter() - t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    library = bundled_library()
    report = {
        "templates": len(library),
        "categories": len({t.category for t in library.templates}),
        "library_views": int(library.angles.shape[0]),
        "threshold": match.THRESHOLD,
        "exact_depth": run_views(library, args.views, args.seed, "exact"),
        "squashed_depth": run_views(library, max(2, args.views // 2), args.seed + 1, "squashed"),
        "unknown_objects": run_unknown(library, args.views, args.seed + 2),
        "unknown_objects_relative": run_unknown(library, args.views, args.seed + 2, depth_scale=True),
        "make_templates_seconds": round(time_generator(), 1),
        "asset_bytes": sum(p.stat().st_size for p in (ROOT / "assets").iterdir()),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "templates.json").write_text(json.dumps(report, indent=1))
    lines = [
        "# Template retrieval",
        "",
        f"{report['templates']} templates, {report['categories']} categories, {report['library_views']} library views"
        f" per template, threshold {report['threshold']}.",
        "",
        "| depth | views | top-1 | top-3 | orientation < 20 deg | accepted & right | true score p5 |"
        " s/view mean (median) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key in ("exact_depth", "squashed_depth"):
        r = report[key]
        lines.append(f"| {key} | {r['views']} | {r['top1']:.3f} | {r['top3']:.3f} | {r['orientation_under_20']:.3f} | "
                     f"{r['accepted_and_right']:.3f} | {r['true_score_p5']:.3f} | {r['seconds_per_view_mean']:.2f} "
                     f"({r['seconds_per_view_median']:.2f}) |")
    lines += ["", "| unknown object | best score (as), metric depth | accepted | best score (as), relative depth"
              " | accepted |", "|---|---|---|---|---|"]
    for name, r in report["unknown_objects"].items():
        q = report["unknown_objects_relative"][name]
        lines.append(f"| {name} | {r['max_score']:.3f} ({r['as']}) | {r['accepted_views']}/{r['views']} | "
                     f"{q['max_score']:.3f} ({q['as']}) | {q['accepted_views']}/{q['views']} |")
    lines += ["", f"make_templates.py: {report['make_templates_seconds']} s; assets: "
              f"{report['asset_bytes'] / 1e6:.2f} MB."]
    (RESULTS / "templates.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
