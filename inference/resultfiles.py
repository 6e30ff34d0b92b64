"""The worker's result files: masks, label maps and JSON, each written whole or not at all,
a failed write reported as ``disk_full`` or ``output_unwritable``."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np

from .protocol import DISK_FULL, DISK_FULL_ERRNOS, WorkerError


def write_mask(out: Path, name: str, mask: np.ndarray) -> None:
    """A bool mask as a one-bit PNG ``out / name``: a 12 MP one decodes in a third of the time
    an 8-bit one takes."""
    import cv2

    with writing(out, name, mask.size // 8):
        ok, png = cv2.imencode(".png", mask.astype(np.uint8) * 255, [cv2.IMWRITE_PNG_BILEVEL, 1])
        if not ok:
            raise OSError(f"OpenCV could not encode {name}")
        # written by Python, not cv2.imwrite: OpenCV cannot open non-ASCII paths on Windows
        # and crashes on undecodable ones elsewhere; a new file, never into a hard link's
        tmp = out / (name + ".tmp")
        tmp.write_bytes(png.tobytes())
        os.replace(tmp, out / name)


def write_label_map(out: Path, name: str, values: np.ndarray, size: tuple[int, int]) -> None:
    """A small-integer map at input resolution as an 8-bit PNG (nearest neighbour: values are labels)."""
    import cv2

    if values.shape != (size[1], size[0]):
        values = cv2.resize(values, size, interpolation=cv2.INTER_NEAREST)
    with writing(out, name, values.size):
        ok, png = cv2.imencode(".png", values.astype(np.uint8))
        if not ok:
            raise OSError(f"OpenCV could not encode {name}")
        (out / name).write_bytes(png.tobytes())


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``path`` whole or not at all."""
    tmp = path.with_name(path.name + ".tmp")
    with writing(path.parent, tmp.name, 1 << 16):
        tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


@contextmanager
def writing(out: Path, name: str, needed: int) -> Iterator[None]:
    """Turn a failed write of ``out / name`` (about ``needed`` bytes) into a WorkerError:
    ``disk_full`` when the disk has no room for it, else ``output_unwritable``. The partial
    file is removed."""
    try:
        yield
    except OSError as exc:
        with suppress(OSError):
            (out / name).unlink(missing_ok=True)
        if _disk_full(exc, out, needed):
            raise WorkerError(
                DISK_FULL, f"The disk holding {str(out)!r} is full; free some space and run again."
            ) from None
        reason = f" ({exc.strerror})" if exc.strerror else ""
        raise WorkerError("output_unwritable", f"Could not write {name} into {str(out)!r}{reason}.") from None


def _disk_full(exc: OSError, out: Path, needed: int) -> bool:
    """By errno, or by the free space left when there is none: numpy and OpenCV report a
    short write without one."""
    if exc.errno is not None:
        return exc.errno in DISK_FULL_ERRNOS
    try:
        return shutil.disk_usage(out).free < max(needed, 1 << 20)
    except OSError:
        return False
