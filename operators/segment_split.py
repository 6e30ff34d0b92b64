"""Split an object: a box around, or a stroke over, the part to make its own object."""

from __future__ import annotations

from bpy.types import Operator

from .segment_fix import BoxProps, SegmentFix, StrokeProps


class MONOCLE_OT_segment_split(SegmentFix, BoxProps, StrokeProps, Operator):
    bl_idname = "monocle.segment_split"
    bl_label = "Split Object"
    bl_description = "Make the part of an object inside the box (or under the stroke) an object of its own"
    action = "split"


classes = (MONOCLE_OT_segment_split,)
