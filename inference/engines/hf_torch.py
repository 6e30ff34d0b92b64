"""torch helpers of the learned runtime (``hf_runtime``): native bfloat16, the dtypes a model loads
and runs in, finiteness and out-of-memory checks. torch is imported inside each, never at import."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any


@functools.lru_cache(maxsize=1)
def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AMX tiles, or the AVX-512 BF16 instructions on Linux)."""
    import torch

    init_amx = getattr(torch._C._cpu, "_init_amx", None)
    try:
        if init_amx is not None and bool(init_amx()):
            return True
        if Path("/proc/cpuinfo").is_file():
            return " avx512_bf16" in Path("/proc/cpuinfo").read_text()
    except (OSError, RuntimeError):
        pass
    return False


def cpu_autocast(device: str, precision: str) -> Any:
    """torch.bfloat16 where a model on ``device`` should run under bfloat16 autocast, else None."""
    import torch

    return torch.bfloat16 if device == "cpu" and precision == "bfloat16" and native_bf16() else None


def load_dtype(device: str, precision: str) -> Any:
    """The torch dtype a model's weights are loaded in: half precision on CUDA unless ``full``."""
    import torch

    return torch.float16 if device == "cuda" and precision != "full" else torch.float32


def missing_package(exc: ImportError) -> str:
    """The package an ImportError is about (transformers' own "requires the X library" errors included)."""
    if exc.name:
        return exc.name.split(".")[0]
    text = str(exc)
    for name in ("torchvision", "timm", "scipy", "sentencepiece", "protobuf", "accelerate"):
        if name in text.lower():
            return name
    return "that this model asks for"


def all_finite(out: Any) -> bool:
    """Whether every floating-point tensor of a model output is free of NaN and inf."""
    import torch

    values = out.values() if hasattr(out, "values") else [out]
    return all(
        bool(torch.isfinite(v).all()) for v in values if isinstance(v, torch.Tensor) and v.is_floating_point()
    )


def is_oom(exc: BaseException) -> bool:
    """Whether ``exc`` is torch running out of GPU (or CPU) memory."""
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    text = str(exc).lower()
    return isinstance(exc, oom) or (
        isinstance(exc, RuntimeError) and ("out of memory" in text or "not enough memory" in text)
    )


def empty_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
