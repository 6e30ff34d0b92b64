"""Issue 7's retrieval test on Cycles renders: every template appended from the installed
``assets/templates.blend``, rendered by Cycles from a random upright viewpoint (transparent film:
alpha is the mask; the Z pass, the distance along the camera axis, is the ground-truth depth) and
matched against the whole library with an unknown label."""

from __future__ import annotations

import importlib

import bpy
import numpy as np
from mathutils import Matrix
from render_util import render_rgba_depth

W, H = 192, 144
LENS = 50.0


def _cycles(scene: bpy.types.Scene, w: int = W, h: int = H) -> None:
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 1
    scene.cycles.use_denoising = False
    scene.cycles.filter_width = 0.01  # one ray through each pixel centre: binary alpha, exact Z
    scene.render.film_transparent = True
    scene.render.resolution_x, scene.render.resolution_y = w, h
    scene.render.resolution_percentage = 100


def _render_mask_depth(scene: bpy.types.Scene, folder) -> tuple[np.ndarray, np.ndarray]:
    """(alpha > 0.5, Z) of the scene camera, top row first, through the compositor's file output."""
    rgba, depth = render_rgba_depth(scene, folder)
    mask = rgba[..., 3] > 0.5
    return mask, np.where(mask, depth, 0.0)


def _place_camera(scene, tpl, rot: np.ndarray, model, offset: tuple[float, float], fill: float = 0.6) -> np.ndarray:
    """Camera (``model``'s frame and lens) looking at the template (at the world origin) with
    camera-from-model rotation ``rot``, the template spanning ``fill`` of the frame height, shifted by
    ``offset``; returns its translation."""
    w, h = model.width, model.height
    centre = 0.5 * (tpl.vertices.min(axis=0) + tpl.vertices.max(axis=0))
    dist = tpl.size * model.focal_px / (fill * h)
    target = np.array([offset[0] * w / model.focal_px * dist, -offset[1] * h / model.focal_px * dist, -dist])
    trans = target - rot @ centre
    cam_to_world = np.eye(4)
    cam_to_world[:3, :3] = rot.T
    cam_to_world[:3, 3] = -rot.T @ trans
    cam = scene.camera
    if cam is None:
        cam = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
        scene.collection.objects.link(cam)
        scene.camera = cam
    cam.data.lens = model.focal_mm
    cam.data.sensor_fit = "AUTO"
    cam.data.sensor_width = 36.0
    cam.data.clip_end = 10 * dist
    cam.matrix_world = Matrix(cam_to_world.tolist())
    return trans


def test_cycles_renders(monocle, ext_dir, tmp_path):
    """One random upright view of every template, rendered by Cycles: right category first in >= 90 %,
    in the top three in >= 97 %, orientation within 20 degrees in >= 80 %, scale within 5 %."""
    library_mod = importlib.import_module(monocle.__name__ + ".templates.library")
    match = importlib.import_module(monocle.__name__ + ".templates.match")
    render = importlib.import_module(monocle.__name__ + ".templates.render")
    synthetic = importlib.import_module(monocle.__name__ + ".templates.synthetic")
    geometry = importlib.import_module(monocle.__name__ + ".geometry")
    library = library_mod.bundled_library()
    model = geometry.CameraModel(W, H, LENS)
    scene = bpy.context.scene
    _cycles(scene)
    with bpy.data.libraries.load(str(ext_dir / "assets" / "templates.blend"), link=False) as (src, dst):
        dst.objects = list(library.names)
    objects = {o.name: o for o in dst.objects}
    rng = np.random.default_rng(3)
    rows = []
    for k, tpl in enumerate(library.templates):  # one Cycles render per template
        obj = objects[tpl.name]
        scene.collection.objects.link(obj)
        obj.matrix_world = Matrix.Identity(4)
        az, el, roll = synthetic.random_viewpoint(rng)
        c, s = np.cos(np.radians(roll)), np.sin(np.radians(roll))
        rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ render.look_rotation(az, el)
        _place_camera(scene, tpl, rot, model, tuple(rng.uniform(-0.1, 0.1, 2)))
        bpy.context.view_layer.update()
        folder = tmp_path / f"view{k:02d}"
        folder.mkdir()
        mask, depth = _render_mask_depth(scene, folder)
        scene.collection.objects.unlink(obj)
        bpy.data.objects.remove(obj)
        assert 0.002 * W * H < mask.sum() < 0.8 * W * H, tpl.name  # rendered (a thin thing edge-on is small)
        res = match.match_instance(mask, depth, model, library, "object")
        cats = [m.category for m in res.matches]
        best = res.matches[0]
        ok = best.template == tpl.name
        rows.append({
            "name": tpl.name, "view": (round(az), round(el), round(roll, 1)), "top1": cats[0] == tpl.category,
            "top3": tpl.category in cats, "got": [(m.template, round(m.score, 3)) for m in res.matches],
            "orientation": match.orientation_error(best.pose.rotation, rot, tpl.symmetry) if ok else np.inf,
            "scale": best.pose.scale if ok else np.nan,
        })
    n = len(rows)
    bad = [r for r in rows if not r["top1"] or r["orientation"] >= 20.0]
    assert sum(r["top1"] for r in rows) >= 0.90 * n, bad
    # 0.98 until the flat bottles came (121 templates): a tall carton seen from one side is a flask's
    # outline too (Box Tall: Bottle Flask, Cabinet Tall, Bottle Oval), beside a round bin (a tumbler) and a remote
    assert sum(r["top3"] for r in rows) >= 0.97 * n, [(r["name"], r["got"]) for r in rows if not r["top3"]]
    assert sum(r["orientation"] < 20.0 for r in rows) >= 0.80 * n, bad
    scales = np.array([r["scale"] for r in rows if np.isfinite(r["orientation"])])
    assert np.mean(np.abs(scales - 1.0) < 0.05) >= 0.9, scales


def test_thin_template_refined_on_its_cycles_render(monocle, ext_dir, tmp_path):
    """The wall clock (a disc 0.3 m across, 0.042 m thick) rendered by Cycles as bench_quality.py's third
    view sees it (35 mm, 512 x 384, from 160 degrees round and 10 up), retrieved and refined with its exact
    depth: placed at its own thickness and size, and its lattice near rest (its lattice's points had come
    out 800 times its size off, its deformed surface 1870 times its thickness deep: a spiked mesh in
    Blender)."""
    library_mod = importlib.import_module(monocle.__name__ + ".templates.library")
    retrieve = importlib.import_module(monocle.__name__ + ".templates.retrieve")
    tfit = importlib.import_module(monocle.__name__ + ".templates.fit")
    render = importlib.import_module(monocle.__name__ + ".templates.render")
    geometry = importlib.import_module(monocle.__name__ + ".geometry")
    library = library_mod.bundled_library()
    tpl = library.get("Clock Wall")
    w, h = 512, 384
    model = geometry.CameraModel(w, h, 35.0)
    scene = bpy.context.scene
    _cycles(scene, w, h)
    with bpy.data.libraries.load(str(ext_dir / "assets" / "templates.blend"), link=False) as (src, dst):
        dst.objects = [tpl.name]
    obj = dst.objects[0]
    scene.collection.objects.link(obj)
    obj.matrix_world = Matrix.Identity(4)
    rot = render.look_rotation(160.0, 10.0)
    trans = _place_camera(scene, tpl, rot, model, (0.0, 0.0), fill=0.5)
    bpy.context.view_layer.update()
    mask, depth = _render_mask_depth(scene, tmp_path)
    scene.collection.objects.unlink(obj)
    bpy.data.objects.remove(obj)
    trust = tfit.DEPTH_TRUST["file"]
    res, fits = retrieve.retrieve(mask, depth, model, library, "object", trust=trust)
    assert res.accepted and res.matches[0].template == tpl.name, [(m.template, m.score) for m in res.matches]
    res, fits = tfit.refine_matches(res, fits, library, model, mask, depth, trust)
    pose, lattice = res.matches[0].pose, fits[0].lattice
    v = tpl.vertices.astype(np.float64)
    placed = pose.apply(lattice.deform(v))  # in camera space, as the truth: rot @ v + trans
    truth = v @ rot.T + trans
    thick = lambda p: float(np.ptp((p - p.mean(axis=0)) @ rot[:, 1]))  # noqa: E731  along the clock's axis
    assert abs(thick(placed) / thick(truth) - 1.0) < 0.2, thick(placed) / thick(truth)
    rigid = pose.apply(v)  # Fit 0: the library's proportions at the refined size
    across = lambda p: float(np.ptp((p - p.mean(axis=0)) @ rot[:, 0]))  # noqa: E731
    assert abs(across(rigid) / across(truth) - 1.0) < 0.05, across(rigid) / across(truth)
    assert np.abs(lattice.offsets).max() < 0.5 * tpl.size, np.abs(lattice.offsets).max() / tpl.size
