"""The offline ``drawing`` engine: industrial-design line art in, one rounded object per drawn thing out.

Strokes are cleaned up and classed by weight (:mod:`.drawing_lines`): the heavy outline closes
each object, medium internal lines fold its relief as creases, light contour lines are shading.
Objects and relief come from :mod:`.drawing_shapes`. The class of every stroke is written beside
the masks as a line map, so the mesh builder can crease along it and the artist can see it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import DepthMap, EngineHooks, Instance, ProgressFn
from .drawing_lines import CLASS_NAMES, INTERNAL, LineAnalysis, analyse_lines
from .drawing_shapes import DEPTH_OF_SIZE, DEPTH_RADII, annotate, find_objects, relief

LINES_FILE = "lines.png"
RELIEF = "relief"  # the depth kind of a drawing's relief (geometry.depth.RELIEF; the worker imports no geometry)


class DrawingEngine(EngineHooks):
    name = "drawing"

    def __init__(self, **_: Any) -> None:
        self._lines: LineAnalysis | None = None
        self._classes: np.ndarray | None = None

    def settings(self) -> dict[str, Any]:
        return {}

    def _analyse(self, rgb: np.ndarray) -> LineAnalysis:
        if self._lines is None:
            self._lines = analyse_lines(rgb)
        return self._lines

    def segment(
        self, rgb: np.ndarray, alpha: np.ndarray | None, box: tuple[int, int, int, int] | None, objects: str,
        progress: ProgressFn,
    ) -> list[Instance]:
        progress("segment", 0.1, "Reading the drawing's lines")
        lines = self._analyse(rgb)
        progress("segment", 0.6, "Closing outlines")
        masks = find_objects(lines)
        if box is not None:
            x0, y0, x1, y1 = box
            masks = [m for m in masks if m[y0:y1, x0:x1].any()]
        if objects == "largest":
            masks = masks[:1]
        self._classes = annotate(lines, masks)
        return [Instance(mask=m, label="drawing", score=1.0) for m in masks]

    def depth(self, rgb: np.ndarray, instances: list[Instance], progress: ProgressFn) -> DepthMap:
        """A relief (``geometry.depth.RELIEF``): every object on one base plane, bulging towards the
        camera by its inflated silhouette, heights in image long sides, so each object takes its depth
        from its own drawn size (a drawing has no ground plane to place objects by, nor depth cues).
        Each instance records its depth over its width and height (the closed object's, front and
        mirrored back) as ``extra["relief"]``."""
        lines = self._analyse(rgb)
        creases = lines.skeleton & (lines.classes == INTERNAL)
        size = float(max(rgb.shape[:2]))
        out = np.zeros(rgb.shape[:2], np.float32)
        for i, inst in enumerate(instances):
            progress("depth", (i + 0.5) / max(1, len(instances)), f"Inflating object {i + 1}")
            if not inst.mask.any():
                continue
            box, height = relief(inst.mask, creases)
            part = out[box]
            part[:] = np.where(inst.mask[box] & (height > part), height, part)
            rows, cols = box
            deep = 2.0 * float(height.max())
            inst.extra["relief"] = {"depth_over_width": round(deep / (cols.stop - cols.start), 3),
                                    "depth_over_height": round(deep / (rows.stop - rows.start), 3)}
        out /= np.float32(size)
        return DepthMap(out, kind=RELIEF, extra={"source": "inflation", "creases": "internal lines",
                                                 "proportions": "silhouette",
                                                 "depth_of_size": DEPTH_OF_SIZE, "depth_radii": DEPTH_RADII})

    def maps(self, scale: float) -> dict[str, tuple[np.ndarray, dict[str, Any]]]:
        """Label maps for the result folder, by name: the line-class map and what its values mean.
        ``scale`` is working pixels per input pixel; widths are reported in input pixels."""
        if self._lines is None:
            return {}
        classes = self._classes if self._classes is not None else self._lines.classes
        widths = {k: round(v / scale, 3) for k, v in self._lines.widths.items()}
        meta = {"classes": {str(k): v for k, v in CLASS_NAMES.items()}, "widths_px": widths,
                "strokes": self._lines.strokes}
        return {LINES_FILE: (classes, meta)}
