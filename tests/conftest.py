"""Test harness: build the extension zip, install it into an isolated Blender user
profile and run every test against that installed copy, from a fresh empty file.

``BLENDER_USER_RESOURCES`` must be set before ``bpy`` is imported, so it is set at
import time of this module.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import json
import os
import subprocess
import sys
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The files the tests read from the benchmark data, in its layout: a small in-repo copy with stand-ins
# where a licence does not allow one (tests/data/LICENSES.md). MONOCLE_BENCH_DATA points the same
# tests at the full set (../shared/bench-data) instead.
BENCH_DATA = Path(os.environ.get("MONOCLE_BENCH_DATA") or ROOT / "tests" / "data")
sys.path.insert(0, str(ROOT / "tools"))
import blender_env

_PROFILE = blender_env.use_profile()

import bpy

MODULE = blender_env.MODULE
EXT_DIR = Path(blender_env.install_extension().__file__).parent
ALIAS = "monocle"


class _InstalledAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import monocle.x`` gives the installed extension's module ``MODULE.x`` itself (one module, two names),
    so tests import the extension like any package while Blender loads it under its ``bl_ext`` name."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> ModuleSpec | None:
        if fullname != ALIAS and not fullname.startswith(ALIAS + "."):
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def __init__(self) -> None:
        self.specs: dict[str, ModuleSpec | None] = {}

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        module = importlib.import_module(MODULE + spec.name[len(ALIAS):])
        self.specs[spec.name] = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        assert module.__spec__ is not None
        module.__spec__ = self.specs.pop(module.__spec__.name)  # the import machinery gave it the alias's spec


sys.meta_path.insert(0, _InstalledAlias())


@pytest.fixture(scope="session", autouse=True)
def _profile_cleanup():
    yield
    blender_env.remove_profile(_PROFILE)


@pytest.fixture(scope="session")
def ext_dir() -> Path:
    """The installed extension folder (what a user's Blender loads)."""
    return EXT_DIR


@pytest.fixture(scope="session")
def monocle():
    """The installed extension's top-level module."""
    return importlib.import_module(MODULE)


@pytest.fixture(scope="session")
def bench_data() -> Path:
    """The benchmark data's layout with the few files the tests read (``BENCH_DATA``)."""
    if not BENCH_DATA.is_dir():
        raise FileNotFoundError(f"MONOCLE_BENCH_DATA={BENCH_DATA} is not a folder")
    return BENCH_DATA


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory) -> Path:
    """A folder of generated photos (tests/photos.py): fruit.jpg, box.jpg and toy.jpg, one object each."""
    from photos import write_photos

    folder = tmp_path_factory.mktemp("photos")
    write_photos(folder)
    return folder


@pytest.fixture(autouse=True)
def fresh_file():
    """Every test starts from a fresh empty file (the add-on stays enabled)."""
    bpy.ops.wm.read_homefile(app_template="", use_empty=True)
    yield
    bpy.ops.wm.read_homefile(app_template="", use_empty=True)


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MB tmpfs to fill up (needs mount rights: root, as in CI), unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def read_depth(path: Path):
    """A result's depth map through the extension's own reader (an estimate is stored as float16 about an offset)."""
    from monocle.inference.depthfile import load_depth_file

    return load_depth_file(path)


def worker_env(ext: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ext)
    env.update(extra)
    return env


def run_worker(ext: Path, *args: str, timeout: float = 120, **env: str) -> tuple[int, list[dict], str]:
    """Run ``python -m inference ARGS`` from the installed extension; returns (exit code, events, stderr).

    Fails the test if stdout carries anything but JSON events.
    """
    proc = subprocess.run(
        [sys.executable, "-m", "inference", *args],
        cwd=ext,
        env=worker_env(ext, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    events = []
    for line in proc.stdout.splitlines():
        obj = json.loads(line)  # raises: anything else on stdout is a protocol bug
        assert isinstance(obj, dict) and "event" in obj, line
        events.append(obj)
    return proc.returncode, events, proc.stderr


_EXIT_STATUS = 0


def pytest_sessionfinish(session, exitstatus):
    global _EXIT_STATUS
    _EXIT_STATUS = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """Leave without Python's interpreter teardown once pytest has reported everything.

    The bpy module (with torch loaded in the same process by some tests) can deadlock in its
    exit handlers; the test results are already printed, so end the process with pytest's code.
    """
    import sys as _sys

    _sys.stdout.flush()
    _sys.stderr.flush()
    blender_env.remove_profile(_PROFILE)
    os._exit(_EXIT_STATUS)
