"""Quality scoreboard: masks, depth and 3D reconstruction against ground truth, one command.

    .venv/bin/python bench/bench_quality.py [--quick] [--only masks|depth|3d] [--results DIR]
    (make bench-quality [QUICK=1])

Every engine run goes through one warm worker (``python -m inference serve``, the real worker
protocol) from this checkout; every build through the installed extension in ``bpy``.

* Masks: IoU of the classic engine on the GrabCut photos, with and without the dataset's box hint.
* Depth: AbsRel / delta1 of each available engine's depth after a least-squares scale-and-shift
  fit in inverse-depth space, on the RGB-D frames of ../shared/bench-data/depth, on scikit-image's
  stereo_motorcycle (GT disparity) and on the Cycles renders below (Z pass inside the object's mask).
* 3D: every mesh of ../shared/bench-data/meshes and every template of ``assets/templates.blend``
  rendered by Cycles from 3 fixed upright cameras (RGB, alpha, Z pass) and reconstructed in these
  modes: ``oracle`` (GT mask + Z pass as metric depth: the mesh builder alone), each available
  engine (``classic``; ``transformers`` when a depth model is in the local model cache), and each of
  those followed by the template blend at the panel's default weight (``<mode>+template``: the
  pipeline's ``apply_templates`` after ``build_from_result``, its fitted lattice at Fit 1) and
  the same blend with the template rigid (``<mode>+rigid``: Fit 0). Scored in the GT-10 frame
  (bench/metrics.py), with and without a scale + rigid ICP alignment (``metrics.icp_from_camera``:
  a relative-depth build at a guessed distance is the right picture at the wrong scale, so the ICP
  also starts from the build scaled about the camera). Templates are reported apart
  from the third-party meshes: a template retrieving itself is the easy case.

Writes quality.json, quality.md and two PNG plots into bench/results (or ``--results``); a quick
or partial (``--only``) run writes into bench/results/quick instead, so it never replaces the full
results that docs/benchmarks.md shows. Metric definitions: bench/metrics.py and
../shared/bench-data/METRICS.md.

``--meshes DIR`` takes the meshes from DIR instead (e.g. ``../shared/bench-data/meshes/category``,
whose sub-folders name each object's template category: the templates placed are then counted
right, wrong-category or none), ``--set meshes`` leaves out the bundled templates.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
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
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tools"))
import metrics  # noqa: E402

DATA = ROOT.parent / "shared" / "bench-data"
RESULTS = ROOT / "bench" / "results"
W, H = 512, 384  # a pixel must be finer than tau = 1 % of the object: at 256 px it is ~1 % and thin parts drop out
LENS = 35.0
SIZE = 2.0  # rendered objects: longest bbox edge in Blender units
CAM_DIST = 5.0
VIEWS = ((-35.0, 15.0), (40.0, 25.0), (160.0, 10.0))  # (azimuth, elevation) in degrees
RENDER_SAMPLES = 2  # Z and alpha are exact at any count (one ray per pixel centre, 0.01 px filter); RGB feeds engines
# Point samples compared (visible GT, visible prediction, whole GT, whole prediction): at least N_SAMPLES and
# DENSITY per unit^2 of the sampled surface in the GT-10 frame, at most MAX_SAMPLES. With a fixed count a large
# surface (a cube's three faces: ~300 units^2) is sampled too sparsely for tau = 0.1: a point's nearest neighbour
# in a perfect copy lies beyond tau with probability exp(-pi * density * tau^2), 12 % at 20k points there.
# At 200 points per unit^2 that is 0.2 %.
N_SAMPLES = 20_000
DENSITY = 200.0
MAX_SAMPLES = 200_000
GT_DENSE = 8 * N_SAMPLES  # GT surface samples per object (at least), shared by its views (each keeps its visible ones)
MAX_QUERIES = 10_000  # distances averaged per direction (against all points of the other set): unbiased, far faster
ICP_POINTS = 2_000  # prediction points the ICP fits on (it then moves all of them)
ICP_TOL = 1e-5  # stop when the trimmed mean distance changes less than this (relative)
# Until December 2026 the ICP started only from the build: a classic build placed 2-3x too far shrank onto
# part of the object (ICP scale 0.05-0.4) and scored as if its shape were wrong. On meshes/category the
# second start moved classic full F@0.1 0.068 -> 0.090, classic+truecat 0.158 -> 0.276; oracle unchanged.
VOL_POINTS = 100_000  # occupancy grid points for the volumetric IoU
TAUS = (0.1, 0.3, 0.5)
QUICK_MESHES = ("spot", "teapot", "fandisk")
QUICK_TEMPLATES = ("Mug", "Chair Dining", "Car Sedan")
ORACLE_GOAL = 0.95
PROFILES: list[Path] = []  # Blender profiles this run made, removed at its end


def log(*a: object) -> None:
    print(*a, file=sys.stderr, flush=True)


def mean(values: list) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return round(statistics.mean(vals), 4) if vals else None


# --------------------------------------------------------------------------- the worker


class ServeWorker:
    """One warm ``python -m inference serve`` worker; requests can be queued ahead (``submit``) so it
    computes while this process builds and scores, then collected in order (``wait``)."""

    def __init__(self, log_path: Path) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self._log = open(log_path, "w")
        self.log_path = log_path
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "inference", "serve", "--idle-timeout", "0"], cwd=ROOT, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True, bufsize=1)
        self._next = 0
        self._events: dict[str, list[dict]] = {}
        ready = self._read()
        if ready.get("event") != "ready":
            raise RuntimeError(f"the serve worker did not start: {ready}")

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the serve worker exited: {self.log_path.read_text()[-800:]}")
        return json.loads(line)

    def submit(self, args: list[str]) -> str:
        rid = str(self._next)
        self._next += 1
        self._events[rid] = []
        self.proc.stdin.write(json.dumps({"id": rid, "args": ["run", *args]}) + "\n")
        self.proc.stdin.flush()
        return rid

    def wait(self, rid: str) -> tuple[dict, float]:
        """(result.json, seconds the worker spent on the request); RuntimeError when it failed."""
        events = self._events[rid]
        while not events or events[-1].get("event") != "done":
            ev = self._read()
            self._events.setdefault(str(ev.get("id")), []).append(ev)
        del self._events[rid]
        done = events[-1]
        if done["exit_code"] != 0:
            err = next((e for e in events if e.get("event") == "error"), {})
            raise RuntimeError(f"worker failed ({err.get('code')}): {err.get('message')}")
        out = next(e["path"] for e in events if e.get("event") == "result")
        return json.loads(Path(out).read_text()), float(done["seconds"])

    def run(self, args: list[str]) -> tuple[dict, float]:
        return self.wait(self.submit(args))

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        self._log.close()


def engines_available() -> tuple[dict[str, list[str]], dict[str, str]]:
    """Worker arguments of every engine that can run here, and why each other one cannot.

    ``transformers`` joins when torch and transformers import and a depth model is in the local model
    cache ($MONOCLE_MODEL_CACHE, else Hugging Face's); nothing is downloaded. Renders hold one
    unlabelled object, so segmentation is class-agnostic (Mask2Former in foreground mode when cached,
    else the classic cut-out)."""
    engines = {"classic": ["--objects", "largest"]}
    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    sys.path.insert(0, str(ROOT))
    try:
        from inference import models
    finally:
        sys.path.remove(str(ROOT))
    cache = models.default_cache_dir()
    table = models.model_table(cache)
    depth = [m for m in table if m["task"] == "depth" and m["downloaded"]]
    seg = [m for m in table if m["task"] == "segmentation" and m["downloaded"]]
    if missing:
        return engines, {"transformers": f"not run: {', '.join(missing)} cannot be imported by this Python"}
    if not depth:
        return engines, {"transformers": f"not run: no depth model in the local model cache ({cache}); the "
                                         "benchmark never downloads (no model hub is reachable here)"}
    depth.sort(key=lambda m: not m["default"])
    args = ["--engine", "transformers", "--objects", "largest", "--depth-model", depth[0]["id"],
            "--seg-mode", "foreground", "--seg-model", seg[0]["id"] if seg else "classic", "--offline"]
    engines["transformers"] = args
    return engines, {}


# --------------------------------------------------------------------------- masks


def bench_masks(tmp: Path, quick: bool, worker: ServeWorker) -> dict:
    import bench_masks

    data = DATA / "masks" / "grabcut"
    names = sorted(p.stem for p in (data / "imgs").glob("*.jpg"))
    if quick:
        names = names[:4]
    rows = []
    for name in names:
        gt = np.asarray(Image.open(data / "seg_GT" / f"{name}.bmp").convert("L")) > 127
        row: dict = {"image": name}
        for hint in ("none", "box"):
            out = tmp / f"mask-{name}-{hint}"
            args = ["--image", str(data / "imgs" / f"{name}.jpg"), "--out", str(out)]
            if hint == "box":
                args += ["--box", ",".join(map(str, bench_masks.read_box(data / "bboxes" / f"{name}.txt")))]
            result, wall = worker.run(args)
            row[hint] = {"iou": round(metrics.mask_iou(bench_masks.union_mask(result, out), gt), 4),
                         "segment_s": round(result["timings"]["segment"], 3), "worker_s": round(wall, 3)}
        rows.append(row)
        log(f"mask {name:10s} IoU {row['none']['iou']:.3f} / box {row['box']['iou']:.3f}")
    return {"items": rows, "mean": {h: {"iou": mean([r[h]["iou"] for r in rows]),
                                        "segment_s": mean([r[h]["segment_s"] for r in rows])}
                                    for h in ("none", "box")}}


# --------------------------------------------------------------------------- depth


def depth_frames(quick: bool) -> list[tuple[str, Path, np.ndarray]]:
    """(name, colour image, GT depth in metres with 0 = invalid) for the bundled RGB-D frames."""
    base = DATA / "depth" / "open3d_rgbd"
    frames = []
    # PIL returns the PGM's big-endian words as numbers; the Kinect raw value is their byte swap
    raw = np.asarray(Image.open(base / "NYU_depth.pgm")).astype(np.uint16).byteswap().astype(np.float64)
    nyu_d = np.where((raw > 0) & (raw < 1092), 351.3 / (1092.5 - raw), 0.0)
    frames.append(("NYU", base / "NYU_color.ppm", np.where(nyu_d < 10, nyu_d, 0)))
    v = np.asarray(Image.open(base / "SUN_depth.png")).astype(np.uint16)
    frames.append(("SUN", base / "SUN_color.jpg", ((v >> 3) | (v << 13)).astype(np.float64) / 1000.0))
    frames.append(("TUM", base / "TUM_color.png",
                   np.asarray(Image.open(base / "TUM_depth.png")).astype(np.float64) / 5000.0))
    for p in sorted((base / "redwood_depth").glob("*.png"))[: 1 if quick else None]:
        frames.append((f"Redwood {p.stem}", base / "redwood_color" / f"{p.stem}.jpg",
                       np.asarray(Image.open(p)).astype(np.float64) / 1000.0))
    return frames


def inverse_depth(result: dict, out: Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """The worker's depth map as inverse depth (what the scale-and-shift fit expects), at ``shape``."""
    sys.path.insert(0, str(ROOT))
    try:
        from inference.depthfile import load_depth_file
    finally:
        sys.path.remove(str(ROOT))
    pred = load_depth_file(out / result["depth"]["file"]).astype(np.float64)
    if shape is not None and pred.shape != shape:
        pred = np.asarray(Image.fromarray(pred.astype(np.float32)).resize(shape[::-1], Image.BILINEAR), np.float64)
    if result["depth"]["kind"] == "metric":
        with np.errstate(divide="ignore"):
            pred = np.where(pred > 0, 1.0 / np.where(pred > 0, pred, 1.0), np.nan)
    return pred


def bench_depth(tmp: Path, quick: bool, worker: ServeWorker, engines: dict[str, list[str]],
                absent: dict[str, str]) -> dict:
    from skimage import data as skdata

    items = []
    frames = depth_frames(quick)
    left, _, disparity = skdata.stereo_motorcycle()
    moto = tmp / "motorcycle.png"
    Image.fromarray(left).save(moto)
    disp = np.asarray(disparity, np.float64)
    moto_gt = np.where(np.isfinite(disp) & (disp > 0), 1.0 / np.where(disp > 0, disp, 1), 0.0)
    frames.append(("stereo_motorcycle (depth = 1/disparity, up to scale)", moto, moto_gt))
    for name, image, gt in frames:
        row: dict = {"frame": name}
        for engine, eargs in engines.items():
            out = tmp / f"depth-{len(items)}-{engine}"
            try:
                result, wall = worker.run(["--image", str(image), "--out", str(out), *eargs])
            except RuntimeError as exc:
                row[engine] = {"error": str(exc)[:300]}
                log(f"depth {name} {engine}: {exc}")
                continue
            m = metrics.relative_depth_metrics(inverse_depth(result, out, gt.shape), gt)
            row[engine] = {"kind": result["depth"]["kind"], **{k: round(v, 4) for k, v in m.items()},
                           "depth_s": round(result["timings"]["depth"], 3), "worker_s": round(wall, 3)}
            log(f"depth {name} {engine}: AbsRel {m['abs_rel']:.3f} delta1 {m['delta1']:.3f}")
        items.append(row)
    means = {e: {k: mean([i[e].get(k) for i in items if e in i]) for k in ("abs_rel", "delta1")} for e in engines}
    return {"items": items, "mean": means, "absent": absent}


# --------------------------------------------------------------------------- 3D: scenes and renders


def _mesh_category(path: Path) -> str | None:
    """The template category a bench mesh belongs to: its folder's name under a ``category`` folder."""
    return path.parent.name if path.parent.parent.name == "category" else None


def subjects(quick: bool, module, meshes: Path = DATA / "meshes",
             sets: tuple[str, ...] = ("meshes", "templates")) -> list[dict]:
    """The test objects: the bench meshes (files under ``meshes``), then the bundled templates (polygon
    arrays read from assets/templates.blend the way the template blend reads them)."""
    files = sorted(p for p in meshes.rglob("*") if p.suffix in (".obj", ".ply")) if "meshes" in sets else []
    if quick and any(p.stem in QUICK_MESHES for p in files):
        files = [p for p in files if p.stem in QUICK_MESHES]
    out = [{"name": p.stem, "set": "meshes", "source": str(p.relative_to(DATA) if p.is_relative_to(DATA) else p),
            "path": p, "category": _mesh_category(p)} for p in files]
    if "templates" not in sets:
        return out
    tl = importlib.import_module(module.__name__ + ".scene.template_library")
    blend = importlib.import_module(module.__name__ + ".templates.library").BUNDLED_BLEND
    with tl.linked_objects(blend) as objects:
        for obj in sorted(objects, key=lambda o: o.name):
            if obj.type != "MESH" or tl.CATEGORY_PROP not in obj or (quick and obj.name not in QUICK_TEMPLATES):
                continue
            verts, sizes, loops, _ = tl.mesh_arrays(obj)
            out.append({"name": obj.name, "set": "templates", "source": f"assets/{blend.name}:{obj.name}",
                        "category": str(obj[tl.CATEGORY_PROP]), "arrays": (verts, sizes, loops)})
    return out


def _evaluated(obj) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World vertices, face sizes and flat corner list of an object after its modifiers (the product's
    reader, ``scene.evaluated``)."""
    from scene.evaluated import read_evaluated

    ev = read_evaluated(obj)
    return ev.vertices, ev.face_sizes, ev.loops


def _setup_scene(subject: dict, ingest) -> tuple:
    """Fresh file with the subject alone, centred, scaled to SIZE, lit, Cycles set up."""
    import bpy
    from render_util import use_cycles

    bpy.ops.wm.read_homefile(app_template="", use_empty=True)
    scene = bpy.context.scene
    if "path" in subject:
        path = subject["path"]
        if path.suffix == ".obj":
            bpy.ops.wm.obj_import(filepath=str(path))
        else:
            bpy.ops.wm.ply_import(filepath=str(path))
        objs = [o for o in scene.objects if o.type == "MESH"]
        obj = objs[0]
        for o in objs[1:]:
            bpy.data.objects.remove(o)
        for mod in list(obj.modifiers):
            obj.modifiers.remove(mod)
    else:
        verts, sizes, loops = subject["arrays"]
        obj = bpy.data.objects.new(subject["name"], ingest.mesh_from_arrays(subject["name"], verts, sizes, loops))
        scene.collection.objects.link(obj)
    v, _, _ = _evaluated(obj)
    lo, hi = v.min(0), v.max(0)
    s = SIZE / float((hi - lo).max())
    obj.scale = [c * s for c in obj.scale]
    obj.location = [obj.location[i] * s - (lo[i] + hi[i]) / 2 * s for i in range(3)]
    light = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
    light.rotation_euler = (0.6, 0.2, 0.4)
    light.data.energy = 3.0
    scene.collection.objects.link(light)
    world = bpy.data.worlds.new("World")
    world.color = (0.3, 0.3, 0.3)
    scene.world = world
    use_cycles(scene, W, H, samples=RENDER_SAMPLES)
    bpy.context.view_layer.update()
    return scene, obj


def _camera(scene, azimuth: float, elevation: float):
    import bpy
    from mathutils import Vector

    cam = bpy.data.objects.new("GT Camera", bpy.data.cameras.new("GT Camera"))
    cam.data.lens = LENS
    cam.data.sensor_fit = "AUTO"
    cam.data.sensor_width = 36.0
    a, e = math.radians(azimuth), math.radians(elevation)
    loc = Vector((CAM_DIST * math.cos(e) * math.sin(a), -CAM_DIST * math.cos(e) * math.cos(a), CAM_DIST * math.sin(e)))
    cam.location = loc
    cam.rotation_euler = (-loc).to_track_quat("-Z", "Y").to_euler()
    scene.collection.objects.link(cam)
    scene.camera = cam
    bpy.context.view_layer.update()
    return cam


def _render(scene, folder: Path) -> np.ndarray:
    """Render photo.png, alpha.png and z.exr into ``folder``; returns the Z pass (H, W), top row first,
    NaN off the object."""
    from render_util import render_rgba_depth  # imports bpy: only after blender_env chose the profile

    folder.mkdir(parents=True, exist_ok=True)
    rgba, z = render_rgba_depth(scene, folder)
    (folder / f"depth{scene.frame_current:04d}.exr").replace(folder / "z.exr")
    alpha = rgba[..., 3] > 0.5
    grey = 0.5 * (1 - rgba[..., 3:4])  # composite over mid grey: a photo-like background
    srgb = np.clip(rgba[..., :3] + grey, 0, 1) ** (1 / 2.2)
    Image.fromarray((srgb * 255).astype(np.uint8)).save(folder / "photo.png")
    Image.fromarray(alpha.astype(np.uint8) * 255).save(folder / "alpha.png")
    return np.where(alpha, z, np.nan)


# --------------------------------------------------------------------------- 3D: scoring


def _ground_truth(obj) -> dict:
    """The subject's GT in the GT-10 frame: dense surface samples shared by all views, the whole-surface
    sample and its kd-tree, and the triangles for occupancy."""
    gt_v, sizes, loops = _evaluated(obj)
    tris = metrics.triangulate_flat(sizes, loops)
    scale, centre = metrics.gt10_transform(gt_v)
    gv = metrics.normalise(gt_v, scale, centre)
    area = float(metrics.face_normals_areas(gv, tris)[1].sum())
    n_full = sample_count(area)
    dense, dense_n = metrics.sample_surface(gv, tris, max(GT_DENSE, int(1.5 * n_full)), seed=0)
    pick = np.random.default_rng(4).permutation(len(dense))[:n_full]
    return {"scale": scale, "centre": centre, "v": gv, "tris": tris, "closed": metrics.is_closed(sizes, loops),
            "area": area,
            "dense": dense, "dense_n": dense_n, "pts": dense[pick], "n": dense_n[pick],
            "tree": metrics.kdtree(dense[pick])}


def sample_count(area: float) -> int:
    """Points to sample on a surface of ``area`` (GT-10 units^2): DENSITY per unit^2 within [N_SAMPLES, MAX_SAMPLES]."""
    return int(np.clip(DENSITY * area, N_SAMPLES, MAX_SAMPLES))


def _view(gt: dict, cam_matrix: np.ndarray, z: np.ndarray) -> dict:
    """One view's GT: the GT samples the render's Z pass shows (``sample_count`` of them) and their kd-tree."""
    focal_px = LENS / 36.0 * W
    world_to_cam = np.linalg.inv(cam_matrix)
    g_cam = metrics.apply(world_to_cam, gt["dense"] / gt["scale"] + gt["centre"])
    tol = 0.01 * SIZE  # 1 % of the object: Z is exact at pixel centres, a pixel is ~0.01 units here
    seen = metrics.visible_mask(g_cam, z, focal_px, tol)
    idx = np.random.default_rng(4).permutation(np.nonzero(seen)[0])[:sample_count(gt["area"] * seen.mean())]
    return {"cam": cam_matrix, "world_to_cam": world_to_cam, "focal_px": focal_px, "tol": tol,
            "vis_pts": gt["dense"][idx], "vis_n": gt["dense_n"][idx], "vis_tree": metrics.kdtree(gt["dense"][idx]),
            "visible_fraction": float(seen.mean()), "mask": np.isfinite(z), "z": z}


def _collect(objects: list, to_gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """The evaluated meshes of ``objects`` joined, moved into the GT camera's world; and whether all are closed."""
    vs, ss, ls, off, closed = [], [], [], 0, True
    for o in objects:
        v, s, lp = _evaluated(o)
        closed = closed and metrics.is_closed(s, lp)
        vs.append(metrics.apply(to_gt, v))
        ss.append(s)
        ls.append(lp.astype(np.int64) + off)
        off += len(v)
    return np.concatenate(vs), np.concatenate(ss), np.concatenate(ls), closed


def _score(pred_v: np.ndarray, sizes: np.ndarray, loops: np.ndarray, closed: bool, gt: dict, view: dict) -> dict:
    """All mesh scores of one reconstruction (in the GT camera's world), without and with ICP.

    The prediction's visible part is what its own z-buffer, rasterised through the same pixel
    centres as the render's Z pass, shows within the same tolerance: GT and prediction are judged alike.
    """
    timing: dict[str, float] = {}
    t = time.perf_counter()
    tris = metrics.triangulate_flat(sizes, loops)
    pv = metrics.normalise(pred_v, gt["scale"], gt["centre"])
    zbuf = metrics.rasterize_depth(metrics.apply(view["world_to_cam"], pred_v), tris, view["focal_px"], W, H)
    area = float(metrics.face_normals_areas(pv, tris)[1].sum())
    n_full = sample_count(area)
    n = max(3 * N_SAMPLES, n_full)
    for attempt in range(3):  # enough samples that the visible part gets its own count
        dense, dense_n = metrics.sample_surface(pv, tris, n, seed=1)
        d_cam = metrics.apply(view["world_to_cam"], dense / gt["scale"] + gt["centre"])
        seen = metrics.visible_mask(d_cam, zbuf, view["focal_px"], view["tol"])
        n_vis = sample_count(area * seen.mean())
        if seen.sum() >= n_vis or attempt == 2:
            break
        n = int(n * min(8.0, 1.2 * n_vis / max(int(seen.sum()), n_vis // 100)))
    rng = np.random.default_rng(3)
    vis_idx = rng.permutation(np.nonzero(seen)[0])[:n_vis]
    all_idx = rng.permutation(len(dense))[:n_full]
    timing["visibility"] = time.perf_counter() - t
    t = time.perf_counter()
    out: dict = {"visible_fraction": round(float(seen.mean()), 3)}
    if len(vis_idx) == 0:
        return {**out, "error": "no part of the prediction is visible from the input camera"}
    for label in ("raw", "icp"):
        m = np.eye(4) if label == "raw" else metrics.icp_from_camera(
            dense[vis_idx], view["vis_pts"], metrics.normalise(view["cam"][:3, 3][None], gt["scale"], gt["centre"])[0],
            max_points=ICP_POINTS, dst_tree=view["vis_tree"], tol=ICP_TOL)
        pts = metrics.apply(m, dense)
        nrm = dense_n @ m[:3, :3].T
        nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-30)
        res = {"visible": metrics.surface_metrics(pts[vis_idx], nrm[vis_idx], view["vis_pts"], view["vis_n"], TAUS,
                                                  gt_tree=view["vis_tree"], max_queries=MAX_QUERIES)}
        if closed:
            res["full"] = metrics.surface_metrics(pts[all_idx], nrm[all_idx], gt["pts"], gt["n"], TAUS,
                                                  gt_tree=gt["tree"], max_queries=MAX_QUERIES)
            if gt["closed"]:
                res["volumetric_iou"] = metrics.volumetric_iou(metrics.apply(m, pv), tris, gt["v"], gt["tris"],
                                                               n=VOL_POINTS)
        if label == "icp":
            res["icp_scale"] = float(np.cbrt(np.linalg.det(m[:3, :3])))
        out[label] = res
        timing[label] = time.perf_counter() - t
        t = time.perf_counter()
    out["metric_seconds"] = {k: round(v, 3) for k, v in timing.items()}
    return out


def _worker_seconds(result: dict, wall: float) -> dict:
    tm = result["timings"]
    return {"worker.segment": tm.get("segment"), "worker.depth": tm.get("depth"), "worker.total": tm.get("total"),
            "worker_wall": round(wall, 3)}


def _reconstruct(engine: str, out: Path, result: dict, wall: float, gt: dict, view: dict, modules: dict,
                 category: str | None = None) -> dict:
    """Build one worker result as the operator does, score it, then blend templates over the same build
    (the operator's ``apply_templates`` at the default weight) and score that, fitted (Fit 1, the
    default) and rigid (Fit 0): {mode: scores}. With ``modules["true_category"]`` and a known
    ``category`` the blend's candidates are only that category's templates and the best is always placed
    (``<engine>+truecat``: what a right template gives, apart from retrieval: the artist's Place Template
    with the true category, ``scene.template_blend.place_category``)."""
    modes: dict = {}
    if modules.get("true_category") == "gt":
        return _reconstruct_gt(engine, out, result, wall, gt, view, modules)
    blends = [] if modules.get("true_category") == "only" and category else [""]
    if modules.get("true_category") and category:
        blends.append(category)
    for i, cat in enumerate(blends):
        modes.update(_reconstruct_once(engine, out, result, wall, gt, view, modules, cat, with_plain=i == 0))
    return modes


def _reconstruct_gt(engine: str, out: Path, result: dict, wall: float, gt: dict, view: dict, modules: dict) -> dict:
    """The bounds of the template blend's shape: the build, then the blend's ray shell made with the GT
    mesh itself, posed exactly, as the fitted template (``<engine>+gtshell``), and the template body made
    with it (``<engine>+gtbody``)."""
    import bpy

    bpy.ops.wm.read_homefile(app_template="", use_empty=True)
    settings = modules["settings"]
    report = modules["build"].build_from_result(out, settings, context=bpy.context, focal_mm=LENS)
    to_gt = view["cam"] @ np.linalg.inv(np.array(report.camera.matrix_world, np.float64))
    pred_v, sizes, loops, closed = _collect(report.objects, to_gt)
    base = {**_worker_seconds(result, wall), "build": round(report.timings.get("total", 0.0), 3)}
    modes = {engine: {"closed": closed, **_score(pred_v, sizes, loops, closed, gt, view), "seconds": base}}
    shell, match_mod, ffd = modules["template_shell"], modules["match"], modules["ffd"]
    gt_cam = metrics.apply(view["world_to_cam"], gt["v"] / gt["scale"] + gt["centre"])
    pose = match_mod.Pose(np.eye(3), np.zeros(3), 1.0)
    match = match_mod.Match("GT", "", 1.0, 1.0, 0.0, pose, 1.0, (0.0, 0.0))
    lattice = ffd.Lattice.around(gt_cam, (2, 2, 2))
    fit = modules["ffd_fit"].LatticeFit(lattice, 1.0, 0.0, 0.0, 0.0, 0.0, np.zeros(lattice.num_points))
    vs, ss, ls, off = [], [], [], 0
    t = time.perf_counter()
    for o in report.objects:
        if shell.has_back(o):
            v, s, lp, _, _ = shell.shell_arrays(o, report.camera, gt_cam, gt["tris"], match, fit, 1.0)
            v = metrics.apply(view["cam"], v)
        else:
            v, s, lp = _evaluated(o)
            v = metrics.apply(to_gt, v)
        vs.append(v)
        ss.append(s)
        ls.append(lp.astype(np.int64) + off)
        off += len(v)
    t_shell = time.perf_counter() - t
    modes[f"{engine}+gtshell"] = {"closed": closed, **_score(np.concatenate(vs), np.concatenate(ss),
                                                             np.concatenate(ls), closed, gt, view),
                                  "seconds": {**base, "template": round(t_shell, 3)}}
    modes[f"{engine}+gtbody"] = _gt_body(out, report, gt, gt_cam, pose, view, base, modules)
    return modes


def _gt_body(out: Path, report, gt: dict, gt_cam: np.ndarray, pose, view: dict, base: dict, modules: dict) -> dict:
    """The template body blend (``templates.body``) with the GT mesh, densified as the blend densifies a
    template and posed exactly, as the template: its seen vertices pulled along the camera rays onto the
    reconstruction (<engine>+gtbody). Its full shape is scored whether or not the GT mesh is closed (it is
    the template's own mesh); the volume where the GT is closed."""
    body, tbody, mesh = modules["body"], modules["template_body"], modules["mesh"]
    camera = modules["build"].camera_for_result(modules["build"].read_result(out), LENS)
    t = time.perf_counter()
    dense, _ = mesh.densify(mesh.PolyMesh(gt_cam, np.full(len(gt["tris"]), 3), gt["tris"].reshape(-1)))
    surfaces = [tbody.camera_space_surface(o, report.camera) for o in report.objects]
    offsets = np.cumsum([0] + [len(v) for v, _ in surfaces])
    surface = np.concatenate([v for v, _ in surfaces])
    tris = np.concatenate([f + o for (_, f), o in zip(surfaces, offsets)])
    weights, target = body.body_weights(dense.vertices, dense.triangles(), pose, camera, 1.0, surface, tris)
    v = metrics.apply(view["cam"], body.blended(dense.vertices, weights, target))
    t_body = time.perf_counter() - t
    return {"closed": bool(gt["closed"]), **_score(v, dense.face_sizes, dense.loops.astype(np.int64), True, gt, view),
            "seconds": {**base, "template": round(t_body, 3)}}


def _reconstruct_once(engine: str, out: Path, result: dict, wall: float, gt: dict, view: dict, modules: dict,
                      category: str, with_plain: bool) -> dict:
    import bpy

    build, apply_templates = modules["build"], modules["apply_templates"]
    bpy.ops.wm.read_homefile(app_template="", use_empty=True)
    settings = modules["settings"]
    report = build.build_from_result(out, settings, context=bpy.context, focal_mm=LENS)
    to_gt = view["cam"] @ np.linalg.inv(np.array(report.camera.matrix_world, np.float64))
    pred_v, sizes, loops, closed = _collect(report.objects, to_gt)
    t = time.perf_counter()
    scores = _score(pred_v, sizes, loops, closed, gt, view)
    base = {**_worker_seconds(result, wall), "build": round(report.timings.get("total", 0.0), 3)}
    plain = {"closed": closed, "objects": len(report.objects), "vertices": int(len(pred_v)), **scores,
             "seconds": {**base, "metrics": round(time.perf_counter() - t, 3)},
             "build_timings": {k: round(v, 4) for k, v in report.timings.items()}}
    modes = {engine: plain} if with_plain else {}
    t = time.perf_counter()
    try:
        if category:  # the artist's Place Template with the object's true category, on each object
            place = modules["place_category"]
            blended = [place(o, category, settings, weight=modules["weight"], context=bpy.context,
                             library=modules["library"]) for o in report.objects]
        else:
            blended = apply_templates(bpy.context, out, report, settings, modules["weight"], LENS)
    except RuntimeError as exc:  # the operator reports it and keeps the reconstruction: so does the score
        blended, note = [], f"template blend failed: {exc}"
    else:
        note = None
    t_tpl = time.perf_counter() - t
    matches = [{"template": r.result.matches[0].template if r.result.matches else None,
                "category": r.result.matches[0].category if r.result.matches else None,
                "score": round(r.result.matches[0].score, 4) if r.result.matches else None,
                "accepted": r.result.accepted, "placed": r.object is not None,
                "ambiguous": r.result.ambiguous, "threshold": round(r.result.threshold, 4),
                "all": [[m.template, m.category, round(m.score, 4)] for m in r.result.matches],
                **({"fit_iou": round(r.fits[0].iou, 4), "fit_displacement": round(r.fits[0].displacement, 4),
                    "fit_depth_error": round(r.fits[0].depth_error, 5), "profile": r.fits[0].profile is not None,
                    "fit_s": round(sum(f.seconds for f in r.fits), 3)} if r.fits else {})} for r in blended]
    placed = {r.source.name: r.object for r in blended if r.object is not None}
    variants = (((f"{engine}+truecat", 1.0),) if category else
                ((f"{engine}+template", 1.0), (f"{engine}+rigid", 0.0)))
    for mode, fit in variants:
        tpl: dict = {"templates": matches, **({"note": note} if note else {})}
        if placed:
            for obj in placed.values():
                obj[modules["fit_prop"]] = fit
                obj.update_tag()
            bpy.context.view_layer.update()
            shown = [placed.get(o.name, o) for o in report.objects]
            pred_v, sizes, loops, closed = _collect(shown, to_gt)
            t = time.perf_counter()
            tpl.update({"closed": closed, "objects": len(shown), "vertices": int(len(pred_v)),
                        **_score(pred_v, sizes, loops, closed, gt, view)})
            metrics_s = time.perf_counter() - t
        else:  # nothing blended: the operator leaves the reconstruction as it is, so are its scores
            tpl.update({k: v for k, v in plain.items() if k not in ("seconds", "build_timings")})
            metrics_s = 0.0
        tpl["seconds"] = {**base, "template": round(t_tpl, 3), "metrics": round(metrics_s, 3)}
        modes[mode] = tpl
    return modes


def bench_3d(tmp: Path, quick: bool, worker: ServeWorker, engines: dict[str, list[str]],
             meshes: Path = DATA / "meshes", sets: tuple[str, ...] = ("meshes", "templates"),
             weight: float | None = None, view_ids: list[int] | None = None,
             objects: list[str] | None = None, true_category: str | None = None) -> dict:
    import bench_masks
    import blender_env

    PROFILES.append(blender_env.use_profile())  # a throw-away Blender profile (with the wheels: hundreds of MB)
    import bpy

    module = blender_env.install_extension()
    ingest = importlib.import_module(module.__name__ + ".scene.ingest")
    geometry = importlib.import_module(module.__name__ + ".geometry")
    modules = {
        "build": importlib.import_module(module.__name__ + ".scene.build"),
        "apply_templates": importlib.import_module(module.__name__ + ".pipeline").apply_templates,
        "settings": geometry.MeshSettings(),
        # the panel's default, read from the registered property, unless told otherwise
        "weight": float(bpy.context.scene.monocle.bl_rna.properties["template_weight"].default
                        if weight is None else weight),
        "fit_prop": importlib.import_module(module.__name__ + ".scene.template_lattice").FIT_PROP,
        "place_category": importlib.import_module(module.__name__ + ".scene.template_blend").place_category,
        "library": importlib.import_module(module.__name__ + ".templates.library").bundled_library(),
        "true_category": true_category,
        "template_shell": importlib.import_module(module.__name__ + ".scene.template_shell"),
        "match": importlib.import_module(module.__name__ + ".templates.match"),
        "ffd": importlib.import_module(module.__name__ + ".templates.ffd"),
        "ffd_fit": importlib.import_module(module.__name__ + ".templates.ffd_fit"),
        "body": importlib.import_module(module.__name__ + ".templates.body"),
        "template_body": importlib.import_module(module.__name__ + ".scene.template_body"),
        "mesh": importlib.import_module(module.__name__ + ".templates.mesh"),
    }
    views = VIEWS[:1] if quick else VIEWS
    if view_ids:
        views = tuple(VIEWS[i] for i in view_ids)
    runs = {"oracle": None, **engines}  # None: the oracle's args depend on the render
    items = []
    for subject in subjects(quick, module, meshes, sets):
        if objects and subject["name"] not in objects and subject.get("category") not in objects:
            continue
        t = time.perf_counter()
        try:
            scene, obj = _setup_scene(subject, ingest)
            gt = _ground_truth(obj)
            renders = []
            for vi, (az, el) in enumerate(views):
                folder = tmp / f"3d-{subject['set']}-{subject['name'].replace(' ', '_')}-{vi}"
                cam = _camera(scene, az, el)
                renders.append((folder, np.array(cam.matrix_world, np.float64), _render(scene, folder)))
        except Exception as exc:
            items.append({"item": subject["name"], "set": subject["set"], "error": f"render: {exc}"[:300]})
            continue
        t_render = (time.perf_counter() - t) / len(views)
        # queue every engine run of this object now: the worker computes while this process builds and scores
        pending = {}
        for vi, (folder, _, _) in enumerate(renders):
            for engine, eargs in runs.items():
                args = ["--image", str(folder / "photo.png"), "--out", str(folder / engine)]
                args += (["--mask", str(folder / "alpha.png"), "--depth", str(folder / "z.exr"),
                          "--depth-kind", "metric"] if engine == "oracle" else eargs)
                pending[vi, engine] = worker.submit(args)
        for vi, (folder, cam_matrix, z) in enumerate(renders):
            view = _view(gt, cam_matrix, z)
            item: dict = {"item": f"{subject['name']} v{vi}", "object": subject["name"], "set": subject["set"],
                          "source": subject["source"], "category": subject.get("category"), "view": vi,
                          "gt_closed": gt["closed"],
                          "mask_pixels": int(view["mask"].sum()),
                          "gt_visible_fraction": round(view["visible_fraction"], 3),
                          "render_s": round(t_render, 3)}
            for engine in runs:
                try:
                    result, wall = worker.wait(pending[vi, engine])
                    if engine != "oracle":
                        dm = metrics.relative_depth_metrics(inverse_depth(result, folder / engine), view["z"],
                                                            view["mask"])
                        aligned, _, _ = metrics.align_inverse_depth(inverse_depth(result, folder / engine), view["z"],
                                                                    view["mask"])
                        # the relief's typical error against the object's size (a median: pixels the engine left
                        # out of its own mask get its background depth, far off, and would swamp a mean)
                        dm["mad_per_size"] = float(np.median(np.abs(aligned - view["z"])[view["mask"]])) / SIZE
                        dm["mask_iou"] = metrics.mask_iou(bench_masks.union_mask(result, folder / engine),
                                                          view["mask"])
                        item.setdefault("depth", {})[engine] = {k: round(dm[k], 4) for k in DEPTH_KEYS}
                    item.update(_reconstruct(engine, folder / engine, result, wall, gt, view, modules,
                                             subject.get("category")))
                except Exception as exc:
                    item[engine] = item[f"{engine}+template"] = {"error": str(exc)[:400]}
            items.append(item)
            log(f"3d {item['item']:24s} " + "  ".join(
                f"{m} {_fmt(_get(item, m, 'raw' if m.startswith('oracle') else 'icp', 'visible', 'f@0.1'))}"
                for m in _modes(items)))
    groups = {s: [i for i in items if i.get("set") == s] for s in ("meshes", "templates")}
    return {"items": items, "modes": _modes(items), "meshes": str(meshes),
            "mean": {s: _means_3d(g, _modes(items)) for s, g in groups.items() if g},
            "per_object": {s: _per_object(g, _modes(items)) for s, g in groups.items() if g},
            "settings": {"resolution": [W, H], "lens_mm": LENS, "views_az_el_deg": list(views),
                         "render_samples": RENDER_SAMPLES, "samples_min": N_SAMPLES, "samples_per_unit2": DENSITY,
                         "samples_max": MAX_SAMPLES, "queries": MAX_QUERIES,
                         "icp_points": ICP_POINTS, "icp_tol": ICP_TOL,
                         "volume_points": VOL_POINTS, "template_weight": modules["weight"],
                         "mesh_settings": vars(modules["settings"])}}


# --------------------------------------------------------------------------- aggregation


def _modes(items: list[dict]) -> list[str]:
    blends = ("", "+rigid", "+template", "+truecat", "+gtshell", "+gtbody")
    order = [f"{e}{b}" for e in ("oracle", "classic", "transformers") for b in blends]
    present = {k for i in items for k in i if k in order}
    return [m for m in order if m in present]


def _get(item: dict, mode: str, align: str, part: str, key: str) -> float | None:
    r = item.get(mode, {}).get(align, {})
    return r.get(part, {}).get(key) if part else r.get(key)


SPEED_KEYS = ("worker.segment", "worker.depth", "worker.total", "worker_wall", "build", "template", "metrics")
DEPTH_KEYS = ("abs_rel", "delta1", "mad_per_size", "mask_iou")  # (the engine's masks against the render's alpha)


def _is_blend(mode: str) -> bool:
    return mode.endswith(("+template", "+rigid", "+truecat", "+gtshell", "+gtbody"))


def _category_counts(items: list[dict], mode: str) -> dict | None:
    """Views whose object has a known category: the template placed was of it (right), of another
    (wrong), or none was placed."""
    out = {"right": 0, "wrong": 0, "none": 0}
    known = [i for i in items if i.get("category") and i.get(mode, {}).get("templates")]
    for i in known:
        t = i[mode]["templates"][0]
        out["none" if not t["placed"] else "right" if t["category"] == i["category"] else "wrong"] += 1
    return out if known else None


def _means_3d(items: list[dict], modes: list[str]) -> dict:
    out: dict = {}
    for mode in modes:
        for align in ("raw", "icp"):
            d = {}
            for part in ("visible", "full"):
                for key in ("f@0.1", "f@0.3", "f@0.5", "chamfer_l1", "chamfer_l2", "normal_consistency"):
                    d[f"{part}.{key}"] = mean([_get(i, mode, align, part, key) for i in items])
            d["volumetric_iou"] = mean([_get(i, mode, align, "", "volumetric_iou") for i in items])
            d["min.visible.f@0.1"] = min((v for v in (_get(i, mode, align, "visible", "f@0.1") for i in items)
                                          if v is not None), default=None)
            out[f"{mode}.{align}"] = d
        out[f"{mode}.seconds"] = {k: mean([i.get(mode, {}).get("seconds", {}).get(k) for i in items])
                                  for k in SPEED_KEYS}
        out[f"{mode}.errors"] = sum(1 for i in items if "error" in i.get(mode, {"error": 1}))
        if _is_blend(mode):
            out[f"{mode}.placed"] = sum(1 for i in items for t in i.get(mode, {}).get("templates", []) if t["placed"])
            out[f"{mode}.category"] = _category_counts(items, mode)
            out[f"{mode}.fit_s"] = mean([t.get("fit_s") for i in items for t in i.get(mode, {}).get("templates", [])
                                         if t["placed"]])
    for engine in ("classic", "transformers"):
        vals = [i["depth"][engine] for i in items if engine in i.get("depth", {})]
        if vals:
            out[f"{engine}.depth"] = {k: mean([v.get(k) for v in vals]) for k in DEPTH_KEYS}
    out["render_s"] = mean([i.get("render_s") for i in items])
    out["count"] = len(items)
    return out


def _per_object(items: list[dict], modes: list[str]) -> list[dict]:
    """Per object, over its views: oracle's lowest visible F@0.1, each mode's mean visible F@0.1 raw / ICP,
    depth on its renders, and the templates the blend picked."""
    rows = []
    for name in dict.fromkeys(i["item"].rsplit(" v", 1)[0] for i in items):
        its = [i for i in items if i["item"].rsplit(" v", 1)[0] == name]
        row: dict = {"object": name, "views": len(its)}
        for mode in modes:
            row[mode] = {a: mean([_get(i, mode, a, "visible", "f@0.1") for i in its]) for a in ("raw", "icp")}
            row[mode]["vol_iou_icp"] = mean([_get(i, mode, "icp", "", "volumetric_iou") for i in its])
            if _is_blend(mode):
                picked = [t["template"] for i in its for t in i.get(mode, {}).get("templates", []) if t["placed"]]
                row[mode]["placed"] = picked
        row["oracle_min"] = min((v for v in (_get(i, "oracle", "raw", "visible", "f@0.1") for i in its)
                                 if v is not None), default=None)
        for engine in ("classic", "transformers"):
            vals = [i["depth"][engine] for i in its if engine in i.get("depth", {})]
            if vals:
                row[f"{engine}.depth"] = {k: mean([v.get(k) for v in vals]) for k in DEPTH_KEYS}
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- report


def _fmt(v: float | None, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def _object_table(rows: list[dict], modes: list[str], engines: list[str], self_name: bool) -> list[str]:
    cols = ["object", "oracle min"]
    for mode in modes:
        cols += [f"{mode} raw", f"{mode} ICP"] if mode != "oracle" else ["oracle mean"]
    cols += [f"{e} mask IoU · depth AbsRel / δ1 / MedAE÷size" for e in engines] + ["templates placed"]
    lines = ["| " + " | ".join(cols) + " |", "|---" * len(cols) + "|"]
    for r in rows:
        cells = [r["object"], _fmt(r["oracle_min"])]
        for mode in modes:
            cells += [_fmt(r[mode]["raw"]), _fmt(r[mode]["icp"])] if mode != "oracle" else [_fmt(r[mode]["raw"])]
        for e in engines:
            d = r.get(f"{e}.depth")
            cells.append(f"{_fmt(d.get('mask_iou'))} · {_fmt(d['abs_rel'])} / {_fmt(d['delta1'])} / "
                         f"{_fmt(d['mad_per_size'])}" if d else "—")
        placed = sorted({p for m in modes if _is_blend(m) for p in r[m].get("placed", [])})
        if self_name:
            placed = [("**" + p + "**") if p == r["object"] else p for p in placed]
        cells.append(", ".join(placed) or "none")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _placed_cell(m: dict, mode: str) -> str:
    if f"{mode}.placed" not in m:
        return ""
    cat = m.get(f"{mode}.category")
    return f"{m[f'{mode}.placed']}" + (f" ({cat['right']} / {cat['wrong']} / {cat['none']})" if cat else "")


def markdown(rep: dict) -> str:
    """The scoreboard's Markdown: what was run, then one section per benchmark that ran."""
    lines = ["## Quality scoreboard", "",
             f"`make bench-quality{' QUICK=1' if rep['quick'] else ''}` on {rep['machine']['cpus']} CPUs "
             f"(load average {rep['machine']['load_average_before'][0]:.1f} before the run), "
             f"{rep['total_s']:.0f} s in all. Definitions: `bench/metrics.py`, `../shared/bench-data/METRICS.md`. "
             "Shapes are scored in the GT-10 frame (GT longest bbox edge = 10, so F@0.1 = within 1 % of the size); "
             "*visible* = GT points the render's Z pass shows vs the prediction's points its own z-buffer shows "
             "from the same camera; *raw* = as built in the render's camera, *ICP* = after a scale + rigid ICP of "
             "the visible part (started from the build and from the build scaled about the camera to the GT's "
             "distance, which a photo cannot tell; the start that ends closer both ways is kept); "
             "*+template* = the same build followed by the template blend at the default weight "
             f"({rep['3d']['settings']['template_weight'] if '3d' in rep else 0.5:g}) with the template's fitted "
             "lattice (Fit 1, the default), *+rigid* = the same blend with Fit 0; both scored on what the artist "
             "sees (the blended template where one was placed, else the reconstruction). *templates placed*: "
             "views with a template (right / wrong category / none where the object's category is known).", ""]
    if rep.get("3d"):
        lines += _markdown_3d(rep["3d"])
    if rep.get("depth"):
        lines += _markdown_depth(rep["depth"], rep.get("3d"))
    if rep.get("masks"):
        lines += _markdown_masks(rep["masks"])
    return "\n".join(lines)


def _markdown_3d(d3: dict) -> list[str]:
    """The 3D reconstruction section: scores per mode, seconds per image, scores per object."""
    lines = _quality_table_3d(d3) + _seconds_table_3d(d3)
    modes = d3["modes"]
    engines = [m for m in modes if "+" not in m and m != "oracle"]
    for e in engines:
        ious = ", ".join(f"{s} {_fmt(m.get(f'{e}.depth', {}).get('mask_iou'))}" for s, m in d3["mean"].items())
        lines += ["", f"The {e} engine's masks against the renders' alpha (IoU, mean over the views): {ious}."]
    titles = {"meshes": f"third-party meshes (`{d3.get('meshes', DATA / 'meshes')}`)",
              "templates": "the bundled templates (`assets/templates.blend`; retrieving itself is the easy case)"}
    for s, rows in d3["per_object"].items():
        lines += ["", f"Visible F@0.1 per object on {titles[s]} (mean over views; oracle min = its lowest view):",
                  ""] + _object_table(rows, modes, engines, s == "templates")
    lines += ["", "![F-score per object](quality_fscore.png)", ""]
    return lines


def _quality_table_3d(d3: dict) -> list[str]:
    """Mean shape scores per object set, mode and alignment."""
    modes = d3["modes"]
    lines = ["### 3D reconstruction (Cycles renders, 3 views each)", "",
              "Means per mode. Oracle = GT mask and Z pass through the real worker and builder.", "",
              "| objects | mode | align | vis F@0.1 | min vis F@0.1 | vis F@0.3 | vis CD-L1 | vis NC | full F@0.1 "
              "| full CD-L1 | vol IoU | templates placed |", "|---" * 12 + "|"]
    for s, m in d3["mean"].items():
        for mode in modes:
            for align in ("raw", "icp"):
                r = m[f"{mode}.{align}"]
                lines.append(f"| {s} ({m['count']}) | **{mode}** | {align} | " + " | ".join(_fmt(r[k]) for k in (
                    "visible.f@0.1", "min.visible.f@0.1", "visible.f@0.3", "visible.chamfer_l1",
                    "visible.normal_consistency", "full.f@0.1", "full.chamfer_l1", "volumetric_iou"))
                    + f" | {_placed_cell(m, mode)} |")
    return lines


def _seconds_table_3d(d3: dict) -> list[str]:
    """Mean seconds per image per object set and mode."""
    modes = d3["modes"]
    lines = ["", "Seconds per image (mean over every view). *worker* = the warm serve worker's whole request "
              "(of which *segment* and *depth*), *build* = `build_from_result`, *template* = matching and "
              "placing (`apply_templates`), *total* = worker + build + template, what the artist waits for; "
              "rendering the test image and scoring are the benchmark's own costs:", "",
              "| objects | mode | segment | depth | worker | build | template | **total** | (render) | (metrics) |",
              "|---" * 10 + "|"]
    for s, m in d3["mean"].items():
        for mode in modes:
            sec = m[f"{mode}.seconds"]
            total = sum(sec[k] or 0.0 for k in ("worker_wall", "build", "template"))
            lines.append(f"| {s} | {mode} | " + " | ".join(
                _fmt(sec[k], 2) for k in ("worker.segment", "worker.depth", "worker_wall", "build", "template"))
                + f" | **{total:.2f}** | {_fmt(m['render_s'], 2)} | {_fmt(sec['metrics'], 2)} |")
    return lines


def _markdown_depth(dd: dict, d3: dict | None) -> list[str]:
    """The depth section: AbsRel and δ1 per frame and engine (and on the renders, when run)."""
    lines: list[str] = []
    engines = list(dd["mean"])
    lines += ["### Depth (scale-and-shift fit in inverse depth)", "",
              "| frame | " + " | ".join(f"{e} AbsRel | {e} δ1" for e in engines) + " |",
              "|---" * (1 + 2 * len(engines)) + "|"]
    for it in dd["items"]:
        cells = []
        for e in engines:
            r = it.get(e, {})
            cells += ["error", ""] if "error" in r else [_fmt(r.get("abs_rel")), _fmt(r.get("delta1"))]
        lines.append(f"| {it['frame']} | " + " | ".join(cells) + " |")
    lines.append("| **mean of the frames** | " + " | ".join(
        f"**{_fmt(dd['mean'][e]['abs_rel'])}** | **{_fmt(dd['mean'][e]['delta1'])}**" for e in engines) + " |")
    for s, m in (d3 or {}).get("mean", {}).items():
        lines.append(f"| Cycles renders, {s} (mean of {m['count']}, inside the object's mask) | " + " | ".join(
            f"{_fmt(m.get(f'{e}.depth', {}).get('abs_rel'))} | {_fmt(m.get(f'{e}.depth', {}).get('delta1'))}"
            for e in engines) + " |")
    if d3:
        lines += ["", "On the renders an object 2 units across sits about 5 units away, so depth varies by only "
                  "a few tens of percent inside its mask and AbsRel / δ1 are forgiving; the per-object tables add "
                  "the aligned depth's median absolute error divided by the object's size (MedAE÷size), which "
                  "shows how far the relief is off."]
    lines.append("")
    for e, why in dd["absent"].items():
        lines.append(f"{e} engine: {why}. For scale, Depth Anything V2 Small reports NYU AbsRel 0.053 / "
                     "δ1 0.973 zero-shot (METRICS.md).")
    lines += ["", "![depth error](quality_depth.png)", ""]
    return lines


def _markdown_masks(dm: dict) -> list[str]:
    """The masks section: IoU per photo without and with a box."""
    lines: list[str] = []
    lines += ["### Masks (classic engine, GrabCut photos)", "",
              "| photo | IoU no hint | IoU box |", "|---|---|---|"]
    for it in dm["items"]:
        lines.append(f"| {it['image']} | {it['none']['iou']:.3f} | {it['box']['iou']:.3f} |")
    lines += [f"| **mean** | **{_fmt(dm['mean']['none']['iou'])}** | **{_fmt(dm['mean']['box']['iou'])}** |", ""]
    return lines


def plots(rep: dict, results: Path, stem: str = "quality") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d3 = rep.get("3d")
    if d3 and d3["per_object"]:
        series = [(m, "raw" if m.startswith("oracle") else "icp") for m in d3["modes"]]
        groups = list(d3["per_object"].items())
        fig, axes = plt.subplots(len(groups), 1, figsize=(14, 3.6 * len(groups)), squeeze=False)
        width = 0.8 / len(series)
        for ax, (s, rows) in zip(axes[:, 0], groups):
            x = np.arange(len(rows))
            for k, (mode, align) in enumerate(series):
                ax.bar(x + k * width, [r[mode][align] or 0.0 for r in rows], width, label=f"{mode} {align}")
            ax.axhline(ORACLE_GOAL, color="k", lw=0.8, ls="--")
            ax.set_xticks(x + 0.4 - width / 2, [r["object"] for r in rows], rotation=70, fontsize=7)
            ax.set_ylabel("visible F@0.1")
            ax.set_ylim(0, 1.02)
            ax.set_title(f"{s}: visible-surface F@0.1 per object (mean over views)", fontsize=9)
        axes[0, 0].legend(fontsize=7, ncol=len(series), loc="lower center", bbox_to_anchor=(0.5, 1.08))
        fig.tight_layout()
        fig.savefig(results / f"{stem}_fscore.png", dpi=100)
        plt.close(fig)
    dd = rep.get("depth")
    if dd:
        engines = list(dd["mean"])
        panels = [("RGB-D frames and stereo_motorcycle", [(i["frame"].split(" (")[0], i) for i in dd["items"]])]
        for s, rows in (d3 or {}).get("per_object", {}).items():
            panels.append((f"Cycles renders of the {s} (mean over views, inside the mask)",
                           [(r["object"], {e: r.get(f"{e}.depth", {}) for e in engines}) for r in rows]))
        fig, axes = plt.subplots(len(panels), 1, figsize=(14, 3.4 * len(panels)), squeeze=False)
        for ax, (title, rows) in zip(axes[:, 0], panels):
            x = np.arange(len(rows))
            width = 0.8 / (2 * len(engines))
            for k, e in enumerate(engines):
                ax.bar(x + 2 * k * width, [r.get(e, {}).get("abs_rel") or 0 for _, r in rows], width,
                       label=f"{e} AbsRel")
                ax.bar(x + (2 * k + 1) * width, [1 - (r.get(e, {}).get("delta1") or 1) for _, r in rows], width,
                       label=f"{e} 1 - δ1")
                if "mad_per_size" in (rows[0][1].get(e) or {}):
                    ax.plot(x + 2 * k * width, [r.get(e, {}).get("mad_per_size") or 0 for _, r in rows], "k_",
                            ms=12, mew=2, label="median abs. error / object size" if k == 0 else None)
            ax.set_xticks(x + 0.4 - width / 2, [n for n, _ in rows], rotation=60 if len(rows) > 12 else 20,
                          fontsize=7)
            ax.set_title(f"{title}: depth error (lower is better)", fontsize=9)
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(results / f"{stem}_depth.png", dpi=100)
        plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer photos, frames, objects and views")
    parser.add_argument("--only", choices=("masks", "depth", "3d"), action="append", default=None)
    parser.add_argument("--meshes", type=Path, default=DATA / "meshes",
                        help="folder of the 3D part's meshes (default: all of ../shared/bench-data/meshes)")
    parser.add_argument("--set", choices=("meshes", "templates"), action="append", default=None, dest="sets",
                        help="which 3D subjects: the meshes, the bundled templates (default: both)")
    parser.add_argument("--template-weight", type=float, default=None,
                        help="the template blend's weight (default: the panel's default)")
    parser.add_argument("--views", type=lambda s: [int(v) for v in s.split(",")], default=None,
                        help="3D views to render, as indices into VIEWS (e.g. 0,2; default: all, or the first "
                             "with --quick)")
    parser.add_argument("--objects", type=lambda s: s.split(","), default=None,
                        help="3D subjects to keep, by name or category (comma-separated; default: all)")
    parser.add_argument("--template-category", choices=("oracle", "only", "gt"), default=None,
                        help="also blend with only the object's true category (its folder under meshes/category) as "
                             "candidates, always placing the best (mode <engine>+truecat): shape quality apart from "
                             "retrieval; 'only': that blend alone; 'gt': the blend's shell with the GT mesh itself, "
                             "posed exactly, as the template (modes <engine>+gtshell, the ray shell, and "
                             "<engine>+gtbody, the template body: the bounds of the two blends)")
    parser.add_argument("--category", action="store_true",
                        help="the template benchmark on real objects: --only 3d --meshes ../shared/bench-data/meshes/"
                             "category --set meshes --template-category oracle, a full run of which is written as "
                             "quality_category.* beside the main results (make bench-quality runs both)")
    parser.add_argument("--results", type=Path, default=None,
                        help="where quality.json/.md and the plots go (default: bench/results for a full run, "
                             "bench/results/quick for a --quick or --only run)")
    args = parser.parse_args()
    stem = "quality"
    if args.category:
        args.only, args.meshes, args.sets = ["3d"], DATA / "meshes" / "category", ["meshes"]
        args.template_category = args.template_category or "oracle"
        stem = "quality_category"
    if args.results is None:
        partial = (args.quick or args.only or args.sets or args.meshes != DATA / "meshes"
                   or args.template_weight is not None or args.views or args.objects or args.template_category)
        if args.category:
            partial = args.quick or args.template_weight is not None or args.views or args.objects
        args.results = RESULTS / "quick" if partial else RESULTS
    parts = args.only or ["masks", "depth", "3d"]
    t0 = time.perf_counter()
    rep: dict = {"quick": args.quick, "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                                  "load_average_before": [round(v, 2) for v in os.getloadavg()]}}
    engines, absent = engines_available()
    rep["engines"] = {"run": list(engines), "absent": absent}
    with tempfile.TemporaryDirectory(prefix="monocle-quality-") as tmp:
        worker = ServeWorker(Path(tmp) / "serve.log")
        try:
            for part in ("masks", "depth", "3d"):
                if part not in parts:
                    continue
                t = time.perf_counter()
                if part == "masks":
                    rep[part] = bench_masks(Path(tmp), args.quick, worker)
                elif part == "depth":
                    rep[part] = bench_depth(Path(tmp), args.quick, worker, engines, absent)
                else:
                    rep[part] = bench_3d(Path(tmp), args.quick, worker, engines, args.meshes.resolve(),
                                         tuple(args.sets or ("meshes", "templates")), args.template_weight,
                                         args.views, args.objects, args.template_category)
                rep[part]["seconds"] = round(time.perf_counter() - t, 1)
                log(f"{part}: {rep[part]['seconds']} s")
        finally:
            worker.close()
    rep["total_s"] = round(time.perf_counter() - t0, 1)
    rep["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{stem}.json").write_text(json.dumps(rep, indent=1, default=float))
    md = markdown(rep)
    if stem != "quality":  # its plots beside the main results' under their own names
        md = md.replace("](quality_", f"]({stem}_")
    (args.results / f"{stem}.md").write_text(md)
    plots(rep, args.results, stem)
    print(md)
    import blender_env

    for profile in PROFILES:
        blender_env.remove_profile(profile)
    fails = [i["item"] for i in rep.get("3d", {}).get("items", [])
             if (_get(i, "oracle", "raw", "visible", "f@0.1") or 0) < ORACLE_GOAL]
    if fails:
        log(f"oracle visible F@0.1 below {ORACLE_GOAL} on: {', '.join(fails)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
