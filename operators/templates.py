"""After a build: place a template of the artist's chosen category over a reconstruction; after a
template blend: cycle through the best matches, or bake the blend to a plain mesh."""

from __future__ import annotations

import bpy
from bpy.props import StringProperty
from bpy.types import Operator

_CATEGORIES: list[str] = []  # the library's categories, read when the dialog opens (the search asks often)


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


def _categories(context: bpy.types.Context) -> list[str]:
    from ..scene.template_library import template_library

    _CATEGORIES[:] = template_library(context).categories
    return _CATEGORIES


def _category_search(self: Operator, context: bpy.types.Context, edit_text: str) -> list[str]:
    from ..scene.template_blend import refusal

    text = edit_text.strip().lower()
    guess = refusal(context.active_object) if context.active_object is not None else None
    first = [c for c, _ in guess["nearest"]] if guess else []  # retrieval's nearest categories lead the list
    known = _CATEGORIES or _categories(context)
    return [c for c in dict.fromkeys(first + known) if c in known and text in c.lower()]


class MONOCLE_OT_template_place(Operator):
    bl_idname = "monocle.template_place"
    bl_label = "Place Template"
    bl_description = ("Fit and place the best template of a category you choose over each selected "
                      "reconstruction, whatever it scores (replacing a template already there)")
    bl_options = {"REGISTER", "UNDO"}

    category: StringProperty(  # type: ignore[valid-type]
        name="Category", description="What the object is: one of the template library's categories",
        search=_category_search)

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        from ..scene.template_blend import is_reconstruction, is_template

        obj = context.active_object
        if not (is_template(obj) or is_reconstruction(obj)):
            cls.poll_message_set("Select an object Monocle reconstructed")
            return False
        if context.window_manager.monocle_status.running:
            cls.poll_message_set("A reconstruction is running")
            return False
        return True

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        from ..scene.template_blend import CATEGORY_PROP, refusal

        _categories(context)
        obj = context.active_object
        if not self.category:  # the template's own category, else retrieval's nearest where it placed none
            guess = refusal(obj)
            self.category = str(obj.get(CATEGORY_PROP, guess["nearest"][0][0] if guess else ""))
        return context.window_manager.invoke_props_dialog(self, title="Place a Template of the Category",
                                                          confirm_text="Place")

    def execute(self, context: bpy.types.Context) -> set[str]:
        from ..scene.result import BuildError
        from ..scene.template_blend import place_category
        from .reconstruct import mesh_settings

        category = _resolve(self.category, _CATEGORIES or _categories(context))
        if not category:
            self.report({"ERROR"}, "Choose a category for the template.")
            return {"CANCELLED"}
        settings = context.scene.monocle
        placed, failed = [], []
        for source in _targets(context):  # each placed, or left as it was, on its own
            try:
                placed.append(place_category(
                    source, category, mesh_settings(settings), context=context, weight=settings.template_weight,
                    depth_from_template=settings.template_depth))
            except BuildError as exc:
                failed.append(exc.message)
        if not placed:
            self.report({"ERROR"}, failed[0] if failed else "Select an object Monocle reconstructed.")
            return {"CANCELLED"}
        for o in context.selected_objects:
            o.select_set(False)
        for rep in placed:
            rep.object.select_set(True)
        context.view_layer.objects.active = placed[0].object
        if len(placed) == 1:
            rep = placed[0]
            fit_iou = rep.fits[0].iou if rep.fits else float("nan")
            outline = f"outline IoU {fit_iou:.2f}; " if fit_iou == fit_iou else ""
            message = (f"Placed the template {rep.result.matches[0].template} over {rep.source.name} "
                       f"({outline}Swap Template shows the category's others).")
        else:
            message = f"Placed {category} templates over {len(placed)} objects."
        if failed:
            self.report({"WARNING"}, f"{message} {len(failed)} not: {failed[0]}")
        else:
            self.report({"INFO"}, message)
        return {"FINISHED"}


def _resolve(text: str, known: list[str]) -> str:
    """The category ``text`` names: itself, any case, or the one category it is part of ("ca" is in can,
    capsule and car, "Refrig" in refrigerator alone); else ``text`` as typed (placing then says there is no
    such category)."""
    typed = text.strip()
    lower = typed.lower()
    exact = [c for c in known if c.lower() == lower]
    partial = [c for c in known if lower and lower in c.lower()]
    return exact[0] if exact else partial[0] if len(partial) == 1 else typed


def _targets(context: bpy.types.Context) -> list[bpy.types.Object]:
    """The reconstructions the selection stands for (a template for the one it is pulled onto), the active
    object's first, each once."""
    from ..scene.template_blend import is_reconstruction, is_template, reconstruction_of

    picked = [context.active_object, *context.selected_objects]
    # a template whose reconstruction is gone stays itself: placing on it says so
    sources = [(reconstruction_of(o) or o) if is_template(o) else o for o in picked if o is not None]
    return [o for o in dict.fromkeys(sources) if is_reconstruction(o) or is_template(o)]


classes = (MONOCLE_OT_template_place, MONOCLE_OT_template_swap, MONOCLE_OT_template_apply)
