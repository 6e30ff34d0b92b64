"""Which photos a headless run reconstructs, and where each one's outputs go.

Bpy-free. An input's output path is a function of that input and the argument that
named it, never of the other inputs, so names are stable when a folder grows and a
re-run finds each input's own outputs:

- a folder: every image below it, mirrored under OUTDIR (``photos/a/cat.png`` ->
  ``OUTDIR/a/cat.<format>``);
- a glob: every image it matches, mirrored from the glob's fixed leading folder;
- a file: ``OUTDIR/<name>.<format>``.

Two inputs that would write the same output are a usage error, not a silent rename.
Symbolic links to folders are never followed below an argument (no loops, no escapes).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..inference.imageio import SUPPORTED_SUFFIXES  # the worker decodes these

TMP_PREFIX = ".monocle-tmp-"
TEXTURE_DIR_SUFFIX = "_textures"  # OUTDIR/<rel>/<stem>_textures/ holds an OBJ's or USD's image files
SIDE_FILE_FORMATS = ("obj", "usd")  # the formats that write files beside their main file
_MAGIC = re.compile(r"[*?\[]")
SIDECAR_SUFFIX = ".monocle.json"  # segment corrections for the photo beside it (see inference/prompts.py)


class InputError(ValueError):
    """The inputs cannot be mapped to outputs (two inputs, one output name)."""


@dataclass(frozen=True)
class Source:
    """One input photo: where it is, how the user named it, and its output's relative path (no suffix)."""

    path: Path  # absolute
    given: str  # the argument that found it, as typed
    rel: PurePosixPath  # output path below OUTDIR, without the format's suffix

    def output(self, outdir: Path, fmt: str) -> Path:
        return outdir.joinpath(*self.rel.parts[:-1], f"{self.rel.name}.{fmt}")


def sidecar(photo: Path) -> Path | None:
    """The corrections file beside a photo: ``cat.png.monocle.json``, else ``cat.monocle.json``."""
    for candidate in (photo.with_name(photo.name + SIDECAR_SUFFIX), photo.with_name(photo.stem + SIDECAR_SUFFIX)):
        if candidate.is_file():
            return candidate
    return None


def display(path: str | os.PathLike) -> str:
    """A path as printable text, whatever bytes its name holds (undecodable bytes become U+FFFD)."""
    return os.fsencode(path).decode("utf-8", "replace")


def safe_stem(stem: str) -> str:
    """A file stem fit for an output name on any system and in any exporter.

    Undecodable bytes become ``%XX``; characters Windows forbids (a backslash among them) and
    control characters become ``_``; leading dots (hidden files, ``..``) and stray spaces go.
    """
    raw = os.fsencode(stem)
    text = "".join(chr(b) if b < 0x80 else f"%{b:02X}" for b in raw) if _undecodable(raw) else stem
    clean = re.sub(r'[\x00-\x1f<>:"/\\|?*]', "_", text).strip().lstrip(".").strip()
    return clean or "image"


def _undecodable(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _is_texture_dir(folder: Path) -> bool:
    """A ``<stem>_textures`` folder beside its OBJ or USD output: Monocle's own output, not input."""
    name = folder.name
    if not name.endswith(TEXTURE_DIR_SUFFIX) or len(name) == len(TEXTURE_DIR_SUFFIX):
        return False
    stem = name[: -len(TEXTURE_DIR_SUFFIX)]
    return any((folder.parent / f"{stem}.{fmt}").exists() for fmt in SIDE_FILE_FORMATS)


def walk_images(root: Path) -> list[Path]:
    """Image files below ``root``, sorted, never following links to folders or entering Monocle's outputs."""
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(TMP_PREFIX) and not _is_texture_dir(here / d))
        found += [here / f for f in files if Path(f).suffix.lower() in SUPPORTED_SUFFIXES and (here / f).is_file()]
    return sorted(found)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """``pattern`` (relative, ``/``-separated; ``**`` spans folders, ``*`` and ``?`` do not) as a regex."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (end := pattern.find("]", i + 2)) > 0:
            body = pattern[i + 1:end]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _split_glob(pattern: str, cwd: Path) -> tuple[Path, str]:
    """The fixed leading folder of a glob and the rest, ``/``-separated."""
    parts = Path(pattern).parts
    fixed: list[str] = []
    for n, part in enumerate(parts):
        if _MAGIC.search(part):
            base = cwd.joinpath(*fixed) if fixed else cwd
            return Path(os.path.abspath(base)), "/".join(parts[n:])
        fixed.append(part)
    return Path(os.path.abspath(cwd.joinpath(*fixed))), ""


def _expand(arg: str, cwd: Path) -> list[tuple[Path, PurePosixPath]]:
    """(absolute path, output rel without suffix) of every input one argument names."""
    path = Path(os.path.abspath(cwd / arg))
    if path.is_dir():
        return [(p, PurePosixPath(*p.relative_to(path).parts)) for p in walk_images(path)]
    if os.path.lexists(path) or not _MAGIC.search(arg):
        return [(path, PurePosixPath(path.name))]  # named explicitly: even a bad or missing file is reported
    base, rest = _split_glob(arg, cwd)
    if not rest or not base.is_dir():
        return []
    regex = glob_regex(rest)
    hits = []
    for p in walk_images(base):
        rel = PurePosixPath(*p.relative_to(base).parts)
        if regex.match(str(rel)):
            hits.append((p, rel))
    return hits


def collect(args: list[str], cwd: str | os.PathLike | None = None) -> list[Source]:
    """Every input the arguments name, sorted by path, each once, with collision-free output paths.

    Raises InputError when two different inputs would write the same output name.
    """
    base = Path(os.path.abspath(cwd or os.getcwd()))
    seen: dict[str, Source] = {}
    for arg in args:
        for path, rel in _expand(arg, base):
            key = os.path.realpath(path)
            if key not in seen:
                stem = PurePosixPath(rel.name).stem if PurePosixPath(rel.name).suffix else rel.name
                seen[key] = Source(path, arg, PurePosixPath(*map(safe_stem, [*rel.parts[:-1], stem])))
    sources = sorted(seen.values(), key=lambda s: str(s.path))
    owner: dict[str, Source] = {}
    for src in sources:
        key = str(src.rel).casefold()  # case-insensitive file systems merge A.png and a.png
        if key in owner:
            other = owner[key]
            raise InputError(
                f"{display(other.path)!r} and {display(src.path)!r} would both be written as "
                f"'{display(src.rel)}.*'; pass their folder instead, so the outputs mirror the folders"
            )
        owner[key] = src
    return sources


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` (1 <= K <= N) as (K, N); raises ValueError with a plain sentence."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m:
        raise ValueError(f"--shard must be K/N, for example 2/8; got {text!r}")
    k, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 1 <= k <= n:
        raise ValueError(f"--shard {text}: K must be between 1 and N, and N at least 1")
    return k, n


def shard(sources: list[Source], k: int, n: int) -> list[Source]:
    """The K-th of N disjoint slices that together cover ``sources`` (in their sorted order)."""
    return [s for i, s in enumerate(sources) if i % n == k - 1]
