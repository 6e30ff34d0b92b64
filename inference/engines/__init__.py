"""Inference engines: each turns an RGB image into instances (masks, labels,
scores) and a depth map. Engines import their heavy dependencies lazily so that
``python -m inference engines`` can report what is missing instead of crashing.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

ProgressFn = Callable[[str, float, str], None]


@dataclass
class Instance:
    """One object found in the image, at the working resolution."""

    mask: np.ndarray  # (H, W) bool
    label: str = "object"
    score: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class DepthMap:
    """A depth map at the working resolution.

    ``kind`` is ``relative_inverse`` (larger is nearer, arbitrary affine scale) or
    ``metric`` (distance along the camera axis in scene units).
    """

    values: np.ndarray  # (H, W) float32
    kind: str = "relative_inverse"
    focal_px: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Engine(Protocol):
    name: str

    def segment(
        self, rgb: np.ndarray, alpha: np.ndarray | None, box: tuple[int, int, int, int] | None, objects: str,
        progress: ProgressFn,
    ) -> list[Instance]: ...

    def depth(self, rgb: np.ndarray, instances: list[Instance], progress: ProgressFn) -> DepthMap: ...

    def settings(self) -> dict[str, Any]: ...


def _module_version(name: str) -> str | None:
    if importlib.util.find_spec(name) is None:
        return None
    try:
        from importlib.metadata import PackageNotFoundError, version

        dist = {"cv2": "opencv-python-headless", "skimage": "scikit-image", "PIL": "pillow"}.get(name, name)
        try:
            return version(dist)
        except PackageNotFoundError:
            if name == "cv2":
                return version("opencv-python")
            raise
    except Exception:
        return "unknown"


def _describe(name: str, description: str, modules: dict[str, str], devices: list[str]) -> dict[str, Any]:
    versions = {pkg: _module_version(mod) for mod, pkg in modules.items()}
    missing = [pkg for pkg, ver in versions.items() if ver is None]
    return {
        "name": name,
        "description": description,
        "available": not missing,
        "missing": missing,
        "versions": {k: v for k, v in versions.items() if v is not None},
        "devices": devices if not missing else [],
        "message": (
            "Ready."
            if not missing
            else "Needs the Python packages " + ", ".join(missing) + " in the inference interpreter."
        ),
    }


CLASSIC_MODULES = {"numpy": "numpy", "cv2": "opencv-python-headless", "skimage": "scikit-image", "PIL": "pillow"}
TRANSFORMERS_MODULES = {"torch": "torch", "transformers": "transformers"}


def list_engines() -> list[dict[str, Any]]:
    """Describe every engine; only torch is imported (to list GPUs), and only when installed."""
    engines = [
        _describe(
            "classic",
            "Offline engine: automatic foreground extraction and silhouette-based depth (numpy, OpenCV, scikit-image).",
            CLASSIC_MODULES,
            ["cpu"],
        ),
    ]
    engines.append(_describe_transformers())
    return engines


MIN_TRANSFORMERS = (4, 45)  # Depth Anything V2 and the v5-style processors Monocle relies on


def _describe_transformers() -> dict[str, Any]:
    """The learned engine's entry: what is missing in plain words, and the devices torch sees.

    Imports torch (about a second) but not transformers, so a broken torch install is
    reported here instead of failing the first reconstruction.
    """
    info = _describe(
        "transformers",
        "Learned depth (Depth Anything V2) and segmentation (Mask2Former, CLIPSeg prompts) with PyTorch and "
        "Hugging Face transformers.",
        TRANSFORMERS_MODULES,
        ["cpu"],
    )
    if info["missing"]:
        info["message"] = (
            "Needs the Python packages " + " and ".join(info["missing"]) + " in the inference interpreter: set up "
            "the ML environment in Monocle's preferences, or point Inference Python at a Python that has them."
        )
        return info
    version = info["versions"].get("transformers", "0")
    try:
        parts = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        parts = MIN_TRANSFORMERS
    if parts < MIN_TRANSFORMERS:
        info.update(
            available=False, devices=[],
            message=f"transformers {version} is too old; Monocle needs {MIN_TRANSFORMERS[0]}.{MIN_TRANSFORMERS[1]} "
            "or newer in the inference interpreter.",
        )
        return info
    try:
        from .hf import available_devices

        devices = available_devices()
    except Exception as exc:  # a torch that cannot load (DLL clash, wrong architecture)
        info.update(
            available=False, devices=[],
            message=f"torch is installed but cannot be loaded ({type(exc).__name__}: {exc}); reinstall it in the "
            "inference interpreter.",
        )
        return info
    info["devices"] = devices
    info["message"] = "Ready; runs on " + ", ".join(d.upper() for d in devices) + "."
    return info


def create_engine(name: str, options: dict[str, Any]) -> Engine:
    from ..protocol import WorkerError

    if name == "classic":
        from .classic import ClassicEngine

        return ClassicEngine(**options)
    if name == "transformers":
        missing = [pkg for mod, pkg in TRANSFORMERS_MODULES.items() if importlib.util.find_spec(mod) is None]
        if missing:
            raise WorkerError(
                "engine_unavailable",
                "The transformers engine needs the Python packages " + " and ".join(missing) + " in the inference "
                "interpreter; set up the ML environment in Monocle's preferences.",
            )
        from .hf import TransformersEngine

        return TransformersEngine(**options)
    raise WorkerError("bad_argument", f"Unknown engine {name!r}; choose one of: classic, transformers.")
