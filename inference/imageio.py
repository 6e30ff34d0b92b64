"""Robust image loading for the worker: every format and pixel layout a user
might drop in, turned into 8-bit RGB plus optional alpha, or a clear WorkerError.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .protocol import WorkerError

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".tif", ".tiff", ".webp", ".bmp", ".exr", ".ppm", ".pgm", ".pnm"}
)
MIN_SIDE = 8
MAX_PIXELS = 250_000_000  # about 16k x 16k: beyond that we refuse instead of swapping the machine to death
EXIF_IFD = 0x8769
EXIF_FOCAL_35MM = 0xA405
EXIF_FOCAL = 0x920A


@dataclass
class LoadedImage:
    """An input photo at full resolution, upright, as 8-bit RGB (+ alpha)."""

    path: str
    rgb: np.ndarray  # (H, W, 3) uint8
    alpha: np.ndarray | None  # (H, W) float32 in 0..1, only when the file has real transparency
    source_mode: str
    focal_35mm: float | None  # EXIF 35 mm equivalent focal length, when the camera recorded it

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        finite = np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        if finite.max(initial=0.0) > 1.0:  # HDR: plain clip keeps the look of the file in any viewer
            finite = np.clip(finite, 0.0, 1.0)
        # linear (EXR / float TIFF) to sRGB
        lin = np.clip(finite, 0.0, 1.0)
        srgb = np.where(lin <= 0.0031308, lin * 12.92, 1.055 * np.power(lin, 1 / 2.4) - 0.055)
        return np.clip(srgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
    # integer images deeper than 8 bits: scale by the container's range
    top = 65535.0 if arr.max(initial=0) > 255 or arr.dtype in (np.uint16, np.int32) else 255.0
    if arr.dtype == np.int32 and arr.max(initial=0) <= 255:
        top = 255.0
    return np.clip(arr.astype(np.float32) * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)


def _has_real_alpha(alpha: np.ndarray) -> bool:
    """True when the alpha channel actually cuts something out (not all opaque)."""
    transparent = float(np.mean(alpha < 0.5))
    return 0.001 < transparent < 0.999


def _exif_focal_35mm(img) -> float | None:  # noqa: ANN001 - PIL image
    try:
        exif = img.getexif()
        sub = exif.get_ifd(EXIF_IFD)
        value = sub.get(EXIF_FOCAL_35MM) or exif.get(EXIF_FOCAL_35MM)
        if value:
            focal = float(value)
            return focal if 1.0 <= focal <= 2000.0 else None
    except Exception:  # EXIF is a hint: a broken block must never fail the load
        log.debug("could not read EXIF focal length", exc_info=True)
    return None


def _load_exr(path: str) -> tuple[np.ndarray, np.ndarray | None]:
    os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
    import cv2

    data = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if data is None:
        raise WorkerError("image_unreadable", f"Could not read the EXR file {Path(path).name}; it may be corrupt.")
    if data.ndim == 2:
        return np.repeat(data[:, :, None], 3, axis=2), None
    if data.shape[2] == 4:
        return data[:, :, 2::-1], np.clip(data[:, :, 3].astype(np.float32), 0, 1)
    return data[:, :, 2::-1], None


def load_image(path: str | os.PathLike) -> LoadedImage:
    """Load any supported photo upright (EXIF orientation applied) or raise WorkerError."""
    p = Path(path)
    name = p.name
    if not p.exists():
        raise WorkerError("image_missing", f"The image file {str(p)!r} does not exist.")
    if p.is_dir():
        raise WorkerError("image_unsupported", f"{name} is a folder, not an image file.")
    if p.stat().st_size == 0:
        raise WorkerError("image_unreadable", f"The image file {name} is empty.")

    focal = None
    with open(p, "rb") as fh:
        magic = fh.read(4)
    if magic == b"\x76\x2f\x31\x01":  # OpenEXR
        rgb_raw, alpha = _load_exr(str(p))
        mode = "EXR"
    else:
        from PIL import Image, ImageOps, UnidentifiedImageError

        Image.MAX_IMAGE_PIXELS = MAX_PIXELS
        try:
            with Image.open(p) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise WorkerError(
                        "image_too_large",
                        f"{name} is {img.width}x{img.height} pixels, more than Monocle can process "
                        f"({MAX_PIXELS // 1_000_000} megapixels).",
                    )
                focal = _exif_focal_35mm(img)
                img.load()
                mode = img.mode
                img = ImageOps.exif_transpose(img)
                rgb_raw, alpha = _pil_to_arrays(img)
        except WorkerError:
            raise
        except Image.DecompressionBombError:
            raise WorkerError(
                "image_too_large", f"{name} is larger than Monocle can process ({MAX_PIXELS // 1_000_000} megapixels)."
            ) from None
        except UnidentifiedImageError:
            if p.suffix.lower() not in SUPPORTED_SUFFIXES:
                raise WorkerError("image_unsupported", f"{name} is not a supported image type.") from None
            raise WorkerError("image_unreadable", f"{name} is not a valid image file or is corrupt.") from None
        except (OSError, SyntaxError, ValueError) as exc:
            log.info("failed to decode %s: %s", p, exc)
            raise WorkerError(
                "image_unreadable", f"{name} could not be decoded; the file looks truncated or corrupt."
            ) from None

    rgb = _to_uint8(rgb_raw)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise WorkerError(
            "image_too_small", f"{name} is only {w}x{h} pixels; Monocle needs at least {MIN_SIDE} pixels a side."
        )
    if alpha is not None and not _has_real_alpha(alpha):
        alpha = None
    return LoadedImage(str(p), np.ascontiguousarray(rgb), alpha, mode, focal)


def _pil_to_arrays(img) -> tuple[np.ndarray, np.ndarray | None]:  # noqa: ANN001 - PIL image
    mode = img.mode
    alpha = None
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        arr = np.asarray(img.convert("RGBA"))
        alpha = arr[:, :, 3].astype(np.float32) / 255.0
        return arr[:, :, :3], alpha
    if mode in ("1", "L", "RGB"):
        arr = np.asarray(img.convert("RGB") if mode == "1" else img)
        return arr, None
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(img)
        if arr.dtype.byteorder not in ("=", "|"):
            arr = arr.astype(arr.dtype.newbyteorder("="))
        if mode == "I" and arr.max(initial=0) <= 255:
            arr = arr.astype(np.uint8)
        else:
            arr = np.clip(arr, 0, 65535).astype(np.uint16)
        return arr, None
    if mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        return ((arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)), None
    return np.asarray(img.convert("RGB")), None  # CMYK, YCbCr, LAB, HSV ...


def resize_long_side(arr: np.ndarray, max_size: int, interpolation: str = "area") -> tuple[np.ndarray, float]:
    """Downscale so the long side is at most ``max_size``; returns the array and the scale used."""
    import cv2

    h, w = arr.shape[:2]
    scale = min(1.0, float(max_size) / max(h, w))
    if scale >= 1.0:
        return arr, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if interpolation == "area" else cv2.INTER_LINEAR
    return cv2.resize(arr, size, interpolation=interp), scale


def load_scalar_map(path: str | os.PathLike, what: str, code: str) -> np.ndarray:
    """Load a user-supplied single-channel map (mask or depth) as float32.

    ``.npy`` float arrays, 8/16-bit PNG/TIFF and EXR are accepted.
    """
    p = Path(path)
    if not p.exists():
        raise WorkerError(code, f"The {what} file {str(p)!r} does not exist.")
    try:
        if p.suffix.lower() == ".npy":
            arr = np.load(p, allow_pickle=False)
        elif p.suffix.lower() == ".exr":
            os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
            import cv2

            arr = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
            if arr is None:
                raise ValueError("unreadable EXR")
            if arr.ndim == 3:
                arr = arr[:, :, 2] if arr.shape[2] >= 3 else arr[:, :, 0]
        else:
            from PIL import Image

            with Image.open(p) as img:
                img.load()
                if img.mode in ("RGB", "RGBA", "P", "LA", "CMYK"):
                    img = img.convert("L")
                arr = np.asarray(img)
    except WorkerError:
        raise
    except Exception as exc:  # any decoder failure is the same thing for the user
        log.info("failed to read %s %s: %s", what, p, exc)
        raise WorkerError(code, f"The {what} file {p.name} could not be read.") from None
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2 or min(arr.shape) < 1:
        raise WorkerError(code, f"The {what} file {p.name} must hold a single-channel 2D map.")
    return arr.astype(np.float32)
