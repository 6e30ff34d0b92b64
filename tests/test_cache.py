"""The inference cache: entries serve any file with the same bytes under its own name, stay under
a size cap by least-recently-used eviction, store depth compressed, and a full disk is ``disk_full``."""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path

import bpy
import numpy as np
import pytest
from conftest import MODULE, run_worker
from PIL import Image


def _mod(name: str):
    return __import__(f"{MODULE}.{name}", fromlist=["_"])


def _cli():
    return _mod("cli")




def _fill(disk: Path, leave: int) -> None:
    """Fill ``disk`` until only about ``leave`` bytes are free."""
    free = shutil.disk_usage(disk).free
    with open(disk / "filler", "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))


def _photo(photo_dir: Path, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    Image.open(photo_dir / "box.jpg").save(path)
    return path


# -- the current file names and textures the build (issue 23 #5) ---------------------------------


def test_a_cached_result_is_built_for_the_current_file(photo_dir, tmp_path):
    x = _photo(photo_dir, tmp_path / "cp1", "x.png")
    y = tmp_path / "cp2" / "y.png"
    y.parent.mkdir()
    shutil.copy(x, y)
    assert _cli().main(["reconstruct", str(x), "-o", str(tmp_path / "o1"), "--detail", "2000"]) == 0
    # y has x's bytes: a cache hit, but named and textured after y while x still exists ...
    assert _cli().main(["reconstruct", str(y), "-o", str(tmp_path / "o2"), "--detail", "2000",
                        "--format", "blend"]) == 0
    _check_blend(tmp_path / "o2" / "y.blend", y)
    # ... and after x is gone
    shutil.rmtree(x.parent)
    report = tmp_path / "r.json"
    assert _cli().main(["reconstruct", str(y), "-o", str(tmp_path / "o3"), "--detail", "2000",
                        "--format", "blend,glb", "--report", str(report)]) == 0
    (item,) = json.loads(report.read_text())["items"]
    assert item["status"] == "ok" and item["timings"]["inference"] == 0.0  # served from the cache
    _check_blend(tmp_path / "o3" / "y.blend", y)
    bpy.ops.wm.read_homefile(app_template="", use_empty=True)
    bpy.ops.import_scene.gltf(filepath=str(tmp_path / "o3" / "y.glb"))
    meshes = [o for o in bpy.data.objects if o.type == "MESH"]
    assert meshes
    assert [img.name for img in bpy.data.images] == ["y"]  # glTF names an image by its file stem
    # the cached entry itself names no input
    key = _mod("pipeline").InferenceRequest(image=str(y)).key()
    entry = json.loads((_mod("prefs").cache_root() / "results" / key / "result.json").read_text())
    assert entry["image"]["path"] is None


def _check_blend(path: Path, photo: Path) -> None:
    bpy.ops.wm.open_mainfile(filepath=str(path))
    photos = [img for img in bpy.data.images if not img.colorspace_settings.is_data]  # masks are data
    # the folder part of the stored path is the exporter's business; the file is this photo
    assert [(img.name, Path(img.filepath).name) for img in photos] == [(photo.name, photo.name)]
    assert photos[0].packed_file is None or photos[0].packed_file.data == photo.read_bytes()
    assert [c.name for c in bpy.data.collections] == ["y"]
    assert "y Camera" in bpy.data.objects
    names = [d.name for coll in (bpy.data.objects, bpy.data.materials, bpy.data.meshes) for d in coll]
    assert names and not [n for n in names if n.startswith("x")]


def test_result_file_names_stay_inside_the_folder(monocle, ext_dir, photo_dir, tmp_path):
    result = _mod("scene.result")
    photo = _photo(photo_dir, tmp_path, "box.png")
    rc, _, err = run_worker(ext_dir, "run", "--image", str(photo), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    path = tmp_path / "out" / "result.json"
    data = json.loads(path.read_text())
    for field, value in (("depth", "../../secret.npy"), ("depth", "/etc/passwd")):
        bad = json.loads(json.dumps(data))
        bad[field]["file"] = value
        path.write_text(json.dumps(bad))
        with pytest.raises(result.BuildError) as info:
            result.read_result(path)
        assert info.value.code == "result_unreadable"
    data["instances"][0]["mask"] = "../mask.png"
    path.write_text(json.dumps(data))
    with pytest.raises(result.BuildError):
        result.read_result(path)


# -- depth storage ---------------------------------------------------------------------------------


def test_depth_is_stored_compressed_and_old_results_still_build(monocle, ext_dir, photo_dir, tmp_path):
    build, result_mod = _mod("scene.build"), _mod("scene.result")
    geometry = _mod("geometry")
    photo = _photo(photo_dir, tmp_path, "box.png")
    out = tmp_path / "out"
    rc, _, err = run_worker(ext_dir, "run", "--image", str(photo), "--out", str(out))
    assert rc == 0, err
    data = json.loads((out / "result.json").read_text())
    assert data["depth"]["file"] == "depth.npz" and data["depth"]["dtype"] == "float16"
    assert not (out / "depth.npy").exists()
    half = np.load(out / "depth.npz")["depth"]
    assert half.dtype == np.float16 and half.shape == (480, 640)
    assert (out / "depth.npz").stat().st_size < half.nbytes  # zipped
    new = build.build_from_result(out, geometry.MeshSettings(detail=2000))
    new_co = [_vertices(o) for o in new.objects]
    # the same result in the format of older versions: a float32 depth.npy
    np.save(out / "depth.npy", half.astype(np.float32))
    (out / "depth.npz").unlink()
    data["depth"]["file"] = "depth.npy"
    del data["depth"]["dtype"]
    (out / "result.json").write_text(json.dumps(data))
    assert np.array_equal(result_mod.load_depth(result_mod.read_result(out)), half.astype(np.float32))
    bpy.ops.wm.read_homefile(app_template="", use_empty=True)
    old = build.build_from_result(out, geometry.MeshSettings(detail=2000))
    assert old.vertex_counts == new.vertex_counts
    for a, b in zip(new_co, (_vertices(o) for o in old.objects)):
        np.testing.assert_array_equal(a, b)


def _vertices(obj: bpy.types.Object) -> np.ndarray:
    co = np.empty(len(obj.data.vertices) * 3, np.float32)
    obj.data.vertices.foreach_get("co", co)
    return co


def test_float16_rule(monocle, tmp_path):
    depthfile = _mod("inference.depthfile")
    yy, xx = np.mgrid[0:200, 0:300]
    objects = (xx - 150) ** 2 + (yy - 100) ** 2 < 80**2
    relative = np.where(objects, 0.5 + 0.5 * np.cos(xx / 40.0) ** 2, 0.0).astype(np.float32)

    def stored(depth: np.ndarray, exact: bool = False) -> tuple[str, np.ndarray]:
        arrays = depthfile.storable_depth(depth, objects, exact)
        depthfile.save_depth_file(tmp_path / "d.npz", arrays)
        return arrays["depth"].dtype.name, depthfile.load_depth_file(tmp_path / "d.npz")

    for depth in (relative, relative + 1000.0, np.where(objects, relative, np.nan).astype(np.float32)):
        dtype, back = stored(depth)
        span = float(depth[objects].max() - depth[objects].min())
        assert dtype == "float16"
        assert np.abs(back - depth)[objects].max() <= depthfile.HALF_TOLERANCE * span
        assert np.array_equal(np.isnan(back), np.isnan(depth))
        assert np.array_equal(back[~objects & (depth == 0)], depth[~objects & (depth == 0)])  # 0 stays 0
    # a span float16 cannot resolve, a value beyond its range, and any map the user gave: exact float32
    for depth, exact in ((relative * 1e-6, False), (relative * 1e5, False), (relative, True)):
        dtype, back = stored(depth, exact)
        assert dtype == "float32" and np.array_equal(back, depth)


# -- size cap and least-recently-used eviction ------------------------------------------------------


def _entry(cache, size: int, used: float) -> str:
    """Commit a fake entry of about ``size`` bytes, last used at ``used``."""
    scratch = cache.scratch()
    result = {"image": {"path": "/somewhere/x.png"}, "engine": {"settings": {"mask_file": "/m.png"}}}
    (scratch / "result.json").write_text(json.dumps(result))
    (scratch / "depth.npz").write_bytes(b"\0" * size)
    key = uuid.uuid4().hex
    path = cache.commit(key, scratch)
    os.utime(path, (used, used))
    return key


def test_least_recently_used_entries_go_first(tmp_path):
    cache_mod = _mod("bridge.cache")
    cache = cache_mod.ResultCache(tmp_path / "c", max_bytes=1000_000)
    now = time.time()
    a = _entry(cache, 400_000, now - 300)
    b = _entry(cache, 400_000, now - 200)
    assert {e.key for e in cache.entries()} == {a, b}
    assert cache.lookup(a) is not None  # a lookup marks the entry as used now
    assert (cache.results / a / "result.json").stat().st_mtime >= now
    os.utime(cache.results / a / "result.json", (now - 100, now - 100))
    c = _entry(cache, 400_000, now)  # 1.2 MB over a 1 MB cap: b, used least recently, goes
    assert {e.key for e in cache.entries()} == {a, c}
    assert cache.lookup(b) is None
    assert cache.size_bytes() <= 1000_000
    assert not list((cache.root / "tmp").iterdir())  # nothing left half-removed
    # the committed entry stays even alone above the cap; recently used ones stay too
    small = cache_mod.ResultCache(tmp_path / "c", max_bytes=1)
    d = _entry(small, 2000, now)
    assert {e.key for e in small.entries()} == {c, d}  # c was used within the grace period
    assert small.evict(keep=d, grace_s=0) == [c]
    assert [e.key for e in small.entries()] == [d]
    # 0 means no cap
    free = cache_mod.ResultCache(tmp_path / "c", max_bytes=0)
    e = _entry(free, 2000, now - 1000)
    assert free.evict(grace_s=0) == [] and {x.key for x in free.entries()} == {d, e}


def test_commit_drops_input_paths(tmp_path):
    cache = _mod("bridge.cache").ResultCache(tmp_path / "c")
    key = _entry(cache, 10, time.time())
    data = json.loads((cache.results / key / "result.json").read_text())
    assert data["image"]["path"] is None and data["engine"]["settings"]["mask_file"] is None


def test_cap_comes_from_the_preference_or_the_caller(monocle, photo_dir, tmp_path):
    pipeline, prefs = _mod("pipeline"), _mod("prefs")
    assert prefs.get_prefs().cache_max_mb == 2048
    photo = _photo(photo_dir, tmp_path, "cap.png")
    request = pipeline.InferenceRequest(image=str(photo))
    pipeline.Inference(request, warm=False).wait()  # committed: the next ones are hits
    assert pipeline.Inference(request, warm=False).cache.max_bytes == 2048 * 1024 * 1024
    assert pipeline.Inference(request, warm=False, cache_max_mb=5).cache.max_bytes == 5 * 1024 * 1024
    assert pipeline.Inference(request, warm=False, cache_max_mb=0).cache.max_bytes == 0
    args = _cli().build_parser().parse_args(["reconstruct", "a.png", "-o", "out", "--cache-max-mb", "64"])
    assert args.cache_max_mb == 64


# -- a full disk ---------------------------------------------------------------------------------


def test_worker_reports_a_full_disk(ext_dir, photo_dir, tiny_disk, tmp_path):
    photo = _photo(photo_dir, tmp_path, "box.png")
    out = tiny_disk / "out"
    out.mkdir()
    _fill(tiny_disk, 8192)
    rc, events, err = run_worker(ext_dir, "run", "--image", str(photo), "--out", str(out))
    assert rc == 1, err
    assert events[-1]["event"] == "error" and events[-1]["code"] == "disk_full"
    assert "full" in events[-1]["message"] and "\n" not in events[-1]["message"]
    assert "Traceback" not in err
    assert not [p.name for p in out.iterdir() if not p.name.startswith("mask_")]  # no partial depth file


def test_cache_commit_reports_a_full_disk(tiny_disk):
    cache_mod, worker = _mod("bridge.cache"), _mod("bridge.worker")
    cache = cache_mod.ResultCache(tiny_disk / "cache")
    scratch = cache.scratch()
    (scratch / "result.json").write_text(json.dumps({"image": {"path": "/x.png"}, "engine": {"settings": {}},
                                                     "pad": "x" * 2000}))
    _fill(tiny_disk, 0)
    with pytest.raises(worker.WorkerRunError) as info:
        cache.commit("k", scratch)
    assert info.value.code == "disk_full" and "full" in info.value.message
    assert not scratch.exists() and cache.lookup("k") is None
