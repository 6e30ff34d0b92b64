"""The objects of a worker result while corrections edit them, and the stroke masks that edit them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import memo
from .prompts import STROKE_ADD_MIN, Correction
from .protocol import Emitter, WorkerError


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


def full(window: tuple[int, int, int, int], part: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, bool)
    x0, y0, x1, y1 = window
    out[y0:y1, x0:x1] = part
    return out


def bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1

