"""On-disk cache of worker results, keyed by image content plus inference settings.

Mesh settings never enter the key, so changing detail, depth strength, back or
template weight rebuilds from the cache without running the models again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

CACHE_VERSION = 1


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


class ResultCache:
    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    @property
    def results(self) -> Path:
        return self.root / "results"

    def lookup(self, key: str) -> Path | None:
        path = self.results / key / "result.json"
        return path if path.is_file() else None

    def scratch(self) -> Path:
        """A fresh folder for a worker to write into; :meth:`commit` moves it into place."""
        path = self.root / "tmp" / uuid.uuid4().hex
        path.mkdir(parents=True, exist_ok=True)
        return path

    def commit(self, key: str, scratch: Path) -> Path:
        final = self.results / key
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            os.replace(scratch, final)
            # result.json records paths relative to its folder, nothing to rewrite
        return final / "result.json"

    @staticmethod
    def discard(scratch: Path | None) -> None:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)

    def size_bytes(self) -> int:
        if not self.root.exists():
            return 0
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    def clear(self) -> None:
        for sub in ("results", "tmp"):
            shutil.rmtree(self.root / sub, ignore_errors=True)


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
