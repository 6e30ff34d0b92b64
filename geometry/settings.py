"""What the artist controls about the meshes: the mesh settings' choices and defaults, spelled once.

The panel's PropertyGroup (``props.py``), the command line (``cli.py``) and the geometry layer all
read these; ``backs.py`` builds one unit per ``Back`` and ``backdrop.py`` one per ``Backdrop``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Back(StrEnum):
    OPEN = "open"
    SOLIDIFY = "solidify"
    CLOSED = "closed"


class Backdrop(StrEnum):
    NONE = "none"
    PLANE = "plane"
    RELIEF = "relief"


class DrawingMaterial(StrEnum):
    CLAY_LINES = "clay_lines"
    PHOTO = "photo"


# (name, description) of every choice, in the order the panel lists them.
BACK_TEXTS = {
    Back.OPEN: ("Open", "Only the surface the camera sees (a relief shell)"),
    Back.SOLIDIFY: ("Solidify", "The visible surface with a constant thickness behind it"),
    Back.CLOSED: ("Closed", "A mirrored back stitched to the front: a closed, watertight object"),
}
BACKDROP_TEXTS = {
    Backdrop.NONE: ("None", "Only the objects: the rest of the photo is left out"),
    Backdrop.PLANE: ("Plane", "The rest of the photo on one flat plane behind the objects"),
    Backdrop.RELIEF: ("Relief", "The rest of the photo as a surface displaced by its depth, behind the objects"),
}
DRAWING_MATERIAL_TEXTS = {
    DrawingMaterial.CLAY_LINES: ("Clay with Lines",
                                 "Light clay with the drawing's outline, internal and contour lines drawn dark"),
    DrawingMaterial.PHOTO: ("Photo Texture", "The drawing itself as the texture, like a photo"),
}


@dataclass
class MeshSettings:
    """Artist-facing mesh settings (see the sidebar panel for their meaning)."""

    detail: int = 20_000  # target number of front-surface vertices per object
    distance: float = 5.0  # distance from the camera to the nearest object, scene units (relative depth only)
    depth_range: float = 1.0  # depth extent of the scene for relative depth, scene units
    tear_threshold: float = 0.05  # a face spanning a depth jump above this fraction of its distance is removed
    back: str = Back.CLOSED.value  # a Back
    thickness: float = 0.1  # solidify thickness, scene units
    outline_alpha: bool = False  # the photo material takes its alpha from the object's mask (Blender layer only)
    backdrop: str = Backdrop.NONE.value  # a Backdrop: the rest of the photo behind the objects (backdrop.py)
    ground: bool = True  # objects stand on the ground plane when one is found (ground.py)
    drawing_material: str = DrawingMaterial.CLAY_LINES.value  # how a drawing's objects are shaded (Blender layer)


RELIEF_STRENGTH = 1.0  # the Displace modifier's strength a new object gets (1 = the depth as estimated)
