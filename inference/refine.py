"""``python -m inference refine``: one correction of an earlier result, into a new result folder.

Only the objects the correction names are segmented again; every other mask and the depth map
come from the earlier result unchanged (hard links where the disk allows). Depth the classic and
drawing engines derived from the masks themselves is inflated again for the changed objects
only; a whole-image estimate (or the user's own map) is kept as it is.

The new ``result.json`` is the earlier one with its ``instances`` updated, and:

- ``prompts``: every correction applied so far, in order (:meth:`.prompts.Correction.to_json`);
- ``changed`` / ``removed``: the object ids this correction rebuilt / took away (ids never repeat);
- ``next_id``: the id the next new object gets;
- ``depth.reference``: the mask files of the objects the first result had. A relative depth map is
  scaled over those pixels for good, so an object rebuilt later lines up with those that were not.

A decoded photo, masks and depth are kept between requests of a warm worker (:mod:`.memo`), which
is most of a correction's cost on a large photo.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import memo
from .corrections import apply
from .depthfile import DEPTH_ARRAY, DEPTH_FILE, OFFSET_ARRAY, save_depth_file
from .prompts import Correction
from .protocol import Emitter, WorkerError
from .resultfiles import write_json, write_mask, writing
from .segments import Segments
from .segments import bbox as _bbox

REFERENCE_PREFIX = "reference_"  # the first result's masks, over which relative depth is scaled
MASK_DERIVED_DEPTH = ("classic", "drawing")  # engines whose depth is inflated from the masks


def refine(base: str, out: str, corrections: list[Correction], image: str | None, emit: Emitter,
           learned: dict[str, Any] | None = None) -> Path:
    """Apply ``corrections`` in order to the result in ``base``; writes the result into ``out``
    (which may be ``base`` itself) and returns its ``result.json``. ``learned``: use the learned
    promptable segmenter for clicks and boxes (its options, see :func:`.engines.hf_points.sam_mask`),
    GrabCut when it is not available."""
    t0, c0 = time.perf_counter(), time.process_time()
    base_dir, out_dir = Path(base), Path(out)
    try:
        data = json.loads((base_dir / "result.json").read_text())
        if not isinstance(data["instances"], list) or not data["image"]["width"]:
            raise ValueError("no instances or image size")
    except (OSError, ValueError, KeyError, TypeError):
        raise WorkerError("result_unreadable", f"There is no readable earlier result in {str(base_dir)!r}.") from None
    out_dir.mkdir(parents=True, exist_ok=True)
    seg = Segments(base_dir, data)
    seg.learned, seg.emit = (dict(learned) if learned is not None else None), emit
    used = []
    for n, corr in enumerate(corrections):
        emit.progress("segment", n / max(1, len(corrections)), f"Correcting: {corr.action}")
        apply(seg, corr, image)
        used.append(seg.used if corr.action in ("add", "split", "paint") else None)
    t_cut = time.perf_counter() - t0
    emit.progress("write", 0.0, "Writing results")
    result = _write(seg, out_dir, corrections, used)
    result["timings"] = {"segment": round(t_cut, 4), "total": round(time.perf_counter() - t0, 4),
                         "cpu": round(time.process_time() - c0, 4)}  # the worker's processor seconds
    path = out_dir / "result.json"
    write_json(path, result)
    emit.progress("write", 1.0, "Done")
    return path


def _carry(src: Path, dst: Path) -> None:
    """``src`` into the new result: a hard link where possible, else a copy."""
    if src.resolve() == dst.resolve():
        return
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _write(seg: Segments, out: Path, corrections: list[Correction], used: list[str | None]) -> dict[str, Any]:
    data = seg.data
    changed = set(seg.changed) - set(seg.removed)
    depth_info = dict(data["depth"])
    # the first result's masks, linked (before any mask is written: ``out`` may be ``base``)
    earlier = depth_info.get("reference") or [Path(rec["mask"]).name for rec in data["instances"]]
    depth_info["reference"] = [f"{REFERENCE_PREFIX}{k:03d}.png" for k in range(len(earlier))]
    for src, dst in zip(earlier, depth_info["reference"]):
        _carry(seg.base / Path(src).name, out / dst)
    records = []
    for i, rec in seg.records.items():
        name = f"mask_{i:03d}.png"
        if i in changed:
            mask = seg.masks[i]
            ys, xs = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
            rec = {**rec, "bbox": [int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1],
                   "area": int(np.count_nonzero(mask)), "mask": name}
            write_mask(out, name, mask)
        else:
            _carry(seg.base / Path(rec["mask"]).name, out / name)
            rec = {**rec, "mask": name}
        records.append(rec)
    if not records:
        raise WorkerError("no_object", "The correction would leave no object.")
    for i in seg.removed:
        if i not in seg.records and seg.base.resolve() == out.resolve():
            (out / f"mask_{i:03d}.png").unlink(missing_ok=True)
    _write_depth(seg, out, changed, depth_info)
    return {**data, "instances": records, "depth": depth_info, "next_id": seg.next_id,
            "prompts": list(data.get("prompts") or []) + [
                {**c.to_json(), **({"segmenter": u} if u else {})} for c, u in zip(corrections, used)],
            "changed": sorted(changed), "removed": sorted(seg.removed)}


def _write_depth(seg: Segments, out: Path, changed: set[int], depth_info: dict[str, Any]) -> None:
    """The earlier depth file, or a copy with the changed objects inflated again (classic and
    drawing results), written in the earlier file's own encoding so only their pixels are new."""
    name = Path(depth_info["file"]).name
    engine = str((seg.data.get("engine") or {}).get("name") or "")
    from_file = (depth_info.get("extra") or {}).get("source") == "file"
    if not changed or from_file or engine not in MASK_DERIVED_DEPTH:
        _carry(seg.base / name, out / name)
        return
    try:
        stored = dict(memo.cached(seg.base / name, "depth", _load_stored))
    except (OSError, ValueError, KeyError):
        raise WorkerError("result_unreadable", f"Cannot read the depth map {name} of the earlier result.") from None
    depth = stored[DEPTH_ARRAY].copy()
    offset = float(stored[OFFSET_ARRAY]) if OFFSET_ARRAY in stored else 0.0
    for i in changed:
        (x0, y0, x1, y1), inside, values = _inflated(seg.masks[i])
        region = depth[y0:y1, x0:x1]
        region[inside] = (values[inside] - offset).astype(depth.dtype)
    stored[DEPTH_ARRAY] = depth
    depth_info["file"] = DEPTH_FILE
    with writing(out, DEPTH_FILE, depth.nbytes):
        tmp = out / (DEPTH_FILE + ".tmp")
        save_depth_file(tmp, stored, compress=False)  # a correction waits on it: speed over size
        os.replace(tmp, out / DEPTH_FILE)


def _load_stored(path: Path) -> dict[str, np.ndarray]:
    """A depth file's arrays as stored (float16 about an offset, or float32)."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: np.asarray(data[k]) for k in data.files}
    if DEPTH_ARRAY not in arrays or arrays[DEPTH_ARRAY].ndim != 2:
        raise ValueError("no depth array")
    return arrays


def _inflated(mask: np.ndarray, work: int = 512) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray]:
    """The classic engine's depth of one object: its base set by how low it reaches in the frame,
    bulging by its inflation, over the object's box (computed at most ``work`` pixels on its long
    side); returns the box, the mask inside it and the values."""
    import cv2

    from .engines.classic import inflate

    h, w = mask.shape
    x0, y0, x1, y1 = _bbox(mask)
    crop = mask[y0:y1, x0:x1]
    ch, cw = crop.shape
    s = min(1.0, work / max(ch, cw))
    small = cv2.resize(crop.astype(np.uint8), (max(1, round(cw * s)), max(1, round(ch * s))),
                       interpolation=cv2.INTER_AREA) > 0 if s < 1 else crop
    height: np.ndarray = inflate(small) / (max(h, w) * s)
    if s < 1:
        height = cv2.resize(height, (cw, ch), interpolation=cv2.INTER_LINEAR)
    return (x0, y0, x1, y1), crop, (0.5 + 0.5 * y1 / h + height).astype(np.float32)
