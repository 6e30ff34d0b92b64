"""``python -m inference setup-env`` for real: a pinned environment from the package registry,
a real photo reconstructed through it, and the previous environment kept through failures.

The environment is cached between runs under ``~/.cache/monocle-test-envs/<hash of its pins>``;
a cached one is checked as thoroughly as a new one (the Check, a learned run, its package set).
torch comes from the default registry (``MONOCLE_TORCH_INDEX=pypi``) through its pinned version.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path

import numpy as np
import pytest
from conftest import MODULE, read_depth, run_worker, worker_env
from hf_fixtures import build_depth_anything, build_mask2former

learned_env = importlib.import_module(MODULE + ".inference.learned_env")
setup_env = importlib.import_module(MODULE + ".inference.setup_env")
WorkerError = importlib.import_module(MODULE + ".inference.protocol").WorkerError
CACHE = Path.home() / ".cache" / "monocle-test-envs"
PINS = {p.dist: p.version for p in learned_env.PINS}


def _events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def _run_in(python: Path, ext: Path, *args: str, timeout: float = 300) -> tuple[int, list[dict], str]:
    """``python -m inference ARGS`` with another interpreter (the extension on PYTHONPATH)."""
    proc = subprocess.run([str(python), "-m", "inference", *args], cwd=ext, env=worker_env(ext),
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, _events(proc.stdout), proc.stderr


def _leftovers(target: Path) -> list[Path]:
    return sorted(target.parent.glob(f".{target.name}.*"))


def _tiny_env(root: Path) -> Path:
    """A previous environment: a bare venv with a module of its own, to see that it survives."""
    venv.create(root, with_pip=False)
    site = next(root.glob("lib/python3*/site-packages"))
    (site / "still_here.py").write_text("VALUE = 42\n")
    return root


def _tiny_env_works(root: Path) -> bool:
    out = subprocess.run([str(setup_env.env_python(root)), "-c", "import still_here; print(still_here.VALUE)"],
                         capture_output=True, text=True, timeout=60)
    return out.stdout.strip() == "42"


@pytest.fixture(scope="session")
def learned(ext_dir) -> dict:
    """The learned environment: made by setup-env into the cache on a miss, reused on a hit."""
    key = json.dumps({"pins": PINS, "python": sys.version_info[:2], "machine": platform.machine()}, sort_keys=True)
    target = CACHE / hashlib.sha256(key.encode()).hexdigest()[:16] / "env"
    python = setup_env.env_python(target)
    if python.exists():
        return {"target": target, "python": python, "events": None}
    shutil.rmtree(target.parent, ignore_errors=True)
    _tiny_env(target)  # the set-up replaces a previous environment
    t = time.perf_counter()
    code, events, stderr = run_worker(ext_dir, "setup-env", str(target), "--device", "cpu", timeout=3000,
                                      MONOCLE_TORCH_INDEX="pypi")
    assert code == 0, stderr[-3000:]
    print(f"setup-env: {time.perf_counter() - t:.0f} s")
    return {"target": target, "python": python, "events": events}


def test_setup_env_events_and_check(learned, ext_dir):
    events = learned["events"]
    if events is not None:  # made in this run: its events say what happened, in order
        plan = events[0]
        assert plan["event"] == "plan" and plan["pins"] == PINS and plan["torch_index"] == "default"
        assert plan["download_mb"] > 100 and plan["download_is_estimate"] is True
        progress = [e for e in events if e["event"] == "progress"]
        assert "MB to download" in progress[0]["message"]
        stages = list(dict.fromkeys(e["stage"] for e in progress))
        assert stages == ["plan", "venv", "torch", "packages", "check", "done"]
        fractions = [e["fraction"] for e in progress]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0
        assert events[-1]["event"] == "result" and events[-1]["path"] == str(learned["python"])
        assert not _leftovers(learned["target"]) and not list(learned["target"].rglob("still_here.py"))
    # the Check, in the new environment: everything a learned run imports, at exactly the pins
    code, events, _ = _run_in(learned["python"], ext_dir, "engines")
    engines = {e["name"]: e for e in events[0]["engines"]}
    assert code == 0 and engines["transformers"]["available"], engines
    assert engines["classic"]["available"] and engines["transformers"]["devices"] == ["cpu"]
    assert engines["moge"]["available"], engines["moge"]
    versions = {**engines["moge"]["versions"], **engines["transformers"]["versions"]}
    assert {d: v.split("+")[0] for d, v in versions.items()} == PINS


def test_environment_works_where_it_was_moved(learned):
    """Built in a temporary folder and renamed: the interpreter, pip and the scripts name the final folder."""
    python, target = learned["python"], learned["target"]
    out = subprocess.run([str(python), "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True)
    assert Path(out.stdout.strip()) == target
    assert subprocess.run([str(python), "-m", "pip", "--version"], capture_output=True).returncode == 0
    activate = (target / "bin" / "activate").read_text()
    assert f'VIRTUAL_ENV="{target}"' in activate and ".setup-" not in activate and "(env)" in activate
    for script in (target / "bin").iterdir():
        if not script.is_symlink() and script.read_bytes().startswith(b"#!"):
            assert script.read_bytes().startswith(b"#!" + os.fsencode(target / "bin" / "python")), script


CLOSURE = """
import json, sys
from importlib.metadata import distributions
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
installed = {canonicalize_name(d.metadata["Name"]): d for d in distributions()}
todo, needed = [canonicalize_name(n) for n in json.loads(sys.argv[1])], set()
while todo:
    name = todo.pop()
    if name not in needed and name in installed:
        needed.add(name)
        for spec in installed[name].requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(req.name))
print(json.dumps({"installed": sorted(installed), "needed": sorted(needed)}))
"""


def test_nothing_more_is_installed(learned):
    """Every installed distribution is a pin or a dependency of one (pip comes with every venv)."""
    out = subprocess.run([str(learned["python"]), "-c", CLOSURE, json.dumps(list(PINS))], capture_output=True,
                         text=True, check=True)
    sets = json.loads(out.stdout)
    assert set(sets["installed"]) - set(sets["needed"]) == {"pip"}
    assert {"torch", "transformers", "scipy", "pillow", "opencv-python-headless"} <= set(sets["needed"])
    assert "torchvision" not in sets["installed"] and "scikit-image" not in sets["installed"]


def test_photo_reconstructs_through_the_new_environment(learned, ext_dir, photo_dir, tmp_path):
    """A real photo, random-weight Depth Anything and Mask2Former, through the new interpreter: the same
    result as the development environment's."""
    depth = build_depth_anything(tmp_path / "depth")
    seg = build_mask2former(tmp_path / "seg", favour="dining table")
    image = photo_dir / "toy.jpg"
    args = ["run", "--engine", "transformers", "--image", str(image), "--device", "cpu",
            "--depth-model", str(depth), "--seg-model", str(seg)]
    code, events, stderr = _run_in(learned["python"], ext_dir, *args, "--out", str(tmp_path / "new"))
    assert code == 0 and events[-1]["event"] == "result", stderr[-3000:]
    result = json.loads((tmp_path / "new" / "result.json").read_text())
    width, height = result["image"]["width"], result["image"]["height"]
    new = read_depth(tmp_path / "new" / result["depth"]["file"])
    assert new.shape == (height, width) and np.isfinite(new).all() and new.std() > 0
    assert result["engine"]["runtime"]["segmentation"] == "model"  # Mask2Former ran (it needs scipy)
    assert result["instances"] and {inst["extra"]["class_name"] for inst in result["instances"]} == {"dining table"}
    code, _, stderr = run_worker(ext_dir, *args, "--out", str(tmp_path / "dev"), timeout=300)
    assert code == 0, stderr[-3000:]
    dev_result = json.loads((tmp_path / "dev" / "result.json").read_text())
    dev = read_depth(tmp_path / "dev" / dev_result["depth"]["file"])
    np.testing.assert_allclose(new, dev, rtol=1e-4, atol=1e-4 * float(np.abs(dev).max()))
    assert [i["area"] for i in result["instances"]] == [i["area"] for i in dev_result["instances"]]


def test_dry_run_prints_the_plan(ext_dir, tmp_path):
    target = tmp_path / "env"
    code, events, _ = run_worker(ext_dir, "setup-env", str(target), "--device", "cpu", "--dry-run")
    assert code == 0 and [e["event"] for e in events] == ["plan"] and not target.exists()
    plan = events[0]
    assert plan["pins"] == PINS and plan["device"] == "cpu" and plan["download_is_estimate"]
    venv_cmd, torch_cmd, others_cmd, check_cmd = plan["commands"]
    assert venv_cmd[1:] == ["-m", "venv", "--prompt", "env", str(target)]
    python = str(setup_env.env_python(target))
    assert torch_cmd[:4] == [python, "-m", "pip", "install"] and torch_cmd[-1] == "torch==" + PINS["torch"]
    assert others_cmd[-1] == "torch==" + PINS["torch"]  # held at its pin while the rest resolves
    assert sorted(others_cmd[-len(PINS):]) == sorted(f"{d}=={v}" for d, v in PINS.items())
    assert check_cmd == [python, "-m", "inference", "engines"]
    if sys.platform == "linux":  # the CPU build from PyTorch's own index, not PyPI's CUDA build
        assert torch_cmd[-3:-1] == ["--index-url", "https://download.pytorch.org/whl/cpu"]
        assert 150 < plan["download_mb"] < 1000
        code, events, _ = run_worker(ext_dir, "setup-env", str(target), "--device", "cuda", "--dry-run",
                                     "--torch-index", "pypi")
        assert events[0]["device"] == "cuda" and events[0]["torch_index"] == "default"
        assert "--index-url" not in events[0]["commands"][1] and events[0]["download_mb"] > 1000


@pytest.mark.parametrize("system, machine, device, gpu, index, download", [
    ("Linux", "x86_64", "auto", None, "https://download.pytorch.org/whl/cpu", 200),
    ("Linux", "x86_64", "auto", (535, 8.6), "https://download.pytorch.org/whl/cu126", 3300),
    ("Linux", "x86_64", "auto", (580, 12.0), "https://download.pytorch.org/whl/cu130", 3300),
    ("Linux", "x86_64", "cpu", (580, 8.6), "https://download.pytorch.org/whl/cpu", 200),
    ("Linux", "x86_64", "cuda", None, "https://download.pytorch.org/whl/cu126", 3300),
    ("Windows", "AMD64", "auto", (590, 8.9), "https://download.pytorch.org/whl/cu130", 2600),
    ("Windows", "AMD64", "auto", None, None, 240),
    ("Darwin", "arm64", "auto", None, None, 90),
])
def test_torch_build_per_platform_and_gpu(system, machine, device, gpu, index, download):
    nvidia = learned_env.NvidiaGpu("GPU", *gpu) if gpu else None
    build = learned_env.choose_torch(device, system, machine, nvidia, None)
    assert (build.index, build.download_mb) == (index, download)
    assert build.device == ("mps" if system == "Darwin" else "cuda" if index and "/cu" in index else "cpu")


def test_platforms_without_a_torch_are_refused_in_one_sentence():
    for args, code, words in [
        (("auto", "Darwin", "x86_64", None), "unsupported_platform", "Intel Macs"),
        (("mps", "Linux", "x86_64", None), "bad_argument", "Apple silicon"),
        (("cuda", "Darwin", "arm64", None), "bad_argument", "no CUDA"),
        (("auto", "Linux", "x86_64", learned_env.NvidiaGpu("RTX 5090", 570, 12.0)), "gpu_unsupported", "driver"),
    ]:
        with pytest.raises(WorkerError) as err:
            learned_env.choose_torch(*args, None)
        assert err.value.code == code and words in err.value.message and err.value.message.count(". ") == 0


def test_failed_setup_leaves_the_previous_environment(ext_dir, tmp_path):
    """pip cannot reach any package: the set-up fails at torch and the old environment is untouched."""
    target = _tiny_env(tmp_path / "env")
    empty = tmp_path / "no-links"
    empty.mkdir()
    code, events, stderr = run_worker(ext_dir, "setup-env", str(target), "--device", "cpu", timeout=300,
                                      PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(empty))
    assert code != 0 and events[-1]["event"] == "error", stderr[-2000:]
    assert events[-1]["code"] == "torch_failed" and "previous environment is unchanged" in events[-1]["message"]
    assert "torch==" in stderr  # pip's own words went to stderr, not the protocol
    assert _tiny_env_works(target) and not _leftovers(target)


def test_cancelled_setup_leaves_the_previous_environment(ext_dir, tmp_path):
    """SIGTERM while pip installs torch: pip is stopped, the temporary folder removed, the old env kept."""
    target = _tiny_env(tmp_path / "env")
    proc = subprocess.Popen([sys.executable, "-m", "inference", "setup-env", str(target), "--device", "cpu"],
                            cwd=ext_dir, env=worker_env(ext_dir, MONOCLE_TORCH_INDEX="pypi"),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    seen = []
    for line in proc.stdout:
        seen.append(json.loads(line))
        if seen[-1].get("stage") == "torch":
            assert _leftovers(target), "the set-up builds beside the target"
            proc.send_signal(signal.SIGTERM)
            break
    rest = proc.stdout.read()
    assert proc.wait(timeout=60) != 0
    assert _events(rest)[-1]["code"] == "cancelled"
    time.sleep(1.0)  # a pip left running would still be writing into the temporary folder
    assert _tiny_env_works(target) and not _leftovers(target)


def test_a_folder_that_is_not_an_environment_is_refused(ext_dir, tmp_path):
    target = tmp_path / "documents"
    target.mkdir()
    (target / "thesis.txt").write_text("keep me")
    code, events, _ = run_worker(ext_dir, "setup-env", str(target), "--device", "cpu")
    assert code != 0 and events[-1]["code"] == "bad_argument" and "not a Python environment" in events[-1]["message"]
    assert (target / "thesis.txt").read_text() == "keep me" and not _leftovers(target)


def test_swap_rolls_back_when_the_new_environment_does_not_run(tmp_path):
    target = _tiny_env(tmp_path / "env")
    broken = tmp_path / ".env.setup-1"
    broken.mkdir()
    (broken / "pyvenv.cfg").write_text("home = /nowhere\n")
    with pytest.raises(WorkerError) as err:
        setup_env.swap_in(broken, target)
    assert err.value.code == "swap_failed" and "previous environment is unchanged" in err.value.message
    assert _tiny_env_works(target) and (broken / "pyvenv.cfg").is_file()
    assert [p.name for p in _leftovers(target)] == [broken.name]  # the caller removes its own folder


def _env_without(tmp_path: Path, hidden: set[str]) -> Path:
    """A venv that sees the development environment's packages except ``hidden`` (top-level names)."""
    dev_site = Path(np.__file__).parent.parent
    shown = tmp_path / "site"
    shown.mkdir(parents=True)
    for entry in dev_site.iterdir():
        top = entry.name.split("-")[0].split(".")[0].lower()
        if top not in hidden:
            (shown / entry.name).symlink_to(entry)
    root = tmp_path / "partial"
    venv.create(root, with_pip=False)
    (next(root.glob("lib/python3*/site-packages")) / "dev.pth").write_text(str(shown) + "\n")
    return setup_env.env_python(root)


def test_check_names_the_missing_package(ext_dir, tmp_path):
    """Torch and transformers but no Pillow (the old set-up's environment): not ready, and Pillow is named."""
    python = _env_without(tmp_path, {"pil", "pillow"})
    code, events, _ = _run_in(python, ext_dir, "engines")
    engines = {e["name"]: e for e in events[0]["engines"]}
    assert code == 0
    for name in ("classic", "transformers"):
        assert not engines[name]["available"] and engines[name]["missing"] == ["pillow"]
        assert engines[name]["message"].startswith("Needs the Python package pillow in the inference interpreter")
        assert engines[name]["message"].count(". ") == 0 and engines[name]["message"].endswith(".")
    python = _env_without(tmp_path / "2", {"scipy"})
    code, events, _ = _run_in(python, ext_dir, "engines")
    engines = {e["name"]: e for e in events[0]["engines"]}
    assert engines["classic"]["available"] and engines["transformers"]["missing"] == ["scipy"]
