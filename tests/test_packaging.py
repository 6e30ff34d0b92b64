"""The extension zip as shipped: validates, carries exactly its platform's wheels, no dev files,
and the bundled wheels plus Blender's numpy are enough to run the offline engine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name, parse_wheel_filename

TOOLS = Path(__file__).resolve().parent.parent / "tools"
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))
import build_extension
import wheels

PLATFORM = build_extension.current_platform_tag()
DEV_PREFIXES = ("tests/", "bench/", "tools/", "scripts/", "docs/", ".venv/", ".cache/", ".git/", "dist/", "build/",
                "out/")


@pytest.fixture(scope="module")
def platform_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This machine's platform zip, built the way a release is (wheels from the cache)."""
    zips = build_extension.build(tmp_path_factory.mktemp("dist"), platforms=[PLATFORM])
    assert [z.name for z in zips] == [build_extension.zip_name(PLATFORM)]
    return zips[0]


def _effective_manifest(zf: zipfile.ZipFile) -> dict:
    """The manifest as Blender reads it: ``[build.generated]`` overrides platforms and wheels."""
    manifest = tomllib.loads(zf.read("blender_manifest.toml").decode("utf-8"))
    manifest.update(manifest.get("build", {}).get("generated", {}))
    return manifest


def _validate(path: Path) -> subprocess.CompletedProcess:
    cli = build_extension.blender_ext_cli()
    return subprocess.run([sys.executable, str(cli), "validate", str(path)], capture_output=True, text=True)


def test_zip_validates_and_broken_manifest_does_not(platform_zip, tmp_path):
    assert _validate(platform_zip).returncode == 0
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(platform_zip) as src, zipfile.ZipFile(broken, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "blender_manifest.toml":
                data = data.replace(b'id = "monocle"', b'id = "mono cle"')
            dst.writestr(info, data)
    assert _validate(broken).returncode != 0


def test_manifest_lists_exactly_the_bundled_wheels(platform_zip):
    with zipfile.ZipFile(platform_zip) as zf:
        names = set(zf.namelist())
        manifest = _effective_manifest(zf)
    assert manifest["platforms"] == [PLATFORM]
    listed = manifest["wheels"]
    assert all(w.startswith("./wheels/") for w in listed)
    assert {w[2:] for w in listed} == {n for n in names if n.startswith("wheels/")}
    projects = {parse_wheel_filename(Path(w).name)[0] for w in listed}
    assert projects == {canonicalize_name(n) for n in wheels.PINS}
    assert "numpy" not in projects  # Blender's own numpy must not be shadowed


def test_bundled_wheels_are_a_closed_set():
    paths = wheels.fetch(PLATFORM)
    assert wheels.check_requirements(paths, PLATFORM) == []
    # The check itself bites: drop a dependency and it must be reported.
    without_scipy = [p for p in paths if not p.name.startswith("scipy-")]
    problems = wheels.check_requirements(without_scipy, PLATFORM)
    assert any("scipy" in p and "not bundled" in p for p in problems)


def test_zip_has_sources_but_no_dev_files(platform_zip):
    with zipfile.ZipFile(platform_zip) as zf:
        names = zf.namelist()
    for required in ("__init__.py", "blender_manifest.toml", "inference/__main__.py", "inference/run.py"):
        assert required in names
    leaked = [n for n in names if n.startswith(DEV_PREFIXES) or "__pycache__/" in n or n.endswith(".pyc")]
    assert leaked == []


def _unpack(archive: Path, dest: Path) -> Path:
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(dest)
    return dest


def _isolated_env(pythonpath: list[Path]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TMPDIR", "LANG", "SYSTEMROOT")}
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in pythonpath)
    return env


@pytest.mark.skipif(PLATFORM != "linux-x64", reason="runs the bundled linux-x64 wheels")
def test_worker_runs_on_bundled_wheels_and_blender_numpy(platform_zip, tmp_path, photo_dir):
    ext = _unpack(platform_zip, tmp_path / "ext")
    site = tmp_path / "site"
    with zipfile.ZipFile(platform_zip) as zf:
        listed = _effective_manifest(zf)["wheels"]
    for wheel in listed:
        _unpack(ext / wheel, site)
    (numpy_wheel,) = wheels.fetch(PLATFORM, {"numpy": wheels.BLENDER_NUMPY})
    numpy_dir = _unpack(numpy_wheel, tmp_path / "numpy")
    # -S -s: no site-packages at all (the venv's included); PYTHONPATH is the only source.
    python = [sys.executable, "-S", "-s"]
    env = _isolated_env([ext, site, numpy_dir])
    bare = subprocess.run([*python, "-c", "import cv2"], env=_isolated_env([ext, numpy_dir]), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert bare.returncode != 0, "cv2 importable without the bundled wheels: the isolation leaks"

    probe = (
        "import json, sys, cv2, numpy, PIL, scipy.ndimage, skimage.segmentation\n"
        "print(json.dumps({'numpy': numpy.__version__, 'path': sys.path,"
        " 'files': {m.__name__: m.__file__ for m in (cv2, numpy, PIL, scipy, skimage)}}))\n"
    )
    proc = subprocess.run([*python, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["numpy"] == wheels.BLENDER_NUMPY
    assert not any("site-packages" in p for p in info["path"])
    assert Path(info["files"]["numpy"]).is_relative_to(numpy_dir)
    for module in ("cv2", "PIL", "scipy", "skimage"):
        assert Path(info["files"][module]).is_relative_to(site), (module, info["files"][module])

    image = photo_dir / "fruit.jpg"
    out = tmp_path / "out"
    proc = subprocess.run(
        [*python, "-m", "inference", "run", "--image", str(image), "--out", str(out)],
        env=env, cwd=ext, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events[-1]["event"] == "result"
    result = json.loads((out / "result.json").read_text())
    assert (result["image"]["width"], result["image"]["height"]) == (640, 480)
    assert len(result["instances"]) >= 1
    assert all(inst["area"] > 0 for inst in result["instances"])
