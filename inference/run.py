"""``python -m inference run``: image in, result folder out (masks, depth, result.json)."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import SCHEMA_VERSION, memo
from .depthfile import DEPTH_ARRAY, DEPTH_FILE, save_depth_file, storable_depth
from .engines import AUTO, DepthMap, Engine, Instance, create_engine
from .imageio import LoadedImage, load_image, load_scalar_map, resize_long_side
from .options import MAX_SIZE, MIN_MAX_SIZE, WORKER_ENGINE, DepthKind, Objects
from .protocol import Emitter, WorkerError
from .resultfiles import write_json, write_label_map, write_mask, writing

log = logging.getLogger(__name__)

MAX_LABELS = 64
ASPECT_TOLERANCE = 0.02  # width/height of a user's mask or depth map may differ this much from the image's
# The camera Blender builds (geometry.CameraModel): a 36 mm sensor on the long side, 50 mm when nothing says more.
SENSOR_MM = 36.0
DEFAULT_FOCAL_MM = 50.0


@dataclass
class RunOptions:
    image: str
    out: str
    engine: str = WORKER_ENGINE.value
    objects: str = Objects.ALL.value
    box: tuple[int, int, int, int] | None = None
    max_size: int = MAX_SIZE
    mask: str | None = None
    depth: str | None = None
    depth_kind: str = DepthKind.RELATIVE_INVERSE.value
    engine_options: dict[str, Any] = field(default_factory=dict)


def parse_box(text: str | None) -> tuple[int, int, int, int] | None:
    if not text:
        return None
    try:
        x0, y0, x1, y1 = (int(round(float(v))) for v in text.split(","))
    except ValueError:
        raise WorkerError("bad_argument", f"The box {text!r} must be four numbers X0,Y0,X1,Y1.") from None
    if x1 <= x0 or y1 <= y0:
        raise WorkerError("bad_argument", f"The box {text!r} is empty: X1 must exceed X0 and Y1 must exceed Y0.")
    return x0, y0, x1, y1


def _fit_user_map(
    arr: np.ndarray, shape: tuple[int, int], path: str, what: str, code: str, interpolation: int
) -> np.ndarray:
    """A user's mask or depth map at the image's size; a map of another aspect ratio is refused, not stretched."""
    import cv2

    h, w = shape
    if arr.shape == (h, w):
        return arr
    if abs(arr.shape[1] / arr.shape[0] - w / h) > ASPECT_TOLERANCE:
        raise WorkerError(
            code,
            f"The {what} {Path(path).name} is {arr.shape[1]}x{arr.shape[0]} but the image is {w}x{h}; "
            "they must have the same aspect ratio.",
        )
    return cv2.resize(arr, (w, h), interpolation=interpolation)


def _instances_from_mask_file(path: str, shape: tuple[int, int]) -> list[Instance]:
    """A user mask: a binary/soft mask (split into connected parts) or an integer label map."""
    import cv2

    arr = load_scalar_map(path, "mask", "mask_unreadable")
    arr = _fit_user_map(arr, shape, path, "mask", "mask_unreadable", cv2.INTER_NEAREST)
    values = np.unique(arr[arr > 0])
    if values.size == 0:
        raise WorkerError("mask_empty", f"The mask {Path(path).name} is empty: it marks no object.")
    is_labels = 1 < values.size <= MAX_LABELS and np.all(values == np.round(values))
    if is_labels:
        return [Instance(mask=arr == v, label="object", score=1.0) for v in values]
    fg = arr >= 0.5 * float(values.max())
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
    order = sorted(range(1, n), key=lambda i: -stats[i, cv2.CC_STAT_AREA])
    return [Instance(mask=labels == i, label="object", score=1.0) for i in order]


def _resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    if mask.shape == (size[1], size[0]):
        return mask
    return cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_LINEAR) >= 0.5


def run(opts: RunOptions, emit: Emitter) -> Path:
    """Run the whole inference; returns the path of result.json."""
    t_start = time.perf_counter()
    timings: dict[str, float] = {}

    def progress(stage: str, fraction: float, message: str = "") -> None:
        emit.progress(stage, fraction, message)

    _check_options(opts)
    out = _output_folder(opts.out)

    t = time.perf_counter()
    progress("load", 0.0, "Reading image")
    image, work_rgb, work_alpha, scale, box = _working_image(opts)
    timings["load"] = time.perf_counter() - t

    engine, engine_name, auto_choice = _prepared_engine(opts, work_rgb, emit, progress, timings)

    t = time.perf_counter()
    instances = _segment(opts, engine, image, work_rgb, work_alpha, box, progress)
    timings["segment"] = time.perf_counter() - t

    t = time.perf_counter()
    depth, depth_full = _depth(opts, engine, image, work_rgb, instances, progress)
    timings["depth"] = time.perf_counter() - t

    t = time.perf_counter()
    progress("write", 0.0, "Writing results")
    if depth.focal_px is not None and not opts.depth:
        depth.focal_px = float(depth.focal_px) / scale  # the model saw the working image; result.json is full size
    result = _write_results(opts, out, image, instances, depth, depth_full.astype(np.float32), engine.settings())
    result["engine"]["name"] = engine_name
    if auto_choice is not None:
        result["engine"]["auto_choice"] = auto_choice
    _write_engine_extras(result, engine, out, image, scale)
    timings["write"] = time.perf_counter() - t
    _finish_timings(timings, engine, t_start)
    result["timings"] = {k: round(v, 4) for k, v in timings.items()}
    path = out / "result.json"
    write_json(path, result)
    progress("write", 1.0, "Done")
    return path


def _check_options(opts: RunOptions) -> None:
    """Reject options no run can use, before anything is read or loaded."""
    if opts.max_size < MIN_MAX_SIZE:
        raise WorkerError("bad_argument", f"--max-size must be at least {MIN_MAX_SIZE} pixels.")
    if opts.objects not in set(Objects):
        raise WorkerError("bad_argument", "--objects must be 'all' or 'largest'.")
    if opts.depth_kind not in set(DepthKind):
        raise WorkerError("bad_argument", "--depth-kind must be 'metric' or 'relative_inverse'.")


def _output_folder(folder: str | Path) -> Path:
    """The output folder, created if needed."""
    out = Path(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkerError(
            "output_unwritable", f"Cannot write to the output folder {str(out)!r} ({exc.strerror})."
        ) from None
    return out


def _working_image(
    opts: RunOptions,
) -> tuple[LoadedImage, np.ndarray, np.ndarray | None, float, tuple[int, int, int, int] | None]:
    """The photo, its RGB and alpha scaled to ``--max-size``, the scale, and the box in working pixels."""
    image = load_image(opts.image)
    memo.remember(opts.image, "photo", image)  # a warm worker's corrections of this photo start decoded
    work_rgb, scale = resize_long_side(image.rgb, opts.max_size)
    work_alpha = None
    if image.alpha is not None:
        work_alpha, _ = resize_long_side(image.alpha, opts.max_size)
    box = _working_box(opts.box, image.width, image.height, scale) if opts.box is not None else None
    return image, work_rgb, work_alpha, scale, box


def _working_box(box: tuple[int, int, int, int], full_w: int, full_h: int, scale: float) -> tuple[int, int, int, int]:
    """A photo-pixel box clipped to the photo and scaled to the working image."""
    x0, y0, x1, y1 = box
    x0, x1 = np.clip([x0, x1], 0, full_w)
    y0, y1 = np.clip([y0, y1], 0, full_h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise WorkerError("bad_argument", f"The box lies outside the {full_w}x{full_h} image.")
    return tuple(int(round(v * scale)) for v in (x0, y0, x1, y1))  # type: ignore[return-value]


def _prepared_engine(
    opts: RunOptions, work_rgb: np.ndarray, emit: Emitter, progress: Any, timings: dict[str, float],
) -> tuple[Engine, str, dict[str, Any] | None]:
    """The engine (chosen for the photo when ``auto``), with its models loaded: (engine, name, auto choice)."""
    engine_name, auto_choice = opts.engine, None
    if opts.engine == AUTO:
        t = time.perf_counter()
        engine_name, auto_choice = choose_engine(work_rgb)
        timings["auto"] = time.perf_counter() - t
        progress("load", 1.0, auto_choice["message"])
    # emit: warnings (device, fallbacks) and download progress
    engine = create_engine(engine_name, {**opts.engine_options, "emit": emit})
    t = time.perf_counter()
    engine.prepare(not opts.mask, not opts.depth, progress)
    if engine.loads_models:  # imports, downloads and model loads are timed apart from inference: cold vs warm
        timings["prepare"] = time.perf_counter() - t
    return engine, engine_name, auto_choice


def _segment(
    opts: RunOptions, engine: Engine, image: LoadedImage, work_rgb: np.ndarray, work_alpha: np.ndarray | None,
    box: tuple[int, int, int, int] | None, progress: Any,
) -> list[Instance]:
    """The objects, from the user's mask file or the engine, at the working image's size."""
    wh, ww = work_rgb.shape[:2]
    if opts.mask:
        progress("segment", 0.0, "Reading mask")
        instances = [
            Instance(mask=_resize_mask(inst.mask, (ww, wh)), label=inst.label, score=inst.score)
            for inst in _instances_from_mask_file(opts.mask, (image.height, image.width))
        ]
        instances = [i for i in instances if i.mask.any()]
        if opts.objects == "largest":
            instances = sorted(instances, key=lambda i: -int(i.mask.sum()))[:1]
    else:
        progress("segment", 0.0, "Finding objects")
        instances = engine.segment(work_rgb, work_alpha, box, opts.objects, progress)
    if not instances:
        raise WorkerError("no_object", f"No object was found in {Path(opts.image).name}.")
    progress("segment", 1.0, f"Found {len(instances)} object(s)")
    return instances


def _depth(
    opts: RunOptions, engine: Engine, image: LoadedImage, work_rgb: np.ndarray, instances: list[Instance],
    progress: Any,
) -> tuple[DepthMap, np.ndarray]:
    """The depth map, from the user's file or the engine, and its values at the photo's size."""
    full_w, full_h = image.width, image.height
    if opts.depth:
        progress("depth", 0.0, "Reading depth map")
        import cv2

        values = load_scalar_map(opts.depth, "depth", "depth_unreadable")
        if not np.isfinite(values).any():
            raise WorkerError("depth_unreadable", f"The depth file {Path(opts.depth).name} holds no valid values.")
        values = _fit_user_map(values, (full_h, full_w), opts.depth, "depth map", "depth_unreadable", cv2.INTER_LINEAR)
        depth = DepthMap(values.astype(np.float32), kind=DepthKind(opts.depth_kind).value, extra={"source": "file"})
        depth_full = depth.values
    else:
        progress("depth", 0.0, "Estimating depth")
        if image.focal_35mm:  # for a model that can use the photo's focal length
            wh, ww = work_rgb.shape[:2]
            engine.known_focal(float(image.focal_35mm) / SENSOR_MM * max(ww, wh))
        depth = engine.depth(work_rgb, instances, progress)
        if depth.values.shape != (full_h, full_w):
            import cv2

            depth_full = cv2.resize(depth.values, (full_w, full_h), interpolation=cv2.INTER_LINEAR)
        else:
            depth_full = depth.values
    progress("depth", 1.0, "Depth ready")
    return depth, depth_full


def _write_engine_extras(result: dict[str, Any], engine: Engine, out: Path, image: LoadedImage, scale: float) -> None:
    """The engine's own label maps (written beside the masks) and its runtime, into ``result``."""
    for name, (values, meta) in engine.maps(scale).items():
        write_label_map(out, name, values, (image.width, image.height))
        result[Path(name).stem] = {"file": name, **meta}
    runtime = engine.runtime()
    if runtime is not None:
        result["engine"]["runtime"] = runtime


def _finish_timings(timings: dict[str, float], engine: Engine, t_start: float) -> None:
    """Add the engine's own stage timings, the total, and the total without model loading."""
    timings.update(engine.timings())
    timings["total"] = time.perf_counter() - t_start
    if "prepare" in timings:
        timings["warm_total"] = timings["total"] - timings["prepare"]  # what the run costs with models loaded


def _write_results(
    opts: RunOptions, out: Path, image: LoadedImage, instances: list[Instance], depth: DepthMap, depth_full: np.ndarray,
    engine_settings: dict[str, Any],
) -> dict[str, Any]:
    """Masks and depth into ``out``; returns result.json's content (written by the caller)."""
    full_w, full_h = image.width, image.height
    records = []
    objects = np.zeros((full_h, full_w), dtype=bool)
    for idx, inst in enumerate(instances):
        mask = _resize_mask(inst.mask, (full_w, full_h))
        if not mask.any():
            continue
        objects |= mask
        ys, xs = np.nonzero(mask)
        name = f"mask_{idx:03d}.png"
        write_mask(out, name, mask)
        records.append(
            {
                "id": idx,
                "label": inst.label,
                "score": round(float(inst.score), 4),
                "bbox": [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1],
                "area": int(mask.sum()),
                "mask": name,
                **({"extra": inst.extra} if inst.extra else {}),
            }
        )
    if not records:
        raise WorkerError("no_object", f"No object was found in {Path(opts.image).name}.")
    # a map the user supplied is kept exactly; an estimate as float16 when that is exact enough
    stored = storable_depth(depth_full, objects, exact=bool(opts.depth))
    with writing(out, DEPTH_FILE, stored[DEPTH_ARRAY].nbytes):
        save_depth_file(out / DEPTH_FILE, stored)
    return {
        "schema": SCHEMA_VERSION,
        "image": {"path": os.path.abspath(image.path), "width": full_w, "height": full_h, "mode": image.source_mode},
        "engine": {
            "name": opts.engine,
            "settings": {
                "objects": opts.objects,
                "box": list(opts.box) if opts.box else None,
                "max_size": opts.max_size,
                "mask_file": os.path.abspath(opts.mask) if opts.mask else None,
                "depth_file": os.path.abspath(opts.depth) if opts.depth else None,
                **engine_settings,
            },
        },
        "camera": camera_record(image.focal_35mm, depth.focal_px, full_w, full_h),
        "instances": records,
        "depth": {"file": DEPTH_FILE, "kind": depth.kind, "dtype": stored[DEPTH_ARRAY].dtype.name,
                  **({"extra": depth.extra} if depth.extra else {})},
    }


def camera_record(focal_35mm: float | None, model_focal_px: float | None, width: int, height: int) -> dict[str, Any]:
    """result.json's ``camera``: the focal length in pixels at input resolution and where it comes from,
    the photo's EXIF first (the camera knows best), then the depth model's estimate, then 50 mm."""
    long_side = max(width, height)
    if focal_35mm:
        focal_px, source = float(focal_35mm) / SENSOR_MM * long_side, "exif"
    elif model_focal_px is not None and np.isfinite(model_focal_px) and model_focal_px > 0:
        focal_px, source = float(model_focal_px), "model"
    else:
        focal_px, source = DEFAULT_FOCAL_MM / SENSOR_MM * long_side, "default"
    record = {"focal_35mm": focal_35mm, "focal_px": round(focal_px, 4), "focal_source": source}
    if model_focal_px is not None and source != "model":
        record["model_focal_px"] = round(float(model_focal_px), 4)  # what the model saw, for comparison
    return record


def choose_engine(rgb: np.ndarray) -> tuple[str, dict[str, Any]]:
    """``--engine auto``: the drawing engine for line art, the classic engine for anything else."""
    from .engines.drawing_lines import line_art_verdict

    is_drawing, reason = line_art_verdict(rgb)
    chosen = "drawing" if is_drawing else "classic"
    message = ("Line art: using the drawing engine" if is_drawing else "A photo: using the classic engine") + \
        f" ({reason})"
    return chosen, {"requested": AUTO, "chosen": chosen, "reason": reason, "message": message}
