"""Render -> reconstruct -> compare: known shapes rendered by Cycles give a mask (alpha) and a
ground-truth depth (Z pass); the real worker and ``scene.build`` must give back the shape.

Cycles' Z pass is the distance along the camera axis (checked here against an analytic
ray cast of the sphere), which is what ``--depth-kind metric`` means, so no conversion is
needed. A pixel filter of 0.01 px makes every pixel one ray through its centre: alpha is
binary and Z is exact at the centre.
"""

from __future__ import annotations

import importlib
import json
import math

import bmesh
import bpy
import numpy as np
import pytest
from conftest import run_worker
from mathutils import Euler, Matrix, Vector
from PIL import Image
from render_util import render_rgba_depth, use_cycles
from scene_checks import add_bmesh_object, evaluated_world, is_watertight, reprojection_error

W, H = 160, 120
LENS = 35.0
CAM_LOCATION = Vector((0.4, -4.6, 1.3))


def _cycles(scene: bpy.types.Scene) -> None:
    use_cycles(scene, W, H, samples=1)


def _render(scene: bpy.types.Scene, folder) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render the scene camera; returns (rgba float (H, W, 4), depth (H, W)), top row first, and
    writes photo.png, mask.png and depth.exr into ``folder``."""
    rgba, depth = render_rgba_depth(scene, folder)
    frame = f"{scene.frame_current:04d}"
    (folder / f"depth{frame}.exr").rename(folder / "depth.exr")
    mask = rgba[..., 3] > 0.5
    srgb = np.clip(rgba[..., :3], 0, 1) ** (1 / 2.2)
    Image.fromarray((srgb * 255).astype(np.uint8)).save(folder / "photo.png")
    Image.fromarray(mask.astype(np.uint8) * 255).save(folder / "mask.png")
    # the same depth with "no depth" (NaN) on the background instead of Cycles' 1e10
    np.save(folder / "depth.npy", np.where(mask, depth, np.nan).astype(np.float32))
    return rgba, depth, mask


def _camera(scene: bpy.types.Scene) -> bpy.types.Object:
    cam = bpy.data.objects.new("GT Camera", bpy.data.cameras.new("GT Camera"))
    cam.data.lens = LENS
    cam.data.sensor_fit = "AUTO"
    cam.data.sensor_width = 36.0
    cam.location = CAM_LOCATION
    cam.rotation_euler = (-CAM_LOCATION).to_track_quat("-Z", "Y").to_euler()
    scene.collection.objects.link(cam)
    scene.camera = cam
    return cam


def _add_mesh(scene, name: str, bm: bmesh.types.BMesh, matrix: Matrix) -> bpy.types.Object:
    obj = add_bmesh_object(scene, name, bm, matrix)
    light = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
    light.rotation_euler = (0.6, 0.2, 0.4)
    scene.collection.objects.link(light)
    return obj


def _torus_bmesh(major: float, minor: float, nu: int = 128, nv: int = 64) -> bmesh.types.BMesh:
    u, v = np.meshgrid(np.arange(nu) * 2 * np.pi / nu, np.arange(nv) * 2 * np.pi / nv, indexing="ij")
    pts = np.stack([(major + minor * np.cos(v)) * np.cos(u), (major + minor * np.cos(v)) * np.sin(u),
                    minor * np.sin(v)], -1).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(nu), np.arange(nv), indexing="ij")
    a = i * nv + j
    b = ((i + 1) % nu) * nv + j
    c = ((i + 1) % nu) * nv + (j + 1) % nv
    d = i * nv + (j + 1) % nv
    quads = np.stack([a, b, c, d], -1).reshape(-1, 4)
    bm = bmesh.new()
    verts = [bm.verts.new(p) for p in pts.tolist()]  # test scaffolding: ~8k vertices, once
    for q in quads.tolist():
        bm.faces.new([verts[k] for k in q])
    return bm


# shape: (make bmesh, world matrix, signed-distance-free surface distance in local space, size)
def _sphere():
    bm = bmesh.new()
    bmesh.ops.create_uvsphere(bm, u_segments=128, v_segments=64, radius=1.2)
    return bm, Matrix.Identity(4), lambda p: np.abs(np.linalg.norm(p, axis=1) - 1.2), 2.4


def _cube():
    bm = bmesh.new()
    bmesh.ops.create_cube(bm, size=1.8)

    def dist(p):
        q = np.abs(p) - 0.9
        outside = np.linalg.norm(np.maximum(q, 0), axis=1)
        inside = np.minimum(q.max(axis=1), 0)
        return np.abs(outside + inside)

    return bm, Euler((0.35, 0.2, 0.6)).to_matrix().to_4x4(), dist, 1.8


def _torus():
    def dist(p):
        q = np.stack([np.hypot(p[:, 0], p[:, 1]) - 1.1, p[:, 2]], 1)
        return np.abs(np.linalg.norm(q, axis=1) - 0.4)

    return _torus_bmesh(1.1, 0.4), Euler((1.1, 0.0, 0.3)).to_matrix().to_4x4(), dist, 3.0


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


# Cycles writes 1e10 on the background of the Z pass: the raw EXR must work as it is; the
# .npy carries the same depth with NaN on the background.


@pytest.mark.parametrize(("shape", "depth_file"), [
    ("sphere", "depth.npy"), ("cube", "depth.npy"), ("torus", "depth.npy"),
    ("sphere", "depth.exr"),
])
def test_render_roundtrip(monocle, ext_dir, tmp_path, shape, depth_file):
    geometry = importlib.import_module(monocle.__name__ + ".geometry")
    build = importlib.import_module(monocle.__name__ + ".scene.build")
    scene = bpy.context.scene
    _cycles(scene)
    cam = _camera(scene)
    bm, matrix, surface_distance, size = {"sphere": _sphere, "cube": _cube, "torus": _torus}[shape]()
    _add_mesh(scene, shape, bm, matrix)
    bpy.context.view_layer.update()
    gt_cam = np.array(cam.matrix_world, dtype=np.float64)
    _, depth, mask = _render(scene, tmp_path)
    assert 1500 < mask.sum() < 0.6 * W * H  # the shape is in the frame and not clipped

    if shape == "sphere":  # Z pass = distance along the camera axis: check against a ray cast
        model = geometry.CameraModel(W, H, focal_mm=LENS)
        ys, xs = np.nonzero(mask)
        rays = model.rays(np.stack([xs + 0.5, ys + 0.5], 1))  # camera space, z = -1
        d_world = rays @ gt_cam[:3, :3].T
        o = gt_cam[:3, 3]
        b = d_world @ o
        a = (d_world**2).sum(1)
        t = (-b - np.sqrt(np.maximum(b * b - a * (o @ o - 1.2**2), 0))) / a  # axial depth = t since z = -1
        inner = t > 0
        assert np.median(np.abs(depth[ys, xs][inner] - t[inner])) < 2e-3

    out = tmp_path / "result"
    code, events, err = run_worker(
        ext_dir, "run", "--image", str(tmp_path / "photo.png"), "--out", str(out), "--mask", str(tmp_path / "mask.png"),
        "--depth", str(tmp_path / depth_file), "--depth-kind", "metric",
    )
    assert code == 0, (events, err)
    assert json.loads((out / "result.json").read_text())["depth"]["kind"] == "metric"

    bpy.ops.wm.read_homefile(app_template="", use_empty=True)
    scene = bpy.context.scene
    settings = geometry.MeshSettings(detail=20_000, back="closed")
    report = build.build_from_result(out, settings, focal_mm=LENS)
    assert len(report.objects) == 1
    obj = report.objects[0]
    assert is_watertight(obj)
    for s in (0.0, 1.0, 2.0):
        obj.modifiers["Relief"].strength = s
        bpy.context.view_layer.update()
        assert reprojection_error(obj, report.camera, scene).max() < 0.5, s
    obj.modifiers["Relief"].strength = 1.0
    bpy.context.view_layer.update()

    # front surface against the analytic shape, in the render's world
    to_gt = gt_cam @ np.linalg.inv(np.array(report.camera.matrix_world, dtype=np.float64))
    world = evaluated_world(obj) @ to_gt[:3, :3].T + to_gt[:3, 3]
    # the geometry layer's own output names the front vertices (the mesh keeps its vertex order)
    result = build.read_result(out)
    (_, data), = build.meshes_from_result(result, settings, build.camera_for_result(result, LENS))[0]
    assert data.num_vertices == len(obj.data.vertices)
    front = np.asarray(data.groups["front"], bool)
    m = np.array(matrix, dtype=np.float64)
    local = (world[front] - m[:3, 3]) @ m[:3, :3]
    err = surface_distance(local)
    assert err.mean() < 0.01 * size, (shape, float(err.mean()))

    # silhouette: render the reconstruction through the built camera
    _cycles(scene)
    (tmp_path / "rebuilt").mkdir()
    _, _, rebuilt = _render(scene, tmp_path / "rebuilt")
    iou = _iou(rebuilt, mask)
    assert iou >= 0.98, (shape, iou)
    # the two cameras agree: same framing and field of view
    assert report.camera.data.angle_x == pytest.approx(2 * math.atan(18.0 / LENS))
