"""Photo-like test pictures made here, so the end-to-end tests need no downloaded data.

Each is a 640x480 JPEG of one shaded object standing on a textured floor in front of a wall, with
its soft shadow and sensor noise: enough of a photograph for the classic engine to find one object,
for the line-art test to call it a photo, and for a backdrop and ground to be built behind it.
Generated from fixed seeds, so every run sees the same pixels; no third-party data, no licence.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

W, H = 640, 480
HORIZON = 0.42  # the wall meets the floor this far down the frame
KINDS = ("fruit", "box", "toy")  # the file stems write_photos makes


def _room(rng: np.random.Generator) -> np.ndarray:
    """Wall over floor: a lit plaster gradient, then boards that narrow towards the horizon."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    wall = np.stack([215 - 30 * yy / H, 205 - 25 * yy / H, 185 - 20 * yy / H + 0 * xx], -1)
    below = np.clip((yy - HORIZON * H) / ((1 - HORIZON) * H), 0, 1)
    board = np.floor((xx - W / 2) / (30 + 90 * below) + 0.5)  # perspective: boards widen nearer the camera
    grain = 12 * np.sin(yy * 0.9 + board * 2.3) + 8 * np.sin(xx * 0.05 + board)
    floor = np.stack([120 + grain + 25 * below, 82 + grain * 0.7 + 15 * below, 52 + grain * 0.4 + 0 * xx], -1)
    blotches = cv2.GaussianBlur(rng.normal(0, 18, (H, W)).astype(np.float32), (0, 0), 12)[..., None]
    img = np.where((yy >= HORIZON * H)[..., None], floor, wall) + blotches
    return img


def _shape(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The object's mask and a height field over it (for shading), standing on the floor."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    if kind == "fruit":  # a crescent lying on the floor
        outer = ((xx - 320) / 170) ** 2 + ((yy - 330) / 70) ** 2 < 1
        inner = ((xx - 320) / 160) ** 2 + ((yy - 285) / 60) ** 2 < 1
        mask = outer & ~inner
    elif kind == "box":  # a box seen from above and in front: top face and front face
        top = (yy > 190) & (yy < 250) & (xx > 230 - (yy - 190) * 0.5) & (xx < 430 + (yy - 190) * 0.5)
        front = (yy >= 250) & (yy < 380) & (xx > 200) & (xx < 460)
        mask = top | front
    else:  # a toy: a round body with a round head
        body = ((xx - 320) / 95) ** 2 + ((yy - 310) / 85) ** 2 < 1
        head = ((xx - 320) / 60) ** 2 + ((yy - 185) / 58) ** 2 < 1
        mask = body | head
    inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    return mask, np.sqrt(inside / max(float(inside.max()), 1.0))


def photo(kind: str, seed: int = 0) -> np.ndarray:
    """The RGB uint8 picture of one object kind (see KINDS)."""
    rng = np.random.default_rng(seed + KINDS.index(kind))
    img = _room(rng)
    mask, height = _shape(kind)
    shadow = cv2.GaussianBlur(np.roll(mask, (18, 26), (0, 1)).astype(np.float32), (0, 0), 9)
    img *= (1 - 0.45 * shadow)[..., None]
    gy, gx = np.gradient(height)
    shade = np.clip(0.55 + 0.45 * height - 6 * gx - 6 * gy, 0.2, 1.1)[..., None]  # light from the top left
    colour = {"fruit": (235, 200, 40), "box": (60, 110, 190), "toy": (190, 70, 60)}[kind]
    img = np.where(mask[..., None], np.asarray(colour, np.float32) * shade, img)
    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 0.8) + rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_photos(folder: Path, kinds: tuple[str, ...] = KINDS) -> list[Path]:
    """Write ``<kind>.jpg`` for each kind into folder; returns the paths in the order given."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind in kinds:
        path = folder / f"{kind}.jpg"
        Image.fromarray(photo(kind)).save(path, quality=92)
        paths.append(path)
    return paths
