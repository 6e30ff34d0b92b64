"""3D View > Sidebar > Monocle."""

from __future__ import annotations

import bpy
from bpy.types import Panel

from .. import prefs


class MonoclePanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Monocle"


class MONOCLE_PT_main(MonoclePanel, Panel):
    bl_label = "Monocle"
    bl_description = "Reconstruct 3D objects from a photo"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = context.scene.monocle
        status = context.window_manager.monocle_status
        layout.use_property_split = True
        layout.use_property_decorate = False
        layout.prop(settings, "source", expand=True)
        if settings.source == "FILE":
            layout.prop(settings, "image_path", text="Photo")
        else:
            layout.template_ID_preview(settings, "image", open="image.open", rows=3, cols=6)
        layout.prop(settings, "engine")
        problem = prefs.engine_problem(settings.engine, context) or prefs.model_problem(settings, context)
        if problem and not status.running:  # why the button is greyed out, in one sentence
            layout.label(text=problem, icon="ERROR")
        if settings.engine == "transformers":
            layout.prop(settings, "seg_mode")
            layout.prop(settings, "prompt")
        layout.prop(settings, "objects")
        layout.prop(settings, "detail")
        layout.prop(settings, "back")
        layout.prop(settings, "outline_alpha")
        layout.prop(settings, "backdrop")
        layout.prop(settings, "ground")
        if settings.engine in ("auto", "drawing"):
            layout.prop(settings, "drawing_material")
        col = layout.column()
        col.scale_y = 1.6
        col.operator("monocle.reconstruct", icon="MESH_MONKEY")
        if status.running:
            layout.progress(factor=status.progress, type="BAR", text=status.stage or "Working")
            layout.label(text="Press Esc to cancel", icon="INFO")
        elif status.summary:
            layout.label(text=status.summary, icon="CHECKMARK")


class MONOCLE_PT_segments(MonoclePanel, Panel):
    bl_label = "Fix Segments"
    bl_parent_id = "MONOCLE_PT_main"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        from ..operators.segment_fix import target_collection

        return target_collection(context) is not None

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        grid = layout.grid_flow(columns=2, align=True)
        for mode, text, icon in (("ADD", "Add", "ADD"), ("REMOVE", "Remove", "REMOVE"),
                                 ("MERGE", "Merge", "AUTOMERGE_ON"), ("SPLIT", "Split", "MOD_BOOLEAN"),
                                 ("PAINT", "Paint In", "BRUSH_DATA"), ("ERASE", "Paint Out", "BRUSH_DATA")):
            grid.operator("monocle.segment_pick", text=text, icon=icon).mode = mode
        layout.operator("monocle.segment_save", icon="FILE_TICK")


class MONOCLE_PT_depth(MonoclePanel, Panel):
    bl_label = "Depth & Camera"
    bl_parent_id = "MONOCLE_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = context.scene.monocle
        layout.use_property_split = True
        layout.use_property_decorate = False
        layout.prop(settings, "relief_strength")
        layout.prop(settings, "distance")
        layout.prop(settings, "depth_range")
        layout.prop(settings, "tear_threshold")
        layout.prop(settings, "focal_mode")
        row = layout.row()
        row.prop(settings, "focal_mm")
        row.enabled = True
        if settings.back == "SOLIDIFY":
            layout.prop(settings, "thickness")
        layout.prop(settings, "max_size")


class MONOCLE_PT_templates(MonoclePanel, Panel):
    bl_label = "Templates"
    bl_parent_id = "MONOCLE_PT_main"

    def draw_header(self, context: bpy.types.Context) -> None:
        self.layout.prop(context.scene.monocle, "use_templates", text="")

    def draw(self, context: bpy.types.Context) -> None:
        from ..scene.template_blend import WEIGHT_PROP, is_reconstruction, is_template, template_over
        from ..scene.template_info import refusal_lines, template_lines
        from ..scene.template_lattice import FIT_PROP

        layout = self.layout
        settings = context.scene.monocle
        layout.use_property_split = True
        layout.use_property_decorate = False
        row = layout.row()
        row.prop(settings, "template_weight", text="Weight (next build)")
        row.enabled = settings.use_templates
        row = layout.row()
        row.prop(settings, "template_depth")
        row.enabled = settings.use_templates
        obj = context.active_object
        if is_template(obj):
            box = layout.box()
            box.label(text=obj.name, icon="OBJECT_DATA")
            for text, icon in template_lines(obj):
                box.label(text=text, icon=icon)
            box.prop(obj, f'["{WEIGHT_PROP}"]', text="Template Weight", slider=True)
            if FIT_PROP in obj:
                box.prop(obj, f'["{FIT_PROP}"]', text="Fit", slider=True)
            row = box.row(align=True)
            row.operator("monocle.template_swap", icon="FILE_REFRESH")
            row.operator("monocle.template_apply", icon="CHECKMARK")
            box.operator("monocle.template_place", text="Another Category...", icon="VIEWZOOM")
        elif is_reconstruction(obj):
            box = layout.box()
            box.label(text=obj.name, icon="OBJECT_DATA")
            over = template_over(obj)
            box.label(text=f"Under the template {over.name}" if over is not None else "No template placed",
                      icon="INFO")
            if over is None:
                for text, icon in refusal_lines(obj):
                    box.label(text=text, icon=icon)
            box.operator("monocle.template_place", text="Place Template...", icon="VIEWZOOM")


class MONOCLE_PT_models(MonoclePanel, Panel):
    bl_label = "Models"
    bl_parent_id = "MONOCLE_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return context.scene.monocle.engine in ("transformers", "moge")

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = context.scene.monocle
        layout.use_property_split = True
        layout.use_property_decorate = False
        layout.prop(settings, "depth_model")
        if settings.engine == "transformers":
            layout.prop(settings, "seg_model")
        if not bpy.app.online_access:
            layout.label(text="Online access is off: only downloaded models work", icon="INTERNET_OFFLINE")
        prefs.draw_workers(layout.column(), settings=False)


classes = (MONOCLE_PT_main, MONOCLE_PT_segments, MONOCLE_PT_depth, MONOCLE_PT_templates, MONOCLE_PT_models)
