"""Remove an object: a click on it (or its id)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bpy.types import Operator

from .segment_fix import SegmentFix


class MONOCLE_OT_segment_remove(SegmentFix, Operator):
    bl_idname = "monocle.segment_remove"
    bl_label = "Remove Object"
    bl_description = "Take away the object under the click (it becomes background)"
    action = "remove"

    def correction(self, size: tuple[int, int], folder: Path) -> dict[str, Any]:
        return {"action": "remove", "points": self.pixel_points(size)}


classes = (MONOCLE_OT_segment_remove,)
