"""Add-on preferences: which Python runs inference, where caches live."""

from __future__ import annotations

import sys
from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty
from bpy.types import AddonPreferences

from .bridge.cache import ResultCache, human_size

DEVICES = (
    ("AUTO", "Auto", "Use a GPU when the inference interpreter has one, else the CPU"),
    ("CPU", "CPU", "Always run models on the CPU"),
    ("CUDA", "CUDA", "Run models on an NVIDIA GPU"),
    ("MPS", "Apple MPS", "Run models on an Apple Silicon GPU"),
)


def get_prefs(context: bpy.types.Context | None = None) -> MONOCLE_AP_preferences:
    context = context or bpy.context
    return context.preferences.addons[__package__].preferences


def user_dir() -> Path:
    """The extension's writable folder in the user's profile (never the add-on folder)."""
    return Path(bpy.utils.extension_path_user(__package__, create=True))


def interpreter(context: bpy.types.Context | None = None) -> str:
    path = get_prefs(context).python_path.strip()
    return bpy.path.abspath(path) if path else sys.executable


def uses_blender_python(context: bpy.types.Context | None = None) -> bool:
    return not get_prefs(context).python_path.strip()


def cache_root(context: bpy.types.Context | None = None) -> Path:
    custom = get_prefs(context).cache_dir.strip()
    root = Path(bpy.path.abspath(custom)) if custom else user_dir() / "cache"
    root.mkdir(parents=True, exist_ok=True)
    return root


def wheel_site_packages() -> list[str]:
    """Where Blender unpacks extension wheels; the worker needs it when it runs on Blender's Python."""
    base = bpy.utils.user_resource("EXTENSIONS", path=".local")
    site = Path(base) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    return [str(site)] if site.is_dir() else []


class MONOCLE_AP_preferences(AddonPreferences):
    bl_idname = __package__

    python_path: StringProperty(
        name="Inference Python",
        description=(
            "Python interpreter that runs segmentation and depth models. Leave empty to use Blender's own Python "
            "(enough for the offline engine); point it at a Python with torch and transformers for learned models"
        ),
        subtype="FILE_PATH",
        default="",
    )
    cache_dir: StringProperty(
        name="Cache Folder",
        description="Where inference results are cached. Leave empty for Monocle's folder in your Blender profile",
        subtype="DIR_PATH",
        default="",
    )
    device: EnumProperty(
        name="Device", description="Where learned models run", items=DEVICES, default="AUTO"
    )
    engines_report: StringProperty(
        name="Engines", description="Result of the last interpreter check", default="", options={"SKIP_SAVE"}
    )

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        col = layout.column()
        row = col.row(align=True)
        row.prop(self, "python_path")
        row.operator("monocle.check_interpreter", text="Check", icon="CHECKMARK")
        if self.engines_report:
            box = col.box()
            for line in self.engines_report.splitlines():
                box.label(text=line)
        col.prop(self, "device")
        col.separator()
        row = col.row(align=True)
        row.prop(self, "cache_dir")
        size = ResultCache(cache_root(context)).size_bytes()
        row = col.row()
        row.label(text=f"Cache size: {human_size(size)}", icon="FILE_CACHE")
        row.operator("monocle.clear_cache", text="Clear Cache", icon="TRASH")


classes = (MONOCLE_AP_preferences,)
