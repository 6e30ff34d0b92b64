"""Bring a corrected worker result into the scene: only the objects the correction touched change.

The objects a correction removed or changed are deleted (with their mesh and relief image);
the changed and new ones are built from the new result with the collection's own camera,
placement and photo material, so everything else in the collection stays as it was (edits,
modifiers, materials the artist made included). Like a build it calls no operator and leaves
the file as it was when it fails, so an operator that calls it is one undo step.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import bpy

from ..geometry import CameraModel, MeshSettings
from .build import _make_object, _prepare, _select, meshes_from_result
from .build_materials import load_photo, object_materials
from .result import BuildError, read_result
from .tags import OBJECT_ID, RESULT_FOLDER, RESULT_PHOTO, camera_matrix, collection_camera
from .tracker import Created, remove_object


@dataclass
class CorrectionReport:
    """What one correction changed in the scene."""

    added: list[bpy.types.Object]
    removed: list[str]  # names of the objects taken away
    timings: dict[str, float] = field(default_factory=dict)


def camera_model(collection: bpy.types.Collection, width: int, height: int) -> CameraModel:
    """The photo's camera as the collection's camera has it (its focal length may have been overridden)."""
    cam = collection_camera(collection)
    if cam is None:
        raise BuildError("camera_missing", f"The collection {collection.name!r} has lost its camera; reconstruct "
                         "again to correct it.")
    return CameraModel(width=width, height=height, focal_mm=float(cam.data.lens),
                       sensor_mm=float(cam.data.sensor_width))


def apply_correction(
    collection: bpy.types.Collection, result_path: str | Path, settings: MeshSettings, *,
    context: bpy.types.Context | None = None, relief_strength: float = 1.0,
) -> CorrectionReport:
    """Replace the objects of ``collection`` that the corrected result at ``result_path`` changed
    or removed; raises ``BuildError`` and changes nothing on failure."""
    t0 = time.perf_counter()
    context = context or bpy.context
    result = read_result(result_path, collection.get(RESULT_PHOTO))
    if result.changed is None or result.image_path is None:
        raise BuildError("result_unreadable", "That result is not a correction; nothing was changed.")
    camera = camera_model(collection, result.width, result.height)
    changed = set(result.changed)
    records = [rec for rec in result.instances if rec.id in changed]
    meshes, timings = meshes_from_result(result, settings, camera, only=sorted(changed)) if records else ([], {})
    gone = changed | set(result.removed or ())
    old = [o for o in collection.objects if o.get(OBJECT_ID) in gone]
    created = Created()
    timings.update({"mesh": 0.0, "attributes": 0.0, "relief": 0.0})
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="monocle-uvs") as pool:
        prepared = [_prepare(label, data, True, pool) for label, data in meshes]
        with created.all_or_nothing("build_failed", "Rebuilding the corrected objects failed ({}); nothing was "
                                    "changed."):
            materials = _shared_materials(collection, old, prepared, settings, records, result.image_path, created)
            cam_matrix = camera_matrix(collection)
            added = []
            for p, material, rec in zip(prepared, materials, records):
                obj = _make_object(p, cam_matrix, material, settings, relief_strength, collection, created, timings)
                obj[OBJECT_ID] = rec.id
                added.append(obj)
    if added:
        _select(context, added)
    removed = [o.name for o in old]
    for obj in old:
        remove_object(obj)
    collection[RESULT_FOLDER] = str(result.folder)
    timings["total"] = time.perf_counter() - t0
    return CorrectionReport(added=added, removed=removed, timings=timings)


def _shared_materials(
    collection: bpy.types.Collection, old: list[bpy.types.Object], prepared: list, settings: MeshSettings,
    records: list, photo_path: Path, created: Created,
) -> list[bpy.types.Material]:
    """The collection's plain photo material for every new object (a mask material each with
    ``outline_alpha``); made afresh only when no object keeps one."""
    if not prepared:
        return []
    if not settings.outline_alpha:
        keep = {o.name for o in old}
        for obj in collection.objects:
            if obj.type == "MESH" and obj.name not in keep and obj.data.materials:
                mat = obj.data.materials[0]
                if mat is not None and not _has_mask(mat):
                    return [mat] * len(prepared)
    photo = load_photo(photo_path, created)
    name = photo_path.stem or "Monocle"
    return object_materials(name, photo, [p.label for p in prepared], settings, [rec.mask_path for rec in records],
                            created)


def _has_mask(material: bpy.types.Material) -> bool:
    """Whether a photo material takes its alpha from an object's mask (one object's own)."""
    if not material.use_nodes or material.node_tree is None:
        return False
    return sum(1 for n in material.node_tree.nodes if n.type == "TEX_IMAGE") > 1


