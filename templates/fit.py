"""Fit the lattices of an object's matched templates: the step between the rigid match and the
placement, shared by the Blender blend and the benchmarks.

How far the object's depth map may pull the template depends on where the depth came from
(``DEPTH_TRUST``): a metric map or the user's own file is trusted fully, a learned relative map
(after the match fitted its relief scale) half, the classic and drawing engines' reliefs (guesses from the
silhouette) barely; the outline of the mask always counts fully.
"""

from __future__ import annotations

import numpy as np

from .ffd_fit import FitSettings, LatticeFit, fit_lattice
from .library import TemplateLibrary
from .match import Camera, Match, MatchResult

# Where the depth came from -> weight of the depth term in the lattice fit (the outline's is 1).
DEPTH_TRUST = {
    "metric": 1.0,  # a metric depth model, or any map the worker was told is metric
    "file": 1.0,  # the user's own depth map (scanned, rendered): exact up to the relief scale fitted
    "relative": 0.5,  # a learned relative map, its relief scale fitted by the match
    "classic": 0.1,  # the classic engine's relief: a guess from the silhouette
    "drawing": 0.1,  # the drawing engine's relief: the outline inflated, a guess from the silhouette too
}


# The fit's weights as placed: with depth trusted fully the depth term outweighs the outline five to
# one (a revolution or mirror lattice cannot move the template's axis, so an outline that disagrees
# with the rigid pose would otherwise pull the seen front off the depth map).
FIT_SETTINGS = FitSettings(depth_weight=5.0)


def depth_trust(depth_kind: str, depth_source: str = "") -> float:
    """Trust in a worker result's depth: ``depth_kind`` as in ``result.json`` (``metric`` or
    ``relative_inverse``), ``depth_source`` ``file`` for a user map, else the engine's name."""
    if depth_source in DEPTH_TRUST:
        return DEPTH_TRUST[depth_source]
    return DEPTH_TRUST["metric" if depth_kind == "metric" else "relative"]


def rescaled_depth(zdepth: np.ndarray, mask: np.ndarray, relief_scale: float) -> np.ndarray:
    """The object's depth in the pose's units: its relief divided by the match's ``relief_scale``
    about the median depth of the mask (as the match compared them); 1 leaves it as it is."""
    z = np.asarray(zdepth, dtype=np.float64)
    inside = np.asarray(mask, dtype=bool) & np.isfinite(z) & (z > 0)
    if relief_scale == 1.0 or not inside.any():
        return z
    centre = float(np.median(z[inside]))
    return np.where(inside, centre + (z - centre) / relief_scale, 0.0)


def fit_match(match: Match, library: TemplateLibrary, camera: Camera, mask: np.ndarray, zdepth: np.ndarray,
              trust: float, settings: FitSettings | None = None) -> LatticeFit:
    """The lattice of one matched template fitted to the object's ``mask`` and ``zdepth`` (the scene
    depth the match saw), the depth weighted by ``trust``."""
    tpl = library.get(match.template, match.source)
    depth = rescaled_depth(zdepth, mask, match.depth_scale) if trust > 0 else None
    return fit_lattice(tpl.vertices, tpl.triangles, match.pose, camera, mask, depth, trust, tpl.symmetry,
                       settings=settings or FIT_SETTINGS)


def fit_matches(result: MatchResult, library: TemplateLibrary, camera: Camera, mask: np.ndarray,
                zdepth: np.ndarray, trust: float, settings: FitSettings | None = None) -> list[LatticeFit]:
    """One fitted lattice per match of ``result`` (best first), so Swap Template needs no refit."""
    return [fit_match(m, library, camera, mask, zdepth, trust, settings) for m in result.matches]
