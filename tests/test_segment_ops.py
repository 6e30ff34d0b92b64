"""The segment-correction operators in Blender, driven with coordinates as properties (no window):
each rebuilds only the objects it touched, from the cached inference, and is one undo step."""

from __future__ import annotations

import json
from pathlib import Path

import bpy
import numpy as np
import pytest
from conftest import MODULE
from segment_scene import iou, read_mask, write_scene

DISC = (180.0, 240.0)  # centres in photo pixels (640 x 480)
BOX = (480.0, 250.0)


@pytest.fixture
def scene_photo(tmp_path):
    return write_scene(tmp_path)


def _reconstruct(path: Path, objects: str = "LARGEST") -> bpy.types.Collection:
    settings = bpy.context.scene.monocle
    settings.image_path = str(path)
    settings.engine = "classic"
    settings.objects = objects
    settings.detail = 2000
    assert bpy.ops.monocle.reconstruct() == {"FINISHED"}
    return bpy.data.collections[path.stem]


def _meshes(coll: bpy.types.Collection) -> dict[int, bpy.types.Object]:
    return {o["monocle_id"]: o for o in coll.objects if o.type == "MESH"}


def _result_masks(coll: bpy.types.Collection) -> dict[int, np.ndarray]:
    folder = Path(coll["monocle_result"])
    data = json.loads((folder / "result.json").read_text())
    return {i["id"]: read_mask(folder / i["mask"]) for i in data["instances"]}


def _world_x(obj: bpy.types.Object) -> float:
    return float((obj.matrix_world @ obj.data.vertices[0].co).x) if obj.data.vertices else 0.0


def _points(*xy_sign):
    return [{"name": "", "x": x, "y": y, "positive": s} for x, y, s in xy_sign]


def test_add_a_missed_object_then_undo(scene_photo):
    path, disc, box = scene_photo
    coll = _reconstruct(path)  # "largest": the engine leaves the disc out
    (kept_id, kept), = _meshes(coll).items()
    assert iou(_result_masks(coll)[kept_id], box) > 0.9
    kept_mesh, kept_name = kept.data.name, kept.name
    first_result = coll["monocle_result"]
    bpy.ops.ed.undo_push(message="reconstructed")

    assert bpy.ops.monocle.segment_add("EXEC_DEFAULT", True, points=_points((*DISC, True))) == {"FINISHED"}
    coll = bpy.data.collections[path.stem]
    objs = _meshes(coll)
    assert len(objs) == 2
    new_id = next(i for i in objs if i != kept_id)
    assert iou(_result_masks(coll)[new_id], disc) > 0.95
    # the object the correction did not touch is the same object with the same mesh
    assert objs[kept_id].name == kept_name and objs[kept_id].data.name == kept_mesh
    # the new one stands left of it, where the disc is in the photo, and carries the photo material
    assert _world_x(objs[new_id]) < _world_x(objs[kept_id])
    assert objs[new_id].data.materials[0] == objs[kept_id].data.materials[0]
    assert len(objs[new_id].data.vertices) > 500
    assert coll["monocle_result"] != first_result

    assert bpy.ops.ed.undo() == {"FINISHED"}
    coll = bpy.data.collections[path.stem]
    assert list(_meshes(coll)) == [kept_id]
    assert coll["monocle_result"] == first_result
    assert {o.name for o in bpy.data.objects if o.type == "MESH"} == {kept_name}


def test_merge_split_and_remove(scene_photo):
    path, disc, box = scene_photo
    coll = _reconstruct(path)
    assert bpy.ops.monocle.segment_add(
        points=_points((*DISC, True)), use_box=True, box=(90.0, 150.0, 270.0, 330.0)) == {"FINISHED"}
    assert len(_meshes(coll)) == 2

    normalised = _points((DISC[0] / 640, DISC[1] / 480, True), (BOX[0] / 640, BOX[1] / 480, True))
    assert bpy.ops.monocle.segment_merge(units="NORMALIZED", points=normalised) == {"FINISHED"}
    objs = _meshes(coll)
    assert len(objs) == 1
    (merged_id,) = objs
    assert iou(_result_masks(coll)[merged_id], disc | box) > 0.95

    assert bpy.ops.monocle.segment_split(use_box=True, box=(380.0, 130.0, 600.0, 370.0)) == {"FINISHED"}
    objs = _meshes(coll)
    masks = _result_masks(coll)
    assert len(objs) == 2
    assert max(iou(m, box) for m in masks.values()) > 0.95 and max(iou(m, disc) for m in masks.values()) > 0.95

    # invoked (as the picker does): without a window it runs blocking, as from a script
    assert bpy.ops.monocle.segment_remove("INVOKE_DEFAULT", points=_points((*BOX, True))) == {"FINISHED"}
    masks = _result_masks(coll)
    assert len(_meshes(coll)) == 1 and iou(next(iter(masks.values())), disc) > 0.95


def test_paint_out_and_in_along_a_stroke(scene_photo):
    path, disc, box = scene_photo
    coll = _reconstruct(path)
    (bid, obj), = _meshes(coll).items()
    verts = len(obj.data.vertices)
    rows = np.nonzero(box.any(1))[0]
    cols = np.nonzero(box.any(0))[0]
    y = float(rows[0] + 12)
    stroke = _points((float(cols[0]) - 10, y, True), (float(cols[-1]) + 10, y, True))
    assert bpy.ops.monocle.segment_paint(stroke=stroke, brush=14.0, erase=True) == {"FINISHED"}
    mask = _result_masks(coll)[bid]
    assert not mask[rows[0]:rows[0] + 24].any()
    assert iou(mask, box) > 0.8
    assert len(_meshes(coll)[bid].data.vertices) != verts  # rebuilt

    assert bpy.ops.monocle.segment_paint(stroke=stroke, brush=14.0) == {"FINISHED"}
    assert iou(_result_masks(coll)[bid], box) > 0.95


def test_a_click_on_nothing_changes_nothing(scene_photo):
    path, _, _ = scene_photo
    coll = _reconstruct(path)
    before = {o.name for o in bpy.data.objects}
    folder = coll["monocle_result"]
    with pytest.raises(RuntimeError, match="no object under the point"):
        bpy.ops.monocle.segment_remove(points=_points((5.0, 5.0, True)))
    assert {o.name for o in bpy.data.objects} == before and coll["monocle_result"] == folder


def test_needs_a_reconstruction():
    assert not bpy.ops.monocle.segment_add.poll()


def test_saved_corrections_rebuild_the_same_objects_headless(scene_photo, tmp_path):
    """Save Corrections writes the sidecar; the headless batch reads it beside the photo and makes the
    corrected set of objects from the photo alone."""
    path, disc, box = scene_photo
    coll = _reconstruct(path)
    bpy.ops.monocle.segment_add(points=_points((*DISC, True)))
    rows = np.nonzero(box.any(1))[0]
    cols = np.nonzero(box.any(0))[0]
    y = float(rows[0] + 12)
    bpy.ops.monocle.segment_paint(stroke=_points((float(cols[0]) - 10, y, True), (float(cols[-1]) + 10, y, True)),
                                  brush=14.0, erase=True)
    interactive = _result_masks(coll)
    assert bpy.ops.monocle.segment_save() == {"FINISHED"}
    sidecar = path.with_name(path.name + ".monocle.json")
    saved = json.loads(sidecar.read_text())["corrections"]
    assert [c["action"] for c in saved] == ["add", "paint"]
    assert (path.parent / saved[1]["strokes"]).is_file() and not Path(saved[1]["strokes"]).is_absolute()

    cli = __import__(MODULE + ".cli", fromlist=["main"])
    out = tmp_path / "out"
    assert cli.main(["reconstruct", str(path), "-o", str(out), "--engine", "classic", "--objects", "largest",
                     "--detail", "600", "--report", str(tmp_path / "r.json")]) == 0
    item = json.loads((tmp_path / "r.json").read_text())["items"][0]
    assert item["status"] == "ok" and len(item["objects"]) == 2
    # the batch's result (in the cache) holds the masks the interactive corrections made
    root = __import__(MODULE + ".prefs", fromlist=["cache_root"]).cache_root()
    batch = [p.parent for p in (root / "results").glob("*/result.json")
             if str(path.with_name(saved[1]["strokes"])) in p.read_text()]
    assert len(batch) == 1
    data = json.loads((batch[0] / "result.json").read_text())
    got = {i["id"]: read_mask(batch[0] / i["mask"]) for i in data["instances"]}
    assert sorted(got) == sorted(interactive)
    for i, mask in got.items():
        assert iou(mask, interactive[i]) > 0.99


def test_picker_maps_the_camera_frame_to_photo_pixels(monocle):
    pick = __import__(MODULE + ".operators.segment_pick", fromlist=["region_to_photo"])
    rect = pick.frame_rect([(500.0, 400.0), (500.0, 100.0), (100.0, 100.0), (100.0, 400.0)])
    assert rect == (100.0, 100.0, 500.0, 400.0)
    assert pick.region_to_photo(100.0, 400.0, rect, (640, 480)) == (0.0, 0.0)  # top-left corner
    assert pick.region_to_photo(300.0, 250.0, rect, (640, 480)) == (320.0, 240.0)
    x, y = pick.region_to_photo(500.0, 100.0, rect, (640, 480))
    assert (x, y) == (639.5, 479.5)
    assert pick.region_to_photo(99.0, 250.0, rect, (640, 480)) is None
    assert not bpy.ops.monocle.segment_pick.poll()  # no 3D viewport here
