"""Split an object: a box around, or a stroke over, the part to make its own object."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bpy.types import Operator

from .segment_fix import BoxProps, SegmentFix, StrokeProps


class MONOCLE_OT_segment_split(SegmentFix, BoxProps, StrokeProps, Operator):
    bl_idname = "monocle.segment_split"
    bl_label = "Split Object"
    bl_description = "Make the part of an object inside the box (or under the stroke) an object of its own"
    action = "split"

    def correction(self, size: tuple[int, int], folder: Path) -> dict[str, Any]:
        corr: dict[str, Any] = {"action": "split", "points": self.pixel_points(size)}
        if self.use_box:
            corr["boxes"] = [self.pixel_box(size)]
        strokes = self.stroke_file(size, folder)
        if strokes:
            corr["strokes"] = strokes
        return corr


classes = (MONOCLE_OT_segment_split,)
