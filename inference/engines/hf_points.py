"""The learned promptable segmenter for corrections: a SAM-family model (transformers' ``SamModel``)
turns clicks and a box into a mask.

The default is SlimSAM (``nielsr/slimsam-50-uniform``: SAM ViT-B pruned by half, a 112 MB download,
Apache-2.0 like the original SAM). Any SAM checkpoint in transformers' format works
(``facebook/sam-vit-base``, Apache-2.0, for the full model). The image encoder is the costly part:
its embedding is kept per photo, so further corrections of the same photo only run the small
prompt decoder. The model sees the photo at 1024 pixels on its long side; its mask comes back to
full resolution snapped to the photo's edges (:func:`.prompted.upsample`).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

DEFAULT_MODEL = "nielsr/slimsam-50-uniform"
INPUT_SIDE = 1024
_MODELS: dict[tuple[str, str], tuple[Any, Any]] = {}
_EMBEDDINGS: OrderedDict[tuple, Any] = OrderedDict()
KEEP_EMBEDDINGS = 4


def _load(spec: str, cache_dir: str | None, online: bool | None, device: str | None) -> tuple[Any, Any, str]:
    from pathlib import Path

    import transformers

    from ..models import resolve
    from .hf_runtime import pick_device

    found = resolve(spec, cache_dir=Path(cache_dir) if cache_dir else None, online=bool(online),
                    role="point-prompt segmentation")
    device, _ = pick_device(device)
    key = (str(found.path), device)
    if key not in _MODELS:
        processor = transformers.SamProcessor.from_pretrained(found.path, local_files_only=True)
        model = transformers.SamModel.from_pretrained(found.path, local_files_only=True)
        model = model.to(device).eval()  # type: ignore[arg-type]  # transformers types .to() for a model, not a device
        _MODELS[key] = (model, processor)
    return (*_MODELS[key], device)


def sam_mask(rgb: np.ndarray, image_key: tuple, points: list[tuple[float, float, bool]],
             box: tuple[float, float, float, float] | None, options: dict[str, Any]) -> np.ndarray:
    """The mask (H, W bool, at ``rgb``'s size) the model gives for the clicks and the box.

    ``options``: ``model`` (id or folder), ``cache_dir``, ``online``, ``device``. Raises ImportError
    when torch or transformers is missing, WorkerError when the model is not available."""
    import cv2
    import torch

    from . import prompted

    model, processor, device = _load(options.get("model") or DEFAULT_MODEL, options.get("cache_dir"),
                                     options.get("online"), options.get("device"))
    h, w = rgb.shape[:2]
    s = min(1.0, INPUT_SIDE / max(h, w))
    small = rgb if s == 1.0 else cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    kwargs: dict[str, Any] = {}
    if points:
        kwargs["input_points"] = [[[[x * s, y * s] for x, y, _ in points]]]
        kwargs["input_labels"] = [[[1 if positive else 0 for _, _, positive in points]]]
    if box is not None:
        kwargs["input_boxes"] = [[[v * s for v in box]]]
    inputs = processor(images=small, return_tensors="pt", **kwargs)
    key = (*image_key, str(id(model)))
    with torch.no_grad():
        if key not in _EMBEDDINGS:
            _EMBEDDINGS[key] = model.get_image_embeddings(inputs["pixel_values"].to(device))
            while len(_EMBEDDINGS) > KEEP_EMBEDDINGS:
                _EMBEDDINGS.popitem(last=False)
        prompts = {k: inputs[k].to(device) for k in ("input_points", "input_labels", "input_boxes") if k in inputs}
        out = model(image_embeddings=_EMBEDDINGS[key], multimask_output=False, **prompts)
    masks = processor.image_processor.post_process_masks(out.pred_masks.cpu(), inputs["original_sizes"],
                                                         inputs["reshaped_input_sizes"])
    cut = np.asarray(masks[0][0, 0], dtype=bool)
    return prompted.upsample(rgb, cut) if s < 1.0 else cut
