"""Monocle: turn one photo into textured, correctly placed 3D objects."""

from __future__ import annotations

import bpy

from . import cli, operators, panels, prefs, props

classes = (
    *prefs.classes,
    *props.classes,
    *operators.classes,
    *panels.classes,
)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)
    props.register()
    cli.register()


def unregister() -> None:
    from .bridge.warm import POOL

    POOL.shutdown_all()  # a disabled extension leaves no worker behind
    cli.unregister()
    props.unregister()
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
