"""Add-on preferences: which Python runs inference, where caches live."""

from __future__ import annotations

import sys
from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty
from bpy.types import AddonPreferences

from .bridge.cache import ResultCache, human_size
from .inference.models import hf_hub_cache

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


def cache_max_bytes(context: bpy.types.Context | None = None) -> int:
    """The inference cache's size cap in bytes (0: no cap)."""
    return max(0, int(get_prefs(context).cache_max_mb)) * 1024 * 1024


def model_cache(context: bpy.types.Context | None = None) -> Path:
    """Hugging Face hub cache for learned models: the preference, else Monocle's user folder."""
    custom = get_prefs(context).model_dir.strip()
    return Path(bpy.path.abspath(custom)) if custom else user_dir() / "models"


def model_downloaded(model: str, context: bpy.types.Context | None = None) -> bool:
    """Cheap check (for poll): a local folder exists, or a cache the worker reads holds a snapshot of the id."""
    if not model:
        return False
    path = Path(bpy.path.abspath(model))
    if path.is_dir() or (path.suffix.lower() == ".onnx" and path.is_file()):
        return True
    caches = [model_cache(context)]
    if not get_prefs(context).model_dir.strip():
        caches.append(hf_hub_cache())
    for cache in caches:
        snapshots = cache / ("models--" + model.replace("/", "--")) / "snapshots"
        if snapshots.is_dir() and any(snapshots.iterdir()):
            return True
    return False


def model_problem(settings, context: bpy.types.Context | None = None) -> str | None:
    """Why the chosen learned engine cannot run offline: the first model it needs that is not on disk (None:
    nothing missing, online access on, or an engine without models)."""
    if settings.engine not in ("transformers", "moge") or bpy.app.online_access:
        return None
    from .inference.models import MOGE_DEFAULT, default_model, is_moge_model, known_model

    if settings.engine == "moge":
        needed = [settings.depth_model.strip() if is_moge_model(settings.depth_model) else MOGE_DEFAULT]
    else:
        needed = [settings.depth_model.strip() or default_model("depth")]
        if settings.prompt.strip():
            needed.append(default_model("prompt"))
        elif settings.seg_mode != "foreground":
            needed.append(settings.seg_model.strip() or default_model("segmentation"))
    for model in needed:
        if model != "classic" and not model_downloaded(model, context):
            known = known_model(model)
            size = f" ({known.download_mb:.0f} MB)" if known else ""
            return f"Model {model}{size} is not downloaded and online access is off"
    return None


# Result of the last interpreter check, per interpreter: engine name -> its description.
ENGINE_STATUS: dict[str, dict[str, dict]] = {}


def engine_problem(engine: str, context: bpy.types.Context | None = None) -> str | None:
    """Why ``engine`` cannot run, as far as we know without starting a process (None: no known problem)."""
    status = ENGINE_STATUS.get(interpreter(context), {}).get(engine)
    if status is not None and not status.get("available", True):
        return status.get("message") or f"The {engine} engine is not available"
    return None


def worker_environment(context: bpy.types.Context | None = None) -> dict[str, str]:
    """What the worker must know from Blender: device, model cache, and whether it may go online."""
    return {
        "MONOCLE_DEVICE": get_prefs(context).device.lower(),
        "MONOCLE_MODEL_CACHE": str(model_cache(context)),
        # no Model Folder: models already in the user's own Hugging Face cache are used from there
        "MONOCLE_REUSE_HF_CACHE": "0" if get_prefs(context).model_dir.strip() else "1",
        "MONOCLE_ONLINE": "1" if bpy.app.online_access else "0",
    }


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
    cache_max_mb: IntProperty(
        name="Cache Limit (MB)",
        description="Largest size of the inference cache; the results used least recently are removed to stay "
        "under it. 0 means no limit",
        default=2048, min=0, soft_max=65536,
    )
    device: EnumProperty(
        name="Device", description="Where learned models run", items=DEVICES, default="AUTO"
    )
    model_dir: StringProperty(
        name="Model Folder",
        description="Hugging Face cache folder for learned models (an existing one works too). Leave empty for "
        "Monocle's folder in your Blender profile, which also uses the models already in your own Hugging Face "
        "cache",
        subtype="DIR_PATH",
        default="",
    )
    keep_worker_warm: BoolProperty(
        name="Keep Worker Warm",
        description="Keep the inference worker running between reconstructions so imports and loaded models are "
        "reused (the first run pays for them, later runs do not). It exits on its own when idle or when Blender quits",
        default=True,
    )
    worker_idle_minutes: IntProperty(
        name="Idle Minutes",
        description="A warm worker that gets no request for this long exits and frees its memory",
        default=10, min=1, max=240,
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
        col.operator("monocle.setup_ml_env", icon="CONSOLE")
        if self.engines_report:
            box = col.box()
            for line in self.engines_report.splitlines():
                box.label(text=line)
        col.prop(self, "device")
        draw_workers(col)
        col.prop(self, "model_dir")
        draw_models(context, col.box())
        col.separator()
        row = col.row(align=True)
        row.prop(self, "cache_dir")
        col.prop(self, "cache_max_mb")
        size = ResultCache(cache_root(context)).size_bytes()
        row = col.row()
        row.label(text=f"Cache size: {human_size(size)}", icon="FILE_CACHE")
        row.operator("monocle.clear_cache", text="Clear Cache", icon="TRASH")


def draw_workers(layout: bpy.types.UILayout, settings: bool = True) -> None:
    """What warm worker runs now, with a button to stop it (and, with ``settings``, its preferences)."""
    from .bridge.warm import POOL

    if settings:
        p = get_prefs()
        row = layout.row(align=True)
        row.prop(p, "keep_worker_warm")
        sub = row.row(align=True)
        sub.active = p.keep_worker_warm
        sub.prop(p, "worker_idle_minutes")
    workers = POOL.workers()
    row = layout.row()
    if workers:
        info = ", ".join(f"pid {w.pid}: {w.requests} request(s), {w.model_loads} model load(s)" for w in workers)
        row.label(text=f"Warm worker: {info}", icon="PLAY")
        row.operator("monocle.stop_workers", text="Stop", icon="CANCEL")
    else:
        row.label(text="No warm worker running", icon="PAUSE")


def draw_models(context: bpy.types.Context, box: bpy.types.UILayout) -> None:
    """The known learned models with licence, size and a Download button each."""
    from .inference.models import known_models

    box.label(text="Learned models (downloaded only with Allow Online Access)", icon="NETWORK_DRIVE")
    for m in known_models():
        row = box.row()
        licence = m.licence if m.commercial is not False else f"{m.licence} (non-commercial)"
        row.label(text=f"{m.name} [{m.task}]: {m.download_mb:.0f} MB, {licence}")
        if model_downloaded(m.id, context):
            row.label(text="Downloaded", icon="CHECKMARK")
        else:
            op = row.operator("monocle.download_model", text="Download", icon="IMPORT")
            op.model = m.id




classes = (MONOCLE_AP_preferences,)
