"""Retrieval scored after the fit: the template that fits the object with the least deformation wins.

1. ``match.match_instance`` prunes the library by outline (proportions apart: the fit changes
   them), ranks what is left by outline and depth (weighted by how far it can be trusted) over
   orientations with the upright prior, and refines the best poses (ICP): the coarse stages that
   keep the fits few.
2. The best rigid match of each of the ``FIT_CANDIDATES`` leading categories, where its rigid
   score is within ``FIT_MARGIN`` of the best, gets its lattice fitted (``fit.fit_match``), so
   Swap Template needs no refit; none when no fit could lift the best to the threshold.
3. Each is scored on what the fit left, as the rigid match scores a pose (``match.fit_score``:
   silhouette IoU forgiving a pixel, minus the depth error weighted by the depth's trust, minus the
   roll penalty), minus a deformation-energy penalty: the RMS control point offset the best affine
   map of the lattice leaves (new proportions are free, a new shape is not), in template sizes.
   A template needing a small deformation beats a rigid wrong one; a template that already fits
   rigidly keeps its rigid score (the fit can only add to it: a lattice pulled about by a plate's
   thin rim or a sofa's cushions says nothing against the plate or the sofa), and the fit adds at
   most ``MAX_FIT_GAIN`` (a template that needs its lattice for more is another shape bent into
   this one's outline: a car into a cow).
4. No template is used below the threshold (``threshold_for``), nor when a fitted template of
   another category scores within ``AMBIGUITY_MARGIN`` of the best: from one view many shapes of
   different categories look alike (a can and a jar, the back of a sofa and a shoebox), and a
   wrong template does more harm than none.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from . import descriptors as desc
from . import match as tmatch
from .ffd import lattice_for
from .ffd_fit import FitSettings, LatticeFit
from .fit import FIT_SETTINGS, fit_match
from .library import Template, TemplateLibrary
from .match import Camera, MatchResult

REFINE_TEMPLATES = 5  # templates whose best coarse view is refined (ICP) ...
SECOND_VIEWS = 3  # ... and of which the first few also refine one distant view (front/back flips)
FIT_CANDIDATES = 3  # rigid matches fitted per object, at most, one per category
RIGID_FLOOR = 0.45  # rigid score below which a match is not worth fitting
DISPLACEMENT_WEIGHT = 1.5  # score lost per RMS non-affine control point offset (fraction of the template's size)
STRETCH_WEIGHT = 0.4  # score lost per unit of log axis stretch beyond STRETCH_FREE (a fridge squeezed into a bottle)
STRETCH_FREE = 0.2
MAX_FIT_GAIN = 0.08  # most a fit may add to a template's rigid score
# Calibrated with bench/calibrate_retrieval.py on bench/bench_retrieval.py's rows (meshes/category and
# ten meshes outside the library, oracle and classic modes, five candidates) and bench_drawing.py's
# drawings of the templates, for no wrong-category and no outside placements, with
# leave-one-object-out counts to show how far it generalises. (A smaller gain cap and displacement
# weight score those rows a little better, but then a mug with other proportions no longer gets its
# template and a cow with untrusted depth gets a car: tests/test_templates.py.) A depth trusted less
# scores the shape less, so it must pass a higher bar: THRESHOLD + UNTRUSTED_MARGIN * (1 - trust).
THRESHOLD = 0.88
UNTRUSTED_MARGIN = 0.10
AMBIGUITY_MARGIN = 0.04  # score the best template must lead every other fitted category's by
# The matches fitted: those whose rigid score is this close to the best (the ones that could still win
# or tie, MAX_FIT_GAIN + AMBIGUITY_MARGIN, and a few more for Swap Template) ...
FIT_MARGIN = 0.25
# ... unless even the best rigid score plus MAX_FIT_GAIN misses the threshold: then nothing is placed
# whatever a fit does, and nothing is fitted (the matches come back rigid, with unfitted lattices).
SKIP_HOPELESS = True


def deformation(fit: LatticeFit, size: float) -> tuple[float, float]:
    """(RMS control point offset left after the best affine map, largest log axis stretch of that map):
    the shape change a fit needed beyond new proportions, and the proportions' change."""
    rest = fit.lattice.rest_points()
    moved = fit.lattice.points()
    x = np.hstack([rest, np.ones((len(rest), 1))])
    coef, *_ = np.linalg.lstsq(x, moved, rcond=None)
    residual = moved - x @ coef
    sigma = np.linalg.svd(coef[:3], compute_uv=False)
    stretch = float(np.abs(np.log(np.maximum(sigma, 1e-6))).max())
    return float(np.sqrt((residual**2).sum(axis=1).mean())) / max(size, 1e-12), stretch


def unfitted(template: Template, settings: FitSettings | None = None) -> LatticeFit:
    """The rest lattice of ``template`` as a fit that moved nothing (for matches not worth fitting)."""
    s = settings or FIT_SETTINGS
    lattice = lattice_for(template.vertices, template.symmetry, s.resolution, s.margin)
    nan = float("nan")
    return LatticeFit(lattice, nan, nan, nan, 0.0, 0.0, np.zeros(lattice.num_points))


def threshold_for(trust: float) -> float:
    """The fitted score a template needs to be used, for depth trusted ``trust``."""
    return THRESHOLD + UNTRUSTED_MARGIN * (1.0 - float(np.clip(trust, 0.0, 1.0)))


def retrieve(
    mask: np.ndarray, zdepth: np.ndarray, camera: Camera, library: TemplateLibrary, label: str | None = None, *,
    depth_scale: bool = False, trust: float = 1.0, top: int = 3, threshold: float | None = None,
    settings: FitSettings | None = None, candidates: int = FIT_CANDIDATES,
) -> tuple[MatchResult, list[LatticeFit]]:
    """The best fitted templates for one object (best first, at most ``top``) and their lattices.

    ``mask``, ``zdepth``, ``camera``, ``label`` and ``depth_scale`` as for ``match.match_instance``;
    ``trust`` weights the depth in the ranking, the fit and the final score. Each match's ``score``
    is its fitted score (its rigid one in ``rigid_score``); ``threshold`` decides whether the best one
    is used (default: ``threshold_for``). The lattices are unfitted where no fit could reach it.
    """
    t0 = time.perf_counter()
    threshold = threshold_for(trust) if threshold is None else threshold
    rigid = tmatch.match_instance(mask, zdepth, camera, library, label, top=max(top, candidates, REFINE_TEMPLATES),
                                  refine_templates=REFINE_TEMPLATES, second_views=SECOND_VIEWS, extra_views=1,
                                  depth_scale=depth_scale, depth_trust=trust)
    timings = dict(rigid.timings)
    result = MatchResult(rigid.label, threshold=threshold, timings=timings)
    if not rigid.matches:
        return result, []
    best = rigid.matches[0].score
    hopeless = SKIP_HOPELESS and best + MAX_FIT_GAIN < threshold
    chosen: list[tmatch.Match] = []
    for m in rigid.matches:  # the best rigid match of each leading category: the rivals step 4 weighs
        if len(chosen) < candidates and m.score >= max(best - FIT_MARGIN, RIGID_FLOOR) \
                and m.category not in {c.category for c in chosen}:
            chosen.append(m)
    t1 = time.perf_counter()
    scored: list[tuple[tmatch.Match, LatticeFit]] = []
    if hopeless:  # no fit can lift any match to the threshold: they stay rigid
        scored = [(replace(m, rigid_score=m.score), unfitted(library.get(m.template, m.source), settings))
                  for m in chosen]
    else:
        inst = desc.instance_descriptor(mask, zdepth, float(camera.focal_px))
        window, object_size = tmatch.score_window(inst, mask, zdepth, camera)
    for m in chosen if not hopeless else []:
        tpl = library.get(m.template, m.source)
        fit = fit_match(m, library, camera, mask, zdepth, trust, settings)
        shape = fit.lattice.deform(tpl.vertices.astype(np.float64))
        score, iou, err, _ = tmatch.fit_score(shape, tpl.triangles, window, m.pose, object_size, depth_scale, trust)
        moved, stretch = deformation(fit, tpl.size)
        score -= DISPLACEMENT_WEIGHT * moved + STRETCH_WEIGHT * max(stretch - STRETCH_FREE, 0.0)
        score = max(min(float(score), m.score + MAX_FIT_GAIN), m.score)  # step 3: the fit adds, a little
        scored.append((replace(m, score=score, iou=iou, depth_error=err, rigid_score=m.score), fit))
    timings["fit"] = time.perf_counter() - t1
    scored.sort(key=lambda mf: -mf[0].score)
    result.matches = [m for m, _ in scored[:top]]
    # the matches left out rank FIT_MARGIN below the best: their fits could not bring them within the margin
    rivals = [m.score for m, _ in scored[1:] if m.category != scored[0][0].category]
    result.ambiguous = bool(rivals) and scored[0][0].score - max(rivals) < AMBIGUITY_MARGIN
    timings["total"] = time.perf_counter() - t0
    return result, [f for _, f in scored[:top]]
