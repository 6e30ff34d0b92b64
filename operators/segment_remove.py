"""Remove an object: a click on it (or its id)."""

from __future__ import annotations

from bpy.types import Operator

from .segment_fix import SegmentFix


class MONOCLE_OT_segment_remove(SegmentFix, Operator):
    bl_idname = "monocle.segment_remove"
    bl_label = "Remove Object"
    bl_description = "Take away the object under the click (it becomes background)"
    action = "remove"


classes = (MONOCLE_OT_segment_remove,)
