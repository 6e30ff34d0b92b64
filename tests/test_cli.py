"""The headless command: files, folders, globs, exports, report, exit codes, resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import bpy
import numpy as np
import pytest
from conftest import ROOT
from monocle import cli
from PIL import Image
from scene_checks import evaluated_world

PHOTOS = ("fruit", "box", "toy")  # tests/photos.py


@pytest.fixture
def photos(photo_dir, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in PHOTOS[:2]:
        shutil.copy(photo_dir / f"{name}.jpg", folder / f"{name}.jpg")
    return folder


def _script(*args: str, profile: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, MONOCLE_PROFILE=str(profile))
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "monocle.py"), *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def _import_glb(path: Path) -> list[bpy.types.Object]:
    bpy.ops.wm.read_homefile(app_template="", use_empty=True)
    bpy.ops.import_scene.gltf(filepath=str(path))
    return [o for o in bpy.data.objects if o.type == "MESH"]


def test_mixed_folder(photos, tmp_path):
    (photos / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 50)
    (photos / "notes.png").write_text("just text")
    (photos / "empty").mkdir()
    yy, xx = np.mgrid[0:120, 0:160]
    disk = (xx - 80) ** 2 + (yy - 60) ** 2 < 40**2
    Image.fromarray(np.where(disk, 12000, 52000).astype(np.uint16)).save(photos / "deep16.png")
    rgba = np.zeros((120, 160, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[..., 3] = np.where(disk, 255, 0)
    Image.fromarray(rgba).save(photos / "cutout.png")
    out, report = tmp_path / "out", tmp_path / "report.json"
    code = cli.main(["reconstruct", str(photos), "-o", str(out), "--detail", "4000", "--report", str(report)])
    assert code == 1
    data = json.loads(report.read_text())
    items = {Path(i["input"]).name: i for i in data["items"]}
    assert set(items) == {"fruit.jpg", "box.jpg", "corrupt.jpg", "notes.png", "deep16.png", "cutout.png"}
    assert items["corrupt.jpg"]["status"] == "failed" and items["corrupt.jpg"]["code"] == "image_unreadable"
    assert items["notes.png"]["status"] == "failed" and items["notes.png"]["code"] == "image_unreadable"
    assert data["totals"]["ok"] == 4 and data["totals"]["failed"] == 2
    for name in ("fruit", "box", "deep16", "cutout"):
        item = items[next(k for k in items if k.startswith(name))]
        assert item["status"] == "ok" and item["objects"]
        meshes = _import_glb(out / f"{name}.glb")
        assert len(meshes) == len(item["objects"])
        got = sorted(len(o.data.vertices) for o in meshes)
        want = sorted(o["vertices"] for o in item["objects"])
        # glTF splits vertices along UV seams, never merges them
        assert all(g >= w for g, w in zip(got, want))
    assert not list(out.glob(".monocle-tmp-*")) and not (out / "corrupt.glb").exists()


def test_glb_carries_the_photo_texture(photos, tmp_path):
    out = tmp_path / "out"
    assert cli.main(["reconstruct", str(photos / "box.jpg"), "-o", str(out), "--detail", "3000"]) == 0
    meshes = _import_glb(out / "box.glb")
    assert meshes
    images = [img for img in bpy.data.images if img.size[0] > 0]
    assert any(tuple(img.size) == (640, 480) for img in images)
    mat = meshes[0].active_material
    assert mat and any(n.type == "TEX_IMAGE" and n.image for n in mat.node_tree.nodes)


def test_jobs_2_matches_jobs_1(photos, tmp_path):
    args = ["reconstruct", str(photos), "--detail", "3000", "--overwrite"]
    assert cli.main([*args, "-o", str(tmp_path / "a"), "--jobs", "1"]) == 0
    assert cli.main([*args, "-o", str(tmp_path / "b"), "--jobs", "2"]) == 0
    for name in PHOTOS[:2]:
        a = _import_glb(tmp_path / "a" / f"{name}.glb")
        va = [evaluated_world(o) for o in sorted(a, key=lambda o: o.name)]
        b = _import_glb(tmp_path / "b" / f"{name}.glb")
        vb = [evaluated_world(o) for o in sorted(b, key=lambda o: o.name)]
        assert len(va) == len(vb)
        for x, y in zip(va, vb):
            np.testing.assert_array_equal(x, y)


def test_usage_errors_and_help(tmp_path):
    assert cli.main(["reconstruct", "--help"]) == 0
    assert cli.main(["reconstruct", str(tmp_path / "empty-folder-that-is-missing*.png"), "-o",
                       str(tmp_path / "o")]) in (1, 2)
    (tmp_path / "nothing").mkdir()
    assert cli.main(["reconstruct", str(tmp_path / "nothing"), "-o", str(tmp_path / "o")]) == 2
    assert cli.main(["reconstruct", "x.png", "-o", str(tmp_path / "o"), "--frobnicate"]) == 2
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert cli.main(["reconstruct", "x.png", "-o", str(blocker / "sub")]) == 2


def test_script_entry_point_killed_and_resumed(photo_dir, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in PHOTOS:
        shutil.copy(photo_dir / f"{name}.jpg", folder / f"{name}.jpg")
    profile, out = tmp_path / "profile", tmp_path / "out"
    help_run = _script("reconstruct", "--help", profile=profile)
    assert help_run.returncode == 0 and "--jobs" in help_run.stdout
    env = dict(os.environ, MONOCLE_PROFILE=str(profile))
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "monocle.py"), "reconstruct", str(folder),
                             "-o", str(out), "--detail", "3000"], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not list(out.glob("*.glb")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = {p.name: p.stat().st_mtime_ns for p in out.glob("*.glb")}
    assert 1 <= len(done) < 3
    rerun = _script("reconstruct", str(folder), "-o", str(out), "--detail", "3000", "--report",
                    str(tmp_path / "r.json"), profile=profile)
    assert rerun.returncode == 0, rerun.stderr
    statuses = {Path(i["input"]).stem: i["status"] for i in json.loads((tmp_path / "r.json").read_text())["items"]}
    assert sorted(p.name for p in out.glob("*.glb")) == [f"{n}.glb" for n in sorted(PHOTOS)]
    for name, mtime in done.items():
        assert (out / name).stat().st_mtime_ns == mtime and statuses[Path(name).stem] == "skipped"
    assert "ok" in statuses.values()
    assert sorted(f.name for f in out.iterdir()) == [f"{n}.glb" for n in sorted(PHOTOS)]  # no temp leftovers


def test_outline_alpha_reaches_the_saved_file(photos, tmp_path):
    out = tmp_path / "out"
    args = ["reconstruct", str(photos / "box.jpg"), "-o", str(out), "--detail", "2000", "--format", "blend"]
    assert cli.main([*args, "--outline-alpha"]) == 0
    bpy.ops.wm.open_mainfile(filepath=str(out / "box.blend"))
    meshes = [o for o in bpy.data.objects if o.type == "MESH"]
    assert meshes
    for obj in meshes:
        nodes = obj.active_material.node_tree.nodes
        bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
        assert bsdf.inputs["Alpha"].is_linked and nodes["Outline Alpha"].image.packed_file is not None
