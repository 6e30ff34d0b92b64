"""The template blend's policy: how much of the side the camera saw the template may take over.

The hidden side is always the (fitted) template. The seen side stays on the reconstruction as far
as its depth is trusted: the Template Weight slider has a knee at ``trust * TRUSTED_KNEE`` below
which the seen side is the reconstruction's; above it the template takes over linearly, fully at
``takeover_full(trust)``: 1 for fully trusted depth (oracle, metric, the user's map), so the default
weight leaves the seen surface exactly as reconstructed; about the default weight for the classic
engine's relief (a guess), so there the default shows the fitted template, which
bench/bench_quality.py on meshes/category scores closer to the object than any mix with the guess.
"""

from __future__ import annotations

import math

TRUSTED_KNEE = 0.5  # slider weight below which fully trusted depth keeps the whole seen side
WEIGHT_DESCRIPTION = (
    "How far the template takes over the side the camera saw (the unseen side is always the fitted template). "
    f"With trusted depth (metric or your own map) the photo's shape stays up to {TRUSTED_KNEE:g} and the "
    "template takes over above it; with a guessed relief (classic engine) the template takes over from about 0 "
    f"and fully at about {TRUSTED_KNEE:g}; 1: the pure template")


# Depth trusted at least this much is measured (a metric map, the user's own), not guessed: it refines
# a placed template's pose (``templates.fit``), and the reconstruction's own back is a fair guess
# already: the template's replaces it only where the fitted template matches the mask at least
# MIN_FIT_IOU (a chair template on an armchair, a round bottle on a flat one: their far sides are no
# better than it).
MEASURED_TRUST = 0.75
MIN_FIT_IOU = 0.9


def template_back(fit_iou: float, trust: float) -> bool:
    """Whether the fitted template (its silhouette IoU ``fit_iou`` against the mask; NaN when not
    fitted) gives the hidden side, for depth trusted ``trust``."""
    return float(trust) < MEASURED_TRUST or math.isnan(fit_iou) or fit_iou >= MIN_FIT_IOU


def takeover_knee(trust: float) -> float:
    """The Template Weight at which the template starts to take over the seen side."""
    return min(max(float(trust), 0.0), 1.0) * TRUSTED_KNEE


def takeover_full(trust: float) -> float:
    """The Template Weight at which the template has taken the seen side over entirely: 1 for fully
    trusted depth, falling with the square of the trust to ``TRUSTED_KNEE`` (a relief with no trust)."""
    t = min(max(float(trust), 0.0), 1.0)
    return TRUSTED_KNEE + (1.0 - TRUSTED_KNEE) * t * t


def takeover(weight: float, trust: float) -> float:
    """How far (0..1) the template replaces the reconstruction on the seen side at slider ``weight``
    for depth trusted ``trust`` (``templates.fit.DEPTH_TRUST``)."""
    knee, full = takeover_knee(trust), takeover_full(trust)
    return min(max((float(weight) - knee) / (full - knee), 0.0), 1.0)
