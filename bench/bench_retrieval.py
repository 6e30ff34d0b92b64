"""Template retrieval on third-party meshes, without Blender: right / wrong category / none, and speed.

Every mesh of ``../shared/bench-data/meshes/category`` (its folder names its category) and a set of
objects outside the library (bunny, cow, teapot, suzanne, ...) is rendered with the numpy z-buffer
from the 3D quality bench's three viewpoints, then retrieved the way the template blend does it
(``retrieve.retrieve``) with exact depth (``oracle``), with a relief squashed to a third plus noise
(``relative``: depth scale fitted, trust of a relative map) and with the classic engine's own
inflated relief of the exact mask (``classic``: a guess from the silhouette, trusted as the classic
engine's).
A fast loop for tuning retrieval; ``bench_quality.py`` measures the shapes that come out.

    .venv/bin/python bench/bench_retrieval.py [--modes oracle,relative,classic] [--objects mug,cow]

Writes bench/results/quick/retrieval.json (``--out``): per view the verdict, the candidates and the
seconds of matching and fitting as the blend does them (``retrieve`` and, for a placed template,
``fit.refine_matches``; wall clock and CPU time, which a busy machine inflates less).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MESHES = ROOT.parent / "shared" / "bench-data" / "meshes"
OUTSIDE = ("common3d/stanford-bunny.obj", "common3d/cow.obj", "common3d/teapot.obj", "common3d/suzanne.obj",
           "common3d/spot.obj", "common3d/homer.obj", "common3d/beetle.obj", "common3d/fandisk.obj",
           "open3d/knot.ply", "common3d/rocker-arm.obj")
VIEWS = ((-35.0, 15.0), (40.0, 25.0), (160.0, 10.0))  # as bench_quality.py

from bench_templates import load_obj  # noqa: E402

from inference.engines.classic import inflate  # noqa: E402
from templates import descriptors as desc  # noqa: E402
from templates import fit, match, retrieve, synthetic  # noqa: E402
from templates.library import Template, TemplateLibrary, bundled_library  # noqa: E402


def load_mesh(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and triangles of a Wavefront OBJ or a binary little-endian PLY (x y z floats first)."""
    if path.suffix == ".obj":
        return load_obj(path)
    data = path.read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode().splitlines()
    nv = nf = 0
    props, index_type = [], "<u4"
    for line in header:
        tok = line.split()
        if tok[:2] == ["element", "vertex"]:
            nv = int(tok[2])
        elif tok[:2] == ["element", "face"]:
            nf = int(tok[2])
        elif tok[:1] == ["property"] and tok[1] != "list" and nf == 0:
            props.append(tok[2])
        elif tok[:2] == ["property", "list"]:
            index_type = "<i4" if tok[3] == "int" else "<u4"
    vdt = np.dtype([(p, "<f4") for p in props])
    v = np.frombuffer(data, vdt, nv, end)
    verts = np.stack([v["x"], v["y"], v["z"]], axis=1).astype(np.float64)
    off, tris = end + nv * vdt.itemsize, []
    idx = np.dtype(index_type)
    for _ in range(nf):
        n = data[off]
        f = np.frombuffer(data, idx, n, off + 1)
        tris.extend([f[0], f[k], f[k + 1]] for k in range(1, n - 1))
        off += 1 + 4 * n
    return verts, np.asarray(tris, np.int64)


def subject(path: Path, category: str | None) -> Template:
    """A bench mesh as a template-like object, Z up (OBJ files of common3d are Y up), base at the origin."""
    v, f = load_mesh(path)
    if path.suffix == ".obj":
        v = np.stack([v[:, 0], -v[:, 2], v[:, 1]], axis=1)
    lo, hi = v.min(axis=0), v.max(axis=0)
    v = (v - [0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1]), lo[2]]) / float((hi - lo).max())
    return Template(path.stem, category or "", (category or path.stem,), 1, v.astype(np.float32), f)


def squash(z: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    med = float(np.median(z[mask]))
    out = med + (z - med) / 3.0 + rng.normal(0.0, 0.02 * float(np.ptp(z[mask])), z.shape)
    return np.where(mask, out, 0.0)


def puffy(z: np.ndarray, mask: np.ndarray, focal_px: float) -> np.ndarray:
    """The classic engine's relief for ``mask``: its inflation (pixels) as depth at the object's distance."""
    med = float(np.median(z[mask]))
    height = inflate(mask).astype(np.float64) * med / focal_px
    return np.where(mask, med - height + float(height[mask].mean()), 0.0)


def mode_depth(mode: str, view: synthetic.SyntheticView, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """The depth one mode sees and the trust the template step gives it."""
    if mode == "relative":
        return squash(view.zdepth, view.mask, rng), fit.DEPTH_TRUST["relative"]
    if mode == "classic":
        return puffy(view.zdepth, view.mask, float(view.camera.focal_px)), fit.DEPTH_TRUST["classic"]
    return view.zdepth, fit.DEPTH_TRUST["file"]


def candidate_terms(res: match.MatchResult, fits: list, lib: TemplateLibrary, size: float) -> list[tuple]:
    """Per fitted candidate what its score is made of, as calibrate_retrieval.py reads it: template,
    category, score, IoU, depth error, roll, non-affine lattice offset, axis stretch, rigid score,
    coarse score, and how far its posed fitted shape is from the first candidate's
    (``retrieve.alike_distance``, fractions of the object's ``size``; NaN where not fitted)."""
    def posed(m: match.Match, f) -> tuple[np.ndarray, np.ndarray]:
        return retrieve.posed_surface(lib.get(m.template, m.source), f, m.pose)

    first = posed(res.matches[0], fits[0]) if res.matches else None
    return [(m.template, m.category, round(m.score, 3), round(m.iou, 3), round(m.depth_error, 4),
             round(match.roll_degrees(m.pose.rotation), 2),
             *retrieve.deformation(f, lib.get(m.template, m.source).size),
             round(m.rigid_score or 0.0, 3), round(m.coarse_score, 3),
             round(retrieve.alike_distance(first, posed(m, f), size), 4) if np.isfinite(f.iou) else float("nan"))
            for m, f in zip(res.matches, fits)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", default="oracle", help="comma-separated: oracle, relative, classic")
    parser.add_argument("--objects", type=lambda s: s.split(","), default=None)
    parser.add_argument("--candidates", type=int, default=retrieve.FIT_CANDIDATES,
                        help="rigid matches fitted per view, one per category (calibrate_retrieval.py re-scores them)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "quick" / "retrieval.json")
    args = parser.parse_args()
    lib = bundled_library()
    subjects = [(p, p.parent.name) for p in sorted((MESHES / "category").rglob("*.ply"))]
    subjects += [(MESHES / p, None) for p in OUTSIDE if (MESHES / p).is_file()]
    if args.objects:
        subjects = [(p, c) for p, c in subjects if p.stem in args.objects or c in args.objects]
    rng = np.random.default_rng(0)
    rows = []
    for path, category in subjects:
        tpl = subject(path, category)
        for az, el in VIEWS:
            view = synthetic.render_view(tpl, az, el, width=512, height=384, focal_mm=35.0, fill=0.5)
            for mode in args.modes.split(","):
                relative = mode != "oracle"
                z, trust = mode_depth(mode, view, rng)
                t, cpu = time.perf_counter(), time.process_time()
                res, fits = retrieve.retrieve(view.mask, z, view.camera, lib, "object", depth_scale=relative,
                                              trust=trust, top=args.candidates, candidates=args.candidates)
                if res.accepted:  # the placed match's pose refined, as the blend does it (scene.template_source)
                    fit.refine_matches(res, fits, lib, view.camera, view.mask, z, trust)
                seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
                best = res.matches[0] if res.matches else None
                placed = res.accepted and best is not None
                verdict = ("none" if not placed else "right" if best.category == category else "wrong")
                if category is None:
                    verdict = "placed" if placed else "none"
                inst = desc.instance_descriptor(view.mask, z, float(view.camera.focal_px))
                size = match.score_window(inst, view.mask, z, view.camera)[1]  # the object's size, as retrieval's
                rows.append({"object": path.stem, "category": category, "view": [az, el], "mode": mode,
                             "verdict": verdict, "seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3),
                             "ambiguous_with": res.ambiguous_with,
                             "top": candidate_terms(res, fits, lib, size),
                             "timings": {k: round(v, 3) for k, v in res.timings.items()}})
                print(f"{path.stem:16s} {az:5.0f} {mode:8s} {verdict:6s} {seconds:5.2f}s  "
                      + "  ".join(f"{m.template}:{m.score:.3f}(iou {m.iou:.2f} d {m.depth_error:.3f} u %.3f s %.2f)"
                                  % retrieve.deformation(f, lib.get(m.template, m.source).size)
                                  for m, f in zip(res.matches, fits)),
                      flush=True)
    summary = {}
    for mode in args.modes.split(","):
        cat = [r for r in rows if r["mode"] == mode and r["category"]]
        out = [r for r in rows if r["mode"] == mode and not r["category"]]
        summary[mode] = {
            "category": {k: sum(r["verdict"] == k for r in cat) for k in ("right", "wrong", "none")},
            "placed_ambiguous": sum(bool(r["ambiguous_with"]) and r["verdict"] in ("right", "wrong", "placed")
                                    for r in rows if r["mode"] == mode),
            "outside_placed": f"{sum(r['verdict'] == 'placed' for r in out)}/{len(out)}",
            "seconds_median": round(float(np.median([r["seconds"] for r in rows if r["mode"] == mode])), 3),
            "cpu_seconds_median": round(float(np.median([r["cpu_seconds"] for r in rows if r["mode"] == mode])), 3),
        }
    print(json.dumps(summary, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
