"""The interactive path, tick by tick: progress, Esc mid-run, a worker killed from
outside, a worker that prints garbage. (There is no window under the bpy module, so
the timer handler's body, ModalRun, is driven directly.)"""

from __future__ import annotations

import os
import signal
import time

import bpy
import numpy as np
import pytest
from conftest import MODULE
from monocle import pipeline as pipe
from monocle import prefs
from monocle.bridge.warm import POOL
from monocle.operators import reconstruct as rec
from PIL import Image


@pytest.fixture
def big_photo(tmp_path):
    """A photo large enough that the worker is still busy when we cancel."""
    rng = np.random.default_rng(1)
    h, w = 3000, 4000
    img = np.full((h, w, 3), 230, np.uint8)
    yy, xx = np.ogrid[0:h, 0:w]
    img[(xx - 2000) ** 2 + (yy - 1500) ** 2 < 1100**2] = (30, 60, 150)
    img = np.clip(img.astype(np.int16) + rng.integers(-12, 12, img.shape), 0, 255).astype(np.uint8)
    path = tmp_path / "big.png"
    Image.fromarray(img).save(path)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); look at its state
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture(params=[True, False], ids=["warm", "cold"], autouse=True)
def warm(request):
    """Every test runs with a warm (serve) worker and with a one-shot worker."""
    p = bpy.context.preferences.addons[MODULE].preferences
    pool = POOL
    p.keep_worker_warm = request.param
    yield request.param
    p.keep_worker_warm = True
    pool.shutdown_all()


def _scratch_files(prefs) -> list:
    tmp = prefs.cache_root() / "tmp"
    return list(tmp.rglob("*")) if tmp.exists() else []


def _start(pipe, photo, max_size=4096):
    req = pipe.InferenceRequest(image=str(photo), max_size=max_size)
    return pipe.Inference(req, bpy.context)


def test_progress_then_cancel_mid_run(big_photo, warm):
    inference = _start(pipe, big_photo)
    assert not inference.cached and inference.job is not None
    run = rec.ModalRun(inference, bpy.context)
    status = bpy.context.window_manager.monocle_status
    assert status.running
    pid = inference.job.pid
    deadline = time.monotonic() + 30
    while status.stage in ("Starting", "Reading image") and time.monotonic() < deadline:
        assert run.tick(bpy.context) is False
        time.sleep(0.1)
    assert status.stage not in ("Starting",)
    t = time.perf_counter()
    run.close(bpy.context)  # what Esc does
    assert time.perf_counter() - t < 1.0
    assert inference.job.state.done and inference.job.state.error.code == "cancelled"
    if warm:  # the request stopped; the worker either stopped it in time and stays warm, or was killed
        assert not _alive(pid) or not inference.job.worker.busy
    else:
        assert not _alive(pid)
    assert not status.running
    assert not bpy.data.objects and not bpy.data.meshes
    assert _scratch_files(prefs) == []


def test_worker_killed_from_outside(big_photo):
    inference = _start(pipe, big_photo, max_size=4000)
    run = rec.ModalRun(inference, bpy.context)
    status = bpy.context.window_manager.monocle_status
    # kill it while it works on the request (a warm worker killed before answering is retried, by design)
    deadline = time.monotonic() + 60
    while status.stage == "Starting" and time.monotonic() < deadline:
        assert run.tick(bpy.context) is False
        time.sleep(0.02)
    os.kill(inference.job.pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    try:
        with pytest.raises(Exception) as info:
            while time.monotonic() < deadline:
                if run.tick(bpy.context):
                    break
                time.sleep(0.05)
    finally:
        run.close(bpy.context)
    assert getattr(info.value, "code", None) == "worker_crashed"
    assert "killed" in str(info.value)
    assert not bpy.data.objects and _scratch_files(prefs) == []


def test_worker_printing_garbage(tmp_path, big_photo):
    """An interpreter whose 'worker' prints non-JSON on stdout gives a clear error."""
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'Hello from a broken environment'\necho '<html>oops</html>'\nexit 0\n")
    fake.chmod(0o755)
    p = bpy.context.preferences.addons[MODULE].preferences
    p.python_path = str(fake)
    try:
        inference = _start(pipe, big_photo, max_size=999)
        run = rec.ModalRun(inference, bpy.context)
        with pytest.raises(Exception) as info:
            for _ in range(200):
                if run.tick(bpy.context):
                    break
                time.sleep(0.05)
        run.close(bpy.context)
    finally:
        p.python_path = ""
    assert getattr(info.value, "code", None) == "worker_protocol"
    assert not bpy.data.objects and _scratch_files(prefs) == []
