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
from .depthfile import DEPTH_ARRAY, DEPTH_FILE, OFFSET_ARRAY, save_depth_file
from .engines import prompted
from .prompts import STROKE_ADD_MIN, Correction
from .protocol import Emitter, WorkerError
from .run import write_json, write_mask, writing

REFERENCE_PREFIX = "reference_"  # the first result's masks, over which relative depth is scaled
MASK_DERIVED_DEPTH = ("classic", "drawing")  # engines whose depth is inflated from the masks
PAINT_LITERAL = 0.3  # a paint-in stroke the cut keeps less of than this is taken as painted
PAINT_REACH = 0.03  # strokes this near an object paint it, share of the long side


def _read_mask(path: Path) -> np.ndarray:
    import cv2

    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    if img is None:
        raise WorkerError("result_unreadable", f"Cannot read the mask {path.name} of the earlier result.")
    return img > 127


def read_strokes(path: str, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(paint in, paint out) bool masks of a stroke image at the photo's size."""
    import cv2

    from .imageio import load_scalar_map

    values = load_scalar_map(path, "stroke mask", "mask_unreadable")
    if values.max() <= 1.0:
        values = values * 255.0
    h, w = shape
    if values.shape != (h, w):
        if abs(values.shape[1] / values.shape[0] - w / h) > 0.02:
            raise WorkerError("mask_unreadable", f"The stroke mask {Path(path).name} is {values.shape[1]}x"
                              f"{values.shape[0]} but the image is {w}x{h}; they must have the same aspect ratio.")
        values = cv2.resize(values, (w, h), interpolation=cv2.INTER_NEAREST)
    return values >= STROKE_ADD_MIN, (values > 0.5) & (values < STROKE_ADD_MIN)


class Segments:
    """The objects of a result while a correction edits them: id -> mask, in order."""

    def __init__(self, base: Path, data: dict[str, Any]) -> None:
        self.base = base
        self.data = data
        self.records = {int(r["id"]): r for r in data["instances"]}
        self.shape = (int(data["image"]["height"]), int(data["image"]["width"]))
        self.masks: dict[int, np.ndarray] = {}
        self.changed: list[int] = []
        self.removed: list[int] = []
        self.next_id = int(data.get("next_id", max(self.records, default=-1) + 1))
        self.learned: dict[str, Any] | None = None  # options of the learned segmenter, None: GrabCut only
        self.emit: Emitter | None = None
        self.image_key: tuple = ()
        self.used = "grabcut"  # the segmenter the last correction used

    def mask(self, i: int) -> np.ndarray:
        if i not in self.masks:
            self.masks[i] = memo.cached(self.base / Path(self.records[i]["mask"]).name, "mask", _read_mask)
        return self.masks[i]

    def at(self, x: float, y: float) -> int | None:
        """The object under a pixel (the smallest, where objects overlap)."""
        h, w = self.shape
        if not (0 <= x < w and 0 <= y < h):
            raise WorkerError("bad_argument", f"The point ({x:g}, {y:g}) lies outside the {w}x{h} image.")
        hits = [i for i in self.records if self.mask(i)[int(y), int(x)]]
        return min(hits, key=lambda i: self.records[i]["area"]) if hits else None

    def picked(self, corr: Correction) -> list[int]:
        """The objects a correction names: its ids, then those under its positive points."""
        ids = []
        for t in corr.targets:
            if t not in self.records:
                raise WorkerError("no_object_there", f"There is no object {t} in this result.")
            ids.append(t)
        for x, y, positive in corr.points:
            if positive and (i := self.at(x, y)) is not None:
                ids.append(i)
        return list(dict.fromkeys(ids))

    def others(self, keep: list[int], window: tuple[int, int, int, int]) -> np.ndarray:
        """The window's pixels that belong to objects other than ``keep``."""
        x0, y0, x1, y1 = window
        out = np.zeros((y1 - y0, x1 - x0), bool)
        for i in self.records:
            if i not in keep:
                out |= self.mask(i)[y0:y1, x0:x1]
        return out

    def set(self, i: int | None, mask: np.ndarray, label: str = "object") -> int:
        if i is None:
            i, self.next_id = self.next_id, self.next_id + 1
            self.records[i] = {"id": i, "label": label, "score": 1.0}
        self.masks[i] = mask
        self.changed.append(i)
        return i

    def drop(self, i: int) -> None:
        del self.records[i]
        self.masks.pop(i, None)
        self.removed.append(i)


def _full(window: tuple[int, int, int, int], part: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, bool)
    x0, y0, x1, y1 = window
    out[y0:y1, x0:x1] = part
    return out


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _learned_cut(seg: Segments, rgb: np.ndarray, corr: Correction) -> np.ndarray | None:
    """The learned segmenter's mask for the correction's clicks and box (their union), or None
    when it is not in use or not available (then GrabCut does the cut; a warning says why)."""
    if seg.learned is None or corr.strokes or not (corr.points or corr.boxes):
        return None
    box = None
    if corr.boxes:
        b = np.array(corr.boxes)
        box = (float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max()))
    try:
        from .engines.hf_points import sam_mask

        mask = sam_mask(rgb, seg.image_key, list(corr.points), box, seg.learned)
    except ImportError as exc:
        reason = f"the inference interpreter lacks {getattr(exc, 'name', None) or exc}"
    except WorkerError as exc:
        reason = exc.message.rstrip(".")
    else:
        seg.used = "learned"
        return mask
    if seg.emit is not None:
        seg.emit.warning("segmenter_unavailable", f"The learned segmenter is not available ({reason}); "
                         "GrabCut made the cut.")
    seg.learned = None  # one warning per request
    return None


def _add(seg: Segments, corr: Correction, rgb: np.ndarray, strokes: tuple[np.ndarray, np.ndarray] | None) -> None:
    import cv2

    shape = seg.shape
    radius = prompted.seed_radius(shape)
    positive = [(x, y) for x, y, s in corr.points if s]
    learned = _learned_cut(seg, rgb, corr)
    if learned is not None:
        others = seg.others([], (0, 0, shape[1], shape[0]))
        fg = np.zeros(shape, np.uint8)
        prompted.stamp(fg, [p for p in corr.points if p[2]], (0, 0), radius, 1, 0)
        cut = prompted.parts_touching(learned & ~others, fg.astype(bool) if positive else None,
                                      int(prompted.MIN_PART * shape[0] * shape[1]))
        if not cut.any():
            raise WorkerError("no_object_there", "The learned segmenter finds nothing new there; drag a box around "
                              "the object instead.")
        seg.set(None, cut)
        return
    if corr.boxes:
        b = np.array(corr.boxes)
        window = prompted.pad_window((b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()), shape)
    elif positive or strokes is not None:
        if strokes is not None and strokes[0].any():
            sx0, sy0, sx1, sy1 = _bbox(strokes[0])
            positive = positive + [((sx0 + sx1) / 2, (sy0 + sy1) / 2)]
            extent = max(sx1 - sx0, sy1 - sy0)
        else:
            extent = 0
        p = np.array(positive)
        half = 0.5 * max(prompted.CLICK_WINDOW * max(shape), 1.6 * extent, np.ptp(p, 0).max() * 1.6)
        cx, cy = p.mean(0)
        window = prompted.clip_window((int(cx - half), int(cy - half), int(cx + half), int(cy + half)), shape)
    else:
        raise WorkerError("bad_argument", "Adding an object needs a positive point, a box or a stroke on it.")
    x0, y0, x1, y1 = window
    labels = np.full((y1 - y0, x1 - x0), cv2.GC_PR_BGD, np.uint8)
    if corr.boxes:
        labels[:] = cv2.GC_BGD
        for bx0, by0, bx1, by1 in corr.boxes:
            labels[max(0, int(by0) - y0):max(0, int(np.ceil(by1)) - y0),
                   max(0, int(bx0) - x0):max(0, int(np.ceil(bx1)) - x0)] = cv2.GC_PR_FGD
    else:
        crop = rgb[y0:y1, x0:x1]
        part = prompted.salient_part(crop, [(x - x0, y - y0) for x, y in positive])
        if part is not None:
            labels[part] = cv2.GC_PR_FGD
        band = max(2, (x1 - x0) // 40)
        labels[:band], labels[-band:], labels[:, :band], labels[:, -band:] = (cv2.GC_BGD,) * 4
    others = seg.others([], window)
    labels[others] = cv2.GC_BGD
    prompted.stamp(labels, corr.points, (x0, y0), radius, cv2.GC_FGD, cv2.GC_BGD)
    if strokes is not None:
        labels[strokes[0][y0:y1, x0:x1]] = cv2.GC_FGD
        labels[strokes[1][y0:y1, x0:x1]] = cv2.GC_BGD
    cut = prompted.seeded_cut(rgb, labels, window) & ~others
    keep = labels == cv2.GC_FGD if (positive or strokes is not None) and not corr.boxes else None
    cut = prompted.parts_touching(cut, keep, int(prompted.MIN_PART * shape[0] * shape[1]))
    if not cut.any():
        raise WorkerError("no_object_there", "Nothing stands out from its surroundings there; drag a box around "
                          "the object instead.")
    seg.set(None, _full(window, cut, shape))


def _split(seg: Segments, corr: Correction, rgb: np.ndarray, strokes: tuple[np.ndarray, np.ndarray] | None) -> None:
    import cv2

    ids = seg.picked(corr)
    if not ids:
        region = np.zeros(seg.shape, bool)
        for bx0, by0, bx1, by1 in corr.boxes:
            region[int(by0):int(np.ceil(by1)), int(bx0):int(np.ceil(bx1))] = True
        if strokes is not None:
            region |= strokes[0]
        overlap = {i: int(np.count_nonzero(seg.mask(i) & region)) for i in seg.records}
        ids = [max(overlap, key=overlap.get)] if overlap and max(overlap.values()) > 0 else []
    if not ids:
        raise WorkerError("no_object_there", "The split names no object: draw the box or stroke on one.")
    target = ids[0]
    whole = seg.mask(target)
    learned = _learned_cut(seg, rgb, corr)
    least = int(prompted.MIN_PART * seg.shape[0] * seg.shape[1])
    if learned is not None and least <= np.count_nonzero(learned & whole) <= np.count_nonzero(whole) - least:
        label = str(seg.records[target].get("label") or "object")
        seg.set(target, whole & ~learned)
        seg.set(None, whole & learned, label)
        return
    window = prompted.pad_window(_bbox(whole), seg.shape, 0.05)
    x0, y0, x1, y1 = window
    inside = whole[y0:y1, x0:x1]
    labels = np.full(inside.shape, cv2.GC_PR_BGD, np.uint8)
    if corr.boxes:
        labels[:] = cv2.GC_BGD
        for bx0, by0, bx1, by1 in corr.boxes:
            labels[max(0, int(by0) - y0):max(0, int(np.ceil(by1)) - y0),
                   max(0, int(bx0) - x0):max(0, int(np.ceil(bx1)) - x0)] = cv2.GC_PR_FGD
    prompted.stamp(labels, corr.points, (x0, y0), prompted.seed_radius(seg.shape), cv2.GC_FGD, cv2.GC_BGD)
    if strokes is not None:
        labels[strokes[0][y0:y1, x0:x1]] = cv2.GC_FGD
        labels[strokes[1][y0:y1, x0:x1]] = cv2.GC_BGD
    labels[~inside] = cv2.GC_BGD
    part = prompted.seeded_cut(rgb, labels, window) & inside
    rest = inside & ~part
    if np.count_nonzero(part) < least or np.count_nonzero(rest) < least:
        # colour cannot tell the part from the rest (one material): the box or stroke says it
        part = np.isin(labels, (cv2.GC_PR_FGD, cv2.GC_FGD)) & inside
        rest = inside & ~part
    if np.count_nonzero(part) < least or np.count_nonzero(rest) < least:
        raise WorkerError("no_object_there", "The split leaves one side empty; draw the box around only the part "
                          "to split off.")
    label = str(seg.records[target].get("label") or "object")
    seg.set(target, _full(window, rest, seg.shape))
    seg.set(None, _full(window, part, seg.shape), label)


def _paint(seg: Segments, corr: Correction, rgb: np.ndarray, strokes: tuple[np.ndarray, np.ndarray] | None) -> None:
    import cv2

    shape = seg.shape
    radius = prompted.seed_radius(shape)
    touched = np.zeros(shape, np.uint8)
    if strokes is not None:
        touched[strokes[0] | strokes[1]] = 1
    prompted.stamp(touched, corr.points, (0, 0), radius, 1, 1)
    if not touched.any():
        raise WorkerError("bad_argument", "The paint strokes are empty.")
    ids = [t for t in corr.targets if t in seg.records] or [
        i for i in (seg.at(x, y) for x, y, s in corr.points if s) if i is not None]
    reach = max(3, int(PAINT_REACH * max(shape)))  # strokes this near an object belong to it
    near = prompted.near(touched.astype(bool), reach)
    if not ids:
        overlap = {i: int(np.count_nonzero(seg.mask(i) & near)) for i in seg.records}
        ids = [max(overlap, key=overlap.get)] if overlap and max(overlap.values()) > 0 else []
    if not ids:
        raise WorkerError("no_object_there", "The strokes touch no object; paint on or next to the object's outline.")
    target = ids[0]
    old = seg.mask(target)
    window = prompted.pad_window(_bbox(old | near), shape, 0.05)
    x0, y0, x1, y1 = window
    labels = np.where(old[y0:y1, x0:x1], cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    others = seg.others([target], window)
    labels[others] = cv2.GC_BGD
    prompted.stamp(labels, corr.points, (x0, y0), radius, cv2.GC_FGD, cv2.GC_BGD)
    paint_in = np.zeros(labels.shape, bool)
    if strokes is not None:
        # painted-in pixels are probable object (a stroke that spills onto the background must not
        # teach the object the background's colours), taken from any other object they belong to
        paint_in = strokes[0][y0:y1, x0:x1]
        labels[others & near[y0:y1, x0:x1] & paint_in.any()] = cv2.GC_PR_BGD
        labels[paint_in] = cv2.GC_PR_FGD
        labels[strokes[1][y0:y1, x0:x1]] = cv2.GC_BGD
    # the cut may take another object's pixels only close to a paint-in stroke
    reachable = ~others | (paint_in.any() & near[y0:y1, x0:x1])
    cut = prompted.seeded_cut(rgb, labels, window) & reachable
    was = old[y0:y1, x0:x1]
    # what the cut adds (removes) counts where it hangs together with a paint-in (paint-out) mark
    grow = prompted.parts_touching(cut & ~was, paint_in | (labels == cv2.GC_FGD), 1, strict=True)
    asked = paint_in & ~was
    if np.count_nonzero(grow & asked) < PAINT_LITERAL * np.count_nonzero(asked):
        grow |= asked  # colour cannot tell it from what is around: the stroke says it
    shrink = prompted.parts_touching(was & ~cut, (labels == cv2.GC_BGD) & ~others, 1, strict=True)
    new = old.copy()
    new[y0:y1, x0:x1] = (was | grow) & ~shrink
    if not new.any():
        raise WorkerError("no_object_there", "The strokes would remove the whole object; use Remove instead.")
    seg.set(target, new)
    taken = _full(window, grow & others, shape)
    for i in [i for i in seg.records if i != target]:
        if (seg.mask(i) & taken).any():
            rest = seg.mask(i) & ~taken
            if rest.any():
                seg.set(i, rest)
            else:
                seg.drop(i)


def apply(seg: Segments, corr: Correction, image: str | None) -> None:
    """Apply one correction to ``seg`` (the photo ``image`` is read for the actions that cut)."""
    corr.check()
    h, w = seg.shape
    for x, y, _ in corr.points:
        if not (0 <= x < w and 0 <= y < h):
            raise WorkerError("bad_argument", f"The point ({x:g}, {y:g}) lies outside the {w}x{h} image.")
    for x0, y0, x1, y1 in corr.boxes:
        if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
            raise WorkerError("bad_argument", f"The box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) lies outside the {w}x{h} "
                              "image.")
    if corr.action in ("remove", "merge"):
        ids = seg.picked(corr)
        if not ids:
            raise WorkerError("no_object_there", "There is no object under the point.")
        if corr.action == "remove":
            for i in ids:
                seg.drop(i)
            return
        if len(ids) < 2:
            raise WorkerError("no_object_there", "Merging needs two different objects under the points.")
        union = np.zeros(seg.shape, bool)
        for i in ids:
            union |= seg.mask(i)
        for i in ids[1:]:
            seg.drop(i)
        seg.set(ids[0], union)
        return
    if not image:
        raise WorkerError("bad_argument", f"The {corr.action!r} correction needs the photo (--image).")
    from .imageio import load_image

    photo = memo.cached(image, "photo", load_image)
    seg.image_key = memo.identity(image)
    seg.used = "grabcut"
    if (photo.height, photo.width) != seg.shape:
        raise WorkerError("bad_argument", f"The photo is {photo.width}x{photo.height} but the result was made from "
                          f"a {seg.shape[1]}x{seg.shape[0]} image.")
    strokes = read_strokes(corr.strokes, seg.shape) if corr.strokes else None
    {"add": _add, "split": _split, "paint": _paint}[corr.action](seg, corr, photo.rgb, strokes)


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
        data["instances"], data["image"]["width"]  # noqa: B018 - the fields a correction needs
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
    height = inflate(small) / (max(h, w) * s)
    if s < 1:
        height = cv2.resize(height, (cw, ch), interpolation=cv2.INTER_LINEAR)
    return (x0, y0, x1, y1), crop, (0.5 + 0.5 * y1 / h + height).astype(np.float32)
