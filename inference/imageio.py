"""Robust image loading for the worker: every format and pixel layout a user
might drop in, turned into 8-bit RGB plus optional alpha, or a clear WorkerError.
"""

from __future__ import annotations

import functools
import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from .image_headers import EXR_MAGIC, TIFF_MAGICS, exr_size, tiff_size
from .protocol import WorkerError

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".tif", ".tiff", ".webp", ".bmp", ".exr", ".ppm", ".pgm", ".pnm"}
)
MIN_SIDE = 8
CONVERT_BAND_VALUES = 1 << 22  # values converted to 8 bits at a time
# 200 MP (above every single-shot camera sensor): beyond that we refuse before decoding instead of
# swapping the machine to death; a float EXR of that size already takes several GB to decode
MAX_PIXELS = 200_000_000
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


@functools.cache
def _srgb8_table() -> np.ndarray:
    """8-bit sRGB of every 16-bit step of linear light: a lookup is many times faster than the power law."""
    lin = np.arange(65536, dtype=np.float64) / 65535.0
    srgb = np.where(lin <= 0.0031308, lin * 12.92, 1.055 * np.power(lin, 1 / 2.4) - 0.055)
    return np.clip(srgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _linear_to_srgb8(block: np.ndarray) -> np.ndarray:
    """Linear light (EXR, float TIFF) to 8-bit sRGB; NaN is black, values beyond 1 are clipped."""
    lin = np.clip(np.nan_to_num(block.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    return _srgb8_table()[(lin * 65535.0 + 0.5).astype(np.uint16)]


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        convert = _linear_to_srgb8
    else:
        # integer images deeper than 8 bits: scale by the container's range
        top = 65535.0 if arr.max(initial=0) > 255 or arr.dtype in (np.uint16, np.int32) else 255.0
        if arr.dtype == np.int32 and arr.max(initial=0) <= 255:
            top = 255.0

        def convert(block: np.ndarray) -> np.ndarray:
            return np.clip(block.astype(np.float32) * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)

    # in bands of rows: the float temporaries of a whole large image would cost many times its size
    out = np.empty(arr.shape, np.uint8)
    rows = max(1, CONVERT_BAND_VALUES // max(1, arr[0].size))
    for y in range(0, arr.shape[0], rows):
        out[y:y + rows] = convert(arr[y:y + rows])
    return out


def _has_real_alpha(alpha: np.ndarray) -> bool:
    """True when the alpha channel actually cuts something out (not all opaque)."""
    transparent = float(np.mean(alpha < 0.5))
    return 0.001 < transparent < 0.999


def _exif_focal_35mm(img: Image.Image) -> float | None:
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


def _check_pixels(name: str, width: int, height: int, what: str = "", code: str = "image_too_large") -> None:
    """Refuse, before anything is decoded, an image or map beyond the one pixel limit every format shares."""
    if width * height > MAX_PIXELS:
        raise WorkerError(
            code,
            f"{what + ' ' if what else ''}{name} is {width}x{height} pixels, more than Monocle can process "
            f"({MAX_PIXELS // 1_000_000} megapixels).",
        )


def _cv2_decode(path: Path) -> np.ndarray | None:
    """Decode with OpenCV from bytes: cv2.imread cannot open every path Python can (it crashes on some)."""
    os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
    import cv2

    data = np.frombuffer(path.read_bytes(), np.uint8)
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None


def _from_cv2(data: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """OpenCV's BGR(A) or grey pixels as RGB plus alpha (0..1) when there is a fourth channel."""
    if data.ndim == 2:
        return data, None
    if data.shape[2] == 1:
        return data[:, :, 0], None
    if data.shape[2] == 4:
        alpha = data[:, :, 3].astype(np.float32)
        if not np.issubdtype(data.dtype, np.floating):
            alpha /= float(np.iinfo(data.dtype).max)
        return data[:, :, 2::-1], np.clip(alpha, 0, 1)
    return data[:, :, 2::-1], None


def _load_with_cv2(path: Path, size: tuple[int, int], kind: str) -> tuple[np.ndarray, np.ndarray | None]:
    """An EXR, or a TIFF that PIL cannot decode (float RGB), checked against the pixel limit first."""
    _check_pixels(path.name, *size)
    data = _cv2_decode(path)
    if data is None:
        raise WorkerError("image_unreadable", f"Could not read the {kind} file {path.name}; it may be corrupt.")
    return _from_cv2(data)


def _header_size(path: Path, reader: Callable[[Path], tuple[int, int]]) -> tuple[int, int]:
    try:
        return reader(path)
    except (OSError, ValueError, struct.error):
        raise WorkerError("image_unreadable", f"{path.name} has a broken header; the file looks corrupt.") from None


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

    with open(p, "rb") as fh:
        magic = fh.read(4)
    focal = None
    if magic == EXR_MAGIC:
        rgb_raw, alpha = _load_with_cv2(p, _header_size(p, exr_size), "EXR")
        mode = "EXR"
    else:
        try:
            rgb_raw, alpha, mode, focal = _load_with_pil(p)
        except WorkerError as exc:
            if exc.code != "image_unreadable" or magic not in TIFF_MAGICS:
                raise
            # float RGB and other TIFF layouts PIL does not know; float is linear, as in EXR
            rgb_raw, alpha = _load_with_cv2(p, _header_size(p, tiff_size), "TIFF")
            mode = "TIFF"

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


def _load_with_pil(p: Path) -> tuple[np.ndarray, np.ndarray | None, str, float | None]:
    """Pixels, alpha, PIL mode and EXIF focal length of any format PIL reads, checked against the pixel limit first."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    name = p.name
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(p) as img:
            _check_pixels(name, img.width, img.height)
            focal = _exif_focal_35mm(img)
            img.load()
            mode = img.mode
            upright = ImageOps.exif_transpose(img)
            rgb_raw, alpha = _pil_to_arrays(upright)
            return rgb_raw, alpha, mode, focal
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


def _pil_to_arrays(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
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


def _npy_size(path: Path) -> tuple[int, int]:
    """Width and height of the map in a ``.npy`` file, from its header alone."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, _ = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, _, _ = np.lib.format.read_array_header_2_0(fh)
    if len(shape) < 2:
        return (int(np.prod(shape)), 1)
    return int(shape[1]), int(shape[0])


def load_scalar_map(path: str | os.PathLike, what: str, code: str) -> np.ndarray:
    """Load a user-supplied single-channel map (mask or depth) as float32.

    ``.npy`` float arrays, 8/16-bit PNG/TIFF, float TIFF and EXR are accepted, within the images' pixel limit.
    """
    p = Path(path)
    if not p.exists():
        raise WorkerError(code, f"The {what} file {str(p)!r} does not exist.")
    try:
        with open(p, "rb") as fh:
            magic = fh.read(4)
        if p.suffix.lower() == ".npy":
            _check_pixels(p.name, *_npy_size(p), f"The {what} file", code)
            arr = np.load(p, allow_pickle=False)
        else:
            arr = None if magic == EXR_MAGIC else _pil_scalar_map(p, what, code)
            if arr is None:  # EXR, float TIFF and other TIFF layouts PIL does not know
                if magic not in (EXR_MAGIC, *TIFF_MAGICS):
                    raise ValueError("unknown format")
                _check_pixels(p.name, *(exr_size if magic == EXR_MAGIC else tiff_size)(p), f"The {what} file", code)
                data = _cv2_decode(p)
                if data is None:
                    raise ValueError("OpenCV could not decode it")
                arr = _from_cv2(data)[0]
                if arr.ndim == 3:
                    arr = arr[:, :, 0]  # red
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


def _pil_scalar_map(p: Path, what: str, code: str) -> np.ndarray | None:
    """A map PIL can decode as one channel, or None when PIL does not know the file's layout."""
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(p) as img:
            _check_pixels(p.name, img.width, img.height, f"The {what} file", code)
            img.load()
            if img.mode in ("RGB", "RGBA", "P", "LA", "CMYK"):
                return np.asarray(img.convert("L"))
            return np.asarray(img)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
