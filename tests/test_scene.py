"""Scene building (``scene.build``) through the installed extension: camera, collection,
material, exact Displace relief (the reprojection rule), watertightness and rollback."""

from __future__ import annotations

import importlib
import math

import bpy
import numpy as np
import pytest
from PIL import Image
from scene_checks import evaluated_world, grid_mesh, is_watertight, reprojection_error

STRENGTHS = (0.0, 0.5, 1.0, 2.0)
W, H = 96, 64


def _mods(monocle):
    name = monocle.__name__
    return (importlib.import_module(name + ".geometry"), importlib.import_module(name + ".scene.build"),
            importlib.import_module(name + ".scene.result"))


def _photo(path, w=W, h=H):
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _datablock_counts() -> dict[str, int]:
    kinds = ("objects", "meshes", "cameras", "materials", "textures", "images", "collections")
    return {k: len(getattr(bpy.data, k)) for k in kinds}


def _set_strength(obj, s):
    obj.modifiers["Relief"].strength = s
    bpy.context.view_layer.update()


def _assert_exact_relief(obj, report, data, strengths=STRENGTHS):
    """Reprojection within 0.5 px at every strength, and the displacement is strength * relief."""
    cam = report.camera
    rot = np.array(obj.matrix_world, dtype=np.float64)[:3, :3]
    base = None
    for s in strengths:
        _set_strength(obj, s)
        err = reprojection_error(obj, cam, bpy.context.scene)
        assert err.max() < 0.5, (s, float(err.max()))
        world = evaluated_world(obj)
        if base is None:
            base = world - s * data.relief.astype(np.float64) @ rot.T
        expect = base + s * data.relief.astype(np.float64) @ rot.T
        scale = float(np.ptp(world, axis=0).max())
        assert np.abs(world - expect).max() < 1e-5 * max(scale, 1.0), s


# -- hand-made meshes: the Blender side alone -------------------------------------------------


@pytest.mark.parametrize("closed", [False, True])
@pytest.mark.parametrize("photo_texture", [False, True])
def test_handmade_relief_is_exact_at_every_strength(monocle, tmp_path, closed, photo_texture):
    geometry, build, _ = _mods(monocle)
    camera = geometry.CameraModel(W, H, focal_mm=35.0)
    mask = np.zeros((H, W), bool)
    mask[10:50, 20:70] = True
    data = grid_mesh(geometry, camera, mask, depth=4.0, bump=0.3, closed=closed, photo_texture=photo_texture)
    settings = geometry.MeshSettings(back="closed" if closed else "open")
    report = build.build_scene([("object", data)], camera, _photo(tmp_path / "p.png"), settings, name="p")
    obj = report.objects[0]
    relief_mod = obj.modifiers["Relief"]
    assert (relief_mod.direction, relief_mod.space, relief_mod.texture_coords) == ("RGB_TO_XYZ", "LOCAL", "UV")
    tex = relief_mod.texture
    assert tex.image.packed_file is not None and tex.image.is_float
    if photo_texture:  # the geometry's own texture was consistent, so it is the one used
        assert tuple(tex.image.size) == (W, H)
    _assert_exact_relief(obj, report, data)
    if closed:
        back = obj.modifiers["Relief Back"]
        _set_strength(obj, 1.5)
        assert obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).modifiers["Relief Back"].strength == -1.5
        assert back.vertex_group == "back" and relief_mod.vertex_group == "front"
        assert is_watertight(obj)
    # the relief really moves the surface: 0.3 units at the bump's peak
    _set_strength(obj, 0.0)
    flat = evaluated_world(obj)
    _set_strength(obj, 1.0)
    assert np.linalg.norm(evaluated_world(obj) - flat, axis=1).max() == pytest.approx(0.3, rel=0.05)


def test_relief_survives_save_and_reload(monocle, tmp_path):
    geometry, build, _ = _mods(monocle)
    camera = geometry.CameraModel(W, H)
    mask = np.zeros((H, W), bool)
    mask[5:40, 5:60] = True
    data = grid_mesh(geometry, camera, mask, depth=3.0, bump=0.2, closed=True)
    build.build_scene([("object", data)], camera, _photo(tmp_path / "p.png"), geometry.MeshSettings(), name="p")
    path = tmp_path / "saved.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))
    obj = bpy.data.objects["object"]
    cam = bpy.data.objects["p Camera"]
    for s in (0.0, 2.0):
        _set_strength(obj, s)
        assert reprojection_error(obj, cam, bpy.context.scene).max() < 0.5
    assert obj.modifiers["Relief"].texture.image.packed_file is not None


def test_camera_collection_material(monocle, tmp_path):
    geometry, build, _ = _mods(monocle)
    camera = geometry.CameraModel(W, H, focal_mm=28.0)
    mask = np.zeros((H, W), bool)
    mask[10:30, 10:30] = True
    mask2 = np.zeros((H, W), bool)
    mask2[30:60, 50:90] = True
    meshes = [("object", grid_mesh(geometry, camera, mask, 2.0)), ("object", grid_mesh(geometry, camera, mask2, 6.0))]
    photo = _photo(tmp_path / "coffee.png")
    report = build.build_scene(meshes, camera, photo, geometry.MeshSettings(back="open"), name="coffee")
    scene = bpy.context.scene
    assert report.collection.name == "coffee" and report.collection.name in scene.collection.children
    assert {o.name for o in report.collection.objects} == {"coffee Camera", "object", "object.001"}
    assert [o.name for o in report.objects] == ["object", "object.001"]
    assert report.vertex_counts == [400, 1200]
    assert (scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage) == (W, H, 100)
    cam = report.camera
    assert scene.camera == cam
    assert cam.data.lens == pytest.approx(28.0) and cam.data.sensor_fit == "AUTO"
    assert cam.data.sensor_width == pytest.approx(36.0)
    assert cam.data.background_images[0].image.filepath == str(photo) and cam.data.show_background_images
    # Blender's field of view is the photo's: 36 mm across the long side
    assert cam.data.angle_x == pytest.approx(2 * math.atan(18.0 / 28.0))
    # the material shows the photo through the "Photo" UV map
    mat = report.objects[0].active_material
    tex = next(n for n in mat.node_tree.nodes if n.type == "TEX_IMAGE")
    assert tex.image.filepath == str(photo)
    bsdf = next(n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    assert bsdf.inputs["Base Color"].links[0].from_node == tex
    assert tex.inputs["Vector"].links[0].from_node.uv_map == "Photo"
    assert report.objects[0].data.uv_layers.active.name == "Photo"
    # order in depth kept: object 0 (2 units) is nearer the camera than object 1 (6 units)
    cam_pos = np.array(cam.matrix_world.translation)
    d = [np.linalg.norm(evaluated_world(o) - cam_pos, axis=1).mean() for o in report.objects]
    assert d[0] < d[1]
    # a second build gets its own collection
    again = build.build_scene(meshes[:1], camera, photo, geometry.MeshSettings(back="open"), name="coffee")
    assert again.collection.name == "coffee.001"
    assert again.objects[0].name == "object.002"
    assert all(not o.data.validate() for o in report.objects)


def test_failure_mid_build_leaves_nothing(monocle, tmp_path, monkeypatch):
    geometry, build, result_mod = _mods(monocle)
    camera = geometry.CameraModel(W, H)
    mask = np.zeros((H, W), bool)
    mask[10:30, 10:30] = True
    meshes = [("object", grid_mesh(geometry, camera, mask, 2.0, closed=True))] * 3
    photo = _photo(tmp_path / "p.png")
    scene = bpy.context.scene
    before = _datablock_counts()
    res_before = (scene.render.resolution_x, scene.render.resolution_y, scene.camera)
    real = build.make_relief_image
    calls = []

    def fail_on_third(*args, **kwargs):  # an injected failure after two objects are complete
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(build, "make_relief_image", fail_on_third)
    with pytest.raises(result_mod.BuildError, match="disk full"):
        build.build_scene(meshes, camera, photo, geometry.MeshSettings(), name="p")
    assert len(calls) == 3
    assert _datablock_counts() == before
    assert (scene.render.resolution_x, scene.render.resolution_y, scene.camera) == res_before


def test_invalid_mesh_is_refused_before_anything_is_made(monocle, tmp_path):
    geometry, build, result_mod = _mods(monocle)
    camera = geometry.CameraModel(W, H)
    mask = np.zeros((H, W), bool)
    mask[10:30, 10:30] = True
    data = grid_mesh(geometry, camera, mask, 2.0)
    data.loops = data.loops.copy()
    data.loops[5] = data.num_vertices + 10  # would read out of bounds inside Blender
    before = _datablock_counts()
    with pytest.raises(result_mod.BuildError) as info:
        build.build_scene([("object", data)], camera, _photo(tmp_path / "p.png"), geometry.MeshSettings(), name="p")
    assert info.value.code == "mesh_invalid"
    assert _datablock_counts() == before
