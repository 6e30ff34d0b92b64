"""A photo with two plain objects on a noisy gradient, and the true mask of each: the ground
truth the segment-correction tests and bench_correct.py measure against."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def scene(w: int = 640, h: int = 480, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RGB uint8, the red disc's mask (left) and the blue box's mask (right)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([150 + 40 * xx / w, 140 + 30 * yy / h, 120 + 0 * xx], -1) + rng.normal(0, 6, (h, w, 3))
    disc = (xx - 0.28 * w) ** 2 + (yy - 0.5 * h) ** 2 < (0.125 * w) ** 2
    box = (xx > 0.62 * w) & (xx < 0.87 * w) & (yy > 0.31 * h) & (yy < 0.73 * h)
    img[disc] = [200, 40, 40]
    img[box] = [40, 60, 190]
    img += rng.normal(0, 6, (h, w, 3)) * (disc | box)[..., None]
    return np.clip(img, 0, 255).astype(np.uint8), disc, box


def write_scene(folder: Path, w: int = 640, h: int = 480) -> tuple[Path, np.ndarray, np.ndarray]:
    rgb, disc, box = scene(w, h)
    path = folder / "two_things.png"
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    return path, disc, box


def write_mask(path: Path, mask: np.ndarray) -> Path:
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)
    return path


def read_mask(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L")) > 127


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))
