"""Relative depth fitted to metric depth inside each mask (inference/engines/moge_fusion.py), on known maps."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
from conftest import MODULE

fusion = importlib.import_module(MODULE + ".inference.engines.moge_fusion")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))


def _maps():
    yy, xx = np.mgrid[0:120, 0:160].astype(np.float64)
    depth = 3.0 + 0.002 * xx  # a wall
    mask = (xx - 60) ** 2 + (yy - 60) ** 2 < 30**2
    depth = np.where(mask, 2.0 - 0.3 * np.sqrt(np.clip(1 - ((xx - 60) ** 2 + (yy - 60) ** 2) / 30**2, 0, None)), depth)
    return depth, mask


def test_an_exact_affine_relative_map_gives_the_true_depth_back():
    depth, mask = _maps()
    relative = 12.5 / depth - 1.7  # inverse depth up to scale and shift
    scaled, fits = fusion.fit_relative_inside(relative, (1.04 * depth).astype(np.float32), [mask])
    assert fits[0].used and np.allclose(scaled[mask], 1.04 * depth[mask], rtol=1e-5)  # the metric map's scale kept
    exact, fits = fusion.fit_relative_inside(relative, depth.astype(np.float32), [mask])
    assert fits[0].used and fits[0].rms_inverse < 1e-6
    assert np.allclose(exact[mask], depth[mask], rtol=1e-5)
    assert np.array_equal(exact[~mask], depth.astype(np.float32)[~mask])  # outside the masks: the metric map


def test_untrustworthy_fits_keep_the_metric_depth():
    depth, mask = _maps()
    metric = depth.astype(np.float32)
    flipped = -(12.5 / depth)  # the relative map orders the object's points the other way round
    out, fits = fusion.fit_relative_inside(flipped, metric, [mask])
    assert not fits[0].used and "order" in fits[0].why
    assert np.array_equal(out, metric)
    tiny = np.zeros_like(mask)
    tiny[5:8, 5:8] = True
    out, fits = fusion.fit_relative_inside(12.5 / depth, metric, [tiny])
    assert not fits[0].used and fits[0].why == "too few pixels" and np.array_equal(out, metric)


def test_a_coarse_metric_map_gains_the_relative_maps_detail():
    from bench_learned_fusion import scene, scores, simulate

    true, masks = scene(0)
    metric, relative = simulate(true, metric_cell=16, relative_cell=2, distortion=0.05, power=1.0)
    fused, fits = fusion.fit_relative_inside(relative, metric.astype(np.float32), masks)
    assert all(f.used for f in fits)
    for m in masks:
        before, after = scores(metric, true, m), scores(fused.astype(np.float64), true, m)
        assert after["detail_corr"] > 0.95 > before["detail_corr"]
        assert after["shape_rmse_mm"] < before["shape_rmse_mm"]
