"""Run the installed extension through the ``bpy`` module, the way a user's Blender does.

Used by the tests, ``scripts/monocle.py`` and ``scripts/demo.py``: point
``BLENDER_USER_RESOURCES`` at a private profile (before ``bpy`` is imported),
build the extension zip and install + enable it with Blender's own operator, once per
content (later runs on the same profile reuse the install).
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REPO = "user_default"
MODULE = f"bl_ext.{REPO}.monocle"
# In the profile: what the installed copy was built from (Blender version and source hash).
STAMP = "monocle-install.key"
LOCK = ".monocle-install.lock"


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


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (created if missing), waiting as long as it takes."""
    with open(lock_path, "a+b") as fh:
        if os.name == "nt":
            import msvcrt

            fh.seek(0)
            while True:
                try:
                    msvcrt.locking(fh.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:  # LK_LOCK gives up after ten one-second tries; keep waiting
                    continue
            try:
                yield
            finally:
                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _enable_installed(profile: Path) -> bool:
    """Enable the copy already in the profile; False where there is none or it does not enable."""
    import bpy

    if MODULE in bpy.context.preferences.addons:
        return True
    if not (profile / "extensions" / REPO / "monocle" / "blender_manifest.toml").is_file():
        return False
    try:
        bpy.ops.preferences.addon_enable(module=MODULE)
    except RuntimeError as ex:  # a damaged install: the caller installs afresh
        sys.stderr.write(f"monocle: the installed extension does not enable ({ex}); reinstalling\n")
        return False
    return MODULE in bpy.context.preferences.addons


def _install(profile: Path, dist_dir: Path | None) -> None:
    import bpy
    import build_extension

    with tempfile.TemporaryDirectory(prefix="dist-", dir=profile) as scratch:
        zips = build_extension.build(dist_dir or Path(scratch))
        wanted = build_extension.zip_name(build_extension.current_platform_tag())
        zips = [z for z in zips if z.name == wanted] or zips
        result = bpy.ops.extensions.package_install_files(filepath=str(zips[0]), repo=REPO, enable_on_install=True)
    if result != {"FINISHED"} or MODULE not in bpy.context.preferences.addons:
        raise RuntimeError(f"installing {zips[0]} did not enable {MODULE}")


def install_extension(dist_dir: Path | None = None) -> ModuleType:
    """Make the profile hold this tree's extension, enabled, and return its module.

    The install is keyed by a hash of what goes into the zip and the Blender version (see
    :data:`STAMP`): a profile that already holds it only enables it. An exclusive lock on the
    profile serialises check and install, so concurrent runs on one profile wait for the first
    install and then reuse it. The stamp is removed before and written (atomically) after an
    install, so an interrupted install is never reused. ``dist_dir`` keeps the built zip there.
    """
    sys.path.insert(0, str(ROOT / "tools"))
    import build_extension

    profile = Path(os.environ["BLENDER_USER_RESOURCES"])
    stamp = profile / STAMP
    with _exclusive(profile / LOCK):
        import bpy  # after the lock: Blender's start-up reads the profile's extensions and wheels

        key = f"{bpy.app.version_string}\n{build_extension.source_digest(build_extension.current_platform_tag())}"
        current = stamp.read_text(encoding="utf-8") if stamp.is_file() else None
        if current != key or not _enable_installed(profile):
            sys.stderr.write(f"monocle: installing the extension into {profile}\n")
            stamp.unlink(missing_ok=True)
            _install(profile, dist_dir)
            fd, tmp = tempfile.mkstemp(prefix=f".{STAMP}-", dir=profile)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(key)
            os.replace(tmp, stamp)
    return importlib.import_module(MODULE)


def installed_with_pool() -> tuple[ModuleType, Any, Any]:
    """The installed extension (see ``install_extension``), its warm-worker pool and its preferences,
    for the benchmarks that time clicks against a warm worker."""
    import bpy

    module = install_extension()
    pool = importlib.import_module(MODULE + ".bridge.warm").POOL
    return module, pool, bpy.context.preferences.addons[MODULE].preferences
