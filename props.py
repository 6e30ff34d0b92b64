"""Everything the artist can set lives in one PropertyGroup (``scene.monocle``);
the live state of a running job lives on the window manager (not saved, not undone)."""

from __future__ import annotations

import bpy
from bpy.props import (
    BoolProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)
from bpy.types import PropertyGroup

from .geometry import DEFAULT_FOCAL_MM
from .geometry.settings import BACK_TEXTS, BACKDROP_TEXTS, DRAWING_MATERIAL_TEXTS, RELIEF_STRENGTH, MeshSettings
from .inference import options
from .templates.policy import WEIGHT_DESCRIPTION


def enum_items(texts: dict, upper: bool = False) -> tuple[tuple[str, str, str], ...]:
    """``EnumProperty`` items from a choice's (name, description) table; ``upper`` gives the upper-case
    identifiers the older properties store in saved files."""
    return tuple((m.upper() if upper else str(m), name, text) for m, (name, text) in texts.items())


BACK_ITEMS = enum_items(BACK_TEXTS, upper=True)
OBJECTS_ITEMS = enum_items(options.OBJECTS_TEXTS, upper=True)
SOURCE_ITEMS = (
    ("FILE", "File", "Use an image file on disk"),
    ("IMAGE", "Blender Image", "Use an image already loaded in this .blend file"),
)
ENGINE_ITEMS = enum_items(options.ENGINE_TEXTS)
SEG_MODE_ITEMS = enum_items(options.SEG_MODE_TEXTS)
BACKDROP_ITEMS = enum_items(BACKDROP_TEXTS, upper=True)
DRAWING_MATERIAL_ITEMS = enum_items(DRAWING_MATERIAL_TEXTS)
FOCAL_ITEMS = (
    ("PHOTO", "From Photo", "Use the focal length the camera stored in the photo, else the one the depth model "
     "estimates (MoGe), else the manual value"),
    ("MANUAL", "Manual", "Always use the manual focal length"),
)


class MonocleMeshSettings:
    """Mesh-building properties shared by the scene settings and the operator (for redo)."""

    detail: IntProperty(
        name="Detail",
        description="Target number of vertices on the visible surface of each object. More is finer and slower",
        default=MeshSettings.detail, min=500, max=1_000_000, soft_max=200_000,
    )
    relief_strength: FloatProperty(
        name="Depth Strength",
        description="How strongly the estimated depth pushes the surface in and out (1 = as estimated)",
        default=RELIEF_STRENGTH, min=0.0, soft_max=3.0,
    )
    distance: FloatProperty(
        name="Distance",
        description="How far from the camera the nearest object is placed when the depth has no real scale",
        default=MeshSettings.distance, min=0.01, soft_max=100.0, unit="LENGTH",
    )
    depth_range: FloatProperty(
        name="Depth Range",
        description="How deep the whole scene is, front to back, when the depth has no real scale",
        default=MeshSettings.depth_range, min=0.0, soft_max=20.0, unit="LENGTH",
    )
    back: EnumProperty(name="Back", description="What to build behind the visible surface", items=BACK_ITEMS,
                       default=MeshSettings.back.upper())
    thickness: FloatProperty(
        name="Thickness", description="Thickness of the Solidify back", default=MeshSettings.thickness, min=0.0,
        soft_max=2.0, unit="LENGTH",
    )
    outline_alpha: BoolProperty(
        name="Outline Alpha",
        description="Cut each object out along the soft edge of its mask: the material becomes transparent "
        "where the mask is empty, so the outline is as smooth as the mask instead of the mesh's polygons",
        default=MeshSettings.outline_alpha,
    )
    drawing_material: EnumProperty(
        name="Drawing Material", description="How the objects of a drawing (line art) are shaded",
        items=DRAWING_MATERIAL_ITEMS, default=MeshSettings.drawing_material,
    )
    tear_threshold: FloatProperty(
        name="Tear Threshold",
        description="Cut the surface where the depth jumps by more than this fraction of the distance, so objects "
        "never stretch across to what is behind them",
        default=MeshSettings.tear_threshold, min=0.001, max=1.0, subtype="FACTOR",
    )
    backdrop: EnumProperty(name="Backdrop", description="What to make of the rest of the photo (table, floor, "
                           "wall): one mesh behind the objects, filled in where they hide it", items=BACKDROP_ITEMS,
                           default=MeshSettings.backdrop.upper())
    ground: BoolProperty(
        name="Stand on Ground",
        description="Find the floor or table the objects stand on and move each one along the camera's rays until "
        "it touches it (the view through the camera does not change). Nothing moves when no ground is found",
        default=MeshSettings.ground,
    )
    use_templates: BoolProperty(
        name="Use Templates",
        description="Look up a matching object in the template library and blend it with the reconstruction, "
        "which gives the unseen back a plausible shape",
        default=False,
    )
    template_weight: FloatProperty(
        name="Template Weight",
        description=WEIGHT_DESCRIPTION,
        default=0.5, min=0.0, max=1.0, subtype="FACTOR",
    )
    template_depth: BoolProperty(
        name="Depth from Template",
        description="With a relative depth map (no metric depth), give the object the depth of the template that "
        "fits it instead of the Depth Range, so a mug comes out about as deep as it is wide",
        default=True,
    )
    focal_mode: EnumProperty(name="Focal Length", description="Where the camera's focal length comes from",
                             items=FOCAL_ITEMS, default="PHOTO")
    focal_mm: FloatProperty(
        name="Focal Length", description="Focal length of the photo's camera on a 36 mm sensor",
        default=DEFAULT_FOCAL_MM, min=1.0, max=5000.0, unit="CAMERA",
    )


def copy_mesh_settings(src, dst) -> None:
    for name in MonocleMeshSettings.__annotations__:
        setattr(dst, name, getattr(src, name))


class MonocleSettings(PropertyGroup, MonocleMeshSettings):
    source: EnumProperty(name="Source", description="Where the photo comes from", items=SOURCE_ITEMS, default="FILE")
    image_path: StringProperty(
        name="Photo", description="The photo to reconstruct", subtype="FILE_PATH", default=""
    )
    image: PointerProperty(name="Image", description="An image already loaded in Blender", type=bpy.types.Image)
    engine: EnumProperty(name="Engine", description="How objects and depth are found", items=ENGINE_ITEMS,
                         default=options.ENGINE.value)
    objects: EnumProperty(name="Objects", description="Which objects to rebuild", items=OBJECTS_ITEMS,
                          default=options.Objects.ALL.upper())
    depth_model: StringProperty(
        name="Depth Model",
        description="Hugging Face model id or local folder of a depth model. Empty uses Depth Anything V2 Small",
        default="",
    )
    seg_model: StringProperty(
        name="Object Model",
        description="Hugging Face model id or local folder of a segmentation model. Empty uses Mask2Former COCO",
        default="",
    )
    seg_mode: EnumProperty(name="Find", description="What the learned engine looks for", items=SEG_MODE_ITEMS,
                           default=options.SegMode.LABELS.value)
    prompt: StringProperty(
        name="Prompt",
        description="Only rebuild what these words name (for example \"chair\"). Empty finds every object",
        default="",
    )
    max_size: IntProperty(
        name="Analysis Size",
        description="Long side, in pixels, the photo is analysed at. Results always come back at full size",
        default=options.MAX_SIZE, min=64, max=8192,
    )


class MonocleStatus(PropertyGroup):
    running: BoolProperty(default=False)
    stage: StringProperty(default="")
    progress: FloatProperty(default=0.0, min=0.0, max=1.0, subtype="FACTOR")
    summary: StringProperty(default="")


classes = (MonocleSettings, MonocleStatus)


def register() -> None:
    bpy.types.Scene.monocle = PointerProperty(type=MonocleSettings)
    bpy.types.WindowManager.monocle_status = PointerProperty(type=MonocleStatus)


def unregister() -> None:
    del bpy.types.WindowManager.monocle_status
    del bpy.types.Scene.monocle
