"""What the learned engine's environment holds: the pinned packages and which torch build fits
this platform and GPU. One source for ``setup-env`` (what it installs) and the Check (what a
learned run imports). Standard library only.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, replace

from .protocol import WorkerError


@dataclass(frozen=True)
class Pin:
    """One package of the learned environment: distribution, exact version, and the module the worker imports."""

    dist: str
    version: str
    module: str

    @property
    def requirement(self) -> str:
        return f"{self.dist}=={self.version}"


TORCH = Pin("torch", "2.13.0", "torch")
# Every package a learned run imports (engines.LEARNED_IMPORTS checks them), at the versions the tests
# run; their own dependencies come with them.
PINS: tuple[Pin, ...] = (
    TORCH,
    Pin("transformers", "5.23.0", "transformers"),
    Pin("huggingface_hub", "2.4.0", "huggingface_hub"),  # model downloads (inference.models)
    Pin("numpy", "1.26.4", "numpy"),  # Blender's numpy; OpenCV 4.11 is the last release that works with numpy<2
    Pin("opencv-python-headless", "4.11.0.86", "cv2"),
    Pin("pillow", "13.0.0", "PIL"),
    Pin("scipy", "1.17.1", "scipy"),  # transformers' Mask2Former will not load without it (its loss's matcher)
    Pin("onnxruntime", "1.32.0", "onnxruntime"),  # MoGe-2 (the moge engine); runs with numpy 1.26
)
PYTHONS = ((3, 11), (3, 12))  # numpy 1.26 has wheels for these only
DEVICES = ("auto", "cpu", "cuda", "mps")
PYTORCH_INDEX = "https://download.pytorch.org/whl/"


@dataclass(frozen=True)
class CudaBuild:
    """One of torch 2.13's CUDA builds (PyTorch's release matrix: 12.6 and 13.0 are the stable ones)."""

    tag: str
    min_driver: int  # major version of the NVIDIA driver it needs
    min_capability: float
    max_capability: float


CUDA_BUILDS = (  # best first
    CudaBuild("cu130", 580, 7.5, 99.0),  # Turing to Blackwell
    CudaBuild("cu126", 525, 5.0, 9.0),  # Maxwell to Hopper, older drivers
)
DEFAULT_CUDA = "cu126"  # a CUDA build chosen where nvidia-smi cannot say which GPU there is

# Download sizes in MB, estimates: torch with its own dependencies from the wheel sizes of recent
# releases (the CUDA builds carry NVIDIA's libraries); the rest from the wheels of one Linux x86-64
# set-up (about 150 MB). Nothing is measured per install.
TORCH_MB = {"linux-cpu": 200, "linux-cuda": 3300, "windows-cpu": 240, "windows-cuda": 2600, "macos": 90}
OTHER_MB = 170  # transformers, huggingface_hub, numpy, OpenCV, Pillow, scipy, onnxruntime and their dependencies


@dataclass(frozen=True)
class NvidiaGpu:
    name: str
    driver: int  # major version
    capability: float | None  # None where nvidia-smi is too old to say


@dataclass(frozen=True)
class TorchBuild:
    """Which torch pip installs: ``index`` None is the default registry."""

    name: str
    device: str
    index: str | None
    download_mb: int




def detect_nvidia() -> NvidiaGpu | None:
    """The first GPU nvidia-smi lists, or None (no NVIDIA driver, or no GPU)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    for fields in ("name,driver_version,compute_cap", "name,driver_version"):
        try:
            out = subprocess.run([exe, f"--query-gpu={fields}", "--format=csv,noheader"], capture_output=True,
                                 text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        lines = [line for line in out.stdout.splitlines() if line.strip()]
        if out.returncode == 0 and lines:
            parts = [p.strip() for p in lines[0].split(",")]
            try:
                driver = int(parts[1].split(".")[0])
                capability = float(parts[2]) if len(parts) > 2 else None
            except (IndexError, ValueError):
                return None
            return NvidiaGpu(parts[0], driver, capability)
    return None


def cuda_build(gpu: NvidiaGpu | None) -> str:
    """The best CUDA build of torch for ``gpu`` and its driver."""
    if gpu is None:
        return DEFAULT_CUDA
    for build in CUDA_BUILDS:
        cap_ok = gpu.capability is None or build.min_capability <= gpu.capability <= build.max_capability
        if gpu.driver >= build.min_driver and cap_ok:
            return build.tag
    raise WorkerError("gpu_unsupported", f"PyTorch {TORCH.version} has no CUDA build for {gpu.name} with NVIDIA "
                      f"driver {gpu.driver}; update the driver (580 or newer) or choose --device cpu.")


def choose_torch(device: str, system: str, machine: str, gpu: NvidiaGpu | None, index: str | None) -> TorchBuild:
    """The torch build for this platform, GPU and requested device; ``index`` overrides where it comes from."""
    machine = machine.lower()
    if system == "Darwin":
        if machine not in ("arm64", "aarch64"):
            raise WorkerError("unsupported_platform", f"PyTorch {TORCH.version} has no build for Intel Macs, so the "
                              "learned engine needs an Apple silicon Mac, Linux or Windows.")
        if device == "cuda":
            raise WorkerError("bad_argument", "Macs have no CUDA GPU; choose --device mps or cpu.")
        build = TorchBuild("default", "cpu" if device == "cpu" else "mps", None, TORCH_MB["macos"])
    elif system in ("Linux", "Windows"):
        if device == "mps":
            raise WorkerError("bad_argument", "Apple's MPS exists only on Apple silicon Macs; choose cuda or cpu.")
        os_name = system.lower()
        if device == "cuda" or (device == "auto" and gpu is not None):
            tag = cuda_build(gpu)
            build = TorchBuild(tag, "cuda", PYTORCH_INDEX + tag, TORCH_MB[os_name + "-cuda"])
        elif system == "Linux":  # the default registry's Linux torch carries gigabytes of CUDA libraries
            build = TorchBuild("cpu", "cpu", PYTORCH_INDEX + "cpu", TORCH_MB["linux-cpu"])
        else:
            build = TorchBuild("default", "cpu", None, TORCH_MB["windows-cpu"])
    else:
        raise WorkerError("unsupported_platform", f"The learned engine has no torch build for {system}.")
    if index:
        default = index.strip().lower() == "pypi"
        build = replace(build, name="default" if default else "custom", index=None if default else index.strip())
    return build


