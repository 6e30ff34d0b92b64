"""Monocle: turn one photo into textured, correctly placed 3D objects."""

from __future__ import annotations


def register() -> None:
    pass


def unregister() -> None:
    pass
