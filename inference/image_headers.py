"""Image sizes read from OpenEXR and TIFF headers alone, so ``inference.imageio`` refuses a file
beyond the pixel limit before anything is decoded (pure Python, no image library)."""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

EXR_MAGIC = b"\x76\x2f\x31\x01"
EXR_MULTIPART = 0x1000  # flag in the version field: a list of headers follows
EXR_HEADER_LIMIT = 1 << 24  # a real header is kilobytes (a preview image adds some): beyond this it is broken
TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
TIFF_WIDTH, TIFF_HEIGHT = 256, 257
TIFF_INT_TYPES = {3: "H", 4: "I", 16: "Q"}  # SHORT, LONG, LONG8


def _read_name(fh: BinaryIO) -> bytes:
    """One zero-terminated name of an OpenEXR header (at most 255 bytes)."""
    name = bytearray()
    while (c := fh.read(1)) != b"\0":
        if not c or len(name) >= 255:
            raise ValueError("broken OpenEXR header")
        name += c
    return bytes(name)


def _exr_part_size(fh: BinaryIO) -> tuple[int, int] | None:
    """Width and height from the dataWindow of one OpenEXR header; None for the empty header ending a list."""
    size = None
    first = True
    while name := _read_name(fh):
        first = False
        kind = _read_name(fh)
        length = int.from_bytes(fh.read(4), "little", signed=True)
        if length < 0 or fh.tell() + length > EXR_HEADER_LIMIT:
            raise ValueError("broken OpenEXR header")
        if name == b"dataWindow":
            if kind != b"box2i" or length != 16:
                raise ValueError("broken OpenEXR dataWindow")
            x0, y0, x1, y1 = struct.unpack("<4i", fh.read(16))
            size = (x1 - x0 + 1, y1 - y0 + 1)
        else:
            fh.seek(length, os.SEEK_CUR)
    if first:
        return None
    if size is None:
        raise ValueError("OpenEXR header without dataWindow")
    return size


def exr_size(path: str | os.PathLike) -> tuple[int, int]:
    """Width and height of an OpenEXR image from its header alone (the largest part of a multi-part file)."""
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8 or head[:4] != EXR_MAGIC:
            raise ValueError("not an OpenEXR file")
        multipart = bool(int.from_bytes(head[4:8], "little") & EXR_MULTIPART)
        sizes = []
        while (size := _exr_part_size(fh)) is not None:
            sizes.append(size)
            if not multipart:
                break
    if not sizes or min(min(s) for s in sizes) < 1:
        raise ValueError("OpenEXR file without an image")
    return max(sizes, key=lambda s: s[0] * s[1])


def tiff_size(path: str | os.PathLike) -> tuple[int, int]:
    """Width and height of the first image of a TIFF or BigTIFF file, from its first directory."""
    with open(path, "rb") as fh:
        head = fh.read(16)
        order = {b"II": "<", b"MM": ">"}.get(head[:2])
        if order is None or len(head) < 16:
            raise ValueError("not a TIFF file")
        version = struct.unpack(order + "H", head[2:4])[0]
        if version == 42:
            count_fmt, entry_size, value_at, offset = "H", 12, 8, struct.unpack(order + "I", head[4:8])[0]
        elif version == 43:
            count_fmt, entry_size, value_at, offset = "Q", 20, 12, struct.unpack(order + "Q", head[8:16])[0]
        else:
            raise ValueError("not a TIFF file")
        fh.seek(offset)
        raw = fh.read(struct.calcsize(count_fmt))
        count = struct.unpack(order + count_fmt, raw)[0] if len(raw) == struct.calcsize(count_fmt) else 0
        entries = fh.read(entry_size * min(count, 4096))
    found = {}
    for at in range(0, len(entries) - entry_size + 1, entry_size):
        tag, kind = struct.unpack(order + "HH", entries[at:at + 4])
        if tag in (TIFF_WIDTH, TIFF_HEIGHT) and kind in TIFF_INT_TYPES:
            fmt = TIFF_INT_TYPES[kind]
            found[tag] = struct.unpack(order + fmt, entries[at + value_at:at + value_at + struct.calcsize(fmt)])[0]
    if TIFF_WIDTH not in found or TIFF_HEIGHT not in found:
        raise ValueError("TIFF file without image size")
    return found[TIFF_WIDTH], found[TIFF_HEIGHT]
