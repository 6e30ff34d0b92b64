"""Remember every datablock a build creates so a failed build can take them all back."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import bpy

from .result import BuildError

log = logging.getLogger(__name__)

# Removal order: users before what they use (objects hold meshes and cameras, meshes hold
# materials, materials and textures hold images).
_ORDER = ("objects", "meshes", "cameras", "materials", "textures", "images", "collections")


class Created:
    """The datablocks created so far, plus scene settings to restore on failure."""

    def __init__(self) -> None:
        self._ids: dict[str, list[Any]] = {kind: [] for kind in _ORDER}
        self._restore: list[tuple[Any, str, Any]] = []

    def add(self, kind: str, datablock: Any) -> Any:
        """Record ``datablock`` (a member of ``bpy.data.<kind>``) and return it."""
        self._ids[kind].append(datablock)
        return datablock

    def set(self, owner: Any, attr: str, value: Any) -> None:
        """Set ``owner.attr`` and remember the old value for ``rollback``."""
        self._restore.append((owner, attr, getattr(owner, attr)))
        setattr(owner, attr, value)

    @contextmanager
    def all_or_nothing(self, code: str, message: str) -> Iterator[Created]:
        """Run the block; on any error take back everything recorded and raise ``BuildError``.

        A ``BuildError`` passes through as it is; any other exception becomes
        ``BuildError(code, message.format(exc))`` (``message`` has one ``{}`` for the cause).
        """
        try:
            yield self
        except BuildError:
            self.rollback()
            raise
        except Exception as exc:
            self.rollback()
            log.exception("%s: rolled back", code)
            raise BuildError(code, message.format(exc)) from exc

    def rollback(self) -> None:
        """Remove everything recorded and restore changed settings; never raises."""
        for owner, attr, value in reversed(self._restore):
            try:
                setattr(owner, attr, value)
            except (ReferenceError, AttributeError, TypeError, ValueError):
                log.warning("could not restore %s", attr)
        self._restore.clear()
        for kind in _ORDER:
            store = getattr(bpy.data, kind)
            for datablock in reversed(self._ids[kind]):
                try:
                    store.remove(datablock, do_unlink=True)
                except ReferenceError:  # already gone with its owner
                    pass
            self._ids[kind].clear()


def remove_object(obj: bpy.types.Object) -> None:
    """Delete an object with the mesh, relief texture and relief image only it used."""
    mesh = obj.data if obj.type == "MESH" else None
    textures = [m.texture for m in obj.modifiers if m.type == "DISPLACE" and m.texture is not None]
    bpy.data.objects.remove(obj, do_unlink=True)
    if mesh is not None and mesh.users == 0:
        bpy.data.meshes.remove(mesh)
    for tex in textures:
        image = getattr(tex, "image", None)
        if tex.users == 0:
            bpy.data.textures.remove(tex)
        if image is not None and image.users == 0:
            bpy.data.images.remove(image)
