"""Add an object the engine missed: a click on it, or a box around it."""

from __future__ import annotations

from bpy.types import Operator

from .segment_fix import BoxProps, SegmentFix


class MONOCLE_OT_segment_add(SegmentFix, BoxProps, Operator):
    bl_idname = "monocle.segment_add"
    bl_label = "Add Object"
    bl_description = "Make an object of a thing the reconstruction missed, from a click on it or a box around it"
    action = "add"


classes = (MONOCLE_OT_segment_add,)
