"""The images and materials a build gives its objects: the photo (read from a copy when Blender
cannot open it by name), each object's mask when its outline is cut by the mask's alpha, and the
photo or clay-and-lines material of every object. Every datablock made is recorded in ``created``
so a failed build removes it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import bpy

from ..geometry import DrawingMaterial, MeshSettings
from .material import make_clay_lines_material, make_line_ink_image, make_photo_material
from .result import BuildError
from .tracker import Created


def blender_readable(path: Path, folder: Path) -> Path:
    """``path``, or a copy of it in ``folder`` when Blender cannot open it by name.

    Blender takes file paths as UTF-8 and a backslash as a folder separator, so a photo
    named with undecodable bytes, or with a backslash on Linux or macOS, is read from a
    copy (the result's folder belongs to that photo's content, so the copy is shared safely).
    """
    text = str(path)
    try:
        text.encode("utf-8")
        odd = os.sep == "/" and "\\" in text
    except UnicodeEncodeError:
        odd = True
    if not odd or not path.is_file():
        return path
    copy = folder / f"photo{path.suffix.lower() if path.suffix.isascii() else ''}"
    if not copy.is_file() or copy.stat().st_size != path.stat().st_size:
        shutil.copyfile(path, copy)
    return copy


def load_photo(path: Path, created: Created) -> bpy.types.Image:
    before = {img.as_pointer() for img in bpy.data.images}
    try:
        photo = bpy.data.images.load(str(path), check_existing=True)
    except RuntimeError:
        raise BuildError("image_missing", f"Cannot read the photo {str(path)!r}; nothing was built.") from None
    if photo.as_pointer() not in before:
        created.add("images", photo)
    return photo


def load_mask(path: Path, created: Created) -> bpy.types.Image:
    """The object's mask as an image of data values, packed so the .blend keeps its alpha
    when the inference cache is cleared."""
    try:
        mask = created.add("images", bpy.data.images.load(str(path), check_existing=False))
    except RuntimeError:
        raise BuildError("result_unreadable", f"Cannot read the mask {path.name}; nothing was built.") from None
    mask.colorspace_settings.is_data = True
    mask.pack()
    return mask


def object_materials(
    name: str, photo: bpy.types.Image, labels: list[str], settings: MeshSettings,
    mask_paths: Sequence[str | Path | None] | None, created: Created, lines_path: str | Path | None = None,
) -> list[bpy.types.Material]:
    """One material per object (named by ``labels``): the shared photo material, or with ``settings.outline_alpha``
    a copy per object whose alpha is that object's mask (objects without a mask share the plain one);
    for a drawing (``lines_path``) with ``settings.drawing_material`` "clay_lines" one shared clay
    material with the drawing's lines."""
    if lines_path is not None and settings.drawing_material == DrawingMaterial.CLAY_LINES:
        try:
            ink = created.add("images", make_line_ink_image(f"{name} Lines", lines_path))
        except RuntimeError:
            raise BuildError("result_unreadable",
                             f"Cannot read the line map {Path(lines_path).name}; nothing was built.") from None
        clay = created.add("materials", make_clay_lines_material(f"{name} Clay", ink))
        return [clay] * len(labels)
    masks = list(mask_paths) if settings.outline_alpha and mask_paths is not None else []
    masks += [None] * (len(labels) - len(masks))
    shared = None
    out = []
    for label, mask_path in zip(labels, masks):
        if mask_path is not None:
            mask = load_mask(Path(mask_path), created)
            out.append(created.add("materials", make_photo_material(f"{label} Photo", photo, mask)))
            continue
        if shared is None:
            shared = created.add("materials", make_photo_material(f"{name} Photo", photo))
        out.append(shared)
    return out
