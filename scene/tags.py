"""What a built collection remembers of its reconstruction, so a correction can start from it."""

from __future__ import annotations

from pathlib import Path

import bpy
from mathutils import Matrix

from .result import WorkerResult

RESULT_FOLDER = "monocle_result"  # collection: the result folder its objects were built from
RESULT_PHOTO = "monocle_photo"  # collection: the photo's path
RESULT_FOCAL = "monocle_focal_mm"  # collection: the focal length that overrode the photo's, if any
RESULT_CAMERA = "monocle_camera"  # collection: the camera's world matrix the objects were placed with
OBJECT_ID = "monocle_id"  # object: its id in the result


def tag_result(
    collection: bpy.types.Collection, result: WorkerResult, photo: Path, focal_mm: float | None,
    camera: bpy.types.Object,
) -> None:
    """Record on the collection what its objects came from, so a correction can start from it."""
    collection[RESULT_FOLDER] = str(result.folder)
    collection[RESULT_PHOTO] = str(photo)
    collection[RESULT_CAMERA] = [v for row in camera.matrix_world for v in row]
    if focal_mm is not None:
        collection[RESULT_FOCAL] = float(focal_mm)
    elif RESULT_FOCAL in collection:
        del collection[RESULT_FOCAL]



def collection_camera(collection: bpy.types.Collection) -> bpy.types.Object | None:
    """The camera a tagged collection's objects were built with (None: the artist deleted it)."""
    return next((o for o in collection.objects if o.type == "CAMERA"), None)


def camera_matrix(collection: bpy.types.Collection) -> Matrix:
    """The camera matrix a tagged collection's objects were placed with."""
    v = list(collection[RESULT_CAMERA])
    return Matrix([v[0:4], v[4:8], v[8:12], v[12:16]])


def result_collections(scene: bpy.types.Scene) -> list[bpy.types.Collection]:
    """The scene's collections built from a worker result, newest (last linked) last."""
    out: list[bpy.types.Collection] = []

    def walk(coll: bpy.types.Collection) -> None:
        for child in coll.children:
            if RESULT_FOLDER in child:
                out.append(child)
            walk(child)

    walk(scene.collection)
    return out
