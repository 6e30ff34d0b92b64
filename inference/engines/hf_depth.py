"""Depth from a ``depth-estimation`` model, the way the model's own processor reads it.

By default the photo goes through the processor at the size its ``preprocessor_config.json``
gives (Depth Anything V2: short side 518, a multiple of 14; DPT-ViT: squashed to 384x384;
ZoeDepth: 384x512 with its padding), and the result comes back through the processor's own
``post_process_depth_estimation`` at the photo's resolution. That is transformers' reference
path, and the parity tests hold the engine to it.

``depth_size`` is the one deliberate difference, off by default: the processor's size scaled
so its larger side is ``depth_size`` (a Depth Anything photo then has its short side there),
which is faster on a CPU at some cost in detail.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import numpy as np

from . import DepthMap, ProgressFn

if TYPE_CHECKING:
    from .hf_runtime import Models

# Model types whose transformers reference path needs torchvision, which Monocle's environment does not install
# (no torchvision build matches its pinned torch on every platform): they cannot be run as their reference runs.
NEEDS_TORCHVISION = {
    "depth_pro": "its image processor",
    "zoedepth": "its post-processing (resizing the depth map back to the photo)",
}


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


def _size_value(size: Any, key: str) -> Any:
    return size.get(key) if isinstance(size, dict) else getattr(size, key, None)  # dict or SizeDict


def scaled_size(processor: Any, side: int) -> dict[str, int] | None:
    """The processor's ``size`` scaled so its larger side is ``side`` (None: nothing to scale)."""
    size = getattr(processor, "size", None)
    if size is None:
        return None
    h, w = _size_value(size, "height"), _size_value(size, "width")
    if h and w:
        f = side / max(h, w)
        return {"height": max(1, round(h * f)), "width": max(1, round(w * f))}
    if _size_value(size, "shortest_edge"):
        return {"shortest_edge": side}
    return None


def inputs(processor: Any, rgb: np.ndarray, depth_size: int | None) -> dict[str, Any]:
    """Processor inputs for ``rgb``: the reference size, or the ``depth_size`` option."""
    kwargs: dict[str, Any] = {}
    if depth_size:
        size = scaled_size(processor, depth_size)
        if size is not None:
            kwargs["size"] = size
    return dict(processor(images=rgb, return_tensors="pt", **kwargs))


def post_process(processor: Any, out: Any, shape: tuple[int, int]) -> tuple[np.ndarray, float | None]:
    """(depth at ``shape`` as float32, focal length in pixels when the model predicts one)."""
    import torch

    out["predicted_depth"] = out["predicted_depth"].float()
    for key in ("field_of_view", "fov"):
        if getattr(out, key, None) is not None:
            out[key] = out[key].float()
    post = getattr(processor, "post_process_depth_estimation", None)
    focal = None
    if post is not None:
        params = inspect.signature(post).parameters
        kwargs: dict[str, Any] = {"target_sizes": [shape]}
        if "source_sizes" in params:  # ZoeDepth: the photo's own size, to take its padding off
            kwargs["source_sizes"] = [shape]
        result = post(out, **kwargs)[0]
        values = result["predicted_depth"]
        f = result.get("focal_length")
        if f is not None:
            focal = float(f)
    else:
        values = torch.nn.functional.interpolate(
            out["predicted_depth"][:, None], size=shape, mode="bicubic", align_corners=False
        )[0, 0]
    return values.float().reshape(shape).cpu().numpy().astype(np.float32), focal


def estimate(models: Models, rgb: np.ndarray, depth_size: int | None, progress: ProgressFn) -> DepthMap:
    """The depth model's map of ``rgb`` at its resolution, with its kind and the model's focal length if any."""
    lm = models.get("depth", progress)
    h, w = rgb.shape[:2]
    pixel_inputs = inputs(lm.processor, rgb, depth_size)
    progress("depth", 0.2, "Estimating depth")
    out = models.run("depth", pixel_inputs)
    progress("depth", 0.8, "Resampling depth")
    values, focal = post_process(lm.processor, out, (int(h), int(w)))
    kind = depth_kind(lm.config)
    if kind == "relative_inverse":
        values = np.maximum(values, 0.0)  # bicubic resampling overshoots below zero at edges
    extra = {
        **lm.resolved.describe(),
        "model_type": getattr(lm.config, "model_type", None),
        "input_size": [int(pixel_inputs["pixel_values"].shape[-1]), int(pixel_inputs["pixel_values"].shape[-2])],
        "device": lm.device,
    }
    extra.pop("path", None)
    if focal is not None:
        extra["focal_px_working"] = round(focal, 3)
    return DepthMap(values, kind=kind, focal_px=focal, extra=extra)
