"""The ``transformers`` engine: learned segmentation and depth with PyTorch and Hugging Face transformers.

torch and transformers are imported on first use, never at module import, so the worker
can list engines and run the classic engine in an interpreter that lacks them. Loaded
models live in a process-wide table (one per role: depth, segmentation, prompt), which is
what makes ``python -m inference serve`` warm: later requests reuse them.

- Depth: ``depth-estimation`` models whose parity with transformers' reference path is
  tested (Depth Anything V2 relative and metric, DPT-ViT, ZoeDepth): the model's own
  processor at its own size, then its own post-processing (see :mod:`.hf_depth`); the kind
  (relative inverse or metric) comes from the model's config, and the focal length when the
  model predicts one. ``depth_size`` is a faster, documented departure, off by default.
- Segmentation: query-based mask models (Mask2Former instance and panoptic) through their
  processor's own post-processing plus Monocle's rules (see :mod:`.hf_segment`), or plain
  semantic models. ``labels`` mode keeps object classes with their plain lowercase noun;
  ``foreground`` mode scores every query by how likely it is any object, class ignored.
  A text ``prompt`` uses a text-promptable model (CLIPSeg) instead.
- When the segmentation model finds nothing above the threshold, the engine falls back to
  the classic foreground cut-out and says so with a ``segmentation_fallback`` warning; a
  prompt that matches nothing is a ``no_object`` error instead (the artist asked for it).
- Devices: auto picks CUDA, then MPS, then CPU; half precision on CUDA. A GPU
  out-of-memory error moves every model to the CPU once, with a ``gpu_out_of_memory`` warning;
  a half-precision result with NaN or inf is computed again in full precision, with a
  ``half_precision_unstable`` warning, and that model stays in full precision.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..models import (
    ResolvedModel,
    default_cache_dir,
    default_model,
    emit_download_progress,
    is_moge_model,
    online_from_env,
    resolve,
)
from ..protocol import WorkerError
from . import DepthMap, EngineHooks, Instance, ProgressFn, hf_depth
from . import hf_segment as seg
from .classic_segment import segment as classic_segment
from .moge import MogeDepth

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda", "mps")
SEG_MODES = ("labels", "foreground")
CLASSIC = "classic"  # --seg-model classic: learned depth with the classic cut-out
ROLE_NAMES = {"depth": "depth", "segmentation": "segmentation", "prompt": "text-prompt segmentation"}


@dataclass
class _Loaded:
    role: str
    resolved: ResolvedModel
    model: Any
    processor: Any
    config: Any
    device: str
    dtype: Any  # torch.dtype
    seconds: float


class _Runtime:
    """What outlives one request in this process: imports, loaded models, counters."""

    def __init__(self) -> None:
        self.imported = False
        self.models: dict[str, _Loaded] = {}
        self.loads = 0
        self.gpu_failed = False


RUNTIME = _Runtime()


def _import_ml() -> float:
    """Import torch and transformers once per process; returns the seconds it took (0 when done before)."""
    if RUNTIME.imported:
        return 0.0
    t = time.perf_counter()
    os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")  # ops MPS lacks run on the CPU instead of failing
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import torch
        import transformers
        import transformers.image_processing_utils  # noqa: F401 - the lazy package defers most of its import cost
        import transformers.modeling_utils  # noqa: F401 - to here, so "imports" and "model_load" time apart
    except ImportError as exc:
        raise WorkerError(
            "engine_unavailable",
            f"The transformers engine needs the Python packages torch and transformers ({exc.name or exc} is "
            "missing); set up the ML environment in Monocle's preferences.",
        ) from None
    except Exception as exc:  # a broken install (DLL clash, wrong architecture) fails here, not with ImportError
        log.exception("importing torch/transformers failed")
        raise WorkerError(
            "engine_unavailable",
            f"torch or transformers is installed but cannot be loaded ({type(exc).__name__}); reinstall them in "
            "the inference interpreter.",
        ) from None
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    threads = os.environ.get("MONOCLE_THREADS", "").strip()
    if threads.isdigit() and int(threads) > 0:
        torch.set_num_threads(int(threads))
    RUNTIME.imported = True
    return time.perf_counter() - t


def available_devices() -> list[str]:
    """Devices torch can use here, best first (imports torch)."""
    import torch

    devices = []
    if torch.cuda.is_available():
        devices.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return devices + ["cpu"]


def pick_device(requested: str | None) -> tuple[str, str | None]:
    """(device, warning): auto is CUDA, then MPS, then CPU; an unavailable GPU falls back to the CPU."""
    req = (requested or "auto").strip().lower()
    if req not in DEVICES:
        raise WorkerError("bad_argument", f"Unknown device {requested!r}; choose one of: {', '.join(DEVICES)}.")
    if RUNTIME.gpu_failed:
        return "cpu", None
    devices = available_devices()
    if req == "auto":
        return devices[0], None
    if req not in devices:
        name = {"cuda": "an NVIDIA CUDA GPU", "mps": "an Apple MPS GPU"}.get(req, req)
        return "cpu", f"The inference Python's torch cannot use {name}; running on the CPU instead."
    return req, None


def _missing_package(exc: ImportError) -> str:
    """The package an ImportError is about (transformers' own "requires the X library" errors included)."""
    if exc.name:
        return exc.name.split(".")[0]
    text = str(exc)
    for name in ("torchvision", "timm", "scipy", "sentencepiece", "protobuf", "accelerate"):
        if name in text.lower():
            return name
    return "that this model asks for"


def _all_finite(out: Any) -> bool:
    """Whether every floating-point tensor of a model output is free of NaN and inf."""
    import torch

    values = out.values() if hasattr(out, "values") else [out]
    return all(
        bool(torch.isfinite(v).all()) for v in values if isinstance(v, torch.Tensor) and v.is_floating_point()
    )


class TransformersEngine(EngineHooks):
    name = "transformers"
    loads_models = True

    def __init__(
        self,
        depth_model: str | None = None,
        seg_model: str | None = None,
        seg_mode: str = "labels",
        prompt: str | None = None,
        prompt_model: str | None = None,
        device: str | None = None,
        online: bool | None = None,
        cache_dir: str | None = None,
        threshold: float = 0.5,
        depth_size: int | None = None,
        seg_size: int | None = None,
        moge_tokens: int | None = None,
        emit: Any = None,
        **_: Any,
    ) -> None:
        if seg_mode not in SEG_MODES:
            raise WorkerError("bad_argument", f"--seg-mode must be one of: {', '.join(SEG_MODES)}.")
        if not 0.0 < float(threshold) < 1.0:
            raise WorkerError("bad_argument", "--threshold must lie between 0 and 1.")
        if 0 < int(depth_size or 0) < 56 or 0 < int(seg_size or 0) < 64:
            raise WorkerError("bad_argument", "--depth-size must be at least 56 and --seg-size at least 64 pixels "
                              "(0: the model's own size).")
        self.specs = {
            "depth": (depth_model or "").strip() or default_model("depth"),
            "segmentation": (seg_model or "").strip() or default_model("segmentation"),
            "prompt": (prompt_model or "").strip() or default_model("prompt"),
        }
        self.prompt = (prompt or "").strip() or None
        self.seg_mode = seg_mode
        self.requested_device = (device or os.environ.get("MONOCLE_DEVICE") or "auto").strip().lower()
        self.online = online_from_env() if online is None else bool(online)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self.threshold = float(threshold)
        self.depth_size = int(depth_size or 0) or None  # None: the model's reference size
        self.seg_size = int(seg_size or 0) or None
        self.emit = emit
        self.device: str | None = None
        self.seg_source: str | None = None
        self.warm: bool | None = None
        self._timings = {"imports": 0.0, "download": 0.0, "model_load": 0.0}
        self._used: dict[str, _Loaded] = {}
        # a MoGe ONNX depth model runs in onnxruntime beside the transformers models
        self.moge = MogeDepth(self.specs["depth"], tokens=moge_tokens, device=self.requested_device,
                              online=self.online, cache_dir=self.cache_dir, emit=emit) \
            if is_moge_model(self.specs["depth"]) else None

    # -- reporting -------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        return {
            "depth_model": self.specs["depth"],
            "seg_model": self.specs["segmentation"],
            "seg_mode": self.seg_mode,
            "prompt": self.prompt,
            "prompt_model": self.specs["prompt"] if self.prompt else None,
            "device": self.requested_device,
            "online": self.online,
            "threshold": self.threshold,
            "depth_size": self.depth_size,
            "seg_size": self.seg_size,
            **({"moge_tokens": self.moge.tokens} if self.moge else {}),
        }

    def runtime(self) -> dict[str, Any]:
        """What actually ran: device, models with revisions, whether models were already loaded."""
        threads = None
        if RUNTIME.imported:
            import torch

            threads = torch.get_num_threads()
        return {
            "device": self.device,
            "dtype": str(next(iter(self._used.values())).dtype).replace("torch.", "") if self._used else None,
            "threads": threads,
            "models": {
                **{role: {**lm.resolved.describe(), "load_seconds": round(lm.seconds, 4)}
                   for role, lm in self._used.items()},
                **({"depth": self.moge.describe()} if self.moge and self.moge.loaded else {}),
            },
            "model_loads": RUNTIME.loads,
            "warm": self.warm,
            "segmentation": self.seg_source,
        }

    def known_focal(self, focal_px: float) -> None:
        """The photo's focal length in working pixels (EXIF), for a depth model that can use it (MoGe)."""
        if self.moge is not None:
            self.moge.focal_px = float(focal_px)

    def timings(self) -> dict[str, float]:
        if self.moge is None:
            return dict(self._timings)
        return {k: v + self.moge.timings.get(k, 0.0) for k, v in self._timings.items()}

    def _warn(self, code: str, message: str) -> None:
        log.warning("%s: %s", code, message)
        if self.emit is not None:
            self.emit.warning(code, message)

    # -- models ----------------------------------------------------------------------------------
    def _ensure_runtime(self) -> None:
        self._timings["imports"] += _import_ml()
        if self.device is None:
            self.device, note = pick_device(self.requested_device)
            if note:
                self._warn("device_unavailable", note)
        elif RUNTIME.gpu_failed:
            self.device = "cpu"

    def prepare(self, segment: bool, depth: bool, progress: ProgressFn) -> None:
        """Import, find (or download) and load the models this request needs, before the timed stages."""
        self._ensure_runtime()
        roles = []
        if segment and self.specs["segmentation"] != CLASSIC:
            roles.append("prompt" if self.prompt else "segmentation")
        if depth and self.moge is None:
            roles.append("depth")
        before = RUNTIME.loads
        for i, role in enumerate(roles):
            progress("models", i / max(1, len(roles)), f"Preparing the {ROLE_NAMES[role]} model")
            self._get(role, progress)
        if depth and self.moge is not None:
            self.moge.prepare(progress)
        progress("models", 1.0, "Models ready")
        self.warm = RUNTIME.loads == before and not (depth and self.moge is not None and not self.moge.warm)

    def _get(self, role: str, progress: ProgressFn) -> _Loaded:
        self._ensure_runtime()
        spec = self.specs[role]
        cached = RUNTIME.models.get(role)
        if cached is not None and cached.resolved.spec == spec and cached.device == self.device:
            self._used[role] = cached
            return cached
        t = time.perf_counter()
        on_progress = emit_download_progress(self.emit, spec) if self.emit is not None else None
        resolved = resolve(spec, cache_dir=self.cache_dir, online=self.online, role=ROLE_NAMES[role],
                           on_progress=on_progress)
        if resolved.source == "download":
            self._timings["download"] += time.perf_counter() - t
        if cached is not None:  # one model per role: free the one this request replaces
            del RUNTIME.models[role]
            self._used.pop(role, None)
            self._empty_cache()
        progress("models", 0.5, f"Loading {spec}")
        t = time.perf_counter()
        try:
            loaded = self._load(role, resolved, self.device or "cpu")
        except Exception as exc:
            if not self._is_oom(exc) or self.device == "cpu":
                raise
            self._fallback_to_cpu()
            loaded = self._load(role, resolved, "cpu")
        loaded.seconds = time.perf_counter() - t
        self._timings["model_load"] += loaded.seconds
        RUNTIME.models[role] = loaded
        RUNTIME.loads += 1
        self._used[role] = loaded
        log.info("loaded %s model %s on %s in %.2f s", role, spec, loaded.device, loaded.seconds)
        return loaded

    def _load(self, role: str, resolved: ResolvedModel, device: str) -> _Loaded:
        import torch
        import transformers

        path = str(resolved.path)
        try:
            config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
        except Exception as exc:
            raise WorkerError(
                "model_invalid",
                f"The {ROLE_NAMES[role]} model {resolved.spec} cannot be read by transformers "
                f"{transformers.__version__} ({type(exc).__name__}); update transformers or choose another model.",
            ) from None
        cls = self._model_class(role, config)
        needs = hf_depth.NEEDS_TORCHVISION.get(getattr(config, "model_type", ""))
        if needs and not transformers.utils.is_torchvision_available():
            raise WorkerError(
                "engine_unavailable",
                f"The {ROLE_NAMES[role]} model {resolved.spec} needs the Python package torchvision for {needs}, "
                "which Monocle's learned environment does not include; choose another model.",
            )
        dtype = torch.float16 if device == "cuda" else torch.float32
        major = int(transformers.__version__.split(".")[0])
        dtype_arg = {"dtype": dtype} if major >= 5 else {"torch_dtype": dtype}
        try:  # the processor first: it is cheap, and the one that needs packages Monocle does not install
            if role == "prompt":
                processor = transformers.AutoProcessor.from_pretrained(path, local_files_only=True)
            else:
                processor = transformers.AutoImageProcessor.from_pretrained(path, local_files_only=True)
            model = cls.from_pretrained(path, local_files_only=True, **dtype_arg)
        except WorkerError:
            raise
        except ImportError as exc:
            missing = _missing_package(exc)
            raise WorkerError(
                "engine_unavailable",
                f"The {ROLE_NAMES[role]} model {resolved.spec} needs the Python package {missing}, which Monocle's "
                "learned environment does not include; choose another model.",
            ) from None
        except Exception as exc:
            log.exception("loading %s failed", path)
            raise WorkerError(
                "model_invalid",
                f"The {ROLE_NAMES[role]} model {resolved.spec} could not be loaded ({type(exc).__name__}); "
                "the download may be incomplete or the folder damaged.",
            ) from None
        model.eval()
        model.to(device)
        return _Loaded(role, resolved, model, processor, config, device, dtype, 0.0)

    @staticmethod
    def _model_class(role: str, config: Any) -> Any:
        import transformers

        archs = [a for a in (getattr(config, "architectures", None) or []) if hasattr(transformers, a)]
        wanted = {"depth": ("DepthEstimation",), "segmentation": ("Segmentation",), "prompt": ("ImageSegmentation",)}
        for arch in archs:
            if arch.endswith(wanted[role]) and not (role == "segmentation" and arch.startswith("CLIPSeg")):
                return getattr(transformers, arch)
        mapping = {
            "depth": transformers.AutoModelForDepthEstimation,
            "segmentation": transformers.AutoModelForUniversalSegmentation,
        }
        auto = mapping.get(role)
        if auto is not None and type(config) in getattr(auto, "_model_mapping", {}):
            return auto
        if role == "segmentation":
            semantic = transformers.AutoModelForSemanticSegmentation
            if type(config) in getattr(semantic, "_model_mapping", {}):
                return semantic
        kind = {"depth": "depth-estimation", "segmentation": "segmentation", "prompt": "text-prompt segmentation"}
        raise WorkerError(
            "model_invalid",
            f"The model type {getattr(config, 'model_type', '?')!r} is not a {kind[role]} model Monocle can use.",
        )

    @staticmethod
    def _is_oom(exc: BaseException) -> bool:
        import torch

        oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
        text = str(exc).lower()
        return isinstance(exc, oom) or (
            isinstance(exc, RuntimeError) and ("out of memory" in text or "not enough memory" in text)
        )

    def _empty_cache(self) -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _fallback_to_cpu(self) -> None:
        """Move every loaded model to the CPU for the rest of this process (done at most once)."""
        import torch

        self._warn("gpu_out_of_memory", "The GPU ran out of memory; Monocle continues on the CPU, more slowly.")
        RUNTIME.gpu_failed = True
        self.device = "cpu"
        for lm in RUNTIME.models.values():
            lm.model.to("cpu", dtype=torch.float32)
            lm.device, lm.dtype = "cpu", torch.float32
        self._empty_cache()

    def _run(self, role: str, inputs: dict[str, Any]) -> Any:
        """Forward pass with the one-time GPU out-of-memory fallback and the half-precision check."""
        try:
            out = self._forward(self._used[role], inputs)
        except Exception as exc:
            if not self._is_oom(exc):
                raise
            if self._used[role].device == "cpu":
                raise MemoryError(str(exc)) from exc  # reported as out_of_memory
            self._fallback_to_cpu()
            out = self._forward(self._used[role], inputs)
        return self._full_precision_if_unstable(role, inputs, out)

    def _full_precision_if_unstable(self, role: str, inputs: dict[str, Any], out: Any) -> Any:
        """``out``, or, when half precision gave NaN or inf, the same pass again in float32 (once per model)."""
        import torch

        lm = self._used[role]
        if lm.dtype == torch.float32 or _all_finite(out):
            return out
        self._warn(
            "half_precision_unstable",
            f"The {ROLE_NAMES[role]} model gave invalid numbers in half precision; Monocle runs it in full "
            "precision instead, more slowly.",
        )
        lm.model.to(dtype=torch.float32)
        lm.dtype = torch.float32
        return self._forward(lm, inputs)

    @staticmethod
    def _forward(lm: _Loaded, inputs: dict[str, Any]) -> Any:
        import torch

        moved = {
            k: v.to(lm.device, dtype=lm.dtype if v.is_floating_point() else None) if hasattr(v, "to") else v
            for k, v in inputs.items()
        }
        with torch.inference_mode():
            return lm.model(**moved)

    # -- segmentation ----------------------------------------------------------------------------
    def segment(
        self, rgb: np.ndarray, alpha: np.ndarray | None, box: tuple[int, int, int, int] | None, objects: str,
        progress: ProgressFn,
    ) -> list[Instance]:
        if alpha is not None or (self.specs["segmentation"] == CLASSIC and not self.prompt):
            # transparency is the artist's own cut-out: it wins over any model
            self.seg_source = "alpha" if alpha is not None else "classic"
            return classic_segment(rgb, alpha=alpha, box=box, objects=objects)
        progress("segment", 0.1, "Finding objects" if not self.prompt else f"Looking for {self.prompt!r}")
        if self.prompt:
            instances = self._segment_prompt(rgb, progress)
            self.seg_source = "prompt"
        else:
            instances = self._segment_model(rgb, progress)
            self.seg_source = "model"
        if box is not None:
            instances = self._inside_box(instances, box)
        if not instances:
            if self.prompt:
                raise WorkerError(
                    "no_object",
                    f"Nothing matching {self.prompt!r} was found in the photo; try another word, draw a box, or "
                    "clear the prompt to find objects automatically.",
                )
            self._warn(
                "segmentation_fallback",
                "The segmentation model found no object it knows in the photo; Monocle used the classic "
                "foreground cut-out instead.",
            )
            self.seg_source = "classic"
            return classic_segment(rgb, alpha=None, box=box, objects=objects)
        if objects == "largest":
            instances = [max(instances, key=lambda i: int(i.mask.sum()))]
        return instances

    @staticmethod
    def _inside_box(instances: list[Instance], box: tuple[int, int, int, int]) -> list[Instance]:
        x0, y0, x1, y1 = box
        kept = []
        for inst in instances:
            area = int(inst.mask.sum())
            inside = int(inst.mask[y0:y1, x0:x1].sum())
            if area and inside >= 0.5 * area:
                kept.append(inst)
        return kept

    def _seg_inputs(self, lm: _Loaded, rgb: np.ndarray) -> dict[str, Any]:
        """Processor inputs at the model's reference size, or (``seg_size``) the long side at that size."""
        kwargs: dict[str, Any] = {}
        if self.seg_size:
            divisor = int(getattr(lm.processor, "size_divisor", None) or 32)
            h, w = rgb.shape[:2]
            f = self.seg_size / max(h, w)
            kwargs["size"] = {"height": max(divisor, round(h * f / divisor) * divisor),
                              "width": max(divisor, round(w * f / divisor) * divisor)}
        return dict(lm.processor(images=rgb, return_tensors="pt", **kwargs))

    def _segment_model(self, rgb: np.ndarray, progress: ProgressFn) -> list[Instance]:
        lm = self._get("segmentation", progress)
        inputs = self._seg_inputs(lm, rgb)
        model_inputs = {k: v for k, v in inputs.items() if k in ("pixel_values", "pixel_mask")}
        out = self._run("segmentation", model_inputs)
        progress("segment", 0.7, "Reading the masks")
        shape = (int(rgb.shape[0]), int(rgb.shape[1]))
        labels = {int(k): v for k, v in (getattr(lm.config, "id2label", {}) or {}).items()}
        foreground = self.seg_mode == "foreground"
        if getattr(out, "class_queries_logits", None) is not None and getattr(out, "masks_queries_logits", None) \
                is not None:
            out.class_queries_logits = out.class_queries_logits.float()
            out.masks_queries_logits = out.masks_queries_logits.float()
            if foreground:
                return seg.foreground_from_queries(out.class_queries_logits[0], out.masks_queries_logits[0], shape,
                                                   self.threshold, labels)
            if hasattr(lm.processor, "post_process_instance_segmentation"):
                segments = seg.reference_segments(lm.processor, out, shape, self.threshold,
                                                  panoptic=seg.is_panoptic(labels))
                return seg.objects_from_segments(segments, labels, shape)
        logits = getattr(out, "logits", None)
        if logits is not None and logits.ndim == 4:
            return seg.from_semantic(logits[0], shape, self.threshold, labels, foreground)
        raise WorkerError("model_invalid", f"The model {lm.resolved.spec} gives no masks Monocle can read.")

    def _segment_prompt(self, rgb: np.ndarray, progress: ProgressFn) -> list[Instance]:
        lm = self._get("prompt", progress)
        assert self.prompt is not None
        try:
            inputs = lm.processor(text=[self.prompt], images=[rgb], return_tensors="pt", padding=True)
        except TypeError:
            raise WorkerError(
                "model_invalid", f"The model {lm.resolved.spec} does not take a text prompt; choose CLIPSeg."
            ) from None
        out = self._run("prompt", dict(inputs))
        prob = seg.prompt_probability(out.logits, (int(rgb.shape[0]), int(rgb.shape[1])))
        return seg.from_prompt(prob, self.prompt)

    # -- depth -----------------------------------------------------------------------------------
    def depth(self, rgb: np.ndarray, instances: list[Instance], progress: ProgressFn) -> DepthMap:
        if self.moge is not None:
            return self.moge.depth(rgb, progress)
        lm = self._get("depth", progress)
        h, w = rgb.shape[:2]
        inputs = hf_depth.inputs(lm.processor, rgb, self.depth_size)
        progress("depth", 0.2, "Estimating depth")
        out = self._run("depth", inputs)
        progress("depth", 0.8, "Resampling depth")
        values, focal = hf_depth.post_process(lm.processor, out, (int(h), int(w)))
        kind = hf_depth.depth_kind(lm.config)
        if kind == "relative_inverse":
            values = np.maximum(values, 0.0)  # bicubic resampling overshoots below zero at edges
        extra = {
            **lm.resolved.describe(),
            "model_type": getattr(lm.config, "model_type", None),
            "input_size": [int(inputs["pixel_values"].shape[-1]), int(inputs["pixel_values"].shape[-2])],
            "device": lm.device,
        }
        extra.pop("path", None)
        if focal is not None:
            extra["focal_px_working"] = round(focal, 3)
        return DepthMap(values, kind=kind, focal_px=focal, extra=extra)
