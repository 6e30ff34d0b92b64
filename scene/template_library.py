"""Template libraries inside Blender: the bundled one plus the user's asset libraries.

Any object in a ``.blend`` of an asset library (Preferences > File Paths > Asset Libraries) that
carries a ``monocle_category`` custom property is a template; ``monocle_labels`` (comma
separated) lists the segmentation labels it answers to, ``monocle_symmetry`` its symmetry about
+Z (1 none, n n-fold, 0 any rotation) and ``monocle_mirror`` its mirror planes ("x" left-right,
"y" front-back, "xy" both). Model space is the object's local space with its
rotation and scale applied, +Z up. Descriptors are computed the first time a file is seen and
cached per file (keyed by path, size and modification time) in the extension's user folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import bpy
import numpy as np

from ..templates import library as tlib

log = logging.getLogger(__name__)

CATEGORY_PROP = "monocle_category"
LABELS_PROP = "monocle_labels"
SYMMETRY_PROP = "monocle_symmetry"
MIRROR_PROP = "monocle_mirror"
MAX_FILES = 500  # per asset library: a huge folder must not stall Blender


def cache_dir() -> Path:
    """Where descriptors of user templates are cached (the extension's user folder)."""
    from .. import prefs

    path = prefs.user_dir() / "templates"
    path.mkdir(parents=True, exist_ok=True)
    return path


def user_library_paths(context: bpy.types.Context | None = None) -> list[Path]:
    """Folders of the asset libraries the user added in the Preferences."""
    context = context or bpy.context
    out = []
    for lib in context.preferences.filepaths.asset_libraries:
        path = Path(bpy.path.abspath(lib.path)) if lib.path else None
        if path is not None and path.is_dir():
            out.append(path)
    return out


def _blend_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*.blend") if not any(part.startswith(".") for part in p.parts))
    return files[:MAX_FILES]


def mesh_arrays(obj: bpy.types.Object) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(vertices in model space, face sizes, corner vertex indices, material index per face) of a mesh object."""
    mesh = obj.data
    n = len(mesh.vertices)
    co = np.empty(n * 3, dtype=np.float32)
    mesh.vertices.foreach_get("co", co)
    sizes = np.empty(len(mesh.polygons), dtype=np.int32)
    mesh.polygons.foreach_get("loop_total", sizes)
    loops = np.empty(len(mesh.loops), dtype=np.int32)
    mesh.loops.foreach_get("vertex_index", loops)
    mats = np.empty(len(mesh.polygons), dtype=np.int32)
    mesh.polygons.foreach_get("material_index", mats)
    basis = np.array(obj.matrix_basis.to_3x3(), dtype=np.float64)
    verts = co.reshape(-1, 3).astype(np.float64) @ basis.T
    return verts, sizes, loops, mats


_ID_COLLECTIONS = ("objects", "meshes", "materials", "images", "textures", "node_groups", "collections",
                   "curves", "armatures", "actions", "lights", "cameras", "worlds", "scenes")


def _linked_count(path: Path) -> int:
    """How many datablocks of this file are linked from ``path``."""
    count = 0
    for kind in _ID_COLLECTIONS:
        for block in getattr(bpy.data, kind):
            lib = block.library
            if lib is not None and Path(bpy.path.abspath(lib.filepath)).resolve() == path.resolve():
                count += 1
    return count


def drop_unused_library(path: Path) -> None:
    """Remove the library datablock of ``path`` when nothing is linked from it any more (appending
    leaves one behind, whose name then clashes with the next one when an undo step is read back)."""
    if _linked_count(path):
        return
    for lib in list(bpy.data.libraries):
        if Path(bpy.path.abspath(lib.filepath)).resolve() == path.resolve():
            bpy.data.libraries.remove(lib)


@contextmanager
def linked_objects(blend: Path, names: list[str] | None = None) -> Iterator[list[bpy.types.Object]]:
    """Objects of ``blend`` linked into this file for reading, unlinked again afterwards.

    Linking, not appending: nothing local is created. The library is removed afterwards unless
    this file already linked something from it. (``bpy.data.temp_data`` would be cleaner, but
    appending from a file after reading it into temporary data crashes Blender 4.5.)
    """
    had = _linked_count(blend)
    with bpy.data.libraries.load(str(blend), link=True) as (src, dst):
        wanted = list(src.objects) if names is None else [n for n in names if n in src.objects]
        dst.objects = list(wanted)
    objects = [o for o in dst.objects if o is not None]
    library = objects[0].library if objects else None
    try:
        yield objects
    finally:
        objects.clear()  # the caller's list too: no wrapper may outlive the library
        del dst, src
        if library is not None and had == 0:
            bpy.data.libraries.remove(library)


def template_from_object(obj: bpy.types.Object, source: Path) -> tlib.Template | None:
    """A ``Template`` for a tagged mesh object (None if it is not a usable one)."""
    if obj.type != "MESH" or CATEGORY_PROP not in obj or len(obj.data.polygons) == 0:
        return None
    from ..templates.mesh import fan_triangles

    verts, sizes, loops, _ = mesh_arrays(obj)
    category = tlib.normalise_label(str(obj[CATEGORY_PROP])) or "object"
    labels = tlib.parse_labels(str(obj.get(LABELS_PROP, category)))
    try:
        symmetry = int(obj.get(SYMMETRY_PROP, 1))
    except (TypeError, ValueError):
        symmetry = 1
    return tlib.Template(obj.name, category, labels or (category,), symmetry, verts.astype(np.float32),
                         fan_triangles(sizes, loops), str(source), obj.name, tlib.parse_mirror(obj.get(MIRROR_PROP)))


def _cache_file(blend: Path) -> Path:
    key = hashlib.sha1(str(blend.resolve()).encode("utf-8")).hexdigest()[:16]
    return cache_dir() / f"{key}.npz"


def _stamp(blend: Path) -> str:
    st = blend.stat()
    return json.dumps({"path": str(blend.resolve()), "size": st.st_size, "mtime": st.st_mtime_ns})


def library_of_file(blend: Path) -> tlib.TemplateLibrary:
    """The templates of one .blend, from the cache when it is current, else computed and cached."""
    cache = _cache_file(blend)
    stamp_file = cache.with_suffix(".json")
    stamp = _stamp(blend)
    if cache.is_file() and stamp_file.is_file() and stamp_file.read_text(encoding="utf-8") == stamp:
        try:
            return tlib.TemplateLibrary.load(cache)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("template cache %s unreadable (%s); rebuilding", cache.name, exc)
    templates = []
    with linked_objects(blend) as objects:
        for obj in objects:
            tpl = template_from_object(obj, blend)
            if tpl is not None:
                templates.append(tpl)
    lib = tlib.TemplateLibrary.build(templates)
    lib.save(cache)
    stamp_file.write_text(stamp, encoding="utf-8")
    return lib


def user_library(context: bpy.types.Context | None = None) -> tlib.TemplateLibrary:
    """All tagged objects of the user's asset libraries (empty when there are none)."""
    out = tlib.TemplateLibrary.build([])
    bundled = tlib.BUNDLED_BLEND.resolve()
    for folder in user_library_paths(context):
        for blend in _blend_files(folder):
            if blend.resolve() == bundled:
                continue
            try:
                lib = library_of_file(blend)
            except (OSError, RuntimeError, ValueError) as exc:
                log.warning("skipping templates of %s (%s)", blend, exc)
                continue
            if len(lib):
                out = out.merged(lib)
    return out


def template_library(context: bpy.types.Context | None = None, include_user: bool = True) -> tlib.TemplateLibrary:
    """The bundled templates, followed by the user's."""
    lib = tlib.bundled_library()
    if include_user:
        user = user_library(context)
        if len(user):
            lib = lib.merged(user)
    return lib
