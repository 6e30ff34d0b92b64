"""Writing a headless run's outputs safely into a folder other runs and other machines share.

Bpy-free. The rules:

- every file appears whole or not at all: it is written under a temporary name in its own
  folder (made with exclusive creation, never a fixed name) and renamed into place;
- nothing is written through a symbolic link the run did not make: a linked folder on the
  way to an output fails that output;
- temporary folders carry the host and process that made them, and a run removes only its
  own host's leftovers whose process is gone (or that are older than a day): another farm
  node's export in progress is never touched.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path

from ..inference.process import pid_alive
from ..inference.protocol import DISK_FULL_ERRNOS
from .inputs import TEXTURE_DIR_SUFFIX, TMP_PREFIX

STALE_AFTER_S = 24 * 3600.0  # a same-host temp folder this old is stale even if its pid was reused
# an exporter stopped by the file-size limit (EFBIG) reads the same to the user as a full disk
FULL_ERRNOS = DISK_FULL_ERRNOS | {errno.EFBIG}


class OutputError(RuntimeError):
    """An output could not be written: a stable code and one plain sentence."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def host_id() -> str:
    """This machine's name as it appears in temporary folder names ([A-Za-z0-9-] only)."""
    return re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname())[:40].strip("-") or "host"


def make_temp_dir(parent: Path) -> Path:
    """A new, empty temporary folder in ``parent`` named after this host and process."""
    path = parent / f"{TMP_PREFIX}{host_id()}_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    path.mkdir()  # exclusive: fails if it exists
    return path


def remove_stale_temp(folder: Path, now: float | None = None) -> list[Path]:
    """Delete this host's temp folders in ``folder`` whose process is gone or that are a day old; returns them."""
    now = time.time() if now is None else now
    me, removed = host_id(), list[Path]()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(TMP_PREFIX) or not entry.is_dir(follow_symlinks=False):
            continue
        parts = entry.name[len(TMP_PREFIX):].rsplit("_", 2)
        if len(parts) != 3 or parts[0] != me or not parts[1].isdigit():
            continue  # another host's (or not ours at all): never touched
        pid = int(parts[1])
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        # where a pid cannot be asked (Windows), only the age tells
        if pid != os.getpid() and (pid_alive(pid) is False or age > STALE_AFTER_S):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed


def is_disk_full(exc: BaseException) -> bool:
    """True for an error that means the disk (or the user's quota) is full."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
            return True
        if "No space left on device" in str(exc) or "Disk quota exceeded" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def disk_full_error(where: Path) -> OutputError:
    return OutputError("disk_full", f"The disk holding {str(where)!r} is full; free some space and run again.")


def check_no_links(root: Path, target: Path) -> None:
    """Raise OutputError if any existing folder from ``root`` (exclusive) down to ``target``'s folder is a link."""
    rel = target.parent.relative_to(root)
    here = root
    for part in rel.parts:
        here = here / part
        if here.is_symlink():
            raise OutputError("output_unsafe", f"{str(here)!r} is a link; Monocle writes nothing through links "
                                               "it did not make.")
        if here.exists() and not here.is_dir():
            raise OutputError("output_unwritable", f"{str(here)!r} is a file where Monocle needs a folder.")


def make_dirs(root: Path, folder: Path) -> None:
    """Create ``folder`` below ``root`` one level at a time, refusing links on the way."""
    check_no_links(root, folder / "x")
    folder.mkdir(parents=True, exist_ok=True)
    check_no_links(root, folder / "x")  # a link swapped in meanwhile


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all, through an exclusively created temp file beside it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # replaces a link at ``path`` itself, never its target
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def check_writable_file(path: Path) -> None:
    """Raise OutputError now if ``path`` cannot be written later (missing rights, a folder there, ...)."""
    if path.is_dir():
        raise OutputError("report_unwritable", f"The report path {str(path)!r} is a folder.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise OutputError("report_unwritable",
                          f"Cannot write the report {str(path)!r} ({exc.strerror or exc}).") from None


def publish(tmp_dir: Path, root: Path, final: Path) -> list[Path]:
    """Move an export (``tmp_dir`` holds ``final.name`` and its side files) into ``final``'s folder.

    Side files go first and the main file last, so a main file on disk means a complete
    output. Returns every path written; on failure, removes what it moved and raises.
    """
    dest_dir = final.parent
    moved: list[Path] = []
    try:
        for f in sorted(tmp_dir.rglob("*")):
            if f.is_file() and f.parent == tmp_dir and f.name == final.name:
                continue
            if f.is_file():
                dest = dest_dir / f.relative_to(tmp_dir)
                make_dirs(root, dest.parent)
                os.replace(f, dest)
                moved.append(dest)
        check_no_links(root, final)
        os.replace(tmp_dir / final.name, final)
        moved.append(final)
    except BaseException:
        remove_files(moved)
        raise
    return moved


def remove_files(paths: list[Path]) -> None:
    """Remove files this run wrote (and texture folders they leave empty), ignoring what is already gone."""
    for p in reversed(paths):
        try:
            if p.is_symlink() or p.is_file():
                p.unlink()
        except OSError:
            pass
    for d in sorted({p.parent for p in paths}, key=lambda d: -len(d.parts)):
        if not d.name.endswith(TEXTURE_DIR_SUFFIX):
            continue  # output folders stay, even empty: the user or the run's other items own them
        try:
            d.rmdir()  # only if empty
        except OSError:
            pass
