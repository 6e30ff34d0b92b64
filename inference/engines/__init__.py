"""Inference engines: each turns an RGB image into instances (masks, labels,
scores) and a depth map. Engines import their heavy dependencies lazily so that
``python -m inference engines`` can report what is missing instead of crashing; it imports
everything a run of each engine imports, so "available" means a run works.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from ..learned_env import PINS
from ..options import EngineName

ProgressFn = Callable[[str, float, str], None]
AUTO = EngineName.AUTO.value  # not an engine: the worker picks drawing for line art, classic for anything else
ENGINE_NAMES = tuple(str(m) for m in EngineName)


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

    ``kind`` is ``relative_inverse`` (larger is nearer, arbitrary affine scale),
    ``metric`` (distance along the camera axis in scene units) or ``relief`` (heights towards
    the camera above one base plane, in image long sides: a drawing's, see ``geometry.depth``).
    """

    values: np.ndarray  # (H, W) float32
    kind: str = "relative_inverse"
    focal_px: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


LabelMaps = dict[str, tuple[np.ndarray, dict[str, Any]]]


class Engine(Protocol):
    """What ``run`` calls on an engine. ``EngineHooks`` gives the optional hooks a default."""

    name: str
    loads_models: bool  # whether ``prepare`` loads models (timed apart from inference: cold vs warm runs)

    def segment(
        self, rgb: np.ndarray, alpha: np.ndarray | None, box: tuple[int, int, int, int] | None, objects: str,
        progress: ProgressFn,
    ) -> list[Instance]: ...

    def depth(self, rgb: np.ndarray, instances: list[Instance], progress: ProgressFn) -> DepthMap: ...

    def settings(self) -> dict[str, Any]: ...

    def prepare(self, segment: bool, depth: bool, progress: ProgressFn) -> None:
        """Import, download and load what segmenting and/or depth need, before the run."""

    def known_focal(self, focal_px: float) -> None:
        """The photo's focal length in working pixels (EXIF), for a model that can use it."""

    def runtime(self) -> dict[str, Any] | None:
        """result.json's ``engine.runtime`` (device, models, warm), or None for none."""

    def timings(self) -> dict[str, float]:
        """The engine's own stage timings, added to result.json's ``timings``."""

    def maps(self, scale: float) -> LabelMaps:
        """Label maps to write beside the masks: file name -> (values, result.json record)."""


class EngineHooks:
    """The optional hooks' defaults, for engines that load nothing and add nothing to result.json."""

    loads_models = False

    def prepare(self, segment: bool, depth: bool, progress: ProgressFn) -> None:
        return None

    def known_focal(self, focal_px: float) -> None:
        return None

    def runtime(self) -> dict[str, Any] | None:
        return None

    def timings(self) -> dict[str, float]:
        return {}

    def maps(self, scale: float) -> LabelMaps:
        return {}


# Import name -> distribution, for naming what is missing in words a user can pip-install.
DISTRIBUTIONS = {p.module: p.dist for p in PINS} | {"yaml": "pyyaml", "skimage": "scikit-image"}

# What a run imports, in the order a run imports it: the packages first (each missing one is named),
# then the worker's own modules and the submodules they load, which bring the packages' own
# dependencies (tokenizers, safetensors, ...) in with them.
CLASSIC_IMPORTS = ("numpy", "cv2", "PIL", "..run", ".classic")
DRAWING_IMPORTS = ("numpy", "cv2", "PIL", "scipy", "skimage", "..run", ".drawing")
LEARNED_IMPORTS = (
    *(p.module for p in PINS if p.module not in ("torch", "transformers", "onnxruntime")), "torch", "transformers",
    "scipy.optimize",  # transformers' Mask2Former cannot be built without it
    "transformers.modeling_utils", "transformers.image_processing_utils", "..run", "..models", ".hf",
)
# MoGe needs no torch: onnxruntime runs it, scipy recovers the camera from its point map.
MOGE_IMPORTS = ("numpy", "cv2", "PIL", "scipy", "onnxruntime", "scipy.optimize", "..run", "..models", ".moge")
TRANSFORMERS_MODULES = {"torch": "torch", "transformers": "transformers"}


def _dist(module: str) -> str:
    return DISTRIBUTIONS.get(module.split(".")[0], module.split(".")[0])


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    for name in (dist, "opencv-python") if dist == "opencv-python-headless" else (dist,):
        try:
            return version(name)
        except PackageNotFoundError:
            pass
    return None


def _import_problem(modules: tuple[str, ...]) -> tuple[list[str], str | None]:
    """(missing distributions, failure) of importing ``modules`` as a run does.

    Every package not installed is listed at once; when all are there, each module is imported for
    real, so a missing dependency of a dependency or a broken binary is found here and not by the
    first reconstruction.
    """
    tops = [m for m in modules if not m.startswith(".") and "." not in m]
    missing = [_dist(m) for m in tops if importlib.util.find_spec(m) is None]
    if missing:
        return missing, None
    for module in modules:
        try:
            importlib.import_module(module, __package__)
        except ImportError as exc:
            if exc.name and exc.name.split(".")[0] != "inference":
                return [_dist(exc.name)], None
            return [], f"{module} cannot be imported ({exc})"
        except Exception as exc:  # a broken install (DLL clash, wrong architecture)
            return [], f"{module.lstrip('.')} is installed but cannot be loaded ({type(exc).__name__}: {exc})"
    return [], None


def _describe(name: str, description: str, modules: tuple[str, ...]) -> dict[str, Any]:
    dists = dict.fromkeys(_dist(m) for m in modules if not m.startswith(".") and "." not in m)
    versions = {d: v for d in dists if (v := _version(d)) is not None}
    missing, failure = _import_problem(modules)
    if missing:
        packages = "package " + missing[0] if len(missing) == 1 else "packages " + ", ".join(missing)
        message = f"Needs the Python {packages} in the inference interpreter."
    elif failure:
        message = f"The inference interpreter's {failure}; reinstall it."
    else:
        message = "Ready."
    return {"name": name, "description": description, "available": not (missing or failure), "missing": missing,
            "versions": versions, "devices": ["cpu"] if not (missing or failure) else [], "message": message}


def list_engines() -> list[dict[str, Any]]:
    """Describe every engine by importing everything its run imports, so "available" means a run works."""
    classic = _describe(
        "classic",
        "Offline engine: automatic foreground extraction and silhouette-based depth (numpy, OpenCV, Pillow).",
        CLASSIC_IMPORTS,
    )
    drawing = _describe(
        "drawing",
        "Offline engine for line art (industrial-design drawings, scans, photos of paper): one object per "
        "outlined shape, rounded relief creased along internal lines (numpy, OpenCV, scikit-image).",
        DRAWING_IMPORTS,
    )
    moge = _describe(
        "moge",
        "Metric depth and the camera's focal length from one photo (MoGe-2 with onnxruntime, no torch), with the "
        "classic cut-out.",
        MOGE_IMPORTS,
    )
    if moge["missing"]:
        moge["message"] = moge["message"][:-1] + ": use Set Up Learned Engine in Monocle's preferences."
    return [classic, drawing, _describe_transformers(), moge]


MIN_TRANSFORMERS = (4, 45)  # Depth Anything V2 and the v5-style processors Monocle relies on


def _describe_transformers() -> dict[str, Any]:
    """The learned engine's entry: what is missing in one sentence, and the devices torch sees."""
    info = _describe(
        "transformers",
        "Learned depth (Depth Anything V2) and segmentation (Mask2Former, CLIPSeg prompts) with PyTorch and "
        "Hugging Face transformers.",
        LEARNED_IMPORTS,
    )
    if not info["available"]:
        if info["missing"]:
            info["message"] = info["message"][:-1] + (
                ": use Set Up Learned Engine in Monocle's preferences (or `python -m inference setup-env DIR`), "
                "or point Inference Python at a Python that has it."
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
    from .hf import available_devices

    info["devices"] = available_devices()
    info["message"] = "Ready; runs on " + ", ".join(d.upper() for d in info["devices"]) + "."
    return info


def create_engine(name: str, options: dict[str, Any]) -> Engine:
    from ..protocol import WorkerError

    if name == "classic":
        from .classic import ClassicEngine

        return ClassicEngine(**options)
    if name == "drawing":
        from .drawing import DrawingEngine

        return DrawingEngine(**options)
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
    if name == "moge":
        from .moge import MogeEngine

        return MogeEngine(**options)
    raise WorkerError("bad_argument", f"Unknown engine {name!r}; choose one of: {', '.join(ENGINE_NAMES)}.")
