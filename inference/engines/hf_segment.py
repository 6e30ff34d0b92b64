"""Objects from a segmentation model's outputs, the way the model's own processor reads them.

Labels mode keeps transformers' reference post-processing (the processor's
``post_process_instance_segmentation`` or ``post_process_panoptic_segmentation``; the instance one
is given only the queries that can pass its threshold, which gives the same result without
resizing every query's mask) and then applies Monocle's rules, in this order:

1. background ("stuff") classes are not objects and are dropped;
2. most confident first, each object keeps the pixels no more confident object took; one
   left with less than ``OVERLAP_KEEP`` of its mask is a duplicate or hidden, and is dropped;
3. objects smaller than ``MIN_AREA_FRACTION`` of the photo are dropped.

Foreground mode (any object, class ignored) and plain per-pixel models have no reference
post-processing; they are Monocle's own. Text prompts (CLIPSeg) follow the model card: the
sigmoid of the logits, resized to the photo (bilinear), thresholded relative to its maximum.
torch is imported inside the functions, as everywhere in the learned engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..protocol import WorkerError
from . import Instance, ProgressFn

if TYPE_CHECKING:
    from .hf_runtime import Loaded, Models

MIN_AREA_FRACTION = 0.002  # smaller parts of a mask are noise
OVERLAP_KEEP = 0.5  # an object left with less than this share of its mask by more confident ones is dropped
MAX_QUERIES = 30
PROMPT_RELATIVE = 0.5  # a prompt's mask: probability at least this share of the map's maximum ...
PROMPT_FLOOR = 0.1  # ... and at least this, so a prompt that matches nothing finds nothing

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


def min_area(shape: tuple[int, ...]) -> int:
    return max(4, int(MIN_AREA_FRACTION * shape[0] * shape[1]))


def components(mask: np.ndarray, least: int) -> list[np.ndarray]:
    """Connected parts of ``mask`` of at least ``least`` pixels, largest first."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    order = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= least]
    order.sort(key=lambda i: -stats[i, cv2.CC_STAT_AREA])
    return [labels == i for i in order]


def upsample(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Signed map (positive inside) resized to ``shape`` with bilinear interpolation, as a bool mask."""
    import cv2

    h, w = shape
    v: np.ndarray = np.asarray(values, dtype=np.float32)
    if v.shape != (h, w):
        v = cv2.resize(v, (w, h), interpolation=cv2.INTER_LINEAR)
    return v > 0


def is_panoptic(labels: dict[int, str]) -> bool:
    """A query model whose classes include background ("stuff") classes was trained for panoptic output."""
    return any(is_background(name) for name in labels.values())


def confident_queries(out: Any, threshold: float) -> Any:
    """``out`` with only the queries whose best class reaches ``threshold``: the instance post-processing
    then gives exactly what it gives for all queries (a segment's score is its class probability times
    its mask's, so no other query can pass), without resizing every query's mask to the photo.

    Exact for ``threshold`` >= 0.5, where a query has at most one such class and so the post-processing's
    top-k over (query, class) pairs keeps them all; below that ``out`` is returned as it is."""
    logits = out.class_queries_logits
    if threshold < 0.5 or logits.shape[0] != 1:
        return out
    keep = logits[0].softmax(-1)[:, :-1].max(-1).values >= threshold
    if bool(keep.all()):
        return out
    if not bool(keep.any()):
        keep[int(logits[0].softmax(-1)[:, :-1].max(-1).values.argmax())] = True  # one query: an empty result
    return type(out)(class_queries_logits=logits[:, keep], masks_queries_logits=out.masks_queries_logits[:, keep])


def nearest_lookup(grid: tuple[int, int], shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of a ``grid`` map that torch's ``nearest`` resize to ``shape`` reads: that resize
    of a map ``m`` is ``m[rows][:, cols]``. Taken from torch itself, so it is its rounding, exactly."""
    import torch

    def axis(n: int, size: int) -> np.ndarray:
        index = torch.arange(n, dtype=torch.float32)[None, None, None]
        return torch.nn.functional.interpolate(index, size=(1, size), mode="nearest")[0, 0, 0].long().numpy()

    return axis(grid[0], shape[0]), axis(grid[1], shape[1])


def instance_segments(out: Any, shape: tuple[int, int], threshold: float) -> list[dict[str, Any]]:
    """transformers' ``post_process_instance_segmentation`` (binary maps) of one image, computed the same
    way up to its last step: each kept segment's mask stays on the processor's 384x384 grid, with the
    lookup (``grid``: rows, cols) that resizes it to ``shape`` as the reference does (``full_mask``).
    The reference resizes every query's mask to the photo and tests each; this resizes none."""
    import torch

    out = confident_queries(out, threshold)
    class_logits, mask_logits = out.class_queries_logits[0], out.masks_queries_logits[0]
    num_queries, num_classes = class_logits.shape[0], class_logits.shape[-1] - 1
    masks = torch.nn.functional.interpolate(mask_logits[None], size=(384, 384), mode="bilinear",
                                            align_corners=False)[0]
    scores = torch.nn.functional.softmax(class_logits, dim=-1)[:, :-1]
    top_scores, top = scores.flatten(0, 1).topk(num_queries, sorted=False)  # the reference's order
    queries = torch.div(top, num_classes, rounding_mode="floor")
    pred = masks[queries]
    binary = (pred > 0).float()
    mask_scores = (pred.sigmoid().flatten(1) * binary.flatten(1)).sum(1) / (binary.flatten(1).sum(1) + 1e-6)
    final = top_scores * mask_scores
    rows, cols = nearest_lookup((384, 384), shape)
    weights = np.outer(np.bincount(rows, minlength=384), np.bincount(cols, minlength=384))
    segments = []
    for j, score in enumerate(final.cpu().tolist()):
        if score < threshold:
            continue
        mask = binary[j].cpu().numpy() > 0
        if not (mask & (weights > 0)).any():  # empty at the photo's size: the reference skips it
            continue
        segments.append({"mask": mask, "grid": (rows, cols), "label_id": int(top[j]) % num_classes,
                         "score": round(score, 6)})
    return segments


def full_mask(segment: dict[str, Any]) -> np.ndarray:
    """A segment's mask at the photo's size."""
    mask: np.ndarray = segment["mask"]
    grid = segment.get("grid")
    return mask if grid is None else mask[grid[0]][:, grid[1]]


def reference_segments(processor: Any, out: Any, shape: tuple[int, int], threshold: float,
                       panoptic: bool) -> list[dict[str, Any]]:
    """transformers' own post-processing: ``[{"mask", "label_id", "score"}]`` in its order; the instance
    masks on the model's grid with their lookup to ``shape`` (see :func:`instance_segments`)."""
    if panoptic:
        result = processor.post_process_panoptic_segmentation(
            out, threshold=threshold, label_ids_to_fuse=set(), target_sizes=[shape]
        )[0]
        seg = result["segmentation"]
        return [
            {"mask": (seg == s["id"]).cpu().numpy(), "label_id": int(s["label_id"]), "score": float(s["score"])}
            for s in result["segments_info"]
        ]
    return instance_segments(out, shape, threshold)


def objects_from_segments(segments: list[dict[str, Any]], labels: dict[int, str], shape: tuple[int, int]
                          ) -> list[Instance]:
    """Monocle's rules (module docstring) applied to the reference segments, most confident first.

    Segments on a grid are counted there, each grid pixel weighted by the photo pixels it becomes
    (a nearest resize commutes with the pixel-wise rules), and only the objects kept are resized."""
    least = min_area(shape)
    grid = next((s["grid"] for s in segments if s.get("grid") is not None), None)
    if grid is None:
        weights = np.ones(shape, dtype=np.int64)
    else:
        weights = np.outer(np.bincount(grid[0], minlength=segments[0]["mask"].shape[0]),
                           np.bincount(grid[1], minlength=segments[0]["mask"].shape[1]))
    claimed = np.zeros(weights.shape, dtype=bool)
    instances = []
    for seg in sorted(segments, key=lambda s: -s["score"]):
        raw = labels.get(seg["label_id"], str(seg["label_id"]))
        if is_background(raw):
            continue
        area = int(weights[seg["mask"]].sum())
        own = seg["mask"] & ~claimed
        kept = int(weights[own].sum())
        if kept < least or kept < OVERLAP_KEEP * area:
            continue
        claimed |= own
        instances.append(Instance(mask=full_mask({**seg, "mask": own}), label=plain_label(raw), score=seg["score"],
                                  extra={"class_id": seg["label_id"], "class_name": str(raw)}))
    return instances


def foreground_from_queries(class_logits: Any, mask_logits: Any, shape: tuple[int, int], threshold: float,
                            labels: dict[int, str]) -> list[Instance]:
    """Class-agnostic objects: every query scored by how likely it is any object, the masks united."""
    import torch

    probs = class_logits.float().softmax(-1)[:, :-1]  # last column: "no object"
    thing = torch.tensor([not is_background(labels.get(i, str(i))) for i in range(probs.shape[1])])
    scores = (probs * thing.to(probs.device)).sum(-1)
    order = torch.argsort(scores, descending=True)[:MAX_QUERIES]
    order = order[scores[order] >= threshold]
    if order.numel() == 0:
        return []
    h, w = shape
    sh, sw = (h, w) if max(h, w) <= 512 else (round(h * 512 / max(h, w)), round(w * 512 / max(h, w)))
    logits = torch.nn.functional.interpolate(mask_logits[order].float()[None], size=(sh, sw), mode="bilinear",
                                             align_corners=False)[0]
    binary = logits > 0
    area = binary.flatten(1).sum(1)
    mask_score = (logits.sigmoid() * binary).flatten(1).sum(1) / area.clamp(min=1)
    final = scores[order] * mask_score
    ok = (final >= threshold) & (area >= min_area((sh, sw)))
    if not bool(ok.any()):
        return []
    union = binary[ok].any(0).cpu().numpy()
    score = float(final[ok].max())
    return [
        Instance(mask=upsample(m.astype(np.float32) - 0.5, shape), label="object", score=score,
                 extra={"mode": "foreground"})
        for m in components(union, min_area((sh, sw)))
    ]


def from_semantic(logits: Any, shape: tuple[int, int], threshold: float, labels: dict[int, str],
                  foreground: bool) -> list[Instance]:
    """Objects from a per-pixel class model: each object class split into connected parts."""
    probs = logits.float().softmax(0)
    best, cls = probs.max(0)
    best, cls = best.cpu().numpy(), cls.cpu().numpy()
    least = min_area(cls.shape)
    instances = []
    for c in np.unique(cls):
        raw = labels.get(int(c), str(int(c)))
        if is_background(raw):
            continue
        for part in components(cls == c, least):
            score = float(best[part].mean())
            if score < threshold:
                continue
            mask = upsample(part.astype(np.float32) - 0.5, shape)
            label = "object" if foreground else plain_label(raw)
            instances.append(Instance(mask=mask, label=label, score=score, extra={"class_id": int(c)}))
    if foreground and instances:
        union = np.logical_or.reduce([i.mask for i in instances])
        score = max(i.score for i in instances)
        return [Instance(mask=m, label="object", score=score) for m in components(union, least)]
    return instances


def prompt_probability(logits: Any, shape: tuple[int, int]) -> np.ndarray:
    """CLIPSeg's map as the model card reads it: sigmoid of the logits, resized to ``shape`` (bilinear)."""
    import torch

    while logits.ndim > 2:
        logits = logits[0]
    prob = logits.float().sigmoid()[None, None]
    prob = torch.nn.functional.interpolate(prob, size=shape, mode="bilinear", align_corners=False)
    return prob[0, 0].cpu().numpy()


def prompt_threshold(prob: np.ndarray) -> float:
    """Relative to the map's maximum: CLIPSeg's probabilities are soft and their scale varies per prompt."""
    return max(PROMPT_FLOOR, PROMPT_RELATIVE * float(prob.max()))


def from_prompt(prob: np.ndarray, prompt: str) -> list[Instance]:
    label = prompt_noun(prompt)
    return [
        Instance(mask=m, label=label, score=float(prob[m].mean()), extra={"prompt": prompt})
        for m in components(prob >= prompt_threshold(prob), min_area(prob.shape))
    ]


# -- running the models ----------------------------------------------------------------------------
def model_inputs(lm: Loaded, rgb: np.ndarray, seg_size: int | None) -> dict[str, Any]:
    """Processor inputs at the model's reference size, or (``seg_size``) the long side at that size."""
    kwargs: dict[str, Any] = {}
    if seg_size:
        divisor = int(getattr(lm.processor, "size_divisor", None) or 32)
        h, w = rgb.shape[:2]
        f = seg_size / max(h, w)
        kwargs["size"] = {"height": max(divisor, round(h * f / divisor) * divisor),
                          "width": max(divisor, round(w * f / divisor) * divisor)}
    return dict(lm.processor(images=rgb, return_tensors="pt", **kwargs))


def with_model(models: Models, rgb: np.ndarray, threshold: float, foreground: bool, seg_size: int | None,
               progress: ProgressFn) -> list[Instance]:
    """Objects the segmentation model finds in ``rgb``: query models through their reference
    post-processing (labels mode) or scored as any object (foreground mode); per-pixel models by class."""
    lm = models.get("segmentation", progress)
    inputs = model_inputs(lm, rgb, seg_size)
    out = models.run("segmentation", {k: v for k, v in inputs.items() if k in ("pixel_values", "pixel_mask")})
    progress("segment", 0.7, "Reading the masks")
    shape = (int(rgb.shape[0]), int(rgb.shape[1]))
    labels = {int(k): v for k, v in (getattr(lm.config, "id2label", {}) or {}).items()}
    if getattr(out, "class_queries_logits", None) is not None and getattr(out, "masks_queries_logits", None) \
            is not None:
        out.class_queries_logits = out.class_queries_logits.float()
        out.masks_queries_logits = out.masks_queries_logits.float()
        if foreground:
            return foreground_from_queries(out.class_queries_logits[0], out.masks_queries_logits[0], shape,
                                           threshold, labels)
        if hasattr(lm.processor, "post_process_instance_segmentation"):
            segments = reference_segments(lm.processor, out, shape, threshold, panoptic=is_panoptic(labels))
            return objects_from_segments(segments, labels, shape)
    logits = getattr(out, "logits", None)
    if logits is not None and logits.ndim == 4:
        return from_semantic(logits[0], shape, threshold, labels, foreground)
    raise WorkerError("model_invalid", f"The model {lm.resolved.spec} gives no masks Monocle can read.")


def with_prompt(models: Models, rgb: np.ndarray, prompt: str, progress: ProgressFn) -> list[Instance]:
    """Objects a text-promptable model (CLIPSeg) finds for ``prompt``."""
    lm = models.get("prompt", progress)
    try:
        inputs = lm.processor(text=[prompt], images=[rgb], return_tensors="pt", padding=True)
    except TypeError:
        raise WorkerError(
            "model_invalid", f"The model {lm.resolved.spec} does not take a text prompt; choose CLIPSeg."
        ) from None
    out = models.run("prompt", dict(inputs))
    prob = prompt_probability(out.logits, (int(rgb.shape[0]), int(rgb.shape[1])))
    return from_prompt(prob, prompt)


def inside_box(instances: list[Instance], box: tuple[int, int, int, int]) -> list[Instance]:
    """The objects with at least half their mask inside ``box``."""
    x0, y0, x1, y1 = box
    kept = []
    for inst in instances:
        area = int(inst.mask.sum())
        inside = int(inst.mask[y0:y1, x0:x1].sum())
        if area and inside >= 0.5 * area:
            kept.append(inst)
    return kept
