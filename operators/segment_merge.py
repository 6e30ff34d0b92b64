"""Merge objects: clicks on two or more of them (shift-click in the picker)."""

from __future__ import annotations

from bpy.types import Operator

from .segment_fix import SegmentFix


class MONOCLE_OT_segment_merge(SegmentFix, Operator):
    bl_idname = "monocle.segment_merge"
    bl_label = "Merge Objects"
    bl_description = "Make one object of the objects under the clicks"
    action = "merge"


classes = (MONOCLE_OT_segment_merge,)
