"""Read a worker result folder (``result.json``, mask PNGs and a depth file, see ``inference/run.py``).

A cached result may have been made from another file with the same bytes, so the photo's
path comes from the caller (``read_result``'s ``image_path``); the paths the worker recorded
are a fallback for a folder read straight after its run, and file names in ``result.json``
must name files inside its folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from ..inference.depthfile import load_depth_file


class BuildError(RuntimeError):
    """A build that cannot go on; ``code`` is stable, the message is one plain sentence."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class InstanceRecord:
    """One object of the result: its label and mask file."""

    id: int
    label: str
    mask_path: Path


@dataclass
class WorkerResult:
    """What ``result.json`` says, with paths made absolute (``image_path`` None: not known)."""

    folder: Path
    image_path: Path | None
    width: int
    height: int
    focal_35mm: float | None
    focal_px: float | None
    depth_path: Path
    depth_kind: str
    instances: list[InstanceRecord]
    depth_source: str = ""  # "file" for the user's own depth map, else the engine that estimated it
    focal_source: str = ""  # "exif", "model" or "default" (empty: a result from before it was recorded)
    lines_path: Path | None = None  # the drawing engine's line-class map (lines.png), None for a photo
    # a corrected result: the mask a relative depth map is scaled over, and the ids the correction touched
    depth_reference: list[Path] | None = None
    changed: list[int] | None = None
    removed: list[int] | None = None

    @property
    def name(self) -> str:
        """The photo's name without extension (names the collection)."""
        return (self.image_path.stem if self.image_path is not None else "") or "Monocle"


def read_result(path: str | Path, image_path: str | Path | None = None) -> WorkerResult:
    """Parse ``result.json`` (``path`` is the file or its folder); ``image_path`` is the photo
    the result is used for, in place of the path the worker recorded."""
    path = Path(path)
    if path.is_dir():
        path = path / "result.json"
    try:
        data = json.loads(path.read_text())
        folder = path.parent
        image = data["image"]
        instances = [
            InstanceRecord(
                id=int(inst["id"]), label=str(inst.get("label") or "object"), mask_path=_inside(folder, inst["mask"])
            )
            for inst in data["instances"]
        ]
        return WorkerResult(
            folder=folder,
            image_path=_photo_path(image_path or image.get("path")),
            width=int(image["width"]),
            height=int(image["height"]),
            focal_35mm=(data.get("camera") or {}).get("focal_35mm"),
            focal_px=(data.get("camera") or {}).get("focal_px"),
            depth_path=_inside(folder, data["depth"]["file"]),
            depth_kind=str(data["depth"]["kind"]),
            instances=instances,
            depth_source=_depth_source(data),
            focal_source=str((data.get("camera") or {}).get("focal_source") or ""),
            lines_path=_inside(folder, data["lines"]["file"]) if data.get("lines") else None,
            depth_reference=[_inside(folder, n) for n in data["depth"]["reference"]]
            if data["depth"].get("reference") else None,
            changed=[int(i) for i in data["changed"]] if "changed" in data else None,
            removed=[int(i) for i in data.get("removed") or []] if "changed" in data else None,
        )
    except OSError as exc:
        raise BuildError(
            "result_unreadable", f"Cannot read the worker result {str(path)!r} ({exc.strerror})."
        ) from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BuildError("result_unreadable", f"The worker result {str(path)!r} is malformed ({exc!r}).") from None


def _depth_source(data: dict) -> str:
    if ((data["depth"].get("extra") or {}).get("source")) == "file":
        return "file"
    return str((data.get("engine") or {}).get("name") or "")


def _photo_path(path: str | Path | None) -> Path | None:
    return Path(path).absolute() if path else None


def _inside(folder: Path, name: object) -> Path:
    """``folder / name`` for a plain file name; anything that could point elsewhere is malformed."""
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise ValueError(f"{name!r} is not a file name inside the result folder")
    return folder / name


def load_depth(result: WorkerResult) -> np.ndarray:
    """The depth map at photo resolution, float32 (H, W), in any format the worker has written."""
    try:
        depth = load_depth_file(result.depth_path)
    except (OSError, ValueError) as exc:
        raise BuildError("result_unreadable", f"Cannot read the depth map {result.depth_path.name} ({exc}).") from None
    if depth.shape != (result.height, result.width):
        size = f"{depth.shape[1]}x{depth.shape[0]}" if depth.ndim == 2 else f"of shape {depth.shape}"
        raise BuildError(
            "result_unreadable", f"The depth map is {size} but the photo is {result.width}x{result.height}."
        )
    return np.ascontiguousarray(depth, dtype=np.float32)


def load_mask(path: Path, width: int, height: int) -> np.ndarray:
    """A mask image as a (H, W) bool array, top row first (true where the first colour channel
    is above half its range).

    Decoded with OpenCV (one of the extension's wheels): about 4x faster than Blender's image
    reader on a 12 MP mask, without the reader's 192 MB float RGBA copy. Blender's reader is
    the fallback for a file OpenCV cannot decode.
    """
    try:
        import cv2

        data = np.fromfile(str(path), dtype=np.uint8)  # not cv2.imread: it fails on non-ASCII paths on Windows
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except ImportError:
        image = None
    except OSError:
        raise BuildError("result_unreadable", f"Cannot read the mask {path.name}.") from None
    if image is None:
        return _load_mask_blender(path, width, height)
    if image.shape[:2] != (height, width):
        raise BuildError("result_unreadable",
                         f"The mask {path.name} is {image.shape[1]}x{image.shape[0]}, the photo {width}x{height}.")
    if image.ndim == 3:
        image = image[:, :, 2 if image.shape[2] >= 3 else 0]  # OpenCV's channels run BGR(A): red is the first
    if np.issubdtype(image.dtype, np.integer):
        return image > np.iinfo(image.dtype).max // 2
    return image > 0.5


def _load_mask_blender(path: Path, width: int, height: int) -> np.ndarray:
    """``load_mask`` through Blender's image reader (the temporary datablock is removed)."""
    try:
        image = bpy.data.images.load(str(path), check_existing=False)
    except RuntimeError:
        raise BuildError("result_unreadable", f"Cannot read the mask {path.name}.") from None
    try:
        w, h = image.size
        if (w, h) != (width, height):
            raise BuildError("result_unreadable", f"The mask {path.name} is {w}x{h}, the photo {width}x{height}.")
        pixels = np.empty(w * h * 4, dtype=np.float32)
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    # Blender stores rows bottom-up; the first channel carries the grey value.
    return pixels.reshape(h, w, 4)[::-1, :, 0] > 0.5
