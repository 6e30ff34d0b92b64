"""Proportions from metric depth and a model's focal length: a Cycles render made with a 26 mm
camera (a phone's equivalent) and no EXIF, through the real worker and the real build.

The depth model is an ONNX model with MoGe-2's interface whose point map is the render's own
(its Z pass seen through the true 26 mm camera, then scaled and moved along z as MoGe's
affine-invariant output is): the worker must recover the focal length and the shift, and the
built objects must have their real widths and depth extents. The same render with its metric
depth but no focal length gets the 50 mm default, and its widths come out about half size.
"""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import bmesh
import bpy
import numpy as np
import onnxruntime  # noqa: F401 - installed by requirements-dev.txt: missing is a broken environment, not a skip
import pytest
from conftest import run_worker
from mathutils import Matrix, Vector
from PIL import Image
from render_util import render_rgba_depth, use_cycles
from scene_checks import add_bmesh_object, evaluated_world

W, H = 480, 360
LENS = 26.0
FOCAL_PX = LENS / 36.0 * W
AFFINE_SCALE, AFFINE_SHIFT = 0.6, 0.9  # what MoGe's output leaves unknown; the worker must undo it
BOX = {"centre": (-0.7, 0.0, -3.2), "side": 0.8, "height": 0.7}  # square footprint, turned 45 degrees
CYLINDER = {"centre": (0.8, 0.0, -3.0), "radius": 0.35, "height": 0.7}  # axis upright (camera y)


def _scene() -> bpy.types.Scene:
    """The camera at the origin looking down -z (camera space is world space), a box and a cylinder."""
    scene = bpy.context.scene
    use_cycles(scene, W, H, samples=1)
    cam = bpy.data.objects.new("GT Camera", bpy.data.cameras.new("GT Camera"))
    cam.data.lens, cam.data.sensor_fit, cam.data.sensor_width = LENS, "AUTO", 36.0
    scene.collection.objects.link(cam)
    scene.camera = cam
    for name, make in (("Box", _box), ("Cylinder", _cylinder)):
        add_bmesh_object(scene, name, *make())
    light = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
    scene.collection.objects.link(light)
    bpy.context.view_layer.update()
    return scene


def _box() -> tuple[bmesh.types.BMesh, Matrix]:
    bm = bmesh.new()
    bmesh.ops.create_cube(bm, size=1.0)
    scale = Matrix.Diagonal((BOX["side"], BOX["height"], BOX["side"], 1.0))
    return bm, Matrix.Translation(Vector(BOX["centre"])) @ Matrix.Rotation(math.radians(45), 4, "Y") @ scale


def _cylinder() -> tuple[bmesh.types.BMesh, Matrix]:
    bm = bmesh.new()
    r = CYLINDER["radius"]
    bmesh.ops.create_cone(bm, cap_ends=True, segments=256, radius1=r, radius2=r, depth=CYLINDER["height"])
    return bm, Matrix.Translation(Vector(CYLINDER["centre"])) @ Matrix.Rotation(math.radians(90), 4, "X")


def _widths() -> dict[str, float]:
    """The visible width along camera x of each object, from its shape."""
    box = BOX["side"] * math.sqrt(2.0)  # corner edge to corner edge of the turned square
    cx, cz = CYLINDER["centre"][0], CYLINDER["centre"][2]
    r, d = CYLINDER["radius"], math.hypot(cx, cz)
    towards, spread = math.atan2(cx, -cz), math.asin(r / d)
    tangent = math.sqrt(d * d - r * r)
    xs = [tangent * math.sin(towards + s * spread) for s in (-1, 1)]  # the silhouette's tangent points
    return {"box": box, "cylinder": max(xs) - min(xs)}


def _moge_model_of(depth: np.ndarray, mask: np.ndarray, path: Path) -> Path:
    """An ONNX model with MoGe-2's inputs and outputs that predicts this render's point map."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    yy, xx = np.mgrid[0:H, 0:W] + 0.5
    z = np.where(mask, depth, 10.0)  # "sky" where nothing was hit: the mask output says to ignore it
    points = np.stack([(xx - 0.5 * W) / FOCAL_PX * z, (yy - 0.5 * H) / FOCAL_PX * z, z - AFFINE_SHIFT], -1)
    tensors = {
        "points": (points * AFFINE_SCALE)[None].astype(np.float32),
        "normal": np.zeros((1, H, W, 3), np.float32),
        "mask": np.where(mask, 0.99, 0.01)[None].astype(np.float32),
        "metric_scale": np.array([1.0 / AFFINE_SCALE], np.float32),
    }
    nodes = [helper.make_node("Identity", [name + "_value"], [name]) for name in tensors]
    graph = helper.make_graph(
        nodes, "render_moge",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "height", "width"]),
         helper.make_tensor_value_info("num_tokens", TensorProto.INT64, [])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(v.shape)) for name, v in tensors.items()],
        [numpy_helper.from_array(v, name + "_value") for name, v in tensors.items()],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def _measure(report) -> dict[str, tuple[float, float]]:
    """(width along the built camera's x, depth extent along its axis) of each built object, left to right."""
    to_cam = np.linalg.inv(np.array(report.camera.matrix_world, dtype=np.float64))
    found = []
    for obj in report.objects:
        world = evaluated_world(obj)
        cam = world @ to_cam[:3, :3].T + to_cam[:3, 3]
        found.append((float(cam[:, 0].mean()), float(np.ptp(cam[:, 0])), float(np.ptp(-cam[:, 2]))))
    found.sort()
    return {"box": found[0][1:], "cylinder": found[1][1:]}


def test_a_26mm_render_keeps_its_proportions_with_the_model_focal_and_not_with_the_default(
        monocle, ext_dir, tmp_path):
    geometry = importlib.import_module(monocle.__name__ + ".geometry")
    build = importlib.import_module(monocle.__name__ + ".scene.build")
    scene = _scene()
    rgba, depth = render_rgba_depth(scene, tmp_path)
    mask = rgba[..., 3] > 0.5
    srgb = np.clip(rgba[..., :3], 0, 1) ** (1 / 2.2)
    Image.fromarray((srgb * 255).astype(np.uint8)).save(tmp_path / "photo.png")  # a PNG: no EXIF
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    np.save(tmp_path / "depth.npy", np.where(mask, depth, np.nan).astype(np.float32))
    model = _moge_model_of(depth, mask, tmp_path / "model.onnx")
    # Depth extents: what the render's pixels see (the Z pass over each object). The farthest visible
    # points lie on the silhouette, which a pixel centre misses by up to a pixel; for the box that is
    # within 2.5 % of its analytic extent (front edge to side edges), checked here.
    left = mask & (np.arange(W) < W // 2)[None, :]
    extents = {"box": float(np.ptp(depth[left])), "cylinder": float(np.ptp(depth[mask & ~left]))}
    assert extents["box"] == pytest.approx(BOX["side"] / math.sqrt(2.0), rel=0.025)
    truth = {obj: (width, extents[obj]) for obj, width in _widths().items()}

    runs = {
        "model": ["--engine", "moge", "--depth-model", str(model)],
        "default": ["--depth", str(tmp_path / "depth.npy"), "--depth-kind", "metric"],
    }
    # Depth Range far from the truth: metric depth must not use it
    settings = geometry.MeshSettings(detail=40_000, back="open", depth_range=5.0)
    measured = {}
    for name, args in runs.items():
        out = tmp_path / name
        code, events, err = run_worker(ext_dir, "run", "--image", str(tmp_path / "photo.png"), "--out", str(out),
                                       "--mask", str(tmp_path / "mask.png"), *args)
        assert code == 0, (events, err[-2000:])
        camera = json.loads((out / "result.json").read_text())["camera"]
        assert camera["focal_source"] == name and camera["focal_35mm"] is None
        bpy.ops.wm.read_homefile(app_template="", use_empty=True)
        report = build.build_from_result(out, settings)  # as the button does with no EXIF: no focal override
        assert len(report.objects) == 2
        measured[name] = (report.camera.data.lens, _measure(report))

    lens, sizes = measured["model"]
    assert lens == pytest.approx(LENS, rel=0.005)
    for obj, (width, extent) in truth.items():
        assert sizes[obj][0] == pytest.approx(width, rel=0.02), (obj, sizes[obj], truth[obj])
        assert sizes[obj][1] == pytest.approx(extent, rel=0.02), (obj, sizes[obj], truth[obj])

    lens, sizes = measured["default"]
    assert lens == pytest.approx(50.0)
    for obj, (width, extent) in truth.items():
        assert 0.45 < sizes[obj][0] / width < 0.6, (obj, sizes[obj], truth[obj])  # 26/50: about half the width
        assert sizes[obj][1] == pytest.approx(extent, rel=0.02)  # depth comes from the map either way
