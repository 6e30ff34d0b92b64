"""Corrections of a segmentation: what the artist clicked, dragged or painted, as data.

One :class:`Correction` is one edit of a result (``add``, ``remove``, ``merge``, ``split`` or
``paint``) with its prompts in input-image pixels (x right, y down): points with a sign,
boxes, and a stroke mask (a grey image at the photo's aspect ratio: white paints the object
in, mid grey paints it out, black leaves it alone). The worker takes them on its command line
(``python -m inference refine``), in serve requests (the same command line) and from a JSON
file (``run --corrections FILE``, the headless sidecar), and records them in ``result.json``.

The JSON form of a correction::

    {"action": "add", "points": [[x, y, 1], [x, y, -1]], "boxes": [[x0, y0, x1, y1]],
     "strokes": "fix.png", "targets": [2]}

A sidecar file is ``{"corrections": [correction, ...]}`` (or the bare list); a stroke file
named in it is read relative to the sidecar's folder.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .protocol import WorkerError

ACTIONS = ("add", "remove", "merge", "split", "paint")
STROKE_ADD = 255  # stroke mask values: at least this paints in
STROKE_REMOVE = 1  # from this up to below STROKE_ADD_MIN paints out
STROKE_ADD_MIN = 192


@dataclass
class Correction:
    """One edit of a segmentation, its prompts in input-image pixels."""

    action: str
    points: list[tuple[float, float, bool]] = field(default_factory=list)  # (x, y, positive)
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    strokes: str | None = None  # path of a stroke mask image
    targets: list[int] = field(default_factory=list)  # object ids the edit is about

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action}
        if self.points:
            out["points"] = [[round(x, 2), round(y, 2), 1 if s else -1] for x, y, s in self.points]
        if self.boxes:
            out["boxes"] = [[round(v, 2) for v in b] for b in self.boxes]
        if self.strokes:
            out["strokes"] = self.strokes
        if self.targets:
            out["targets"] = list(self.targets)
        return out

    def check(self) -> None:
        """Refuse a correction that cannot say what to do, in one sentence."""
        if self.action not in ACTIONS:
            raise WorkerError("bad_argument", f"Unknown correction {self.action!r}; choose one of: "
                              f"{', '.join(ACTIONS)}.")
        positive = any(s for _, _, s in self.points)
        if self.action == "add" and not (positive or self.boxes or self.strokes):
            raise WorkerError("bad_argument", "Adding an object needs a positive point, a box or a stroke on it.")
        if self.action == "remove" and not (positive or self.targets):
            raise WorkerError("bad_argument", "Removing an object needs a point on it or its id.")
        if self.action == "merge" and len(self.targets) + sum(1 for p in self.points if p[2]) < 2:
            raise WorkerError("bad_argument", "Merging needs two objects: two points or two ids.")
        if self.action == "split" and not (self.boxes or self.strokes or positive):
            raise WorkerError("bad_argument", "Splitting an object needs a box, a stroke or a point on the part "
                              "to split off.")
        if self.action == "paint" and not (self.strokes or self.points):
            raise WorkerError("bad_argument", "Painting needs a stroke mask or points.")


def _numbers(text: str, count: int, what: str, example: str) -> list[float]:
    parts = [p.strip() for p in str(text).split(",")]
    try:
        if len(parts) != count:
            raise ValueError
        values = [float(p) if p not in ("+", "-") else (1.0 if p == "+" else -1.0) for p in parts]
    except ValueError:
        raise WorkerError("bad_argument", f"The {what} {text!r} must be {count} numbers {example}.") from None
    if not all(math.isfinite(v) for v in values):
        raise WorkerError("bad_argument", f"The {what} {text!r} must be finite numbers.")
    return values


def parse_point(text: str) -> tuple[float, float, bool]:
    """``X,Y`` or ``X,Y,SIGN`` (SIGN: + or 1 keeps, - or -1 or 0 excludes)."""
    parts = str(text).split(",")
    if len(parts) == 2:
        parts.append("+")
    x, y, sign = _numbers(",".join(parts), 3, "point", "X,Y,SIGN (SIGN + or -)")
    return x, y, sign > 0


def parse_box(text: str) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = _numbers(text, 4, "box", "X0,Y0,X1,Y1")
    if x1 <= x0 or y1 <= y0:
        raise WorkerError("bad_argument", f"The box {text!r} is empty: X1 must exceed X0 and Y1 must exceed Y0.")
    return x0, y0, x1, y1


def from_json(data: Any, folder: Path | None = None) -> Correction:
    """One correction from its JSON form; a relative stroke path is taken from ``folder``."""
    if not isinstance(data, dict) or not isinstance(data.get("action"), str):
        raise WorkerError("bad_argument", "A correction must be an object with an \"action\".")
    try:
        points = []
        for p in data.get("points") or []:
            if len(p) not in (2, 3):
                raise ValueError
            points.append(parse_point(",".join(str(v) for v in p)))
        boxes = [parse_box(",".join(str(v) for v in b)) for b in data.get("boxes") or []]
        targets = [int(t) for t in data.get("targets") or []]
    except (TypeError, ValueError):
        raise WorkerError("bad_argument", f"The {data['action']!r} correction's points, boxes or targets are "
                          "malformed.") from None
    strokes = data.get("strokes")
    if strokes is not None and not isinstance(strokes, str):
        raise WorkerError("bad_argument", "A correction's \"strokes\" must be the path of a mask image.")
    if strokes and folder is not None and not Path(strokes).is_absolute():
        strokes = str(folder / strokes)
    corr = Correction(data["action"], points, boxes, strokes or None, targets)
    corr.check()
    return corr


def read_corrections(path: str) -> list[Correction]:
    """The corrections of a sidecar file, in order."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WorkerError("corrections_unreadable", f"Cannot read the corrections file {p.name} "
                          f"({exc.strerror}).") from None
    except ValueError:
        raise WorkerError("corrections_unreadable", f"The corrections file {p.name} is not valid JSON.") from None
    items = data.get("corrections") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise WorkerError("corrections_unreadable", f"The corrections file {p.name} holds no \"corrections\" list.")
    return [from_json(item, p.parent) for item in items]
