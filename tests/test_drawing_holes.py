"""What is an object and what is seen through it, on drawings made with OpenCV (drawing_sheets.py)
and a keyboard of many small keys, through the drawing engine and the line-art verdict."""

from __future__ import annotations

import numpy as np
import pytest
from drawing_sheets import bench_drawing, drawers_drawing, keyboard_drawing
from scipy.ndimage import binary_fill_holes


def _objects(rgb: np.ndarray) -> list[np.ndarray]:
    from monocle.inference.engines.drawing import DrawingEngine

    return [inst.mask for inst in DrawingEngine().segment(rgb, None, None, "all", lambda *a: None)]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / float((a | b).sum())


@pytest.mark.parametrize("drawing", [bench_drawing, drawers_drawing, keyboard_drawing])
def test_one_object_on_its_silhouette(drawing):
    """The bench's gaps between thin legs, rail, slats and posts are seen through (not object); the
    chest's drawers, the middle one too, are faces; a keyboard's keys do not split it."""
    from monocle.inference.engines.drawing_lines import line_art_verdict

    rgb, truth = drawing()
    assert line_art_verdict(rgb)[0]
    (mask,) = _objects(rgb)
    assert _iou(mask, truth) >= 0.97
    holes = binary_fill_holes(truth) & ~truth  # the paper the object encloses
    assert (mask & holes).sum() <= 0.05 * holes.sum()


def test_middle_drawer_without_handle_is_seen_through():
    """The middle drawer's handle is what tells a face from a gap: without it the middle cell,
    ringed by outlines that run on into the chest's outline, is read as a hole through the chest."""
    rgb, truth = drawers_drawing()
    plain = rgb.copy()
    plain[225:255, 280:360] = 255  # the middle drawer's handle rubbed out
    (mask,) = _objects(plain)
    middle, cell = np.zeros(truth.shape, bool), np.zeros(truth.shape, bool)
    middle[196:284, 266:374] = True  # inside the middle drawer's outline (190..290, 260..380)
    cell[184:296, 254:386] = True  # ... and its outline
    assert mask[middle].mean() < 0.05
    assert mask[truth & ~cell].mean() > 0.98
