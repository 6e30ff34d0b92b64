"""Blender's side of the warm worker: one ``inference serve`` process answers run after
run with its models loaded, is replaced when it dies or the settings change, and does
not outlive Blender."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import bpy
import pytest
from conftest import MODULE, ROOT
from monocle import pipeline as pipe
from monocle.bridge import warm
from test_modal import _alive


@pytest.fixture
def pool():
    pool = warm.POOL
    pool.shutdown_all()
    bpy.ops.monocle.clear_cache()  # every run here must reach a worker
    yield pool
    pool.shutdown_all()


@pytest.fixture
def photos(photo_dir, tmp_path):
    out = []
    for name in ("fruit", "box", "toy"):
        dst = tmp_path / f"{name}.jpg"
        shutil.copy(photo_dir / f"{name}.jpg", dst)
        out.append(dst)
    return out


def _run(pipe, photo, **request):
    inference = pipe.Inference(pipe.InferenceRequest(image=str(photo), max_size=512, **request), bpy.context)
    assert not inference.cached
    path = inference.wait()
    return inference, json.loads(path.read_text())


def test_one_worker_answers_every_run(pool, photos):
    pids = []
    for photo in photos:
        inference, result = _run(pipe, photo)
        assert inference.warm and result["instances"]
        pids.append(inference.job.pid)
    assert len(set(pids)) == 1
    (worker,) = pool.workers()
    assert worker.pid == pids[0] and worker.requests == 3 and not worker.busy


def test_killed_worker_is_replaced(pool, photos):
    first, _ = _run(pipe, photos[0])
    os.kill(first.job.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _alive(first.job.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    second, result = _run(pipe, photos[1])
    assert second.job.pid != first.job.pid and result["instances"]
    assert [w.pid for w in pool.workers()] == [second.job.pid]


def test_changed_settings_retire_the_old_worker(pool, photos):
    prefs = bpy.context.preferences.addons[MODULE].preferences
    first, _ = _run(pipe, photos[0])
    prefs.device = "CPU"
    try:
        second, _ = _run(pipe, photos[1])
    finally:
        prefs.device = "AUTO"
    assert second.job.pid != first.job.pid
    assert not _alive(first.job.pid)
    assert second.job.worker.env["MONOCLE_DEVICE"] == "cpu"


def test_cold_preference_starts_a_process_per_run(pool, photos):
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.keep_worker_warm = False
    try:
        a, _ = _run(pipe, photos[0])
        b, _ = _run(pipe, photos[1])
    finally:
        prefs.keep_worker_warm = True
    assert not a.warm and a.job.pid != b.job.pid
    assert not _alive(a.job.pid) and not _alive(b.job.pid) and pool.workers() == []


def test_disabling_the_extension_stops_the_worker(pool, photos):
    first, _ = _run(pipe, photos[0])
    assert _alive(first.job.pid)
    bpy.ops.preferences.addon_disable(module=MODULE)
    try:
        deadline = time.monotonic() + 5
        while _alive(first.job.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(first.job.pid)
    finally:
        bpy.ops.preferences.addon_enable(module=MODULE)


def test_worker_exits_when_blender_is_killed(photos, tmp_path):
    """A Blender killed with SIGKILL runs no clean-up; the worker must notice on its own."""
    script = tmp_path / "blender_session.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, sys
        import bpy
        bpy.ops.preferences.addon_enable(module={MODULE!r})
        pipe = __import__({MODULE!r} + ".pipeline", fromlist=["Inference"])
        inference = pipe.Inference(pipe.InferenceRequest(image={str(photos[0])!r}, max_size=256), bpy.context)
        inference.wait()
        print("PID", inference.job.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    pid = int(next(line for line in proc.stdout.splitlines() if line.startswith("PID")).split()[1])
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


def test_learned_models_load_once(pool, photo_dir, tmp_path):
    pytest.importorskip("torch")
    from hf_fixtures import build_depth_anything, build_mask2former

    depth = build_depth_anything(tmp_path / "depth")
    seg = build_mask2former(tmp_path / "seg", favour="cup")
    runs = []
    for name in ("fruit", "box", "toy"):
        photo = tmp_path / f"{name}.jpg"
        shutil.copy(photo_dir / f"{name}.jpg", photo)
        runs.append(_run(pipe, photo, engine="transformers", depth_model=str(depth), seg_model=str(seg)))
    (worker,) = pool.workers()
    assert {inf.job.pid for inf, _ in runs} == {worker.pid}
    assert worker.model_loads == 2  # depth + segmentation, loaded by the first run only
    first, later = runs[0][1], [r for _, r in runs[1:]]
    assert first["engine"]["runtime"]["warm"] is False
    assert all(r["engine"]["runtime"]["warm"] is True for r in later)
    # cold and warm both in timings: the first run paid imports + loads, the later ones did not
    assert first["timings"]["prepare"] > 5 * max(r["timings"]["prepare"] for r in later)
    assert all("warm_total" in r["timings"] for r in later)


def test_preferences_and_panel_show_the_worker(pool, photos):
    from test_panels import _draw

    prefs = bpy.context.preferences.addons[MODULE].preferences
    idle = {entry[1] for entry in _draw(type(prefs), prefs)}
    assert {"keep_worker_warm", "worker_idle_minutes", "No warm worker running"} <= idle
    inference, _ = _run(pipe, photos[0])
    busy = {entry[1] for entry in _draw(type(prefs), prefs)}
    assert "monocle.stop_workers" in busy
    assert any(str(inference.job.pid) in str(name) for name in busy)
    bpy.context.scene.monocle.engine = "transformers"
    assert "monocle.stop_workers" in {entry[1] for entry in _draw(bpy.types.MONOCLE_PT_models)}
    assert bpy.ops.monocle.stop_workers() == {"FINISHED"}
    assert not _alive(inference.job.pid) and pool.workers() == []


def test_build_imports_load_while_the_worker_runs(photos, tmp_path):
    """In a fresh Blender, enabling Monocle imports none of the geometry's heavy modules; starting
    a worker loads them on a background thread, so the first build does not wait for them."""
    script = tmp_path / "first_press.py"
    script.write_text(textwrap.dedent(f"""
        import json, sys
        import bpy
        bpy.ops.preferences.addon_enable(module={MODULE!r})
        preload = __import__({MODULE!r} + ".geometry.preload", fromlist=["MODULES"])
        names = [name for name, _ in preload.MODULES]
        before = [n for n in names if n in sys.modules]
        pipe = __import__({MODULE!r} + ".pipeline", fromlist=["Inference"])
        inference = pipe.Inference(pipe.InferenceRequest(image={str(photos[0])!r}, max_size=256), bpy.context,
                                   warm=False)
        thread = preload._thread  # started by the inference, not by this script
        assert thread is not None and not inference.cached
        inference.wait()
        thread.join(120)
        print("RESULT", json.dumps({{"before": before, "after": [n for n in names if n in sys.modules],
                                    "alive": thread.is_alive(), "same": thread is preload.preload()}}), flush=True)
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT"))[7:])
    assert got["before"] == [] and not got["alive"] and got["same"]
    assert got["after"] == ["cv2", "scipy.ndimage", "scipy.sparse.linalg", "scipy.sparse.csgraph", "scipy.spatial"]
