"""The ``transformers`` engine: learned segmentation and depth with PyTorch and Hugging Face transformers.

torch and transformers are imported on first use, never at module import, so the worker
can list engines and run the classic engine in an interpreter that lacks them. Loaded
models live in a process-wide table (one per role: depth, segmentation, prompt), which is
what makes ``python -m inference serve`` warm: later requests reuse them.

- Depth: any ``depth-estimation`` model (Depth Anything V1/V2, DPT/MiDaS, GLPN, ZoeDepth,
  Depth Pro). Depth-Anything/DPT inputs are resized so the long side is ``depth_size``
  (518 by default, a multiple of the patch size); the kind (relative inverse or metric)
  comes from the model's config, and the focal length when the model predicts one.
- Segmentation: query-based mask models (Mask2Former, MaskFormer, DETR panoptic) or plain
  semantic models. ``labels`` mode keeps object classes with their plain lowercase noun;
  ``foreground`` mode scores every query by how likely it is any object, class ignored.
  A text ``prompt`` uses a text-promptable model (CLIPSeg) instead.
- When the segmentation model finds nothing above the threshold, the engine falls back to
  the classic foreground cut-out and says so with a ``segmentation_fallback`` warning; a
  prompt that matches nothing is a ``no_object`` error instead (the artist asked for it).
- Devices: auto picks CUDA, then MPS, then CPU; half precision on CUDA. A GPU
  out-of-memory error moves every model to the CPU once, with a ``gpu_out_of_memory`` warning.
"""

from __future__ import annotations

import inspect
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..models import ResolvedModel, default_cache_dir, default_model, emit_download_progress, online_from_env, resolve
from ..protocol import WorkerError
from . import DepthMap, Instance, ProgressFn
from .classic_segment import segment as classic_segment

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda", "mps")
SEG_MODES = ("labels", "foreground")
CLASSIC = "classic"  # --seg-model classic: learned depth with the classic cut-out
PROMPT_THRESHOLD = 0.4  # CLIPSeg probabilities are soft; 0.4 keeps the object without its surroundings
MIN_AREA_FRACTION = 0.002  # smaller parts of a mask are noise
OVERLAP_KEEP = 0.5  # an object left with less than this share of its mask by more confident ones is dropped
MAX_QUERIES = 30
ROLE_NAMES = {"depth": "depth", "segmentation": "segmentation", "prompt": "text-prompt segmentation"}

# COCO panoptic "stuff" classes as the Hub's Mask2Former/DETR configs name them: background, not objects.
COCO_STUFF = frozenset(
    """banner blanket bridge cardboard counter curtain door-stuff floor-wood flower fruit gravel house light
    mirror-stuff net pillow platform playingfield railroad river road roof sand sea shelf snow stairs tent towel
    wall-brick wall-stone wall-tile wall-wood water-other window-blind window-other tree-merged fence-merged
    ceiling-merged sky-other-merged cabinet-merged table-merged floor-other-merged pavement-merged mountain-merged
    grass-merged dirt-merged paper-merged food-other-merged building-other-merged rock-merged wall-other-merged
    rug-merged""".split()
)
BACKGROUND = frozenset({"background", "unlabeled", "unlabelled", "void", "other", "n/a", "sky", "wall", "floor"})
# COCO / VOC names whose plain noun is clearer for the template matcher
LABEL_ALIASES = {
    "dining table": "table",
    "diningtable": "table",
    "potted plant": "plant",
    "pottedplant": "plant",
    "cell phone": "phone",
    "sports ball": "ball",
    "hair drier": "hair dryer",
    "tv": "television",
    "tvmonitor": "television",
    "motorbike": "motorcycle",
    "aeroplane": "airplane",
}


def plain_label(raw: str) -> str:
    """A model's class name as a plain lowercase noun ("dining table" -> "table")."""
    text = str(raw).strip().lower().replace("_", " ")
    changed = True
    while changed:
        changed = False
        for suffix in ("-merged", "-other", "-stuff"):
            if text.endswith(suffix):
                text, changed = text[: -len(suffix)], True
    text = " ".join(text.replace("-", " ").split())
    return LABEL_ALIASES.get(text, text) or "object"


def is_background(raw: str) -> bool:
    return str(raw).strip().lower() in COCO_STUFF or plain_label(raw) in BACKGROUND


def prompt_noun(prompt: str) -> str:
    words = prompt.strip().lower().split()
    while words and words[0] in ("a", "an", "the", "some"):
        words = words[1:]
    return " ".join(words) or "object"


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


def depth_kind(config: Any) -> str:
    """``metric`` or ``relative_inverse`` from a depth model's config."""
    kind = getattr(config, "depth_estimation_type", None)
    if kind == "metric":
        return "metric"
    if kind == "relative":
        return "relative_inverse"
    if getattr(config, "model_type", "") in ("zoedepth", "glpn", "depth_pro"):
        return "metric"
    return "relative_inverse"


def _resize(rgb: np.ndarray, long_side: int, multiple: int = 1) -> np.ndarray:
    """``rgb`` with its long side at ``long_side`` and both sides a multiple of ``multiple``."""
    import cv2

    h, w = rgb.shape[:2]
    s = long_side / max(h, w)
    nh = max(multiple, int(round(h * s / multiple)) * multiple)
    nw = max(multiple, int(round(w * s / multiple)) * multiple)
    if (nh, nw) == (h, w):
        return rgb
    interp = cv2.INTER_AREA if nh < h else cv2.INTER_CUBIC
    return cv2.resize(rgb, (nw, nh), interpolation=interp)


def _components(mask: np.ndarray, min_area: int) -> list[np.ndarray]:
    """Connected parts of ``mask`` of at least ``min_area`` pixels, largest first."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    order = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_area]
    order.sort(key=lambda i: -stats[i, cv2.CC_STAT_AREA])
    return [labels == i for i in order]


class TransformersEngine:
    name = "transformers"

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
        depth_size: int = 518,
        seg_size: int = 512,
        emit: Any = None,
        **_: Any,
    ) -> None:
        if seg_mode not in SEG_MODES:
            raise WorkerError("bad_argument", f"--seg-mode must be one of: {', '.join(SEG_MODES)}.")
        if not 0.0 < float(threshold) < 1.0:
            raise WorkerError("bad_argument", "--threshold must lie between 0 and 1.")
        if int(depth_size) < 56 or int(seg_size) < 64:
            raise WorkerError("bad_argument", "--depth-size must be at least 56 and --seg-size at least 64 pixels.")
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
        self.depth_size = int(depth_size)
        self.seg_size = int(seg_size)
        self.emit = emit
        self.device: str | None = None
        self.seg_source: str | None = None
        self.warm: bool | None = None
        self._timings = {"imports": 0.0, "download": 0.0, "model_load": 0.0}
        self._used: dict[str, _Loaded] = {}

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
                role: {**lm.resolved.describe(), "load_seconds": round(lm.seconds, 4)}
                for role, lm in self._used.items()
            },
            "model_loads": RUNTIME.loads,
            "warm": self.warm,
            "segmentation": self.seg_source,
        }

    def timings(self) -> dict[str, float]:
        return dict(self._timings)

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
        if depth:
            roles.append("depth")
        before = RUNTIME.loads
        for i, role in enumerate(roles):
            progress("models", i / max(1, len(roles)), f"Preparing the {ROLE_NAMES[role]} model")
            self._get(role, progress)
        progress("models", 1.0, "Models ready")
        self.warm = RUNTIME.loads == before

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
        dtype = torch.float16 if device == "cuda" else torch.float32
        major = int(transformers.__version__.split(".")[0])
        dtype_arg = {"dtype": dtype} if major >= 5 else {"torch_dtype": dtype}
        try:
            model = cls.from_pretrained(path, local_files_only=True, **dtype_arg)
            if role == "prompt":
                processor = transformers.AutoProcessor.from_pretrained(path, local_files_only=True)
            else:
                processor = transformers.AutoImageProcessor.from_pretrained(path, local_files_only=True)
        except WorkerError:
            raise
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
        """Forward pass with the one-time GPU out-of-memory fallback."""
        try:
            return self._forward(self._used[role], inputs)
        except Exception as exc:
            if not self._is_oom(exc):
                raise
            if self._used[role].device == "cpu":
                raise MemoryError(str(exc)) from exc  # reported as out_of_memory
        self._fallback_to_cpu()
        return self._forward(self._used[role], inputs)

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

    def _seg_inputs(self, lm: _Loaded, rgb: np.ndarray) -> tuple[dict[str, Any], tuple[int, int]]:
        """Processor inputs and the (height, width) of the image inside them (before padding)."""
        size = getattr(lm.processor, "size", None) or {}

        def size_value(key: str) -> Any:
            return size.get(key) if isinstance(size, dict) else getattr(size, key, None)  # dict or SizeDict

        if size_value("shortest_edge") and size_value("longest_edge"):
            # Mask2Former / MaskFormer / DETR: we pick the size (long side, sides a multiple of the divisor)
            divisor = int(getattr(lm.processor, "size_divisor", None) or 32)
            small = _resize(rgb, min(self.seg_size, max(rgb.shape[:2])), divisor)
            inputs = lm.processor(images=small, do_resize=False, return_tensors="pt")
            return dict(inputs), small.shape[:2]
        inputs = lm.processor(images=rgb, return_tensors="pt")
        shape = tuple(inputs["pixel_values"].shape[-2:])
        return dict(inputs), shape  # type: ignore[return-value]

    def _segment_model(self, rgb: np.ndarray, progress: ProgressFn) -> list[Instance]:
        lm = self._get("segmentation", progress)
        inputs, (ih, iw) = self._seg_inputs(lm, rgb)
        model_inputs = {k: v for k, v in inputs.items() if k in ("pixel_values", "pixel_mask")}
        out = self._run("segmentation", model_inputs)
        progress("segment", 0.7, "Reading the masks")
        ph, pw = inputs["pixel_values"].shape[-2:]
        labels = dict(getattr(lm.config, "id2label", {}) or {})
        class_logits = getattr(out, "class_queries_logits", None)
        mask_logits = getattr(out, "masks_queries_logits", None)
        if class_logits is None and getattr(out, "pred_masks", None) is not None:  # DETR panoptic
            class_logits, mask_logits = out.logits, out.pred_masks
        if class_logits is not None and mask_logits is not None:
            return self._from_queries(class_logits[0], mask_logits[0], (ih / ph, iw / pw), rgb.shape[:2], labels)
        logits = getattr(out, "logits", None)
        if logits is not None and logits.ndim == 4:
            return self._from_semantic(logits[0], (ih / ph, iw / pw), rgb.shape[:2], labels)
        raise WorkerError("model_invalid", f"The model {lm.resolved.spec} gives no masks Monocle can read.")

    def _from_queries(
        self, class_logits: Any, mask_logits: Any, valid: tuple[float, float], shape: tuple[int, int],
        labels: dict[int, str],
    ) -> list[Instance]:
        """Instances from a query-based model: one class distribution and one mask per query."""
        import torch

        h, w = shape
        probs = class_logits.float().softmax(-1)[:, :-1]  # last column: "no object"
        n_classes = probs.shape[1]
        thing = torch.tensor([not is_background(labels.get(i, str(i))) for i in range(n_classes)])
        if self.seg_mode == "foreground":
            scores = (probs * thing.to(probs.device)).sum(-1)
            classes = torch.full_like(scores, -1, dtype=torch.long)
        else:
            scores, classes = probs.max(-1)
            scores = torch.where(thing.to(probs.device)[classes], scores, torch.zeros_like(scores))
        order = torch.argsort(scores, descending=True)[:MAX_QUERIES]
        order = order[scores[order] >= self.threshold]
        if order.numel() == 0:
            return []
        mh, mw = mask_logits.shape[-2:]
        crop = mask_logits[order].float()[:, : max(1, round(mh * valid[0])), : max(1, round(mw * valid[1]))]
        # decide ownership at a moderate size, then sharpen each kept mask at the working size
        sh, sw = (h, w) if max(h, w) <= 512 else (round(h * 512 / max(h, w)), round(w * 512 / max(h, w)))
        logits = torch.nn.functional.interpolate(crop[None], size=(sh, sw), mode="bilinear", align_corners=False)[0]
        binary = logits > 0
        prob = logits.sigmoid()
        area = binary.flatten(1).sum(1)
        mask_score = (prob * binary).flatten(1).sum(1) / area.clamp(min=1)
        final = scores[order] * mask_score
        min_area = max(4, int(MIN_AREA_FRACTION * sh * sw))
        ok = (final >= self.threshold) & (area >= min_area)
        if not bool(ok.any()):
            return []
        logits, binary, prob, area, final = logits[ok], binary[ok], prob[ok], area[ok], final[ok]
        classes = classes[order][ok]
        if self.seg_mode == "foreground":
            union = binary.any(0).cpu().numpy()
            return [
                Instance(mask=self._upsample(m.astype(np.float32) - 0.5, (h, w)), label="object",
                         score=float(final.max()), extra={"mode": "foreground"})
                for m in _components(union, min_area)
            ]
        # most confident first: each object keeps the pixels no better object took; one that keeps less than
        # OVERLAP_KEEP of its mask is a duplicate or hidden, and is dropped
        claimed = torch.zeros_like(binary[0])
        instances = []
        for k in torch.argsort(final, descending=True).tolist():
            own = binary[k] & ~claimed
            if int(own.sum()) < max(min_area, OVERLAP_KEEP * int(area[k])):
                continue
            claimed |= own
            # the mask's own edge at full working resolution, limited to the pixels this instance owns
            edge = self._upsample(logits[k].cpu().numpy(), (h, w))
            owned = self._upsample(own.cpu().numpy().astype(np.float32) - 0.5, (h, w))
            mask = edge & owned
            if int(mask.sum()) < max(4, int(MIN_AREA_FRACTION * h * w)):
                continue
            raw = labels.get(int(classes[k]), str(int(classes[k])))
            instances.append(
                Instance(mask=mask, label=plain_label(raw), score=float(final[k]),
                         extra={"class_id": int(classes[k]), "class_name": str(raw)})
            )
        return instances

    def _from_semantic(
        self, logits: Any, valid: tuple[float, float], shape: tuple[int, int], labels: dict[int, str]
    ) -> list[Instance]:
        """Instances from a per-pixel class model: each object class split into connected parts."""
        lh, lw = logits.shape[-2:]
        crop = logits.float()[:, : max(1, round(lh * valid[0])), : max(1, round(lw * valid[1]))]
        probs = crop.softmax(0)
        best, cls = probs.max(0)
        best, cls = best.cpu().numpy(), cls.cpu().numpy()
        min_area = max(4, int(MIN_AREA_FRACTION * cls.size))
        instances = []
        for c in np.unique(cls):
            raw = labels.get(int(c), str(int(c)))
            if is_background(raw):
                continue
            for part in _components(cls == c, min_area):
                score = float(best[part].mean())
                if score < self.threshold:
                    continue
                mask = self._upsample(part.astype(np.float32) - 0.5, shape)
                label = "object" if self.seg_mode == "foreground" else plain_label(raw)
                instances.append(Instance(mask=mask, label=label, score=score, extra={"class_id": int(c)}))
        if self.seg_mode == "foreground" and instances:
            union = np.logical_or.reduce([i.mask for i in instances])
            score = max(i.score for i in instances)
            return [Instance(mask=m, label="object", score=score) for m in _components(union, min_area)]
        return instances

    @staticmethod
    def _upsample(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """Signed map (positive inside) resized to ``shape`` with bilinear interpolation, as a bool mask."""
        import cv2

        h, w = shape
        v = np.asarray(values, dtype=np.float32)
        if v.shape != (h, w):
            v = cv2.resize(v, (w, h), interpolation=cv2.INTER_LINEAR)
        return v > 0

    def _segment_prompt(self, rgb: np.ndarray, progress: ProgressFn) -> list[Instance]:
        import cv2

        lm = self._get("prompt", progress)
        assert self.prompt is not None
        small = _resize(rgb, min(704, max(rgb.shape[:2])))
        try:
            inputs = lm.processor(text=[self.prompt], images=[small], return_tensors="pt", padding=True)
        except TypeError:
            raise WorkerError(
                "model_invalid", f"The model {lm.resolved.spec} does not take a text prompt; choose CLIPSeg."
            ) from None
        out = self._run("prompt", dict(inputs))
        logits = out.logits.float()
        while logits.ndim > 2:
            logits = logits[0]
        prob = logits.sigmoid().cpu().numpy()
        h, w = rgb.shape[:2]
        prob = cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)
        min_area = max(4, int(MIN_AREA_FRACTION * h * w))
        label = prompt_noun(self.prompt)
        return [
            Instance(mask=m, label=label, score=float(prob[m].mean()), extra={"prompt": self.prompt})
            for m in _components(prob >= PROMPT_THRESHOLD, min_area)
        ]

    # -- depth -----------------------------------------------------------------------------------
    def depth(self, rgb: np.ndarray, instances: list[Instance], progress: ProgressFn) -> DepthMap:
        import torch

        lm = self._get("depth", progress)
        h, w = rgb.shape[:2]
        proc = lm.processor
        if hasattr(proc, "ensure_multiple_of") and hasattr(proc, "keep_aspect_ratio"):
            # Depth Anything / DPT: long side at depth_size, sides a multiple of the patch size
            small = _resize(rgb, self.depth_size, int(getattr(proc, "ensure_multiple_of", 1) or 1))
            inputs = proc(images=small, do_resize=False, return_tensors="pt")
        else:
            small = rgb
            inputs = proc(images=rgb, return_tensors="pt")
        progress("depth", 0.2, "Estimating depth")
        out = self._run("depth", dict(inputs))
        progress("depth", 0.8, "Resampling depth")
        out["predicted_depth"] = out["predicted_depth"].float()
        for key in ("field_of_view", "fov"):
            if getattr(out, key, None) is not None:
                out[key] = out[key].float()
        focal = None
        post = getattr(proc, "post_process_depth_estimation", None)
        if post is not None:
            params = inspect.signature(post).parameters
            kwargs: dict[str, Any] = {"target_sizes": [(h, w)]}
            if "source_sizes" in params:
                kwargs["source_sizes"] = [tuple(small.shape[:2])]
            result = post(out, **kwargs)[0]
            values = result["predicted_depth"]
            f = result.get("focal_length")
            if f is not None:
                focal = float(f)
        else:
            values = torch.nn.functional.interpolate(
                out["predicted_depth"][:, None], size=(h, w), mode="bilinear", align_corners=False
            )[0, 0]
        values = values.float().reshape(h, w).cpu().numpy().astype(np.float32)
        kind = depth_kind(lm.config)
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
