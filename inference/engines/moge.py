"""The ``moge`` engine: metric depth and the camera's focal length from MoGe-2, with onnxruntime.

MoGe-2 (Microsoft, MIT licence) predicts an affine-invariant point map, a validity mask and a
metric scale; its official ONNX export holds only that forward pass. The worker feeds it the
photo as RGB in 0..1 (the model resizes and normalises inside) with the number of ViT tokens,
then recovers the focal length and the depth shift from the point map itself
(:mod:`.moge_geometry`), so a photo without EXIF still gets its field of view, and every
object its real depth extent. Segmentation is the classic cut-out (an alpha channel wins).

The same runner serves the ``transformers`` engine when its depth model is a MoGe ONNX model,
so learned segmentation can pair with metric depth. No torch is needed: onnxruntime, numpy
and scipy only. A loaded session lives for the process, which keeps a serve worker warm.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..download import emit_download_progress
from ..models import MOGE_DEFAULT as DEFAULT_MODEL
from ..models import (
    ResolvedModel,
    default_cache_dir,
    looks_like_path,
    online_from_env,
    onnx_files,
    resolve,
)
from ..protocol import WorkerError
from . import DepthMap, EngineHooks, Instance, ProgressFn
from .classic_segment import segment as classic_segment
from .moge_geometry import metric_depth, pixels_to_focal

log = logging.getLogger(__name__)

TOKENS_RANGE = (1200, 3600)  # MoGe-2's trained range of base ViT tokens
DEFAULT_TOKENS = 3600  # what MoGe's own inference uses by default (its finest level)
INPUTS = ("image", "num_tokens")  # num_tokens is absent from a static-shape export
OUTPUTS = ("points", "mask", "metric_scale")  # "normal" is produced too and not needed


@dataclass
class _Session:
    spec: str
    path: Path
    resolved: ResolvedModel | None
    session: Any  # onnxruntime.InferenceSession
    inputs: dict[str, str]  # name -> onnx type
    provider: str
    seconds: float


_SESSIONS: dict[str, _Session] = {}  # one per model file, for the life of the process
_LOADS = [0]  # sessions created by this process (a serve worker reports it)


def session_loads() -> int:
    """How many MoGe sessions this process has loaded."""
    return _LOADS[0]


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise WorkerError(
            "engine_unavailable",
            "MoGe needs the Python package onnxruntime in the inference interpreter; use Set Up Learned Engine in "
            "Monocle's preferences (or `python -m inference setup-env DIR`).",
        ) from None
    except Exception as exc:  # a broken install (DLL clash, wrong architecture)
        raise WorkerError("engine_unavailable", f"onnxruntime is installed but cannot be loaded "
                          f"({type(exc).__name__}); reinstall it in the inference interpreter.") from None
    onnxruntime.set_default_logger_severity(3)  # its warnings go nowhere near the protocol
    return onnxruntime


def find_onnx(spec: str, *, cache_dir: Path, online: bool, emit: Any = None) -> tuple[Path, ResolvedModel | None]:
    """The ONNX file ``spec`` names: an .onnx file, a folder holding one, or a hub id (cache, else download)."""
    path = Path(spec).expanduser()
    if spec.lower().endswith(".onnx") or path.is_dir() or looks_like_path(spec):
        if path.is_file():
            return path.absolute(), None
        files = onnx_files(path) if path.is_dir() else []
        if not path.exists():
            raise WorkerError("model_missing", f"The MoGe model {spec!r} does not exist; check the depth model "
                              "setting.")
        if not files:
            raise WorkerError("model_invalid", f"The folder {spec!r} holds no ONNX model (.onnx file).")
        return _pick(files).absolute(), None  # not resolved: an export's external weights lie beside it
    on_progress = emit_download_progress(emit, spec) if emit is not None else None
    resolved = resolve(spec, cache_dir=cache_dir, online=online, role="depth", on_progress=on_progress)
    files = onnx_files(resolved.path)
    if not files:
        raise WorkerError("model_invalid", f"The depth model {spec} holds no ONNX model (.onnx file); choose a MoGe-2 "
                          f"ONNX export such as {DEFAULT_MODEL}.")
    return _pick(files), resolved


def _pick(files: list[Path]) -> Path:
    """The model file of a folder: model.onnx when there is one, else the first by name."""
    return next((f for f in files if f.name == "model.onnx"), files[0])


def _providers(ort: Any, device: str) -> list[str]:
    """onnxruntime's providers for a device setting: CUDA where this onnxruntime has it (auto or cuda), Core ML
    only when asked for (mps), the CPU always last."""
    available = set(ort.get_available_providers())
    wanted = {"auto": ["CUDAExecutionProvider"], "cuda": ["CUDAExecutionProvider"],
              "mps": ["CoreMLExecutionProvider"]}.get(device, [])
    return [p for p in wanted if p in available] + ["CPUExecutionProvider"]


def load_session(path: Path, spec: str, resolved: ResolvedModel | None, device: str = "auto") -> _Session:
    """An onnxruntime session for ``path``, checked to have MoGe-2's inputs and outputs (cached per file)."""
    key = f"{path}|{device}"
    cached = _SESSIONS.get(key)
    if cached is not None:
        return cached
    ort = _import_onnxruntime()
    options = ort.SessionOptions()
    threads = os.environ.get("MONOCLE_THREADS", "").strip()
    if threads.isdigit() and int(threads) > 0:
        options.intra_op_num_threads = int(threads)
    t = time.perf_counter()
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=_providers(ort, device))
    except Exception as exc:
        log.exception("loading %s failed", path)
        raise WorkerError("model_invalid", f"The MoGe model {path.name} could not be loaded by onnxruntime "
                          f"({type(exc).__name__}); the download may be incomplete or the file damaged.") from None
    inputs = {i.name: i.type for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    missing = [n for n in ("image",) if n not in inputs] + [n for n in OUTPUTS if n not in outputs]
    if missing or set(inputs) - set(INPUTS):
        raise WorkerError("model_invalid", f"The model {path.name} is not a MoGe-2 ONNX export (it lacks "
                          f"{', '.join(missing) or 'the inputs image and num_tokens'}); choose {DEFAULT_MODEL}.")
    loaded = _Session(spec, path, resolved, session, inputs, session.get_providers()[0], time.perf_counter() - t)
    _SESSIONS.clear()  # one model at a time: free the one this replaces
    _SESSIONS[key] = loaded
    _LOADS[0] += 1
    return loaded


def run_moge(loaded: _Session, rgb: np.ndarray, tokens: int) -> dict[str, Any]:
    """One forward pass: points (H, W, 3), mask (H, W) and metric_scale (a float) at ``rgb``'s size."""
    image = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32)
    image *= 1.0 / 255.0
    feed: dict[str, np.ndarray] = {"image": image}
    if "num_tokens" in loaded.inputs:
        dtype = np.int32 if "int32" in loaded.inputs["num_tokens"] else np.int64
        feed["num_tokens"] = np.array(int(tokens), dtype=dtype)
    try:
        points, mask, scale = loaded.session.run(list(OUTPUTS), feed)
    except Exception as exc:
        log.exception("MoGe forward pass failed")
        if "memory" in str(exc).lower() or "alloc" in str(exc).lower():
            raise MemoryError(str(exc)) from exc  # reported as out_of_memory
        raise WorkerError("model_invalid", f"The MoGe model {loaded.path.name} failed on this photo "
                          f"({type(exc).__name__}); check that it is a MoGe-2 ONNX export.") from None
    h, w = rgb.shape[:2]
    points, mask, scale = np.asarray(points), np.asarray(mask), np.asarray(scale, dtype=np.float64).reshape(-1)
    if points.shape != (1, h, w, 3) or mask.shape != (1, h, w) or scale.size != 1:
        raise WorkerError("model_invalid", f"The MoGe model {loaded.path.name} gave outputs of unexpected shapes "
                          f"(points {points.shape}, mask {mask.shape}); choose a MoGe-2 ONNX export.")
    return {"points": points[0], "mask": mask[0], "metric_scale": float(scale[0])}


class MogeDepth:
    """MoGe-2 depth for a worker request: finds and loads the model, runs it, recovers the camera."""

    def __init__(self, spec: str | None = None, *, tokens: int | None = None, device: str | None = None,
                 online: bool | None = None, cache_dir: str | Path | None = None, emit: Any = None) -> None:
        self.spec = (spec or "").strip() or DEFAULT_MODEL
        self.tokens = int(tokens or 0) or DEFAULT_TOKENS
        if not TOKENS_RANGE[0] // 2 <= self.tokens <= TOKENS_RANGE[1] * 2:
            raise WorkerError("bad_argument", f"--moge-tokens must lie between {TOKENS_RANGE[0] // 2} and "
                              f"{TOKENS_RANGE[1] * 2} (MoGe-2 is trained on {TOKENS_RANGE[0]}-{TOKENS_RANGE[1]}).")
        self.device = (device or os.environ.get("MONOCLE_DEVICE") or "auto").strip().lower()
        self.online = online_from_env() if online is None else bool(online)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self.emit = emit
        self.focal_px: float | None = None  # the photo's own (EXIF), at the working resolution, when known
        self.loaded: _Session | None = None
        self.warm: bool | None = None
        self.timings = {"download": 0.0, "model_load": 0.0}

    def prepare(self, progress: ProgressFn) -> _Session:
        if self.loaded is not None:
            return self.loaded
        progress("models", 0.2, f"Preparing the MoGe model {self.spec}")
        t = time.perf_counter()
        path, resolved = find_onnx(self.spec, cache_dir=self.cache_dir, online=self.online, emit=self.emit)
        if resolved is not None and resolved.source == "download":
            self.timings["download"] += time.perf_counter() - t
        self.warm = f"{path}|{self.device}" in _SESSIONS
        self.loaded = load_session(path, self.spec, resolved, self.device)
        if not self.warm:
            self.timings["model_load"] += self.loaded.seconds
        return self.loaded

    def depth(self, rgb: np.ndarray, progress: ProgressFn) -> DepthMap:
        loaded = self.prepare(progress)
        progress("depth", 0.2, "Estimating metric depth (MoGe)")
        out = run_moge(loaded, rgb, self.tokens)
        progress("depth", 0.8, "Recovering the focal length")
        valid = out["mask"] > 0.5
        h, w = rgb.shape[:2]
        try:
            values, focal_px = metric_depth(out["points"], valid, out["metric_scale"])
            if self.focal_px is not None:  # the photo's focal length wins; the model's is kept for the record
                values, _ = metric_depth(out["points"], valid, out["metric_scale"],
                                         focal=pixels_to_focal(self.focal_px, w, h))
        except ValueError as exc:
            raise WorkerError("depth_failed", f"MoGe's point map gives no usable camera for this photo ({exc}).") \
                from None
        extra = {"model": self.spec, "file": loaded.path.name, "tokens": self.tokens, "provider": loaded.provider,
                 "metric_scale": round(out["metric_scale"], 6), "focal_px_working": round(focal_px, 3),
                 "shift_focal": "exif" if self.focal_px is not None else "model",
                 "valid_fraction": round(float(valid.mean()), 4)}
        if loaded.resolved is not None:
            extra["revision"] = loaded.resolved.revision
        return DepthMap(values, kind="metric", focal_px=focal_px, extra=extra)

    def describe(self) -> dict[str, Any]:
        if self.loaded is None:
            return {"model": self.spec}
        info = self.loaded.resolved.describe() if self.loaded.resolved else {"model": self.spec, "source": "file"}
        return {**info, "path": str(self.loaded.path), "load_seconds": round(self.loaded.seconds, 4)}


class MogeEngine(EngineHooks):
    """Classic segmentation with MoGe-2 metric depth and focal length."""

    name = "moge"
    loads_models = True

    def __init__(self, depth_model: str | None = None, moge_tokens: int | None = None, device: str | None = None,
                 online: bool | None = None, cache_dir: str | None = None, emit: Any = None, **_: Any) -> None:
        self.runner = MogeDepth(depth_model, tokens=moge_tokens, device=device, online=online, cache_dir=cache_dir,
                                emit=emit)

    def known_focal(self, focal_px: float) -> None:
        """The photo's focal length in working pixels (EXIF): depth is recovered with it."""
        self.runner.focal_px = float(focal_px)

    def settings(self) -> dict[str, Any]:
        r = self.runner
        return {"depth_model": r.spec, "moge_tokens": r.tokens, "device": r.device, "online": r.online}

    def prepare(self, segment: bool, depth: bool, progress: ProgressFn) -> None:
        if depth:
            self.runner.prepare(progress)
        progress("models", 1.0, "Models ready")

    def runtime(self) -> dict[str, Any]:
        return {"provider": self.runner.loaded.provider if self.runner.loaded else None,
                "models": {"depth": self.runner.describe()}, "warm": self.runner.warm}

    def timings(self) -> dict[str, float]:
        return dict(self.runner.timings)

    def segment(self, rgb: np.ndarray, alpha: np.ndarray | None, box: tuple[int, int, int, int] | None,
                objects: str, progress: ProgressFn) -> list[Instance]:
        return classic_segment(rgb, alpha=alpha, box=box, objects=objects)

    def depth(self, rgb: np.ndarray, instances: list[Instance], progress: ProgressFn) -> DepthMap:
        return self.runner.depth(rgb, progress)
