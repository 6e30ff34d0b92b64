"""The corrections themselves: each edits :class:`.segments.Segments` from the photo and the prompts.

Add, split and paint cut with GrabCut seeded by the prompts (:mod:`.engines.prompted`), or with the
learned promptable segmenter for clicks and boxes when it is asked for and installed
(:mod:`.engines.hf_points`); remove and merge need no pixels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import memo
from .engines import prompted
from .prompts import Correction
from .protocol import WorkerError
from .segments import Segments, read_strokes
from .segments import bbox as _bbox
from .segments import full as _full

if TYPE_CHECKING:
    from .imageio import LoadedImage

PAINT_LITERAL = 0.3  # a paint-in stroke the cut keeps less of than this is taken as painted
PAINT_REACH = 0.03  # strokes this near an object paint it, share of the long side


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
        ids = _most_overlapped(seg, region)
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
        ids = _most_overlapped(seg, near)
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
    _check_inside(corr, seg.shape)
    if corr.action == "remove":
        for i in _picked(seg, corr):
            seg.drop(i)
        return
    if corr.action == "merge":
        _merge(seg, _picked(seg, corr))
        return
    photo = _photo(seg, corr, image)
    strokes = read_strokes(corr.strokes, seg.shape) if corr.strokes else None
    {"add": _add, "split": _split, "paint": _paint}[corr.action](seg, corr, photo.rgb, strokes)



def _most_overlapped(seg: Segments, region: np.ndarray) -> list[int]:
    """The id of the object covering most of ``region``, as a list; empty when none touches it."""
    overlap = {i: int(np.count_nonzero(seg.mask(i) & region)) for i in seg.records}
    return [max(overlap, key=lambda i: overlap[i])] if overlap and max(overlap.values()) > 0 else []

def _check_inside(corr: Correction, shape: tuple[int, int]) -> None:
    """Refuse a correction whose points or boxes miss the image."""
    h, w = shape
    for x, y, _ in corr.points:
        if not (0 <= x < w and 0 <= y < h):
            raise WorkerError("bad_argument", f"The point ({x:g}, {y:g}) lies outside the {w}x{h} image.")
    for x0, y0, x1, y1 in corr.boxes:
        if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
            raise WorkerError("bad_argument", f"The box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) lies outside the {w}x{h} "
                              "image.")


def _picked(seg: Segments, corr: Correction) -> list[int]:
    """The objects the correction's points pick; refused when there is none."""
    ids = seg.picked(corr)
    if not ids:
        raise WorkerError("no_object_there", "There is no object under the point.")
    return ids


def _merge(seg: Segments, ids: list[int]) -> None:
    """The picked objects become the first of them."""
    if len(ids) < 2:
        raise WorkerError("no_object_there", "Merging needs two different objects under the points.")
    union = np.zeros(seg.shape, bool)
    for i in ids:
        union |= seg.mask(i)
    for i in ids[1:]:
        seg.drop(i)
    seg.set(ids[0], union)


def _photo(seg: Segments, corr: Correction, image: str | None) -> LoadedImage:
    """The photo the cutting actions read (memoised across a warm worker's requests), checked
    to be the one the result was made from."""
    if not image:
        raise WorkerError("bad_argument", f"The {corr.action!r} correction needs the photo (--image).")
    from .imageio import load_image

    photo = memo.cached(image, "photo", load_image)
    seg.image_key = memo.identity(image)
    seg.used = "grabcut"
    if (photo.height, photo.width) != seg.shape:
        raise WorkerError("bad_argument", f"The photo is {photo.width}x{photo.height} but the result was made from "
                          f"a {seg.shape[1]}x{seg.shape[0]} image.")
    return photo
