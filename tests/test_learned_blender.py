"""The learned engine from Blender's side: panel settings reach the worker, the
objects carry the model's labels, and the offline rule greys the button out."""

from __future__ import annotations

import shutil

import bpy
import pytest
from conftest import MODULE
from hf_fixtures import build_depth_anything, build_mask2former
from monocle import cli, prefs


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("blender-hf")
    return {
        "depth": build_depth_anything(root / "depth"),
        "seg": build_mask2former(root / "seg", favour="dining table"),
    }


def test_operator_with_local_models(models, photo_dir, tmp_path):
    photo = tmp_path / "toy.jpg"
    shutil.copy(photo_dir / "toy.jpg", photo)
    s = bpy.context.scene.monocle
    s.image_path, s.engine, s.detail = str(photo), "transformers", 3000
    s.depth_model, s.seg_model = str(models["depth"]), str(models["seg"])
    assert bpy.ops.monocle.reconstruct.poll()
    assert bpy.ops.monocle.reconstruct() == {"FINISHED"}
    meshes = [o for o in bpy.data.collections["toy"].all_objects if o.type == "MESH"]
    assert meshes and all(o.name.split(".")[0] == "table" for o in meshes)


def test_cli_with_local_models(models, photo_dir, tmp_path):
    photo = photo_dir / "box.jpg"
    code = cli.main(["reconstruct", str(photo), "-o", str(tmp_path / "out"), "--engine", "transformers",
                     "--depth-model", str(models["depth"]), "--seg-model", str(models["seg"]), "--detail", "2000",
                     "--report", str(tmp_path / "r.json")])
    assert code == 0
    import json

    item = json.loads((tmp_path / "r.json").read_text())["items"][0]
    assert item["status"] == "ok" and {o["label"] for o in item["objects"]} == {"table"}


def test_offline_and_missing_model_greys_out_the_button(tmp_path):
    assert not bpy.app.online_access  # the test profile never goes online
    photo = tmp_path / "p.png"
    photo.write_bytes(b"")
    s = bpy.context.scene.monocle
    s.image_path, s.engine = str(photo), "transformers"
    s.depth_model, s.seg_model = "", ""  # the defaults, which this machine never downloaded
    assert not bpy.ops.monocle.reconstruct.poll()
    s.engine = "classic"
    assert bpy.ops.monocle.reconstruct.poll()


def test_worker_environment_passes_online_flag_and_cache():
    env = prefs.worker_environment()
    assert env["MONOCLE_ONLINE"] == "0"
    assert env["MONOCLE_MODEL_CACHE"].startswith(bpy.utils.extension_path_user(MODULE))
