"""``python -m inference setup-env DIR``: the learned engine's Python environment in one command.

It makes a virtual environment with the pinned, tested versions of torch, transformers and every
package the worker imports, and nothing more. The torch build fits the platform and GPU: the CPU
build unless an NVIDIA GPU is found or chosen, PyTorch's CUDA build for NVIDIA GPUs on Linux and
Windows, the default build on Apple silicon. The environment is built in a temporary folder beside
DIR, checked with ``python -m inference engines`` and only then swapped in, so a failed or
cancelled set-up leaves the previous environment working.

Standard library only: it runs on Blender's Python or any Python 3.11 or 3.12. Events go to
stdout, pip's output to stderr. Tools are always run as ``python -m``, never through console
scripts, whose shebangs would name the temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .learned_env import DEVICES, OTHER_MB, PINS, PYTHONS, TORCH, NvidiaGpu, TorchBuild, choose_torch, detect_nvidia
from .process import pid_alive
from .protocol import EXIT_INTERNAL, EXIT_OK, Emitter, WorkerError

TORCH_INDEX_ENV = "MONOCLE_TORCH_INDEX"  # same as --torch-index: a URL, or "pypi" for the default registry
PIP_OPTIONS = ("--only-binary", ":all:", "--progress-bar", "off", "--disable-pip-version-check", "--no-input")
EXTENSION_DIR = Path(__file__).resolve().parent.parent


class CancelledError(Exception):
    """SIGTERM or SIGINT arrived while the set-up could still be undone."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="folder of the environment (replaced when it is one already)")
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="torch build: auto (CUDA when nvidia-smi lists a GPU, MPS on Apple silicon, else CPU)")
    parser.add_argument("--torch-index", default=None, metavar="URL|pypi",
                        help=f"where torch comes from instead of PyTorch's index (default: ${TORCH_INDEX_ENV})")
    parser.add_argument("--dry-run", action="store_true", help="print the plan as events; install nothing")


def env_python(root: Path) -> Path:
    return root / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def venv_command(root: Path, final: Path) -> list[str]:
    """Make the environment in ``root``; its shell prompt names ``final``, where it will be used."""
    return [sys.executable, "-m", "venv", "--prompt", final.name, str(root)]


def pip_commands(python: Path, build: TorchBuild) -> list[list[str]]:
    """torch from its index, then everything else from the default registry with torch held at its pin."""
    pip = [str(python), "-m", "pip", "install", *PIP_OPTIONS]
    index = ["--index-url", build.index] if build.index else []
    return [[*pip, *index, TORCH.requirement], [*pip, *(p.requirement for p in PINS if p is not TORCH),
                                                TORCH.requirement]]


@dataclass(frozen=True)
class Plan:
    target: Path
    build: TorchBuild
    gpu: NvidiaGpu | None

    @property
    def download_mb(self) -> int:
        return self.build.download_mb + OTHER_MB

    def describe(self) -> dict[str, Any]:
        """The plan as event fields: commands are shown with the final environment's paths."""
        python = env_python(self.target)
        return {
            "target": str(self.target), "python": sys.executable, "device": self.build.device,
            "torch_build": self.build.name, "torch_index": self.build.index or "default",
            "gpu": self.gpu.name if self.gpu else None, "pins": {p.dist: p.version for p in PINS},
            "download_mb": self.download_mb, "download_is_estimate": True,
            "commands": [venv_command(self.target, self.target), *pip_commands(python, self.build),
                         [str(python), "-m", "inference", "engines"]],
        }

    def summary(self) -> str:
        kind = {"cuda": f"CUDA build {self.build.name}", "mps": "Apple silicon build"}.get(self.build.device,
                                                                                          "CPU build")
        return (f"Installing torch {TORCH.version} ({kind}) and {len(PINS) - 1} more packages: about "
                f"{_size(self.download_mb)} to download (an estimate).")


def make_plan(target: Path, device: str, index: str | None) -> Plan:
    if sys.version_info[:2] not in PYTHONS:
        raise WorkerError("unsupported_python", f"The learned environment needs Python 3.11 or 3.12 (numpy "
                          f"{_pin('numpy')} has no build for {platform.python_version()}); run setup-env with one.")
    gpu = detect_nvidia() if device in ("auto", "cuda") else None
    build = choose_torch(device, platform.system(), platform.machine(), gpu, index)
    return Plan(target.expanduser().absolute(), build, gpu)


def _pin(dist: str) -> str:
    return next(p.version for p in PINS if p.dist == dist)


def _size(mb: int) -> str:
    return f"{mb / 1000:.1f} GB" if mb >= 1000 else f"{mb} MB"


# -- running the steps ---------------------------------------------------------------------------

def _child_env() -> dict[str, str]:
    """The environment of venv and pip: nothing from the caller's PYTHONPATH (Blender's wheels would
    look installed) or the user's site-packages."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env.update(PYTHONNOUSERSITE="1", PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
    return env


_PIP_LINE = re.compile(
    r"^\s*(Downloading|Processing|Collecting|Using cached)\s+(\S+)(?:\s+\(([\d.]+)\s*(kB|MB|GB)\))?")
_UNITS = {"kB": 0.001, "MB": 1.0, "GB": 1000.0}


def run_step(cmd: list[str], emit: Emitter, span: tuple[float, float], stage: str, expected_mb: float) -> None:
    """Run one command, copying its output to stderr and turning pip's lines into progress in ``span``."""
    lo, hi = span
    emit.progress(stage, lo, _step_message(stage))
    done_mb, pending_mb = 0.0, 0.0
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=_child_env(), text=True, encoding="utf-8", errors="replace", bufsize=1)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stderr.write(line)
            match = _PIP_LINE.match(line)
            if line.startswith("Installing collected packages"):
                emit.progress(stage, lo + 0.85 * (hi - lo), "Installing " + line.split(":", 1)[-1].strip()[:120])
            elif match:
                verb, token, size, unit = match.groups()
                done_mb, pending_mb = done_mb + pending_mb, float(size) * _UNITS[unit] if size else 0.0
                name = re.split(r"[<>=!~;\[]", Path(token).name)[0].split("-")[0]
                shown = f" ({_size(round(pending_mb))})" if pending_mb >= 1 else ""
                fraction = lo + min(0.8, done_mb / max(expected_mb, 1.0)) * (hi - lo)
                emit.progress(stage, fraction, f"{verb.replace('Processing', 'Unpacking')} {name}{shown}")
        code = proc.wait()
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    if code != 0:
        raise WorkerError(f"{stage}_failed", _step_message(stage, failed=True))
    emit.progress(stage, hi, _step_message(stage))


def _step_message(stage: str, failed: bool = False) -> str:
    what = {"venv": "creating the virtual environment", "torch": f"installing torch {TORCH.version}",
            "packages": "installing transformers and the worker's packages"}[stage]
    if failed:
        return f"Setting up the learned engine failed while {what}; the previous environment is unchanged (pip's " \
               "output is in the log)."
    return what[0].upper() + what[1:]


def check_env(python: Path) -> list[dict[str, Any]]:
    """Run the Check (``python -m inference engines``) in the new environment; raise unless the learned
    engine is ready with exactly the pinned versions."""
    env = {**_child_env(), "PYTHONPATH": str(EXTENSION_DIR)}
    try:
        proc = subprocess.run([str(python), "-m", "inference", "engines"], cwd=str(EXTENSION_DIR), env=env,
                              capture_output=True, text=True, timeout=600)
        engines = json.loads(proc.stdout.strip().splitlines()[-1])["engines"]
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, IndexError) as exc:
        raise WorkerError("check_failed", f"The new environment's Python could not run Monocle's check ({exc}).")
    learned = [e for e in engines if e["name"] in ("transformers", "moge")]  # the engines the pins serve
    for engine in learned:
        if not engine["available"]:
            raise WorkerError("check_failed", "The new environment failed the check: " + engine["message"])
    versions = {dist: v for engine in learned for dist, v in engine["versions"].items()}
    wrong = [f"{p.dist} {versions.get(p.dist)}" for p in PINS if versions.get(p.dist, "").split("+")[0] != p.version]
    if wrong:
        raise WorkerError("check_failed", "The new environment has other versions than the pinned ones: "
                          + ", ".join(wrong) + ".")
    return engines


# -- the temporary folder and the swap -----------------------------------------------------------

def _sibling(target: Path, kind: str, pid: int) -> Path:
    """``.DIR.setup-PID`` (being built) or ``.DIR.old-PID`` (the previous environment, being deleted)."""
    return target.parent / f".{target.name}.{kind}-{pid}"


def remove_leftovers(target: Path) -> None:
    """Delete temporary folders of set-ups that were killed (their process is gone)."""
    for kind in ("setup", "old"):
        for path in target.parent.glob(f".{target.name}.{kind}-*"):
            pid = path.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not _alive(int(pid), path):
                shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int, path: Path) -> bool:
    if pid == os.getpid():
        return True
    alive = pid_alive(pid)
    if alive is None:  # cannot be asked (Windows): a day-old folder counts as abandoned
        return time.time() - path.stat().st_mtime < 86400
    return alive


def retarget_scripts(env: Path, final: Path) -> None:
    """Make the activate scripts, script shebangs and pyvenv.cfg name ``final`` instead of ``env``.

    The interpreter itself finds its packages from where it lies, so only these text files hold the
    temporary path; binary launchers (Windows) are left alone.
    """
    old, new = os.fsencode(env), os.fsencode(final)
    scripts = env_python(env).parent
    for path in [env / "pyvenv.cfg", *scripts.iterdir()]:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 1 << 20:
            continue
        data = path.read_bytes()
        if old in data and b"\0" not in data:
            path.write_bytes(data.replace(old, new))


def _prefix_of(python: Path) -> Path | None:
    try:
        out = subprocess.run([str(python), "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True,
                             env=_child_env(), timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return Path(out.stdout.strip()).resolve() if out.returncode == 0 else None


def swap_in(new: Path, target: Path) -> None:
    """Replace ``target`` by ``new`` (old aside, new in, old deleted); on any failure ``target`` is as before."""
    aside = _sibling(target, "old", os.getpid())
    had_old = target.exists()
    try:
        if had_old:
            os.rename(target, aside)
        os.rename(new, target)
    except OSError as exc:
        if had_old and aside.exists() and not target.exists():
            os.rename(aside, target)
        raise WorkerError("swap_failed", f"Could not replace {target} ({exc.strerror}); is its Python still "
                          "running? Stop Monocle's warm worker and try again.") from None
    if _prefix_of(env_python(target)) != target.resolve():  # the renamed environment must work where it lies
        os.rename(target, new)
        if had_old:
            os.rename(aside, target)
        raise WorkerError("swap_failed", f"The new environment did not work after it was moved to {target}; the "
                          "previous environment is unchanged.")
    shutil.rmtree(aside, ignore_errors=True)


def _check_target(target: Path) -> None:
    """Refuse to replace anything but a virtual environment or an empty folder."""
    if target.is_file() or (target.is_dir() and any(target.iterdir()) and not (target / "pyvenv.cfg").is_file()):
        raise WorkerError("bad_argument", f"{target} exists and is not a Python environment; choose a new or empty "
                          "folder.")


class _CancelGuard:
    """While armed, SIGTERM and SIGINT raise CancelledError; once the new environment is in place they wait."""

    def __init__(self) -> None:
        self.armed = True
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> _CancelGuard:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: object) -> None:
        if self.armed:
            raise CancelledError()


def setup(plan: Plan, emit: Emitter) -> list[dict[str, Any]]:
    """Build the environment beside ``plan.target``, check it and swap it in; returns the Check's engines."""
    target = plan.target
    _check_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target)
    temp = _sibling(target, "setup", os.getpid())
    shutil.rmtree(temp, ignore_errors=True)
    emit.progress("plan", 0.0, plan.summary())
    with _CancelGuard() as guard:
        try:
            run_step(venv_command(temp, target), emit, (0.0, 0.04), "venv", 1.0)
            torch_step, others_step = pip_commands(env_python(temp), plan.build)
            run_step(torch_step, emit, (0.04, 0.75), "torch", plan.build.download_mb)
            run_step(others_step, emit, (0.75, 0.93), "packages", OTHER_MB)
            retarget_scripts(temp, target)
            emit.progress("check", 0.93, "Checking the new environment")
            engines = check_env(env_python(temp))
            guard.armed = False
            swap_in(temp, target)
        finally:
            if temp.exists():
                shutil.rmtree(temp, ignore_errors=True)
    emit.progress("done", 1.0, f"The learned engine is ready in {target}")
    return engines


def main(args: argparse.Namespace, emit: Emitter) -> int:
    """``setup-env``: the plan as an event, then (unless ``--dry-run``) the set-up and its result."""
    started = time.perf_counter()
    index = args.torch_index or os.environ.get(TORCH_INDEX_ENV, "").strip() or None
    plan = make_plan(Path(args.dir), args.device, index)
    emit.emit("plan", **plan.describe())
    if args.dry_run:
        return EXIT_OK
    try:
        engines = setup(plan, emit)
    except (CancelledError, KeyboardInterrupt):
        emit.error("cancelled", "The set-up was cancelled; the previous environment is unchanged.")
        return EXIT_INTERNAL
    emit.emit("result", path=str(env_python(plan.target)), engines=engines,
              seconds=round(time.perf_counter() - started, 1))
    return EXIT_OK
