"""Build the Monocle extension zip(s) with the extension CLI that ships inside bpy.

Stages the extension sources (minus what the manifest excludes) into
``build/stage``, then runs ``blender_ext.py build`` and ``validate``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def blender_ext_cli() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("bpy")
    if spec is None or spec.origin is None:
        raise SystemExit("bpy is not installed in this interpreter; run `make venv` first")
    base = Path(spec.origin).parent
    matches = sorted(base.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not matches:
        raise SystemExit(f"blender_ext.py not found under {base}")
    return matches[-1]


def manifest_version() -> str:
    import tomllib

    return tomllib.loads((ROOT / "blender_manifest.toml").read_text())["version"]


def build(out_dir: Path, *, split_platforms: bool = False) -> list[Path]:
    """Build into ``out_dir`` and validate; returns the zip paths."""
    cli = blender_ext_cli()
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(cli), "build", "--source-dir", str(ROOT), "--output-dir", str(out_dir)]
    if split_platforms:
        cmd.append("--split-platforms")
    before = set(out_dir.glob("monocle-*.zip"))
    subprocess.run(cmd, check=True)
    zips = sorted(p for p in out_dir.glob(f"monocle-{manifest_version()}*.zip") if p not in before or True)
    for z in zips:
        subprocess.run([sys.executable, str(cli), "validate", str(z)], check=True)
    return zips


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "dist"))
    parser.add_argument("--split-platforms", action="store_true")
    args = parser.parse_args()
    for z in build(Path(args.out), split_platforms=args.split_platforms):
        print(z)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def current_platform_tag() -> str:
    """Blender's platform name for this machine (linux-x64, windows-x64, macos-arm64, macos-x64)."""
    import platform

    machine = platform.machine().lower()
    arch = "arm64" if machine in ("arm64", "aarch64") else "x64"
    system = {"darwin": "macos", "win32": "windows"}.get(sys.platform, "linux")
    return f"{system}-{arch}"
