"""After a template blend: cycle through the best matches, or bake the blend to a plain mesh."""

from __future__ import annotations

import bpy
from bpy.types import Operator


def _active_template(context: bpy.types.Context) -> bpy.types.Object | None:
    from ..scene.template_blend import is_template

    obj = context.active_object
    return obj if is_template(obj) else None


class TemplateOperator:
    """Operators that act on the active template blend."""

    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if _active_template(context) is None:
            cls.poll_message_set("Select a template blended by Monocle")
            return False
        return True


class MONOCLE_OT_template_swap(TemplateOperator, Operator):
    bl_idname = "monocle.template_swap"
    bl_label = "Swap Template"
    bl_description = "Replace the blended template with the next of the three best matches"

    def execute(self, context: bpy.types.Context) -> set[str]:
        from ..scene.template_blend import swap_template

        obj = _active_template(context)
        try:
            match = swap_template(obj, context=context)
        except RuntimeError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Now using the template {match.template} (score {match.score:.2f}).")
        return {"FINISHED"}


class MONOCLE_OT_template_apply(TemplateOperator, Operator):
    bl_idname = "monocle.template_apply"
    bl_label = "Apply Template"
    bl_description = "Bake the current blend into a plain mesh (the slider stops working for this object)"

    def execute(self, context: bpy.types.Context) -> set[str]:
        from ..scene.template_blend import apply_template

        obj = _active_template(context)
        try:
            apply_template(obj, context=context)
        except RuntimeError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


classes = (MONOCLE_OT_template_swap, MONOCLE_OT_template_apply)
