"""Offline foreground extraction for the ``classic`` engine (placeholder: being tuned)."""

from __future__ import annotations

import numpy as np

from . import Instance


def segment(
    rgb: np.ndarray, *, alpha: np.ndarray | None, box: tuple[int, int, int, int] | None, objects: str
) -> list[Instance]:
    import cv2

    h, w = rgb.shape[:2]
    if alpha is not None:
        fg = alpha >= 0.5
    else:
        mask = np.zeros((h, w), np.uint8)
        if box is None:
            m = max(2, int(0.05 * min(h, w)))
            box = (m, m, w - m, h - m)
        x0, y0, x1, y1 = box
        rect = (int(x0), int(y0), int(max(1, x1 - x0)), int(max(1, y1 - y0)))
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.grabCut(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), mask, rect, bgd, fgd, 3, cv2.GC_INIT_WITH_RECT)
        fg = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
    min_area = max(16, int(0.002 * h * w))
    comps = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_area]
    comps.sort(key=lambda i: -stats[i, cv2.CC_STAT_AREA])
    if objects == "largest":
        comps = comps[:1]
    return [Instance(mask=labels == i, label="object", score=1.0) for i in comps]
