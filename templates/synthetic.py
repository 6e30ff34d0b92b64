"""Synthetic photos of templates (mask + exact depth + true pose), for tests and benchmarks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import render
from .library import Template

try:
    from ..geometry import CameraModel
except ImportError:  # imported as a top-level ``templates`` (tools/, bench/: the repository root on sys.path)
    from geometry import CameraModel  # type: ignore[no-redef]


@dataclass
class SyntheticView:
    """A rendered template: what the pipeline sees and the truth to check it against."""

    mask: np.ndarray  # (H, W) bool
    zdepth: np.ndarray  # (H, W) distance along the camera axis, 0 outside the mask
    camera: CameraModel
    rotation: np.ndarray  # camera-from-model
    translation: np.ndarray
    azimuth: float
    elevation: float
    roll: float


def random_viewpoint(rng: np.random.Generator, elevation: tuple[float, float] = (5.0, 50.0),
                     roll: float = 3.0) -> tuple[float, float, float]:
    """An upright viewpoint seen from slightly above: (azimuth, elevation, roll) in degrees."""
    return float(rng.uniform(0, 360)), float(rng.uniform(*elevation)), float(rng.uniform(-roll, roll))


def render_view(template: Template, azimuth: float, elevation: float, roll: float = 0.0, *, width: int = 256,
                height: int = 256, focal_mm: float = 50.0, fill: float = 0.6,
                offset: tuple[float, float] = (0.0, 0.0)) -> SyntheticView:
    """Render ``template`` (its own metre scale) so it spans about ``fill`` of the shorter image side,
    its bounding-box centre shifted by ``offset`` (fractions of the image size) from the centre."""
    cam = CameraModel(width, height, focal_mm)
    c, s = math.cos(math.radians(roll)), math.sin(math.radians(roll))
    rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    rot = rz @ render.look_rotation(azimuth, elevation)
    verts = template.vertices.astype(np.float64)
    centre = 0.5 * (verts.min(axis=0) + verts.max(axis=0))
    size = float(np.linalg.norm(verts.max(axis=0) - verts.min(axis=0)))
    dist = size * cam.focal_px / (fill * min(width, height))
    target = np.array([offset[0] * width / cam.focal_px * dist, -offset[1] * height / cam.focal_px * dist, -dist])
    trans = target - rot @ centre
    xy, z = render.project_perspective(verts @ rot.T + trans, cam.focal_px, 0.5 * width, 0.5 * height)
    ras = render.rasterize(xy, z, template.triangles, (height, width))
    zdepth = np.where(ras.mask, ras.depth, 0.0).astype(np.float32)
    return SyntheticView(ras.mask, zdepth, cam, rot, trans, azimuth, elevation, roll)
