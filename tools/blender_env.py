"""Run the installed extension through the ``bpy`` module, the way a user's Blender does.

Used by the tests, ``scripts/monocle.py`` and ``scripts/demo.py``: point
``BLENDER_USER_RESOURCES`` at a private profile (before ``bpy`` is imported),
build the extension zip and install + enable it with Blender's own operator.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
REPO = "user_default"
MODULE = f"bl_ext.{REPO}.monocle"


def remove_profile(profile: Path) -> None:
    """Delete a throw-away profile made by :func:`use_profile` (hundreds of MB with the wheels)."""
    import shutil

    if profile.name.startswith("monocle-profile-") and Path(tempfile.gettempdir()) in profile.parents:
        shutil.rmtree(profile, ignore_errors=True)


def use_profile(profile: str | os.PathLike | None = None) -> Path:
    """Select (and create) the Blender user profile; must run before ``import bpy``."""
    if "bpy" in sys.modules:
        current = os.environ.get("BLENDER_USER_RESOURCES")
        if current and (profile is None or Path(profile) == Path(current)):
            return Path(current)
        raise RuntimeError("use_profile() must be called before bpy is imported")
    path = Path(profile) if profile else Path(tempfile.mkdtemp(prefix="monocle-profile-"))
    path.mkdir(parents=True, exist_ok=True)
    os.environ["BLENDER_USER_RESOURCES"] = str(path)
    return path


def install_extension(dist_dir: Path | None = None) -> ModuleType:
    """Build the zip for this platform, install it into the profile, enable it, return the module."""
    import bpy

    sys.path.insert(0, str(ROOT / "tools"))
    import build_extension

    profile = Path(os.environ["BLENDER_USER_RESOURCES"])
    zips = build_extension.build(dist_dir or profile / "dist")
    wanted = build_extension.zip_name(build_extension.current_platform_tag())
    zips = [z for z in zips if z.name == wanted] or zips
    result = bpy.ops.extensions.package_install_files(filepath=str(zips[0]), repo=REPO, enable_on_install=True)
    if result != {"FINISHED"} or MODULE not in bpy.context.preferences.addons:
        raise RuntimeError(f"installing {zips[0]} did not enable {MODULE}")
    return importlib.import_module(MODULE)
