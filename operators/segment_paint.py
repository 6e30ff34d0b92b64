"""Paint an object's outline in or out with a stroke (that starts on the object)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bpy.types import Operator

from .segment_fix import SegmentFix, StrokeProps


class MONOCLE_OT_segment_paint(SegmentFix, StrokeProps, Operator):
    bl_idname = "monocle.segment_paint"
    bl_label = "Paint Outline"
    bl_description = "Paint pixels into an object (or out of it, with Paint Out) along a stroke on its outline"
    action = "paint"

    def correction(self, size: tuple[int, int], folder: Path) -> dict[str, Any]:
        corr = super().correction(size, folder)
        if not corr["points"] and self.target < 0 and len(self.stroke):
            # the stroke starts on the object it paints
            sx, sy = self._scale(size)
            corr["points"] = [[self.stroke[0].x * sx, self.stroke[0].y * sy, 1]]
        return corr


classes = (MONOCLE_OT_segment_paint,)
