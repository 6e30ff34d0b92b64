"""The learned engine's runtime: torch and transformers imports, devices, and loading and running models.

torch and transformers are imported on first use, never at module import, so the worker
can list engines and run the classic engine in an interpreter that lacks them. Loaded
models live in a process-wide table (one per role: depth, segmentation, prompt), which is
what makes ``python -m inference serve`` warm: later requests reuse them.

Devices: auto picks CUDA, then MPS, then CPU. Precision ``auto`` (the default) runs half
precision on CUDA and float32 elsewhere; ``bfloat16`` also runs bfloat16 autocast on CPUs that
compute bfloat16 natively (AMX or AVX-512 BF16: matrix products several times faster there;
weights, norms and softmax stay float32), a documented numeric difference that is off by
default; ``full`` runs float32 everywhere. A GPU out-of-memory error moves every model to the CPU
once, with a ``gpu_out_of_memory`` warning; a reduced-precision result with NaN or inf is
computed again in full precision, with a ``half_precision_unstable`` warning, and that model
stays in full precision. The torch helpers behind these (dtypes, bfloat16, out-of-memory and
finiteness checks) are :mod:`.hf_torch`'s.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..download import emit_download_progress
from ..models import ResolvedModel, resolve
from ..protocol import WorkerError
from . import ProgressFn, hf_depth
from .hf_torch import all_finite, cpu_autocast, empty_cache, is_oom, load_dtype, missing_package
from .hf_torch import native_bf16 as native_bf16

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "bfloat16", "full")
ROLE_NAMES = {"depth": "depth", "segmentation": "segmentation", "prompt": "text-prompt segmentation"}


@dataclass
class Loaded:
    """One loaded model with its processor, where it runs and how long its load took."""

    role: str
    resolved: ResolvedModel
    model: Any
    processor: Any
    config: Any
    device: str
    dtype: Any  # torch.dtype
    seconds: float
    autocast: Any = None  # torch.bfloat16: the CPU forward runs under bfloat16 autocast; None: in ``dtype``
    unstable: bool = False  # gave NaN or inf in reduced precision: stays in float32


class _Runtime:
    """What outlives one request in this process: imports, loaded models, counters."""

    def __init__(self) -> None:
        self.imported = False
        self.models: dict[str, Loaded] = {}
        self.loads = 0
        self.gpu_failed = False
        self.pending: Any = None  # the depth pass running beside segmentation (hf_overlap.Background)


RUNTIME = _Runtime()


def import_ml() -> float:
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
        import transformers.image_processing_utils
        import transformers.modeling_utils
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


def model_class(role: str, config: Any) -> Any:
    """The transformers class that loads a model of ``config`` for ``role``, else WorkerError."""
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


def load(role: str, resolved: ResolvedModel, device: str, precision: str = "auto") -> Loaded:
    """Config, processor and weights of a found model, on ``device``; a plain WorkerError when that fails."""
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
    cls = model_class(role, config)
    needs = hf_depth.NEEDS_TORCHVISION.get(getattr(config, "model_type", ""))
    if needs and not transformers.utils.is_torchvision_available():
        raise WorkerError(
            "engine_unavailable",
            f"The {ROLE_NAMES[role]} model {resolved.spec} needs the Python package torchvision for {needs}, "
            "which Monocle's learned environment does not include; choose another model.",
        )
    dtype = load_dtype(device, precision)
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
        raise WorkerError(
            "engine_unavailable",
            f"The {ROLE_NAMES[role]} model {resolved.spec} needs the Python package {missing_package(exc)}, which "
            "Monocle's learned environment does not include; choose another model.",
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
    return Loaded(role, resolved, model, processor, config, device, dtype, 0.0, cpu_autocast(device, precision))


def forward(lm: Loaded, inputs: dict[str, Any]) -> Any:
    """One inference pass of ``lm`` on processor ``inputs`` (moved to its device and dtype), under
    bfloat16 autocast where ``lm.autocast`` says so."""
    import torch

    moved = {
        k: v.to(lm.device, dtype=lm.dtype if v.is_floating_point() else None) if hasattr(v, "to") else v
        for k, v in inputs.items()
    }
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=lm.autocast is not None):
        return lm.model(**moved)


class Models:
    """The models one engine uses, by role: found or downloaded, loaded once per process, and run
    with the one-time GPU out-of-memory fallback and the half-precision check."""

    def __init__(self, specs: dict[str, str], requested_device: str, online: bool, cache_dir: Path, emit: Any,
                 warn: Callable[[str, str], None], precision: str = "auto") -> None:
        self.specs = specs
        self.precision = precision
        self.requested_device = requested_device
        self.online = online
        self.cache_dir = cache_dir
        self.emit = emit
        self.warn = warn
        self.device: str | None = None
        self.timings = {"imports": 0.0, "download": 0.0, "model_load": 0.0}
        self.used: dict[str, Loaded] = {}

    def ensure_runtime(self) -> None:
        self.timings["imports"] += import_ml()
        if self.device is None:
            self.device, note = pick_device(self.requested_device)
            if note:
                self.warn("device_unavailable", note)
        elif RUNTIME.gpu_failed:
            self.device = "cpu"

    def get(self, role: str, progress: ProgressFn) -> Loaded:
        """The loaded model of ``role``: this process's if it is the same one, else found and loaded now."""
        self.ensure_runtime()
        spec = self.specs[role]
        cached = RUNTIME.models.get(role)
        if cached is not None and cached.resolved.spec == spec and cached.device == self.device \
                and self._same_precision(cached):
            self.used[role] = cached
            return cached
        t = time.perf_counter()
        on_progress = emit_download_progress(self.emit, spec) if self.emit is not None else None
        resolved = resolve(spec, cache_dir=self.cache_dir, online=self.online, role=ROLE_NAMES[role],
                           on_progress=on_progress)
        if resolved.source == "download":
            self.timings["download"] += time.perf_counter() - t
        if cached is not None:  # one model per role: free the one this request replaces
            del RUNTIME.models[role]
            self.used.pop(role, None)
            empty_cache()
        progress("models", 0.5, f"Loading {spec}")
        t = time.perf_counter()
        try:
            loaded = load(role, resolved, self.device or "cpu", self.precision)
        except Exception as exc:
            if not is_oom(exc) or self.device == "cpu":
                raise
            self._fallback_to_cpu()
            loaded = load(role, resolved, "cpu", self.precision)
        loaded.seconds = time.perf_counter() - t
        self.timings["model_load"] += loaded.seconds
        RUNTIME.models[role] = loaded
        RUNTIME.loads += 1
        self.used[role] = loaded
        log.info("loaded %s model %s on %s in %.2f s", role, spec, loaded.device, loaded.seconds)
        return loaded

    def _same_precision(self, lm: Loaded) -> bool:
        """Whether a loaded model runs at this request's precision; CPU autocast is switched in place."""
        if lm.device == "cpu":
            lm.autocast = None if lm.unstable else cpu_autocast("cpu", self.precision)
            return True
        return lm.unstable or lm.dtype == load_dtype(lm.device, self.precision)

    def _fallback_to_cpu(self) -> None:
        """Move every loaded model to the CPU for the rest of this process (done at most once)."""
        import torch

        self.warn("gpu_out_of_memory", "The GPU ran out of memory; Monocle continues on the CPU, more slowly.")
        RUNTIME.gpu_failed = True
        self.device = "cpu"
        for lm in RUNTIME.models.values():
            lm.model.to("cpu", dtype=torch.float32)
            lm.device, lm.dtype, lm.autocast = "cpu", torch.float32, cpu_autocast("cpu", self.precision)
        empty_cache()

    def run(self, role: str, inputs: dict[str, Any]) -> Any:
        """Forward pass with the one-time GPU out-of-memory fallback and the half-precision check."""
        try:
            out = forward(self.used[role], inputs)
        except Exception as exc:
            if not is_oom(exc):
                raise
            if self.used[role].device == "cpu":
                raise MemoryError(str(exc)) from exc  # reported as out_of_memory
            self._fallback_to_cpu()
            out = forward(self.used[role], inputs)
        return self._full_precision_if_unstable(role, inputs, out)

    def _full_precision_if_unstable(self, role: str, inputs: dict[str, Any], out: Any) -> Any:
        """``out``, or, when half precision gave NaN or inf, the same pass again in float32 (once per model)."""
        import torch

        lm = self.used[role]
        if (lm.dtype == torch.float32 and lm.autocast is None) or all_finite(out):
            return out
        self.warn(
            "half_precision_unstable",
            f"The {ROLE_NAMES[role]} model gave invalid numbers in half precision; Monocle runs it in full "
            "precision instead, more slowly.",
        )
        lm.model.to(dtype=torch.float32)
        lm.dtype, lm.autocast = torch.float32, None
        lm.unstable = True
        return forward(lm, inputs)
