"""Build the Monocle extension zip(s), with their Python wheels, using the extension CLI in bpy.

The sources (in a git checkout the tracked files only, see :func:`source_files`; minus what the
manifest's ``[build] paths_exclude_pattern`` excludes), the wheels of
the target platforms (see ``tools/wheels.py``) and a generated manifest that lists ``wheels`` and
``platforms`` are staged in a private folder under ``build/``; ``blender_ext.py build
--split-platforms`` then writes one ``monocle-<version>-<os>_<arch>.zip`` per platform, carrying
only that platform's wheels, and ``blender_ext.py validate`` checks each zip.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import wheels

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = "blender_manifest.toml"
BUILD_DIR = ROOT / "build"


def blender_ext_cli() -> Path:
    """Path of ``blender_ext.py`` (Blender's extension CLI) inside the installed bpy wheel."""
    import importlib.util

    spec = importlib.util.find_spec("bpy")
    if spec is None or spec.origin is None:
        raise SystemExit("bpy is not installed in this interpreter; run `make venv` first")
    base = Path(spec.origin).parent
    matches = sorted(base.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not matches:
        raise SystemExit(f"blender_ext.py not found under {base}")
    return matches[-1]


def _manifest() -> dict:
    return tomllib.loads((ROOT / MANIFEST).read_text(encoding="utf-8"))


def manifest_version() -> str:
    """The extension version declared in the source manifest."""
    return _manifest()["version"]


def current_platform_tag() -> str:
    """Blender's platform name for this machine (linux-x64, windows-x64, macos-arm64, macos-x64)."""
    import platform

    machine = platform.machine().lower()
    arch = "arm64" if machine in ("arm64", "aarch64") else "x64"
    system = {"darwin": "macos", "win32": "windows"}.get(sys.platform, "linux")
    return f"{system}-{arch}"


def zip_name(platform: str | None = None) -> str:
    """File name the CLI gives the zip of ``platform`` (None: a build without platforms)."""
    suffix = f"-{platform.replace('-', '_')}" if platform else ""
    return f"{_manifest()['id']}-{manifest_version()}{suffix}.zip"


# Written by the build itself, never taken from the sources.
_BUILD_OWNED = ("build/", "wheels/", MANIFEST)


@functools.cache
def _exclude_matcher():
    """The manifest's ``paths_exclude_pattern`` as the CLI itself matches it (gitignore rules)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_blender_ext_cli", blender_ext_cli())
    assert spec is not None and spec.loader is not None
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    patterns = _manifest().get("build", {}).get("paths_exclude_pattern", [])
    return cli.PathPatternMatch([*patterns, *(f"/{name}" for name in _BUILD_OWNED)])


def _git_files(root: Path, *extra: str) -> list[str] | None:
    """``git ls-files`` of ``root`` (None where ``root`` is not the top of a git checkout)."""
    if not (root / ".git").exists():
        return None
    try:
        proc = subprocess.run(["git", "-C", str(root), "ls-files", "-z", *extra], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError) as ex:
        detail = ex.stderr.decode(errors="replace").strip() if isinstance(ex, subprocess.CalledProcessError) else ex
        print(f"build_extension: git cannot list {root} ({detail}); packing every file", file=sys.stderr)
        return None
    return [name for name in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if name]


def _walk_files(root: Path, matcher) -> list[str]:
    """Every file under ``root`` outside excluded folders, for a source tree without git (a tarball)."""
    found = []
    for folder, dirs, files in os.walk(root):
        rel = Path(folder).relative_to(root)
        dirs[:] = [d for d in dirs if not matcher.test_path(f"{(rel / d).as_posix()}/")]
        found += [(rel / name).as_posix() for name in files]
    return found


def _shipped(root: Path, names: Sequence[str], matcher) -> list[str]:
    """The regular files among ``names`` that the exclude patterns let through (the CLI skips links)."""
    return sorted(n for n in names
                  if not matcher.test_path(n) and (root / n).is_file() and not (root / n).is_symlink())


def source_files() -> list[str]:
    """Root-relative paths of the source files that go into the zip, sorted.

    In a git checkout: the files git tracks, with their working-tree content (so tests see
    uncommitted edits), never untracked ones (a scratch folder must not ship). Without git:
    every file, as the CLI would walk it. Either way minus ``paths_exclude_pattern``.
    """
    matcher = _exclude_matcher()
    names = _git_files(ROOT)
    return _shipped(ROOT, _walk_files(ROOT, matcher) if names is None else names, matcher)


def untracked_sources() -> list[str]:
    """Files git does not track (and does not ignore) that would ship if they were added."""
    names = _git_files(ROOT, "--others", "--exclude-standard")
    return _shipped(ROOT, names or [], _exclude_matcher())


def source_digest(platform: str | None) -> str:
    """A hash of everything a build of ``platform`` depends on: sources, manifest, build tools.

    The wheels are named by the pins in ``tools/wheels.py``, which is hashed with this file.
    """
    import hashlib

    digest = hashlib.sha256(f"{platform}\0".encode())
    names = ["tools/build_extension.py", "tools/wheels.py", MANIFEST, *source_files()]
    for name in names:
        data = (ROOT / name).read_bytes()
        digest.update(f"{name}\0{len(data)}\0".encode("utf-8", "surrogateescape"))
        digest.update(data)
    return digest.hexdigest()


def _stage_sources(stage: Path) -> None:
    untracked = untracked_sources()
    if untracked:
        shown = ", ".join(untracked[:10]) + (f" and {len(untracked) - 10} more" if len(untracked) > 10 else "")
        print(f"build_extension: not packing {len(untracked)} untracked file(s) (git add them to ship): {shown}",
              file=sys.stderr)
    for name in source_files():
        dst = stage / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dst)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _toml_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


def write_manifest(stage: Path, *, platforms: Sequence[str], wheel_paths: Sequence[str]) -> Path:
    """Write the source manifest into ``stage`` with top-level ``platforms`` and ``wheels`` added."""
    text = (ROOT / MANIFEST).read_text(encoding="utf-8")
    source = tomllib.loads(text)
    for key in ("platforms", "wheels"):
        if key in source:
            raise SystemExit(f"{MANIFEST} must not set `{key}`: the build generates it")
    lines = text.splitlines()
    first_table = next((i for i, line in enumerate(lines) if line.lstrip().startswith("[")), len(lines))
    generated = ["# Generated by tools/build_extension.py."]
    if platforms:
        generated.append(f"platforms = {_toml_list(platforms)}")
    if wheel_paths:
        generated.append(f"wheels = {_toml_list(wheel_paths)}")
    lines[first_table:first_table] = [*generated, ""]
    out = stage / MANIFEST
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = tomllib.loads(out.read_text(encoding="utf-8"))
    assert list(result.get("wheels", [])) == list(wheel_paths), "generated manifest lost its wheels"
    return out


def stage(platforms: Sequence[str], *, with_wheels: bool = True, offline: bool = False) -> Path:
    """Stage sources, wheels and the generated manifest in a fresh folder under ``build/``.

    A private folder per call, so concurrent builds from one working tree do not collide.
    """
    BUILD_DIR.mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="stage-", dir=BUILD_DIR))
    _stage_sources(folder)
    wheel_paths: list[str] = []
    if with_wheels:
        (folder / "wheels").mkdir()
        for platform in platforms:
            files = wheels.fetch(platform, offline=offline)
            problems = wheels.check_requirements(files, platform)
            if problems:
                raise SystemExit(f"bundled wheels for {platform} are inconsistent:\n" + "\n".join(problems))
            for src in files:
                dst = folder / "wheels" / src.name
                if not dst.exists():  # pure-Python wheels are shared by every platform
                    _link_or_copy(src, dst)
                    wheel_paths.append(f"./wheels/{src.name}")
    write_manifest(folder, platforms=platforms, wheel_paths=sorted(wheel_paths))
    return folder


def build(out_dir: Path, *, split_platforms: bool = False, platforms: Sequence[str] | None = None,
          with_wheels: bool = True, offline: bool = False) -> list[Path]:
    """Build into ``out_dir`` and validate; returns the zip paths, one per platform.

    Default: only this machine's platform, with its wheels (what a user installs; fast once the
    wheels are cached). ``split_platforms``: every platform in ``wheels.PLATFORMS``.
    ``platforms`` overrides both. Without wheels and platforms, one platform-independent zip.
    """
    if platforms is None:
        platforms = wheels.PLATFORMS if split_platforms else (current_platform_tag(),)
    platforms = list(platforms) if (with_wheels or split_platforms) else []
    cli = blender_ext_cli()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    folder = stage(platforms, with_wheels=with_wheels, offline=offline)
    try:
        cmd = [sys.executable, str(cli), "build", "--source-dir", str(folder), "--output-dir", str(out_dir)]
        if platforms:
            cmd.append("--split-platforms")
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    zips = [out_dir / zip_name(p) for p in platforms] if platforms else [out_dir / zip_name()]
    for z in zips:
        subprocess.run([sys.executable, str(cli), "validate", str(z)], check=True, stdout=subprocess.DEVNULL)
    return zips


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "dist"), help="output folder (default: dist/)")
    parser.add_argument("--split-platforms", action="store_true",
                        help=f"one zip per platform: {', '.join(wheels.PLATFORMS)} (default: this machine's only)")
    parser.add_argument("--platform", action="append", choices=wheels.PLATFORMS,
                        help="build for this platform (repeatable; overrides --split-platforms)")
    parser.add_argument("--no-wheels", action="store_true", help="sources only (the engines' imports will fail)")
    parser.add_argument("--offline", action="store_true", help="use cached wheels only, never download")
    args = parser.parse_args()
    zips = build(Path(args.out), split_platforms=args.split_platforms, platforms=args.platform,
                 with_wheels=not args.no_wheels, offline=args.offline)
    for z in zips:
        print(f"{z}  {z.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
