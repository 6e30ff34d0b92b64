"""The ``transformers`` engine: learned segmentation and depth with PyTorch and Hugging Face transformers.

This module holds the engine's options and the choices between its paths; imports, devices
and loading and running models are :mod:`.hf_runtime` (loaded models outlive a request, which
is what makes ``python -m inference serve`` warm).

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
- Devices: auto picks CUDA, then MPS, then CPU. ``precision`` ``auto`` (the default): half
  precision on CUDA, float32 elsewhere; ``bfloat16``: also bfloat16 autocast on CPUs that
  compute it natively (faster, a documented numeric difference, off by default); ``full``:
  float32 everywhere. The fallbacks are :mod:`.hf_runtime`'s.
- On a CPU a request that needs both models runs the depth pass in a second thread beside
  segmentation, half of torch's threads each (:mod:`.hf_overlap`; ``overlap=False`` runs them
  one after the other).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..models import default_cache_dir, default_model, is_moge_model, online_from_env
from ..protocol import WorkerError
from . import DepthMap, EngineHooks, Instance, ProgressFn, hf_depth, hf_overlap
from . import hf_segment as seg
from .classic_segment import segment as classic_segment
from .hf_runtime import DEVICES, PRECISIONS, ROLE_NAMES, RUNTIME, Models, available_devices, pick_device
from .moge import MogeDepth

__all__ = ["DEVICES", "PRECISIONS", "RUNTIME", "TransformersEngine", "available_devices", "pick_device"]

log = logging.getLogger(__name__)

SEG_MODES = ("labels", "foreground")
CLASSIC = "classic"  # --seg-model classic: learned depth with the classic cut-out


def _dtype_name(lm: Any) -> str:
    """What a loaded model computes in: "float32", "float16", or "bfloat16-autocast" (float32 weights)."""
    return "bfloat16-autocast" if lm.autocast is not None else str(lm.dtype).replace("torch.", "")


def _quiet(stage: str, fraction: float, message: str = "") -> None:
    """The background depth pass reports nothing: its stage is reported when it is collected."""


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
        precision: str | None = None,
        overlap: bool = True,
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
        self.precision = (precision or os.environ.get("MONOCLE_PRECISION") or "auto").strip().lower()
        if self.precision not in PRECISIONS:
            raise WorkerError("bad_argument", f"--precision must be one of: {', '.join(PRECISIONS)}.")
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
        self.overlap = bool(overlap)  # on a CPU, depth runs beside segmentation (see hf_overlap)
        self._overlap_now = False
        self.overlapped = False  # the last request's depth pass ran beside its segmentation
        self.seg_source: str | None = None
        self.warm: bool | None = None
        self.models = Models(self.specs, self.requested_device, self.online, self.cache_dir, emit, self._warn,
                             self.precision)
        # a MoGe ONNX depth model runs in onnxruntime beside the transformers models
        self.moge = MogeDepth(self.specs["depth"], tokens=moge_tokens, device=self.requested_device,
                              online=self.online, cache_dir=self.cache_dir, emit=emit) \
            if is_moge_model(self.specs["depth"]) else None

    @property
    def device(self) -> str | None:
        """The torch device this engine runs on, once a model has been prepared."""
        return self.models.device

    # -- reporting -------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        return {
            "depth_model": self.specs["depth"],
            "seg_model": self.specs["segmentation"],
            "seg_mode": self.seg_mode,
            "prompt": self.prompt,
            "prompt_model": self.specs["prompt"] if self.prompt else None,
            "device": self.requested_device,
            "precision": self.precision,
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
        used = self.models.used
        return {
            "device": self.device,
            "dtype": _dtype_name(next(iter(used.values()))) if used else None,
            "threads": threads,
            "models": {
                **{role: {**lm.resolved.describe(), "load_seconds": round(lm.seconds, 4)}
                   for role, lm in used.items()},
                **({"depth": self.moge.describe()} if self.moge and self.moge.loaded else {}),
            },
            "model_loads": RUNTIME.loads,
            "warm": self.warm,
            "segmentation": self.seg_source,
            "depth_beside_segmentation": self.overlapped,
        }

    def known_focal(self, focal_px: float) -> None:
        """The photo's focal length in working pixels (EXIF), for a depth model that can use it (MoGe)."""
        if self.moge is not None:
            self.moge.focal_px = float(focal_px)

    def timings(self) -> dict[str, float]:
        own = self.models.timings
        if self.moge is None:
            return dict(own)
        return {k: v + self.moge.timings.get(k, 0.0) for k, v in own.items()}

    def _warn(self, code: str, message: str) -> None:
        log.warning("%s: %s", code, message)
        if self.emit is not None:
            self.emit.warning(code, message)

    # -- models ----------------------------------------------------------------------------------
    def prepare(self, segment: bool, depth: bool, progress: ProgressFn) -> None:
        """Import, find (or download) and load the models this request needs, before the timed stages."""
        self._drop_pending()
        self.models.ensure_runtime()
        roles = []
        if segment and self.specs["segmentation"] != CLASSIC:
            roles.append("prompt" if self.prompt else "segmentation")
        if depth and self.moge is None:
            roles.append("depth")
        before = RUNTIME.loads
        for i, role in enumerate(roles):
            progress("models", i / max(1, len(roles)), f"Preparing the {ROLE_NAMES[role]} model")
            self.models.get(role, progress)
        if depth and self.moge is not None:
            self.moge.prepare(progress)
        progress("models", 1.0, "Models ready")
        self._overlap_now = bool(self.overlap and segment and depth and self.moge is None and self.device == "cpu")
        self.warm = RUNTIME.loads == before and not (depth and self.moge is not None and not self.moge.warm)

    # -- segmentation ----------------------------------------------------------------------------
    def segment(
        self, rgb: np.ndarray, alpha: np.ndarray | None, box: tuple[int, int, int, int] | None, objects: str,
        progress: ProgressFn,
    ) -> list[Instance]:
        self._drop_pending()
        split = hf_overlap.split_threads() if self._overlap_now else None
        self.overlapped = split is not None
        if split is None:
            return self._find(rgb, alpha, box, objects, progress)
        RUNTIME.pending = hf_overlap.Background(
            lambda: hf_depth.estimate(self.models, rgb, self.depth_size, _quiet), split[1], key=rgb)
        try:
            with hf_overlap.torch_threads(split[0]):
                return self._find(rgb, alpha, box, objects, progress)
        except BaseException:
            self._drop_pending()
            raise

    def _drop_pending(self) -> None:
        """Wait for a depth pass whose request ended before asking for it (this one's, or an earlier
        request's that failed between its segmentation and its depth), and drop it."""
        pending, RUNTIME.pending = RUNTIME.pending, None
        if pending is not None:
            pending.wait()

    def _find(
        self, rgb: np.ndarray, alpha: np.ndarray | None, box: tuple[int, int, int, int] | None, objects: str,
        progress: ProgressFn,
    ) -> list[Instance]:
        if alpha is not None or (self.specs["segmentation"] == CLASSIC and not self.prompt):
            # transparency is the artist's own cut-out: it wins over any model
            self.seg_source = "alpha" if alpha is not None else "classic"
            return classic_segment(rgb, alpha=alpha, box=box, objects=objects)
        progress("segment", 0.1, "Finding objects" if not self.prompt else f"Looking for {self.prompt!r}")
        if self.prompt:
            instances = seg.with_prompt(self.models, rgb, self.prompt, progress)
            self.seg_source = "prompt"
        else:
            instances = seg.with_model(self.models, rgb, self.threshold, self.seg_mode == "foreground",
                                       self.seg_size, progress)
            self.seg_source = "model"
        if box is not None:
            instances = seg.inside_box(instances, box)
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

    # -- depth -----------------------------------------------------------------------------------
    def depth(self, rgb: np.ndarray, instances: list[Instance], progress: ProgressFn) -> DepthMap:
        pending, RUNTIME.pending = RUNTIME.pending, None
        if pending is not None and pending.key is rgb:  # started beside segmentation
            progress("depth", 0.2, "Estimating depth")
            result: DepthMap = pending.result()
            return result
        if pending is not None:
            pending.wait()
        if self.moge is not None:
            return self.moge.depth(rgb, progress)
        return hf_depth.estimate(self.models, rgb, self.depth_size, progress)
