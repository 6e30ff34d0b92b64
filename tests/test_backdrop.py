"""The backdrop (the rest of the photo behind the objects) and the ground the objects stand on.

The scene test renders objects standing on a textured floor with Cycles, runs the real worker
on the render with its ground-truth masks and depth, builds with a backdrop and checks that the
ground is found, that the objects stand on it and that a flat render through the camera gives
back the photo over the whole frame.
"""

from __future__ import annotations

import importlib
import json
import math
import shutil

import bmesh
import bpy
import numpy as np
import pytest
from conftest import run_worker
from floor_scene import camera, flat_render, floor, light, psnr, render_floor_scene, stand
from mathutils import Vector
from monocle.scene.evaluated import read_evaluated
from PIL import Image

W, H = 160, 120
LENS = 35.0


@pytest.fixture
def geo(monocle):
    return lambda name: importlib.import_module(f"{monocle.__name__}.geometry.{name}")


def _floor_depth(camera_model, normal, offset, shape):
    h, w = shape
    jj, ii = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    rays = camera_model.rays(np.stack([jj.ravel(), ii.ravel()], 1))
    return (-offset / (rays @ normal)).reshape(h, w).astype(np.float32)


def test_ground_fit_is_robust_and_stands_objects(monocle, geo):
    cam = monocle.geometry.CameraModel(320, 240, 35.0)
    e = math.radians(25)
    normal, offset = np.array([0.0, math.cos(e), math.sin(e)]), 1.5
    z = _floor_depth(cam, normal, offset, (240, 320))
    jj, ii = np.meshgrid(np.arange(320), np.arange(240))
    masks = [(jj - 100) ** 2 + (ii - 170) ** 2 < 25 ** 2, (jj - 220) ** 2 + (ii - 150) ** 2 < 20 ** 2]
    for m in masks:
        z[m] -= 0.3  # the objects, nearer than the floor behind them
    z[150:240, 140:160] *= 0.8  # an outlier strip (a table leg) next to the feet
    filled = geo("backdrop").fill_depth(z, masks[0] | masks[1])
    assert np.all(filled[masks[0]] >= z[masks[0]])  # never in front of what the camera sees
    plane = geo("ground").find_ground(masks, filled, cam)
    assert plane is not None and plane.supported == [True, True]
    assert math.degrees(math.acos(min(1.0, float(plane.normal @ normal)))) < 0.5
    assert plane.offset == pytest.approx(offset, rel=0.01)
    # a ball hovering 0.2 above the plane is scaled along its rays until it touches
    centre = -(offset - 0.5) * normal - np.array([0.0, 0.0, 3.0])
    ball = centre + 0.3 * np.random.default_rng(1).normal(size=(500, 3))
    s = geo("ground").stand_scale(ball, plane)
    assert s is not None
    assert float((s * ball @ plane.normal).min() + plane.offset) == pytest.approx(0.0, abs=1e-9)
    # a wall (facing the camera) is no ground
    wall = np.full((240, 320), 4.0, np.float32)
    assert geo("ground").find_ground(masks, wall, cam) is None


def _bmesh_object(scene, name, make):
    bm = bmesh.new()
    make(bm)
    mesh = bpy.data.meshes.new(name)
    bm.to_mesh(mesh)
    bm.free()
    obj = bpy.data.objects.new(name, mesh)
    scene.collection.objects.link(obj)
    return obj


def _camera_points(obj, cam_matrix):
    """The evaluated (Displace applied) vertices of ``obj`` in the camera's space."""
    return read_evaluated(obj, np.linalg.inv(cam_matrix), faces=False).vertices


def test_backdrop_reproduces_the_photo_and_objects_stand(monocle, ext_dir, tmp_path):
    scene = bpy.context.scene
    light(scene)
    floor(scene)
    cube = _bmesh_object(scene, "Cube", lambda bm: bmesh.ops.create_cube(bm, size=1.0))
    ball = _bmesh_object(scene, "Ball", lambda bm: bmesh.ops.create_uvsphere(bm, u_segments=32, v_segments=16,
                                                                            radius=0.5))
    stand(cube, 0.9, -0.7, 0.2, 0.5)
    stand(ball, 0.8, 0.7, -0.3, 0.0)
    cam = camera(scene, 5.0, 30.0, LENS)
    bpy.context.view_layer.update()
    gt_up = np.array(cam.matrix_world.to_3x3().transposed() @ Vector((0.0, 0.0, 1.0)))  # the floor's normal
    gt = render_floor_scene(scene, [cube, ball], tmp_path, W, H)
    assert set(np.unique(gt["labels"])) == {0, 1, 2}

    out = tmp_path / "result"
    code, events, stderr = run_worker(
        ext_dir, "run", "--image", str(tmp_path / "photo.png"), "--out", str(out), "--mask",
        str(tmp_path / "labels.png"), "--depth", str(tmp_path / "depth.npy"), "--depth-kind", "metric")
    assert code == 0, stderr
    build = importlib.import_module(monocle.__name__ + ".scene.build")
    photo = gt["rgb"]
    scores = {}
    for mode in ("none", "plane", "relief"):
        bpy.ops.wm.read_homefile(app_template="", use_empty=True)
        settings = monocle.geometry.MeshSettings(detail=4000, backdrop=mode, ground=True)
        report = build.build_from_result(out, settings, focal_mm=LENS, image_path=tmp_path / "photo.png")
        assert (report.backdrop is None) == (mode == "none")
        assert report.backdrop not in report.objects
        scores[mode] = psnr(flat_render(bpy.context.scene, tmp_path / mode), photo)
        ground = report.ground
        assert ground is not None
        normal = np.array(ground["normal"])
        assert math.degrees(math.acos(min(1.0, float(normal @ gt_up)))) < 2.0
        cam_matrix = np.array(report.camera.matrix_world)
        if mode == "plane":  # flat, and behind every object (backs included), so it never hides one
            back_z = _camera_points(report.backdrop, cam_matrix)[:, 2]
            assert np.ptp(back_z) < 1e-4
            assert -back_z.max() > max(-_camera_points(o, cam_matrix)[:, 2].min() for o in report.objects)
        for obj, placed in zip(report.objects, ground["objects"]):
            assert placed["standing"]
            # the GT depth already has them on the floor: the placement moves them little (the closed
            # back, a mirror of the front, is what reaches lowest on the cube)
            assert placed["scale"] == pytest.approx(1.0, abs=0.08)
            assert obj["monocle_ground_scale"] == pytest.approx(placed["scale"])
            pts = _camera_points(obj, cam_matrix)
            size = float(np.linalg.norm(pts.max(0) - pts.min(0)))
            assert abs(float((pts @ normal).min()) + ground["offset"]) < 0.01 * size
    assert (tmp_path / "result" / "backdrop.png").is_file()
    assert scores["relief"] >= 30.0 and scores["plane"] >= 30.0, scores
    assert scores["none"] < 20.0, scores  # the objects alone leave the rest black: the bound can fail

    # the same objects with no depth off them (a render's empty background): the filled-in
    # backdrop is no ground, so nothing is found and nothing moves
    np.save(tmp_path / "objects-only.npy", np.where(gt["labels"] > 0, gt["depth"], np.nan).astype(np.float32))
    code, _, stderr = run_worker(
        ext_dir, "run", "--image", str(tmp_path / "photo.png"), "--out", str(tmp_path / "bare"), "--mask",
        str(tmp_path / "labels.png"), "--depth", str(tmp_path / "objects-only.npy"), "--depth-kind", "metric")
    assert code == 0, stderr
    bpy.ops.wm.read_homefile(app_template="", use_empty=True)
    settings = monocle.geometry.MeshSettings(detail=4000, backdrop="relief", ground=True)
    report = build.build_from_result(tmp_path / "bare", settings, focal_mm=LENS, image_path=tmp_path / "photo.png")
    assert report.ground is None and report.backdrop is not None
    assert not any("monocle_ground_scale" in o for o in report.objects)


@pytest.fixture
def fruit(photo_dir, tmp_path):
    dst = tmp_path / "fruit.jpg"
    shutil.copy(photo_dir / "fruit.jpg", dst)
    return dst


def test_operator_backdrop_setting_and_redo(fruit):
    props = bpy.ops.monocle.reconstruct.get_rna_type().properties
    assert props["backdrop"].default == "NONE" and props["ground"].default is True  # F9 shows both
    assert {i.identifier for i in props["backdrop"].enum_items} == {"NONE", "PLANE", "RELIEF"}
    settings = bpy.context.scene.monocle
    settings.image_path, settings.detail = str(fruit), 2000
    assert bpy.ops.monocle.reconstruct(backdrop="RELIEF") == {"FINISHED"}
    coll = bpy.data.collections["fruit"]
    backdrop = coll.objects["fruit Backdrop"]
    texture = next(n for n in backdrop.active_material.node_tree.nodes if n.type == "TEX_IMAGE").image
    assert texture.packed_file is not None and texture.size[:] == (640, 480)  # the inpainted photo, kept in the file
    # the backdrop covers the whole frame: its vertices' photo UVs reach every edge
    uv = np.empty(len(backdrop.data.loops) * 2, np.float32)
    backdrop.data.uv_layers["Photo"].data.foreach_get("uv", uv)
    assert uv.min() < 0.01 and uv.max() > 0.99
    assert not backdrop.select_get() and all(o.select_get() for o in coll.objects if o.type == "MESH" and o != backdrop)
    bpy.ops.wm.read_homefile(app_template="", use_empty=True)
    settings = bpy.context.scene.monocle
    settings.image_path, settings.detail = str(fruit), 2000
    assert bpy.ops.monocle.reconstruct() == {"FINISHED"}  # none by default
    assert not any(o.name.endswith("Backdrop") for o in bpy.data.objects)


def test_cli_backdrop_and_ground_report(monocle, fruit, tmp_path):
    cli = importlib.import_module(monocle.__name__ + ".cli")
    out, report = tmp_path / "out", tmp_path / "report.json"
    args = ["reconstruct", str(fruit), "-o", str(out), "--detail", "2000", "--format", "blend",
            "--report", str(report)]
    assert cli.main([*args, "--backdrop", "wall"]) == 2  # not one of none, plane, relief
    assert cli.main([*args, "--backdrop", "plane"]) == 0
    item = json.loads(report.read_text())["items"][0]
    assert "ground" in item  # the plane the objects stand on, or None when the photo shows none
    bpy.ops.wm.open_mainfile(filepath=str(out / "fruit.blend"))
    backdrop = bpy.data.objects["fruit Backdrop"]
    co = np.empty(len(backdrop.data.vertices) * 3, np.float32)
    backdrop.data.vertices.foreach_get("co", co)
    assert np.ptp(co.reshape(-1, 3)[:, 2]) < 1e-4  # a plane: flat in its (camera-aligned) space


def test_a_template_stands_where_its_object_was_stood(monocle):
    """Stand on Ground scales an object about the camera; its template matches (made from the depth
    map) move with it, so the template is placed, shell-fitted and depth-scaled where the object now is."""
    blend = importlib.import_module(monocle.__name__ + ".scene.template_blend")
    match = importlib.import_module(monocle.__name__ + ".templates.match")
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    pose = match.Pose(rot, np.array([0.3, -0.2, -4.0]), 0.7)
    res = match.MatchResult("cup", [match.Match("Cup", "cup", 0.9, 0.9, 0.01, pose, 0.8, (0.0, 10.0))])
    obj = bpy.data.objects.new("Cup", bpy.data.meshes.new("Cup"))
    pts = np.random.default_rng(1).normal(size=(20, 3))
    same, centre = blend._on_ground(obj, res, 4.0)
    assert same is res and centre == 4.0  # not stood: nothing moves
    obj["monocle_ground_scale"] = 1.06
    moved, centre = blend._on_ground(obj, res, 4.0)
    assert centre == pytest.approx(4.24)
    assert np.allclose(moved.matches[0].pose.apply(pts), 1.06 * pose.apply(pts))
    assert res.matches[0].pose is pose  # the stored result is not changed in place


def test_no_ground_from_the_classic_engines_guessed_depth(monocle, ext_dir, tmp_path):
    """The classic engine's depth off the objects is its floor rule, not a measurement: Stand on Ground
    finds no plane in it and leaves the objects where the build put them (the backdrop is still made)."""
    yy, xx = np.mgrid[0:240, 0:320]
    rgb = np.full((240, 320, 3), 200, np.uint8)
    rgb[(yy - 120) ** 2 + (xx - 160) ** 2 < 60**2] = (30, 90, 200)  # a blue disc on grey: one object
    Image.fromarray(rgb).save(tmp_path / "disc.png")
    out = tmp_path / "result"
    code, _, stderr = run_worker(ext_dir, "run", "--image", str(tmp_path / "disc.png"), "--out", str(out),
                                 "--engine", "classic")
    assert code == 0, stderr
    build = importlib.import_module(monocle.__name__ + ".scene.build")
    settings = monocle.geometry.MeshSettings(detail=2000, backdrop="plane", ground=True)
    report = build.build_from_result(out, settings)
    assert report.ground is None and report.backdrop is not None
    assert not any("monocle_ground_scale" in o for o in report.objects)
