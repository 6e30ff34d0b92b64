"""Scene building (``scene.build``) through the installed extension: camera, collection,
material, exact Displace relief (the reprojection rule), watertightness and rollback."""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import bpy
import numpy as np
import pytest
from conftest import run_worker
from monocle.scene.evaluated import evaluated_mesh
from PIL import Image
from render_util import render_rgba_depth, use_cycles
from scene_checks import evaluated_world, grid_mesh, is_watertight, photo_uv_per_vertex, reprojection_error

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
        assert tuple(tex.image.size) == (W, 2 * H if closed else H)
    _assert_exact_relief(obj, report, data)
    # one modifier moves the whole object, the mirrored back included
    assert [m.type for m in obj.modifiers] == ["DISPLACE"] and not relief_mod.vertex_group
    if closed:
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
    # each relief image and texture is named after its object, even when the label was taken
    assert [o.modifiers["Relief"].texture.name for o in report.objects] == ["object Relief", "object.001 Relief"]
    assert [o.modifiers["Relief"].texture.image.name for o in report.objects] == ["object Relief",
                                                                                  "object.001 Relief"]
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


@pytest.mark.parametrize("target, error", [
    ("make_relief_image", RuntimeError("disk full")),  # on the main line, after two objects are complete
    ("per_corner", MemoryError("no room for the corners")),  # a UV gather, on its thread while Blender builds
])
def test_failure_mid_build_leaves_nothing(monocle, tmp_path, monkeypatch, target, error):
    """An injected failure on the third call of a build step surfaces as the build's error;
    every datablock made so far is removed and the scene's render settings are restored."""
    geometry, build, result_mod = _mods(monocle)
    camera = geometry.CameraModel(W, H)
    mask = np.zeros((H, W), bool)
    mask[10:30, 10:30] = True
    meshes = [("object", grid_mesh(geometry, camera, mask, 2.0, closed=True))] * 3
    photo = _photo(tmp_path / "p.png")
    scene = bpy.context.scene
    before = _datablock_counts()
    res_before = (scene.render.resolution_x, scene.render.resolution_y, scene.camera)
    real = getattr(build, target)
    calls = []

    def fail_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(build, target, fail_on_third)
    with pytest.raises(result_mod.BuildError) as info:
        build.build_scene(meshes, camera, photo, geometry.MeshSettings(), name="p")
    assert info.value.code == "build_failed" and str(error) in str(info.value)
    if target == "make_relief_image":  # one call per object, in order: the third object failed
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


# -- real worker results through the geometry layer ---------------------------------------------

def _coffee() -> str:
    import skimage.data

    return str(Path(skimage.data.__file__).parent / "coffee.png")


def _worker(ext_dir, image, out, *extra):
    code, events, err = run_worker(ext_dir, "run", "--image", str(image), "--out", str(out), *map(str, extra))
    assert code == 0, (events, err)
    return out


def _user_result(ext_dir, tmp_path, labels: np.ndarray, depth: np.ndarray, kind: str = "metric"):
    """A worker result from a label map / mask and a depth map given as files."""
    h, w = labels.shape
    photo = _photo(tmp_path / "photo.png", w, h)
    Image.fromarray(labels.astype(np.uint8)).save(tmp_path / "labels.png")
    np.save(tmp_path / "depth.npy", depth.astype(np.float32))
    return _worker(ext_dir, photo, tmp_path / "result", "--mask", tmp_path / "labels.png", "--depth",
                   tmp_path / "depth.npy", "--depth-kind", kind)


def _check_all_strengths(report):
    for obj in report.objects:
        for s in STRENGTHS:
            _set_strength(obj, s)
            err = reprojection_error(obj, report.camera, bpy.context.scene)
            assert err.max() < 0.5, (obj.name, s, float(err.max()))


def _euler(obj) -> int:
    v, f, e = evaluated_topology_counts(obj)
    return v - e + f


def evaluated_topology_counts(obj):
    """(V, F, E) of the evaluated mesh."""
    with evaluated_mesh(obj) as (mesh, _):
        return len(mesh.vertices), len(mesh.polygons), len(mesh.edges)


def test_worker_result_builds_everything(monocle, ext_dir, tmp_path):
    geometry, build, _ = _mods(monocle)
    out = _worker(ext_dir, _coffee(), tmp_path / "coffee")
    result = json.loads((out / "result.json").read_text())
    n = len(result["instances"])
    report = build.build_from_result(out, geometry.MeshSettings(detail=5000))
    scene = bpy.context.scene
    assert report.collection.name == "coffee"
    meshes = [o for o in report.collection.objects if o.type == "MESH"]
    assert len(meshes) == n == len(report.objects)
    assert sorted(o.name for o in meshes) == sorted(["object"] + [f"object.{i:03d}" for i in range(1, n)])
    assert (scene.render.resolution_x, scene.render.resolution_y) == (600, 400)
    assert scene.camera == report.camera and report.camera.data.lens == pytest.approx(50.0)
    for obj, verts, faces in zip(report.objects, report.vertex_counts, report.face_counts):
        assert len(obj.data.vertices) == verts and len(obj.data.polygons) == faces
        assert 1000 < verts
        tex = next(nd for nd in obj.active_material.node_tree.nodes if nd.type == "TEX_IMAGE")
        assert Path(bpy.path.abspath(tex.image.filepath)) == Path(_coffee())
        assert is_watertight(obj)
        assert not obj.data.validate()
    assert set(report.timings) >= {"geometry", "ingest", "total"}
    _check_all_strengths(report)


def test_focal_override_and_open_back(monocle, ext_dir, tmp_path):
    geometry, build, _ = _mods(monocle)
    labels = np.zeros((90, 120), np.uint8)
    labels[20:70, 30:90] = 1
    out = _user_result(ext_dir, tmp_path, labels, np.full(labels.shape, 3.0))
    report = build.build_from_result(out, geometry.MeshSettings(detail=2000, back="open"), focal_mm=24.0,
                                     name_prefix="shot")
    assert report.collection.name == "shot" and report.camera.data.lens == pytest.approx(24.0)
    assert [m.name for m in report.objects[0].modifiers] == ["Relief"]
    _check_all_strengths(report)


def test_solidify_back_is_watertight(monocle, ext_dir, tmp_path):
    geometry, build, _ = _mods(monocle)
    labels = np.zeros((90, 120), np.uint8)
    labels[20:70, 30:90] = 1
    out = _user_result(ext_dir, tmp_path, labels, np.full(labels.shape, 3.0))
    report = build.build_from_result(out, geometry.MeshSettings(detail=2000, back="solidify", thickness=0.2))
    obj = report.objects[0]
    # the geometry carries the back and its walls: no extra modifier doubles them
    assert [m.type for m in obj.modifiers if m.type == "SOLIDIFY"] == []
    # a flat photo plane at depth 3: local z is the camera axis, the shell is 0.2 thick
    zs = [v.co.z for v in obj.data.vertices]
    assert max(zs) - min(zs) == pytest.approx(0.2, rel=0.05)
    assert is_watertight(obj)


@pytest.mark.parametrize("back", ["solidify", "closed"])
def test_relief_of_a_worker_result_is_exact(monocle, ext_dir, tmp_path, back):
    """Displacement == strength * relief on every vertex, front and back, through the trusted path."""
    geometry, build, _ = _mods(monocle)
    labels = np.zeros((90, 120), np.uint8)
    labels[20:70, 30:90] = 1
    yy, xx = np.mgrid[0:90, 0:120]
    depth = 3.0 - 0.4 * np.exp(-((xx - 60) ** 2 + (yy - 45) ** 2) / 300.0)  # a bump: a real relief
    out = _user_result(ext_dir, tmp_path, labels, depth)
    settings = geometry.MeshSettings(detail=2000, back=back, thickness=0.2)
    report = build.build_from_result(out, settings)
    result = build.read_result(out)
    ((_, data),), _ = build.meshes_from_result(result, settings, build.camera_for_result(result))
    assert float(np.abs(data.relief).max()) > 0.05
    _assert_exact_relief(report.objects[0], report, data)


def test_empty_mask_fails_cleanly(monocle, ext_dir, tmp_path):
    geometry, build, result_mod = _mods(monocle)
    labels = np.zeros((90, 120), np.uint8)
    labels[10:40, 10:50] = 1
    labels[50:80, 60:110] = 2
    out = _user_result(ext_dir, tmp_path, labels, np.full(labels.shape, 3.0))
    result = json.loads((out / "result.json").read_text())
    assert len(result["instances"]) == 2
    Image.fromarray(np.zeros((90, 120), np.uint8)).save(out / result["instances"][1]["mask"])
    scene = bpy.context.scene
    before = _datablock_counts()
    state = (scene.render.resolution_x, scene.render.resolution_y, scene.camera)
    with pytest.raises(result_mod.BuildError, match="empty") as info:
        build.build_from_result(out, geometry.MeshSettings())
    assert info.value.code == "mask_empty"
    assert _datablock_counts() == before
    assert (scene.render.resolution_x, scene.render.resolution_y, scene.camera) == state


@pytest.mark.parametrize("kind", ["metric", "relative_inverse"])
def test_depth_order_between_objects(monocle, ext_dir, tmp_path, kind):
    geometry, build, _ = _mods(monocle)
    labels = np.zeros((90, 120), np.uint8)
    labels[10:40, 10:50] = 1  # near
    labels[50:80, 60:110] = 2  # far
    depth = np.full(labels.shape, 6.0)
    depth[labels == 1] = 2.0
    if kind != "metric":
        depth = 1.0 / depth  # inverse depth: larger is nearer
    out = _user_result(ext_dir, tmp_path, labels, depth, kind)
    report = build.build_from_result(out, geometry.MeshSettings(detail=2000))
    cam = np.array(report.camera.matrix_world)
    forward = -cam[:3, 2]
    mean_depth = [float(((evaluated_world(o) - cam[:3, 3]) @ forward).mean()) for o in report.objects]
    uv_x = [float(np.nanmean(photo_uv_per_vertex(o)[:, 0])) for o in report.objects]
    near, far = (0, 1) if uv_x[0] < uv_x[1] else (1, 0)  # the near object is on the left
    assert mean_depth[near] < mean_depth[far]
    if kind == "metric":  # metric depth is kept: the front faces sit at 2 and 6 units
        assert mean_depth[near] == pytest.approx(2.0, rel=0.15) and mean_depth[far] == pytest.approx(6.0, rel=0.15)
    _check_all_strengths(report)


@pytest.mark.parametrize("shape", ["hole", "border", "sliver"])
def test_awkward_masks(monocle, ext_dir, tmp_path, shape):
    geometry, build, result_mod = _mods(monocle)
    h, w = 90, 120
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(xx - 60, yy - 45)
    mask = {
        "hole": (r < 35) & (r > 15),  # a ring
        "border": (xx < 50) | (yy > 70),  # touches three borders
        "sliver": (xx == 60) & (yy > 10) & (yy < 80),  # one pixel wide
    }[shape]
    out = _user_result(ext_dir, tmp_path, mask.astype(np.uint8), np.full((h, w), 3.0) + 0.01 * xx)
    before = _datablock_counts()
    try:
        report = build.build_from_result(out, geometry.MeshSettings(detail=3000, back="closed"))
    except result_mod.BuildError as exc:  # only a sliver may be refused, and then cleanly
        assert shape == "sliver", exc
        assert _datablock_counts() == before
        return
    obj = report.objects[0]
    assert is_watertight(obj)
    _check_all_strengths(report)
    uv = photo_uv_per_vertex(obj)
    px = np.stack([uv[:, 0] * w, (1 - uv[:, 1]) * h], 1)
    inside = mask[np.clip(px[:, 1].astype(int), 0, h - 1), np.clip(px[:, 0].astype(int), 0, w - 1)]
    if shape == "hole":
        assert _euler(obj) == 0  # a closed ring is a torus: V - E + F = 0
        centre = np.hypot(px[:, 0] - 60, px[:, 1] - 45)
        assert centre.min() > 13  # nothing fills the hole
    elif shape == "border":
        assert px[:, 0].min() < 2.5 and px[:, 1].max() > h - 2.5  # reaches the image edges (within a lattice step)
        assert _euler(obj) == 2
    assert inside.mean() > 0.9


def test_result_reading_matches_the_worker_files(monocle, ext_dir, tmp_path):
    _, _, result_mod = _mods(monocle)
    out = _worker(ext_dir, _coffee(), tmp_path / "coffee")
    result = result_mod.read_result(out / "result.json")
    assert (result.width, result.height, result.name, result.depth_kind) == (600, 400, "coffee", "relative_inverse")
    assert result_mod.read_result(out).instances == result.instances  # the folder works as well
    images_before = len(bpy.data.images)
    for rec in result.instances:
        mask = result_mod.load_mask(rec.mask_path, result.width, result.height)
        assert np.array_equal(mask, np.asarray(Image.open(rec.mask_path).convert("L")) > 127)
    assert len(bpy.data.images) == images_before  # the temporary images are gone
    with np.load(out / "depth.npz") as stored:  # float16 about an offset (see inference/depthfile.py)
        depth = stored["depth"].astype(np.float32) + (stored["offset"] if "offset" in stored.files else 0)
    assert np.array_equal(result_mod.load_depth(result), depth)
    (out / "result.json").write_text("{")
    with pytest.raises(result_mod.BuildError) as info:
        result_mod.read_result(out)
    assert info.value.code == "result_unreadable"


def _edge_table(data):
    """Each corner's edge to the next corner, by sorting (test-side reference)."""
    sizes = data.face_sizes.astype(np.int64)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    nxt = np.arange(1, data.loops.size + 1)
    nxt[starts + sizes - 1] = starts
    a, b = data.loops.astype(np.int64), data.loops[nxt].astype(np.int64)
    keys, corner_edges = np.unique(np.minimum(a, b) * data.num_vertices + np.maximum(a, b), return_inverse=True)
    return np.stack([keys // data.num_vertices, keys % data.num_vertices], 1), corner_edges


def test_supplied_edge_table_is_used_and_checked(monocle, tmp_path):
    geometry, build, result_mod = _mods(monocle)
    camera = geometry.CameraModel(W, H)
    mask = np.zeros((H, W), bool)
    mask[10:50, 20:70] = True
    data = grid_mesh(geometry, camera, mask, depth=4.0, bump=0.3, closed=True)
    data.edges, data.corner_edges = _edge_table(data)
    photo = _photo(tmp_path / "p.png")
    report = build.build_scene([("object", data)], camera, photo, geometry.MeshSettings(), name="p")
    obj = report.objects[0]
    mesh = obj.data
    got = np.empty(len(mesh.edges) * 2, np.int32)
    mesh.edges.foreach_get("vertices", got)
    assert np.array_equal(got.reshape(-1, 2), data.edges)  # written as given, not rebuilt
    assert not mesh.validate()
    assert is_watertight(obj)
    _assert_exact_relief(obj, report, data)

    bad = grid_mesh(geometry, camera, mask, depth=4.0, closed=True)
    bad.edges, bad.corner_edges = _edge_table(bad)
    bad.corner_edges = bad.corner_edges.copy()
    bad.corner_edges[7] = bad.corner_edges[8]  # a corner pointing at an edge it is not on
    before = _datablock_counts()
    with pytest.raises(result_mod.BuildError) as info:
        build.build_scene([("object", bad)], camera, photo, geometry.MeshSettings(), name="p")
    assert info.value.code == "mesh_invalid"
    assert _datablock_counts() == before


@pytest.mark.parametrize("back", ["open", "solidify", "closed"])
def test_geometry_meshes_pass_the_checks_the_build_skips(monocle, back):
    """``build_from_result`` trusts the geometry layer's meshes and skips the per-corner checks
    (index ranges, the edge table, the relief texture reproducing the relief): here every such
    mesh goes through those checks and must lay out exactly as the trusted path does."""
    geometry, build, _ = _mods(monocle)
    plane = importlib.import_module(monocle.__name__ + ".geometry.plane")
    h, w = 90, 120
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    r = np.hypot(xx - 60, yy - 45)
    z = 3.0 + 0.2 * np.cos(r / 9.0) + np.where(xx > 70, 0.8, 0.0)  # a bump and a depth step (tears)
    cam = geometry.CameraModel(w, h)
    for mask in (r < 35, (r < 38) & (r > 14), (xx > 20) & (xx < 23) & (yy > 10) & (yy < 80) | (r < 10)):
        data = plane.build_object_mesh(mask, z.astype(np.float32), cam, geometry.MeshSettings(back=back, detail=3000))
        checked, trusted = build._prepare("object", data, False), build._prepare("object", data, True)
        assert np.array_equal(checked.relief_texture, trusted.relief_texture)  # the geometry's own texture
        assert np.array_equal(checked.edges, trusted.edges) and np.array_equal(checked.corner_edges,
                                                                               trusted.corner_edges)
        for name in checked.corner_uvs:
            assert np.array_equal(checked.corner_uvs[name], trusted.corner_uvs[name])
        assert np.array_equal(checked.centre, trusted.centre)


def test_displace_reads_the_texel_under_the_uv_unclamped(monocle):
    """Blender's sampling with our texture settings: nearest texel (UVs anywhere inside a texel
    read it exactly), EXTEND past the edges, negative and large values kept."""
    name = monocle.__name__
    relief = importlib.import_module(name + ".scene.relief")
    ingest = importlib.import_module(name + ".scene.ingest")
    rng = np.random.default_rng(3)
    tw, th = 7, 5
    texture = (rng.normal(size=(th, tw, 3)) * 50).astype(np.float32)  # bottom-up, Blender's order
    texture[0, 0] = (-1e3, -2e-3, 7e2)
    # one triangle per sample so every vertex has its own UV; UVs jittered inside their texel
    col = np.r_[np.arange(tw).repeat(th), -1, tw]  # plus two samples beyond the left/right edges
    row = np.r_[np.tile(np.arange(th), tw), 0, th - 1]
    jitter = rng.uniform(-0.45, 0.45, size=(col.size, 2))
    uv = np.stack([(col + 0.5 + jitter[:, 0]) / tw, (row + 0.5 + jitter[:, 1]) / th], 1).astype(np.float32)
    n = uv.shape[0]
    co = np.repeat(np.arange(n, dtype=np.float32)[:, None] * 10, 3, 0) + np.tile(np.eye(3, dtype=np.float32), (n, 1))
    loops = np.arange(3 * n, dtype=np.int32)
    mesh = ingest.mesh_from_arrays("probe", co, np.full(n, 3, np.int32), loops,
                                   {relief.RELIEF_UV: np.repeat(uv, 3, 0)})
    obj = bpy.data.objects.new("probe", mesh)
    bpy.context.scene.collection.objects.link(obj)
    tex = relief.make_relief_texture("probe", relief.make_relief_image("probe", texture))
    relief.add_relief_modifier(obj, tex, 1.0)
    for s in (1.0, -0.5):
        _set_strength(obj, s)
        moved = evaluated_world(obj) - co
        expect = s * texture[np.clip(row, 0, th - 1), np.clip(col, 0, tw - 1)]
        assert np.abs(moved - np.repeat(expect, 3, 0)).max() <= 1e-6 * 1e3
    assert tex.image.colorspace_settings.is_data and tex.image.file_format == "OPEN_EXR"


def test_unusable_depth_fails_cleanly(monocle, ext_dir, tmp_path):
    geometry, build, result_mod = _mods(monocle)
    labels = np.zeros((90, 120), np.uint8)
    labels[20:70, 30:90] = 1
    out = _user_result(ext_dir, tmp_path, labels, np.zeros(labels.shape))  # metric, but no positive distance
    before = _datablock_counts()
    with pytest.raises(result_mod.BuildError) as info:
        build.build_from_result(out, geometry.MeshSettings())
    assert info.value.code == "depth_invalid"
    assert _datablock_counts() == before


# -- outline alpha ---------------------------------------------------------------------------------


def _bsdf(mat):
    return next(n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED")


def test_outline_alpha_wires_each_objects_mask(monocle, ext_dir, tmp_path, monkeypatch):
    geometry, build, _ = _mods(monocle)
    labels = np.zeros((90, 120), np.uint8)
    labels[10:40, 10:50] = 1
    labels[50:80, 60:110] = 2
    out = _user_result(ext_dir, tmp_path, labels, np.full(labels.shape, 3.0))
    instances = json.loads((out / "result.json").read_text())["instances"]
    plain = build.build_from_result(out, geometry.MeshSettings(detail=1000))
    (mat,) = {o.active_material for o in plain.objects}  # off (the default): one shared material, opaque
    assert not _bsdf(mat).inputs["Alpha"].is_linked and _bsdf(mat).inputs["Alpha"].default_value == 1.0
    assert [n.type for n in mat.node_tree.nodes].count("TEX_IMAGE") == 1
    cut = build.build_from_result(out, geometry.MeshSettings(detail=1000, outline_alpha=True))
    assert len({o.active_material for o in cut.objects}) == len(instances) == 2
    for obj, inst in zip(cut.objects, instances):
        mat = obj.active_material
        alpha = mat.node_tree.nodes["Outline Alpha"]
        assert _bsdf(mat).inputs["Alpha"].links[0].from_node == alpha
        assert alpha.inputs["Vector"].links[0].from_node.uv_map == "Photo"
        assert Path(alpha.image.filepath) == out / inst["mask"]
        assert alpha.image.packed_file is not None and alpha.image.colorspace_settings.is_data
        assert mat.surface_render_method == "DITHERED"
        # the object's own mask: sampled at its front vertices' photo UVs it is (nearly) all inside
        w, h = alpha.image.size
        px = np.empty(w * h * 4, np.float32)
        alpha.image.pixels.foreach_get(px)
        img = px.reshape(h, w, 4)[..., 0]  # bottom row first, like the UVs
        uv = photo_uv_per_vertex(obj)
        cols = np.clip((uv[:, 0] * w).astype(int), 0, w - 1)
        rows = np.clip((uv[:, 1] * h).astype(int), 0, h - 1)
        assert img[rows, cols].mean() > 0.9
    before = _datablock_counts()
    real = build.make_relief_image

    def fail_on_second(*args, **kwargs):  # after both mask images and materials exist
        if fail_on_second.calls:
            raise RuntimeError("disk full")
        fail_on_second.calls += 1
        return real(*args, **kwargs)

    fail_on_second.calls = 0
    monkeypatch.setattr(build, "make_relief_image", fail_on_second)
    with pytest.raises(RuntimeError, match="disk full"):
        build.build_from_result(out, geometry.MeshSettings(detail=1000, outline_alpha=True))
    assert _datablock_counts() == before  # the masks and per-object materials are taken back too


def test_outline_alpha_shows_the_background_where_the_mask_is_empty(monocle, tmp_path):
    """Cycles through the scene camera: a flat sheet over a rectangle whose mask has an empty
    stripe is transparent there with the outline alpha, opaque without it."""
    geometry, build, _ = _mods(monocle)
    camera = geometry.CameraModel(W, H, focal_mm=35.0)
    mask = np.zeros((H, W), bool)
    mask[10:50, 20:70] = True
    data = grid_mesh(geometry, camera, mask, depth=4.0)
    cut = mask.copy()
    cut[:, 40:50] = False
    Image.fromarray(cut.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    photo = _photo(tmp_path / "p.png")
    for on in (False, True):
        bpy.ops.wm.read_homefile(app_template="", use_empty=True)
        build.build_scene([("object", data)], camera, photo, geometry.MeshSettings(back="open", outline_alpha=on),
                          name="p", mask_paths=[tmp_path / "mask.png"])
        scene = bpy.context.scene
        use_cycles(scene, W, H, samples=4)
        alpha = render_rgba_depth(scene, tmp_path / f"render{int(on)}")[0][..., 3]
        # means where the mesh is opaque: a rare ray through a shared edge can miss the sheet
        assert alpha[15:45, 25:36].mean() > 0.99  # where the mask is full: the photo, opaque
        assert alpha[:5].max() < 0.01  # no mesh: background
        stripe = alpha[15:45, 42:48]
        if on:
            assert stripe.max() < 0.01
        else:
            assert stripe.mean() > 0.99


def test_selections_are_point_attributes(monocle, ext_dir, tmp_path):
    """Open shells carry no selection (every vertex is front); closed and solidified objects
    carry front and back boolean point attributes that split the vertices (closed: plus the
    seam both share), no vertex groups, and one Displace modifier that uses no group."""
    geometry, build, _ = _mods(monocle)
    labels = np.zeros((60, 80), np.uint8)
    labels[10:50, 15:65] = 1
    out = _user_result(ext_dir, tmp_path, labels, np.full(labels.shape, 3.0))
    (shell,) = build.build_from_result(out, geometry.MeshSettings(detail=800, back="open")).objects
    assert not {"front", "back", "seam"} & set(shell.data.attributes.keys())
    for back in ("closed", "solidify"):
        (obj,) = build.build_from_result(out, geometry.MeshSettings(detail=800, back=back)).objects
        assert len(obj.vertex_groups) == 0
        assert [(m.type, m.vertex_group) for m in obj.modifiers] == [("DISPLACE", "")]
        n = len(obj.data.vertices)
        flags = {}
        for name in ("front", "back") + (("seam",) if back == "closed" else ()):
            attr = obj.data.attributes[name]
            assert (attr.domain, attr.data_type) == ("POINT", "BOOLEAN")
            flags[name] = np.zeros(n, bool)
            attr.data.foreach_get("value", flags[name])
        front, back_flags = flags["front"], flags["back"]
        assert 0 < back_flags.sum() < n and np.all(front | back_flags)
        if back == "closed":  # the seam is shared: exactly the vertices in both
            assert np.array_equal(front & back_flags, flags["seam"]) and flags["seam"].any()
        else:
            assert not np.any(front & back_flags)
        # the selections are what the geometry meant: back vertices lie behind the front ones
        co = np.zeros(3 * n, np.float32)
        obj.data.attributes["position"].data.foreach_get("vector", co)
        z = co.reshape(-1, 3)[:, 2]
        assert z[back_flags & ~front].mean() < z[front & ~back_flags].mean()


def test_mask_reader_agrees_with_blenders_reader(monocle, tmp_path):
    """Masks are decoded with OpenCV: 1-bit and 8-bit grey, RGB, RGBA and a non-ASCII path read as
    Blender's own reader reads them, a 16-bit mask splits at half its range, and a corrupt file is a clear error."""
    result_mod = importlib.import_module(monocle.__name__ + ".scene.result")
    rng = np.random.default_rng(5)
    h, w = 37, 53
    grey = (rng.random((h, w)) * 255).astype(np.uint8)
    cases = {
        "grey8.png": Image.fromarray(grey),
        "grey16.png": Image.fromarray((grey.astype(np.uint16) * 257).astype(np.uint16)),
        "rgb.png": Image.fromarray(np.stack([grey, 255 - grey, grey // 2], -1)),
        "rgba.png": Image.fromarray(np.stack([grey, grey, grey, 255 - grey], -1)),
        "masque_été.png": Image.fromarray(grey),
        "bilevel.png": Image.fromarray(grey > 127).convert("1"),  # one bit per pixel, as the worker writes
    }
    for name, image in cases.items():
        path = tmp_path / name
        image.save(path)
        got = result_mod.load_mask(path, w, h)
        assert got.shape == (h, w) and got.dtype == bool
        if name != "grey16.png":  # Blender reads 16-bit PNGs as float and makes them linear (sRGB -> linear)
            assert np.array_equal(got, result_mod._load_mask_blender(path, w, h)), name
        assert np.array_equal(got, grey > 127), name
    with pytest.raises(result_mod.BuildError) as err:
        result_mod.load_mask(tmp_path / "grey8.png", w + 1, h)
    assert err.value.code == "result_unreadable"
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(result_mod.BuildError) as err:
        result_mod.load_mask(corrupt, w, h)
    assert err.value.code == "result_unreadable"
    assert not any(img.filepath.endswith("corrupt.png") for img in bpy.data.images)
