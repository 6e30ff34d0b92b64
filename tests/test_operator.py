"""The Reconstruct from Image operator, driven the way scripts and `blender -b` drive it."""

from __future__ import annotations

import shutil

import bpy
import pytest
from conftest import MODULE


@pytest.fixture
def photo(photo_dir, tmp_path):
    dst = tmp_path / "fruit.jpg"
    shutil.copy(photo_dir / "fruit.jpg", dst)
    return dst


@pytest.fixture
def prefs():
    p = bpy.context.preferences.addons[MODULE].preferences
    yield p
    p.python_path = ""


def _objects():
    return {o.name for o in bpy.data.objects}


def test_reconstruct_builds_objects_and_reuses_cache(photo, prefs):
    settings = bpy.context.scene.monocle
    settings.image_path = str(photo)
    settings.detail = 5000
    assert bpy.ops.monocle.reconstruct() == {"FINISHED"}
    coll = bpy.data.collections["fruit"]
    meshes = [o for o in coll.all_objects if o.type == "MESH"]
    cams = [o for o in coll.all_objects if o.type == "CAMERA"]
    assert len(meshes) >= 1 and len(cams) == 1
    assert bpy.context.scene.camera == cams[0]
    assert (bpy.context.scene.render.resolution_x, bpy.context.scene.render.resolution_y) == (640, 480)
    total = sum(len(o.data.vertices) for o in meshes)
    assert total > 2000
    summary = bpy.context.window_manager.monocle_status.summary
    assert summary.startswith(f"{len(meshes)} object(s)") and "inference" in summary

    # Second run, only a mesh setting changed: must come from the cache. Point the interpreter at
    # something that cannot start, so any worker launch would fail the run.
    bpy.ops.wm.read_homefile(app_template="", use_empty=True)
    settings = bpy.context.scene.monocle
    settings.image_path = str(photo)
    settings.detail = 20000
    prefs.python_path = "/nonexistent/python"
    assert bpy.ops.monocle.reconstruct() == {"FINISHED"}
    meshes2 = [o for o in bpy.data.collections["fruit"].all_objects if o.type == "MESH"]
    assert len(meshes2) == len(meshes)
    assert sum(len(o.data.vertices) for o in meshes2) > 2 * total
    assert "cached" in bpy.context.window_manager.monocle_status.summary


def test_missing_photo_reports_and_changes_nothing(tmp_path):
    settings = bpy.context.scene.monocle
    settings.image_path = str(tmp_path / "nope.jpg")
    before = _objects()
    with pytest.raises(RuntimeError, match="does not exist"):
        bpy.ops.monocle.reconstruct()
    assert _objects() == before and not bpy.data.collections


def test_corrupt_photo_reports_worker_error(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_text("not a png")
    bpy.context.scene.monocle.image_path = str(bad)
    with pytest.raises(RuntimeError, match="not a valid image"):
        bpy.ops.monocle.reconstruct()
    assert not bpy.data.objects and not bpy.data.meshes and not bpy.data.collections


def test_missing_interpreter_is_a_clear_error(photo, prefs, tmp_path):
    bpy.context.scene.monocle.image_path = str(photo)
    bpy.context.scene.monocle.max_size = 333  # a setting no other test uses: guaranteed cache miss
    prefs.python_path = str(tmp_path / "no-python")
    with pytest.raises(RuntimeError, match="Could not start the inference interpreter"):
        bpy.ops.monocle.reconstruct()
    assert not bpy.data.objects


def test_blender_image_source(photo):
    img = bpy.data.images.load(str(photo))
    settings = bpy.context.scene.monocle
    settings.source = "IMAGE"
    settings.image = img
    settings.detail = 3000
    assert bpy.ops.monocle.reconstruct() == {"FINISHED"}
    assert any(o.type == "MESH" for o in bpy.data.objects)


def test_poll_explains_missing_photo():
    assert not bpy.ops.monocle.reconstruct.poll()


def test_outline_alpha_setting_reaches_the_material(photo):
    settings = bpy.context.scene.monocle
    settings.image_path, settings.detail = str(photo), 2000
    assert bpy.ops.monocle.reconstruct(outline_alpha=True) == {"FINISHED"}
    meshes = [o for o in bpy.data.collections["fruit"].all_objects if o.type == "MESH"]
    assert meshes and all("Outline Alpha" in o.active_material.node_tree.nodes for o in meshes)
    bpy.ops.wm.read_homefile(app_template="", use_empty=True)
    settings = bpy.context.scene.monocle
    settings.image_path, settings.detail = str(photo), 2000
    assert bpy.ops.monocle.reconstruct() == {"FINISHED"}  # off by default
    meshes = [o for o in bpy.data.collections["fruit"].all_objects if o.type == "MESH"]
    assert meshes and not any("Outline Alpha" in o.active_material.node_tree.nodes for o in meshes)
