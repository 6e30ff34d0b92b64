"""On-disk cache of worker results, keyed by image content plus inference settings.

Mesh settings never enter the key, so changing detail, depth strength, back or
template weight rebuilds from the cache without running the models again.

An entry holds no input path: the same bytes under another name or folder hit the same
entry, so the photo's path and name always come from the caller's current input.
The cache keeps under a size cap by evicting the least recently used entries; an
entry's use is recorded in its ``result.json`` modification time (access times are
unreliable), so a lookup costs one ``stat`` and one ``utime``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..inference.protocol import DISK_FULL_ERRNOS
from .worker import WorkerRunError

CACHE_VERSION = 1
RESULT_FILE = "result.json"
# Entries used less than this long ago are never evicted: another build (in this process or
# another one sharing the folder) may still be reading them.
EVICT_GRACE_S = 60.0
# Scratch folders older than this are left over from a run that died; they are removed.
STALE_SCRATCH_S = 24 * 3600.0


def file_digest(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_key(image: str, inference: dict[str, Any]) -> str:
    """Key of one inference: the image bytes, every input file's bytes and the settings."""
    parts: dict[str, Any] = {"v": CACHE_VERSION, "image": file_digest(image)}
    for name, value in sorted(inference.items()):
        if name.endswith("_file") and value:
            parts[name] = file_digest(value)
        else:
            parts[name] = value
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def is_disk_full(exc: BaseException) -> bool:
    """Whether an error means the disk (or the user's quota) has no room left."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def disk_full_error(folder: str | os.PathLike) -> WorkerRunError:
    return WorkerRunError(
        "disk_full", f"The disk holding {str(folder)!r} is full; free some space or lower Monocle's cache limit."
    )


@dataclass(frozen=True)
class Entry:
    """One cached result: its key, bytes on disk and last use (seconds since the epoch)."""

    key: str
    size: int
    used: float


class ResultCache:
    """Results under ``root/results/<key>``; a worker writes into ``root/tmp`` first.

    ``max_bytes``: the cap that :meth:`commit` enforces on the results (0 or None: no cap).
    """

    def __init__(self, root: str | os.PathLike, max_bytes: int | None = None) -> None:
        self.root = Path(root)
        self.max_bytes = max(0, int(max_bytes or 0))

    @property
    def results(self) -> Path:
        return self.root / "results"

    def lookup(self, key: str) -> Path | None:
        """The entry's result.json, marked as just used; None when it is not cached."""
        path = self.results / key / RESULT_FILE
        if not path.is_file():
            return None
        try:
            os.utime(path)
        except OSError:
            pass  # a read-only cache still serves hits; its use order just goes stale
        return path

    def scratch(self) -> Path:
        """A fresh folder for a worker to write into; :meth:`commit` moves it into place."""
        path = self.root / "tmp" / uuid.uuid4().hex
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if is_disk_full(exc):
                raise disk_full_error(self.root) from None
            raise
        return path

    def commit(self, key: str, scratch: Path) -> Path:
        """Move a finished scratch folder into place (the input paths the worker recorded are
        dropped) and evict least recently used entries down to the cap, this one excepted."""
        final = self.results / key
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                shutil.rmtree(scratch, ignore_errors=True)
            else:
                _forget_inputs(scratch / RESULT_FILE)
                os.replace(scratch, final)
            os.utime(final / RESULT_FILE)
        except OSError as exc:
            if is_disk_full(exc):
                self.discard(scratch)
                raise disk_full_error(self.root) from None
            raise
        self.evict(keep=key)
        return final / RESULT_FILE

    @staticmethod
    def discard(scratch: Path | None) -> None:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)

    def entries(self) -> list[Entry]:
        """Every committed entry; one folder listing per entry, nothing deeper."""
        found = []
        try:
            folders = list(os.scandir(self.results))
        except FileNotFoundError:
            return []
        for folder in folders:
            if not folder.is_dir(follow_symlinks=False):
                continue
            size, used = 0, None
            try:
                for item in os.scandir(folder.path):
                    st = item.stat(follow_symlinks=False)
                    size += st.st_size
                    if item.name == RESULT_FILE:
                        used = st.st_mtime
            except OSError:
                continue  # removed while we looked
            found.append(Entry(folder.name, size, used if used is not None else 0.0))
        return found

    def evict(self, keep: str | None = None, grace_s: float = EVICT_GRACE_S) -> list[str]:
        """Remove least recently used entries until the results fit under ``max_bytes``;
        ``keep`` and entries used within ``grace_s`` seconds stay. Returns the removed keys."""
        self._remove_stale_scratch()
        if not self.max_bytes:
            return []
        entries = self.entries()
        total = sum(e.size for e in entries)
        now = time.time()
        removed = []
        for entry in sorted(entries, key=lambda e: e.used):
            if total <= self.max_bytes:
                break
            if entry.key == keep or now - entry.used < grace_s:
                continue
            if self._remove(entry.key):
                total -= entry.size
                removed.append(entry.key)
        return removed

    def _remove(self, key: str) -> bool:
        """Rename the entry out of ``results`` first, so a lookup sees it whole or not at all."""
        trash = self.root / "tmp" / f"evict-{uuid.uuid4().hex}"
        try:
            trash.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.results / key, trash)
        except OSError:
            return False
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def _remove_stale_scratch(self) -> None:
        cutoff = time.time() - STALE_SCRATCH_S
        try:
            folders = list(os.scandir(self.root / "tmp"))
        except FileNotFoundError:
            return
        for folder in folders:
            try:
                if folder.is_dir(follow_symlinks=False) and folder.stat(follow_symlinks=False).st_mtime < cutoff:
                    shutil.rmtree(folder.path, ignore_errors=True)
            except OSError:
                continue

    def size_bytes(self) -> int:
        """Bytes the results take (scratch folders of running workers not counted)."""
        return sum(e.size for e in self.entries())

    def clear(self) -> None:
        for sub in ("results", "tmp"):
            shutil.rmtree(self.root / sub, ignore_errors=True)


def _forget_inputs(path: Path) -> None:
    """Drop the input paths from a result.json: the entry serves any file with the same bytes."""
    try:
        data = json.loads(path.read_text())
        data["image"]["path"] = None
        settings = data["engine"]["settings"]
        for name in ("mask_file", "depth_file"):
            if settings.get(name):
                settings[name] = None
    except (ValueError, KeyError, TypeError, AttributeError):
        return  # a malformed result is reported when it is read; there is nothing to drop
    tmp = path.with_name(RESULT_FILE + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
