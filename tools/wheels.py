"""The Python wheels bundled with the extension: pins, per-platform download cache, checks.

Blender 4.2-4.5 ship CPython 3.11 and numpy 1.26, so every wheel here is a cp311 (or abi3 /
pure-Python) build whose requirements hold with numpy 1.26.4; numpy itself is never bundled
(it would shadow Blender's). Downloads land in ``.cache/wheels/<blender platform>/`` and are
reused as they are, so a second build never touches the network.
"""

from __future__ import annotations

import argparse
import email.message
import email.parser
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.requirements import Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags, mac_platforms
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = ROOT / ".cache" / "wheels"

PYTHON_VERSION = (3, 11)

# Everything the offline engine imports beyond numpy, with the full dependency closure of
# scikit-image and opencv-python-headless. `check_requirements` proves the set is closed.
# opencv-python-headless stays on 4.11: 4.12+ requires numpy>=2.
PINS: dict[str, str] = {
    "opencv-python-headless": "4.11.0.86",
    "scikit-image": "0.26.0",
    "scipy": "1.17.1",
    "pillow": "13.0.0",
    "imageio": "2.38.1",
    "tifffile": "2026.3.3",
    "networkx": "3.6.1",
    "lazy-loader": "0.6",
    "packaging": "26.3",
}

# The numpy Blender bundles (4.2-4.5): provided by the host, used only by tests that run the
# worker on bundled wheels outside Blender.
BLENDER_NUMPY = "1.26.4"

# Blender platform -> wheel platform tags pip may pick, best first. Linux: Blender 4.2+ needs
# glibc 2.28. macOS: opencv 4.11 wheels need macOS 13; pip also accepts older macOS builds.
PLATFORM_TAGS: dict[str, tuple[str, ...]] = {
    "linux-x64": (*(f"manylinux_2_{minor}_x86_64" for minor in range(28, 16, -1)), "manylinux2014_x86_64"),
    "windows-x64": ("win_amd64",),
    "macos-arm64": ("macosx_13_0_arm64",),
    "macos-x64": ("macosx_13_0_x86_64",),
}
PLATFORMS: tuple[str, ...] = tuple(PLATFORM_TAGS)

# Values of PEP 508 environment markers on each platform, for evaluating Requires-Dist.
_MARKER_ENV: dict[str, dict[str, str]] = {
    "linux-x64": {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
                  "os_name": "posix"},
    "windows-x64": {"sys_platform": "win32", "platform_system": "Windows", "platform_machine": "AMD64",
                    "os_name": "nt"},
    "macos-arm64": {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64",
                    "os_name": "posix"},
    "macos-x64": {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "x86_64",
                  "os_name": "posix"},
}


class WheelError(RuntimeError):
    """A wheel is missing, cannot be downloaded, or does not fit the pinned set."""


def _check_platform(platform: str) -> None:
    if platform not in PLATFORM_TAGS:
        raise WheelError(f"unknown platform {platform!r}; expected one of {', '.join(PLATFORMS)}")


def supported_tags(platform: str) -> frozenset[Tag]:
    """Wheel tags Blender's CPython 3.11 accepts on ``platform``."""
    _check_platform(platform)
    plats: list[str] = []
    for tag in PLATFORM_TAGS[platform]:
        if tag.startswith("macosx_"):
            _, major, minor, arch = tag.split("_", 3)
            plats.extend(mac_platforms((int(major), int(minor)), arch))
        else:
            plats.append(tag)
    tags = set(cpython_tags(PYTHON_VERSION, abis=[f"cp{PYTHON_VERSION[0]}{PYTHON_VERSION[1]}"], platforms=plats))
    tags.update(compatible_tags(PYTHON_VERSION, platforms=plats))
    return frozenset(tags)


def cache_dir(platform: str, cache: Path = CACHE_DIR) -> Path:
    """Folder holding the downloaded wheels of one Blender platform."""
    _check_platform(platform)
    return cache / platform


def find_cached(name: str, version: str, platform: str, cache: Path = CACHE_DIR) -> Path | None:
    """The cached wheel of ``name==version`` usable on ``platform``, or None."""
    folder = cache_dir(platform, cache)
    if not folder.is_dir():
        return None
    want_name, want_version, ok_tags = canonicalize_name(name), Version(version), supported_tags(platform)
    for path in sorted(folder.glob("*.whl")):
        try:
            wname, wversion, _, wtags = parse_wheel_filename(path.name)
        except ValueError:
            continue
        if wname == want_name and wversion == want_version and wtags & ok_tags:
            return path
    return None


def _download(pins: Mapping[str, str], platform: str, dest: Path) -> None:
    """``pip download`` the pinned wheels for ``platform`` into ``dest`` (atomically per file)."""
    dest.mkdir(parents=True, exist_ok=True)
    major, minor = PYTHON_VERSION
    with tempfile.TemporaryDirectory(prefix=".download-", dir=dest) as tmp:
        cmd = [
            sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet",
            "--only-binary=:all:", "--no-deps",
            "--python-version", f"{major}.{minor}", "--implementation", "cp", "--abi", f"cp{major}{minor}",
            *(arg for tag in PLATFORM_TAGS[platform] for arg in ("--platform", tag)),
            "--dest", tmp,
            *(f"{name}=={version}" for name, version in pins.items()),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise WheelError(f"pip download failed for {platform}:\n{proc.stderr.strip()}")
        for path in Path(tmp).glob("*.whl"):
            os.replace(path, dest / path.name)


def fetch(platform: str, pins: Mapping[str, str] | None = None, *, cache: Path = CACHE_DIR,
          offline: bool = False) -> list[Path]:
    """Paths of the wheels of ``pins`` (default: ``PINS``) for ``platform``, downloading missing ones.

    With ``offline`` a missing wheel is an error instead of a download.
    """
    _check_platform(platform)
    pins = dict(PINS if pins is None else pins)
    missing = {name: version for name, version in pins.items() if find_cached(name, version, platform, cache) is None}
    if missing:
        if offline:
            raise WheelError(f"not cached for {platform}: " + ", ".join(f"{n}=={v}" for n, v in missing.items()))
        _download(missing, platform, cache_dir(platform, cache))
    paths = []
    for name, version in pins.items():
        path = find_cached(name, version, platform, cache)
        if path is None:
            raise WheelError(f"pip did not provide a {platform} wheel of {name}=={version}")
        paths.append(path)
    return paths


def wheel_metadata(path: Path) -> email.message.Message:
    """The METADATA of a wheel file."""
    with zipfile.ZipFile(path) as zf:
        name = next((n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")), None)
        if name is None:
            raise WheelError(f"{path.name} has no .dist-info/METADATA")
        return email.parser.BytesParser().parsebytes(zf.read(name))


def check_requirements(wheels: Iterable[Path], platform: str,
                       provided: Mapping[str, str] | None = None) -> list[str]:
    """Problems with the set ``wheels`` on ``platform``: unmet Requires-Dist or Requires-Python.

    ``provided`` are packages the host supplies (default: Blender's numpy). An empty list
    means the wheels plus the host packages form a closed, consistent set.
    """
    _check_platform(platform)
    have = {canonicalize_name(n): Version(v) for n, v in (provided or {"numpy": BLENDER_NUMPY}).items()}
    metas = {}
    for path in wheels:
        name, version, _, _ = parse_wheel_filename(path.name)
        have[name] = version
        metas[path.name] = wheel_metadata(path)
    env = {**_MARKER_ENV[platform], "python_version": "{}.{}".format(*PYTHON_VERSION),
           "python_full_version": "{}.{}.9".format(*PYTHON_VERSION), "implementation_name": "cpython",
           "platform_python_implementation": "CPython", "extra": ""}
    python = Version(env["python_full_version"])
    problems = []
    for filename, meta in metas.items():
        requires_python = meta.get("Requires-Python")
        if requires_python and python not in Requirement(f"python{requires_python}").specifier:
            problems.append(f"{filename}: needs Python {requires_python}")
        for line in meta.get_all("Requires-Dist") or []:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            got = have.get(canonicalize_name(req.name))
            if got is None:
                problems.append(f"{filename}: requires {req}, which is not bundled")
            elif not req.specifier.contains(got, prereleases=True):
                problems.append(f"{filename}: requires {req}, bundled {got}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--platform", action="append", choices=PLATFORMS,
                        help="Blender platform (repeatable; default: all)")
    parser.add_argument("--offline", action="store_true", help="fail instead of downloading")
    args = parser.parse_args()
    status = 0
    for platform in args.platform or PLATFORMS:
        paths = fetch(platform, offline=args.offline)
        size = sum(p.stat().st_size for p in paths)
        print(f"{platform}: {len(paths)} wheels, {size / 1e6:.1f} MB in {cache_dir(platform)}")
        for problem in check_requirements(paths, platform):
            print(f"  {problem}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
