"""Strict type check (mypy) of the layers that never import Blender.

The repository root is the extension package, and its folder may have any name (a clone, a
worktree), so mypy is pointed at a link named ``monocle`` to it: the relative imports between
``geometry``, ``templates``, ``inference`` and ``bridge`` then resolve as they do in Blender.
Settings live in pyproject.toml's ``[tool.mypy]``.

    .venv/bin/python tools/typecheck.py      (make typecheck; part of make test)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BPY_FREE = ("geometry", "templates", "inference", "bridge", "batch/inputs.py", "batch/files.py")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="monocle-typecheck-") as tmp:
        link = Path(tmp) / "monocle"
        link.symlink_to(ROOT, target_is_directory=True)
        cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
               "--cache-dir", str(ROOT / ".mypy_cache"), *(f"monocle/{p}" for p in BPY_FREE)]
        return subprocess.call(cmd, cwd=tmp)


if __name__ == "__main__":
    sys.exit(main())
