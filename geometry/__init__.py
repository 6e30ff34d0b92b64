"""Pure-numpy geometry for Monocle (never imports ``bpy``).

The contract between the geometry layer and the Blender layer lives here:
``CameraModel`` (pinhole camera of the photo), ``MeshSettings`` (what the artist
controls, with its choices, in ``settings.py``) and ``MeshData`` (arrays ready for ``foreach_set``): the
one polygon mesh type, ``mesh.PolyMesh``, with the photo's fields.

Conventions
- Pixel coordinates: x to the right, y down, origin at the top-left corner of the
  image; the centre of pixel (row i, column j) is (j + 0.5, i + 0.5).
- Camera space: Blender's camera convention, x right, y up, looking down -z.
- UVs: u = x / width, v = 1 - y / height (Blender's origin is bottom-left).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .mesh import PolyMesh
from .settings import DRAWING_MATERIAL_TEXTS, Back, Backdrop, DrawingMaterial, MeshSettings

__all__ = ["Back", "Backdrop", "CameraModel", "DrawingMaterial", "MeshData", "MeshSettings", "PolyMesh"]

DEFAULT_SENSOR_MM = 36.0
DEFAULT_FOCAL_MM = 50.0


@dataclass
class CameraModel:
    """Pinhole camera matching a photo; the sensor size applies to the longer side
    (Blender's ``sensor_fit = 'AUTO'``), principal point at the image centre."""

    width: int
    height: int
    focal_mm: float = DEFAULT_FOCAL_MM
    sensor_mm: float = DEFAULT_SENSOR_MM

    @property
    def focal_px(self) -> float:
        return self.focal_mm / self.sensor_mm * max(self.width, self.height)

    def rays(self, pixels: np.ndarray) -> np.ndarray:
        """Camera-space directions through pixel coordinates ``(N, 2)``, scaled so z == -1."""
        f = self.focal_px
        px = np.asarray(pixels, dtype=np.float64)
        out = np.empty((px.shape[0], 3), dtype=np.float64)
        out[:, 0] = (px[:, 0] - 0.5 * self.width) / f
        out[:, 1] = (0.5 * self.height - px[:, 1]) / f
        out[:, 2] = -1.0
        return out

    def project(self, points: np.ndarray) -> np.ndarray:
        """Pixel coordinates ``(N, 2)`` of camera-space points ``(N, 3)`` (in front of the camera)."""
        p = np.asarray(points, dtype=np.float64)
        f = self.focal_px
        z = -p[:, 2]
        return np.stack([0.5 * self.width + f * p[:, 0] / z, 0.5 * self.height - f * p[:, 1] / z], axis=1)


# How a drawing's objects are shaded (id, name, description), for the EnumProperty and the command line.
DRAWING_MATERIALS = tuple((str(m), name, text) for m, (name, text) in DRAWING_MATERIAL_TEXTS.items())


@dataclass(kw_only=True)
class MeshData(PolyMesh):
    """One object's mesh, in camera space, ready for Blender: a ``PolyMesh`` (float32 vertices,
    int32 ``face_sizes`` and ``loops``, kept as given) with the photo's fields.

    ``vertices + strength * relief`` is the surface at a given Displace strength; the
    Blender layer bakes ``vertices`` with vertex edits and carries ``relief`` in a
    Displace modifier. Every vertex and its relief lie on the camera ray through the
    pixel its ``uvs`` point to.

    ``relief_texture`` is (h, w, 4) float32 RGBA in Blender's pixel order (row 0 is the
    bottom, v = 0; alpha 1), so it goes into an image as it is. Every ``relief_uvs`` entry
    is a texel centre, so nearest and bilinear sampling both return the texel exactly. The
    texels are camera-space (= object-local) vectors for Displace ``RGB_TO_XYZ``, mid
    level 0: ``relief == texture(relief_uvs).rgb`` for every vertex, so one Displace
    modifier carries the whole object's relief (the closed back's texels hold its mirrored,
    negated relief). The geometry layer writes ``relief`` straight into the texture, so the
    two may share memory (``relief`` is then a view of the texture's RGB rows): copy before
    changing either. ``groups`` name vertex selections (``front``, ``back``, ``seam``) that
    the Blender layer stores as boolean point attributes.
    """

    relief: np.ndarray  # (N, 3) float32 displacement at strength 1
    uvs: np.ndarray  # (N, 2) float32 photo UVs per vertex
    groups: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (N,) bool, e.g. "front", "back"
    relief_texture: np.ndarray | None = None  # (h, w, 4) float32 relief vectors sampled by the Displace modifier
    relief_uvs: np.ndarray | None = None  # (N, 2) float32 coordinates of each vertex in relief_texture
    # Optional edge table, so Blender need not build it (its costliest ingest step at 1M vertices):
    # (E, 2) int32 undirected edges, each used by some face, and (L,) int32 per corner the edge
    # from that corner to the next corner of its face. Both or neither.
    edges: np.ndarray | None = None
    corner_edges: np.ndarray | None = None

    def __post_init__(self) -> None:
        """The arrays stay as the geometry layer made them (no copy, no conversion)."""
