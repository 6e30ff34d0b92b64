"""The template blend's policy: how much of the side the camera saw the template may take over.

The hidden side is always the (fitted) template. The seen side stays on the
reconstruction as far as its depth is trusted: the Template Weight slider has a knee at
``trust * TRUSTED_KNEE``; below it the seen side is the reconstruction's, above it the template takes
it over linearly, up to the pure template at 1. With trusted depth (oracle, metric, the user's map)
the default weight leaves the seen surface exactly as reconstructed; with the classic engine's
relief (a guess) the template takes the seen side over at about the slider's weight.
"""

from __future__ import annotations

TRUSTED_KNEE = 0.5  # slider weight below which fully trusted depth keeps the whole seen side
WEIGHT_DESCRIPTION = (
    "How far the template takes over the side the camera saw (the unseen side is always the fitted template). "
    f"With trusted depth (metric or your own map) the photo's shape stays up to {TRUSTED_KNEE:g} and the "
    "template takes over above it; with a guessed relief (classic engine) the template takes over about as "
    "much as the weight; 1: the pure template")


def takeover_knee(trust: float) -> float:
    """The Template Weight at which the template starts to take over the seen side."""
    return min(max(float(trust), 0.0), 1.0) * TRUSTED_KNEE


def takeover(weight: float, trust: float) -> float:
    """How far (0..1) the template replaces the reconstruction on the seen side at slider ``weight``
    for depth trusted ``trust`` (``templates.fit.DEPTH_TRUST``)."""
    knee = takeover_knee(trust)
    return min(max((float(weight) - knee) / (1.0 - knee), 0.0), 1.0)
