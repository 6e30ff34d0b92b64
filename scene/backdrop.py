"""The backdrop and the ground for a build: what ``geometry.backdrop`` and ``geometry.ground``
make from the worker's masks and depth, turned into what ``scene.build`` hands to Blender.

The inpainted colour image is written into the result's folder (``backdrop.png``), so a
cached result keeps it, and it is packed into the .blend like the masks, so the file keeps
its backdrop when the cache is cleared.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from ..geometry import CameraModel, MeshData, MeshSettings
from ..geometry import backdrop as bd
from ..geometry import ground as gr
from .result import BuildError, WorkerResult
from .tracker import Created

log = logging.getLogger(__name__)
COLOUR_FILE = "backdrop.png"
GUESSED_DEPTH = ("classic", "drawing")  # engines whose depth is drawn from the masks, not measured
SCALE_PROP = "monocle_ground_scale"  # on a standing object: the scale about the camera that stood it


@dataclass
class Extras:
    """The objects' meshes as placed on the ground, the backdrop's mesh and texture, the ground."""

    meshes: list[tuple[str, MeshData]]
    backdrop: MeshData | None = None
    backdrop_image: Path | None = None  # the texture; None: the photo itself
    ground: dict | None = None  # the plane and each object's placement, for reports


def plan(result: WorkerResult, settings: MeshSettings, camera: CameraModel, meshes: list[tuple[str, MeshData]],
         masks: list[np.ndarray], zdepth: np.ndarray, photo: Path, strength: float,
         measured: np.ndarray | None = None) -> Extras:
    """Fill the holes, find the ground, place the objects on it and make the backdrop's mesh.

    ``strength`` is the relief strength the objects are built at (their lowest point depends on it);
    ``measured`` says which pixels of the depth map held a value: the ground is fitted to those alone
    (a render's empty background, filled from the objects' edges, is no ground).
    """
    mode = getattr(settings, "backdrop", "none")
    use_ground = bool(getattr(settings, "ground", False))
    if use_ground and result.depth_source in GUESSED_DEPTH:
        # their depth off the objects is a rule (lower in the frame is nearer), not a measurement: a
        # plane fitted to it would move every object by a guess (on single-object renders it cost
        # the classic engine most of its visible F@0.1, see bench/bench_quality.py)
        log.info("no ground from the %s engine's depth: it is not measured", result.depth_source)
        use_ground = False
    extras = Extras(meshes=list(meshes))
    if mode == "none" and not use_ground:
        return extras
    union = bd.union_of(masks, zdepth.shape)
    if union.all():
        if mode != "none":
            log.warning("the objects cover the whole photo: no backdrop")
        return extras
    filled = bd.fill_depth(zdepth, union)
    if use_ground:
        ground_depth = filled if measured is None else np.where(measured, filled, np.float32(np.nan))
        extras.ground = _stand(extras, masks, ground_depth, camera, strength)
        for mask, placed in zip(masks, (extras.ground or {}).get("objects", ())):
            if placed["scale"] is not None and placed["scale"] > 1:  # moved back: keep the backdrop behind it
                np.maximum(filled, np.float32(placed["scale"]) * zdepth, out=filled, where=mask)
    if mode == "none":
        return extras
    far = max(float(-(np.asarray(d.vertices)[:, 2] + strength * np.asarray(d.relief)[:, 2]).min())
              for _, d in extras.meshes)  # camera space looks down -z: the farthest point has the least z
    try:
        extras.backdrop = bd.backdrop_mesh(mode, filled, union, camera, settings, far)
    except ValueError as exc:
        raise BuildError("mesh_failed", f"Could not build the backdrop ({exc}); nothing was built.") from exc
    extras.backdrop_image = _colour(result, photo, union)
    return extras


def _stand(extras: Extras, masks: list[np.ndarray], filled: np.ndarray, camera: CameraModel,
           strength: float) -> dict | None:
    """Fit the ground and scale each supported object about the camera onto it; the record for reports."""
    plane = gr.find_ground(masks, filled, camera)
    if plane is None:
        return None
    placed = []
    for i, ((label, data), supported) in enumerate(zip(extras.meshes, plane.supported)):
        surface = np.asarray(data.vertices, np.float64) + strength * np.asarray(data.relief, np.float64)
        s = gr.stand_scale(surface, plane) if supported else None
        if s is not None:
            extras.meshes[i] = (label, gr.scaled_mesh(data, s))
        placed.append({"label": label, "standing": s is not None, "scale": round(s, 6) if s is not None else None})
    return {**plane.as_dict(), "objects": placed}


def _colour(result: WorkerResult, photo: Path, union: np.ndarray) -> Path | None:
    """The inpainted photo in the result's folder (made once per result), or None when the photo
    cannot be read here or the folder is not writable (the photo itself is used then)."""
    path = result.folder / COLOUR_FILE
    if path.is_file():
        return path
    rgb = bd.read_rgb(photo, union.shape)
    if rgb is None:
        log.warning("cannot read %s with OpenCV: the backdrop shows the photo behind the objects", photo.name)
        return None
    try:
        bd.write_rgb(path, bd.fill_colour(rgb, union))
    except OSError as exc:
        log.warning("cannot write the backdrop's texture into %s (%s)", result.folder, exc)
        return None
    return path


def load_texture(path: Path | None, photo: bpy.types.Image, created: Created) -> bpy.types.Image:
    """The backdrop's texture as a packed image (the photo itself when ``path`` is None)."""
    if path is None:
        return photo
    try:
        image = created.add("images", bpy.data.images.load(str(path), check_existing=False))
    except RuntimeError:
        raise BuildError("result_unreadable", f"Cannot read the backdrop texture {path.name}; nothing was built.") \
            from None
    image.pack()
    return image
