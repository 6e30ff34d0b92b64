"""Find the templates that fit one segmented object, with their pose in camera space.

1. Prune: keep the ``PRUNE_KEEP`` candidates whose best view's outline is closest to the object's,
   proportions apart (silhouettes stretched to fill their boxes, a mild penalty for a different
   aspect ratio: the lattice fit changes proportions cheaply), with a mild prior for upright
   objects seen from slightly above. The outline holds for every engine's depth.
2. Coarse: add the depth term to the kept candidates' views: minus the spread of the depth
   difference over the overlap (scale-free grid), weighted by the depth's trust.
3. Refine: the best (template, view) pairs start a scale + rigid ICP against the
   reconstructed points; each step renders the posed template into the object's window, pairs
   pixels both cover along their ray (point-to-plane, weighted by the depth's trust) and pulls the
   outlines together (nearest points where only one of them covers a pixel; in the image plane
   when the depth is a guess, so a relief inflated from the outline cannot tilt the template).
4. Score: silhouette IoU of the posed template against the mask (forgiving one pixel), minus
   its mean (saturating) depth error relative to the object's size, minus a penalty for roll.
   Below ``THRESHOLD`` no template is used.

Relative depth maps (``depth_scale=True``) have an unknown relief scale: each stage then fits
the factor between the object's relief and the template's before comparing depths.

Poses map model space to camera space (``templates.pose``); the refinement is ``templates.icp``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from . import descriptors as desc
from .icp import DEPTH_SCALE_RANGE, Window, refine, relief_scale
from .library import SYM_REVOLUTION, SYM_SPHERE, TemplateLibrary

# Camera, Pose and orientation_error are re-exported: the matcher's callers import them from here
from .pose import Camera as Camera
from .pose import Pose as Pose
from .pose import orientation_error as orientation_error
from .pose import roll_degrees, rotation_between

THRESHOLD = 0.85
COARSE_DEPTH_WEIGHT = 1.0
DEPTH_WEIGHT = 2.0
DEPTH_CAP = 0.1  # relative depth error at which a pixel counts as simply wrong
ROLL_WEIGHT = 0.1  # score lost per (30 degrees of roll)^2: photos are rarely tilted much
PRUNE_KEEP = 40  # templates the silhouette-only pass keeps for the full comparison
ASPECT_WEIGHT = 0.5  # coarse score lost per unit of log aspect ratio between outlines ...
ASPECT_FREE = 0.2  # ... beyond this much (a lattice fit changes proportions cheaply)
REFINE_GRID = 48
SCORE_GRID = 80
WINDOW_GROW = 1.35  # refinement window side / descriptor window side
FINE_ITERATIONS = 5  # ICP iterations of a leading template's pose on the score grid (``match_instance``'s ``fine``)


@dataclass
class Match:
    """One template fitted to the object."""

    template: str
    category: str
    score: float
    iou: float
    depth_error: float  # mean |depth difference| / object size, over the overlap
    pose: Pose
    coarse_score: float
    view: tuple[float, float]  # azimuth, elevation (degrees) of the library view it started from
    source: str = ""  # the template's .blend ("" = the bundled library)
    depth_scale: float = 1.0  # relief of the object's depth / relief of the posed template (1 for metric depth)
    rigid_score: float | None = None  # the score of the rigid pose, where ``score`` is the fitted one

    def to_json(self) -> dict[str, Any]:
        return {"template": self.template, "category": self.category, "score": round(self.score, 4),
                "iou": round(self.iou, 4), "depth_error": round(self.depth_error, 4), "pose": self.pose.to_json(),
                "coarse_score": round(self.coarse_score, 4), "view": [float(v) for v in self.view],
                "source": self.source, "depth_scale": round(self.depth_scale, 4),
                "rigid_score": None if self.rigid_score is None else round(self.rigid_score, 4)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Match:
        return cls(data["template"], data["category"], float(data["score"]), float(data["iou"]),
                   float(data["depth_error"]), Pose.from_json(data["pose"]), float(data["coarse_score"]),
                   tuple(data["view"]), str(data.get("source", "")), float(data.get("depth_scale", 1.0)),
                   None if data.get("rigid_score") is None else float(data["rigid_score"]))


@dataclass
class MatchResult:
    """The best templates for one object (best first) and whether the best one is good enough."""

    label: str
    matches: list[Match] = field(default_factory=list)
    threshold: float = THRESHOLD
    timings: dict[str, float] = field(default_factory=dict)
    ambiguous: bool = False  # a template of another category with another shape fits about as well
    # categories whose templates fit about as well and, fitted, have the best's shape: the view cannot
    # tell them apart, but the best one's shape is theirs too (so it is used)
    ambiguous_with: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return bool(self.matches) and self.matches[0].score >= self.threshold and not self.ambiguous

    @property
    def best(self) -> Match | None:
        return self.matches[0] if self.accepted else None

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "accepted": self.accepted, "threshold": self.threshold,
                "ambiguous": self.ambiguous, "ambiguous_with": list(self.ambiguous_with),
                "matches": [m.to_json() for m in self.matches]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MatchResult:
        return cls(str(data.get("label", "object")), [Match.from_json(m) for m in data.get("matches", [])],
                   float(data.get("threshold", THRESHOLD)), ambiguous=bool(data.get("ambiguous", False)),
                   ambiguous_with=[str(c) for c in data.get("ambiguous_with", [])])


# --------------------------------------------------------------------------- stages

def _valid_views(library: TemplateLibrary, cand: list[int]) -> np.ndarray:
    """(C, V) bool: the views that are not repeats of another under the template's symmetry."""
    az, el = library.angles[:, 0], library.angles[:, 1]
    out = np.zeros((len(cand), len(az)), dtype=bool)
    for k, i in enumerate(cand):  # one row per candidate template
        sym = library.templates[i].symmetry
        if sym == SYM_SPHERE:
            out[k] = (az == 0) & (el == library.angles[:, 1].min())
        elif sym == SYM_REVOLUTION:
            out[k] = az == 0
        else:
            out[k] = az < 360.0 / max(sym, 1) - 1e-6
    return out


def coarse_scores(inst: desc.InstanceDescriptor, library: TemplateLibrary, cand: list[int],
                  depth_scale: bool = False, depth_trust: float = 1.0, silhouette: np.ndarray | None = None,
                  ) -> np.ndarray:
    """(C, V) coarse fit of every candidate view (-inf for symmetric repeats): the outline, proportions
    apart (``silhouette``, default ``silhouette_scores``), minus the depth term: the spread of the
    depth difference over the overlap, in template units; with ``depth_scale`` the object's relief
    is first rescaled by the factor that fits best.
    """
    g2 = desc.GRID * desc.GRID
    c, v = len(cand), library.angles.shape[0]
    iou = (silhouette_scores(inst, library, cand) if silhouette is None else silhouette).ravel()
    dep = library.depth[cand].reshape(c * v, g2)
    b = inst.depth.ravel()
    both = (dep > 0) & np.isfinite(b)
    ta = np.where(both, desc.dequantize_depth(dep), 0.0)
    tb = np.where(both, np.nan_to_num(b), 0.0)
    n = np.maximum(both.sum(axis=1), 1)
    sa, sb = ta.sum(axis=1), tb.sum(axis=1)
    caa = (ta * ta).sum(axis=1) - sa * sa / n
    cbb = (tb * tb).sum(axis=1) - sb * sb / n
    cab = (ta * tb).sum(axis=1) - sa * sb / n
    k = np.ones(len(caa))
    if depth_scale:
        k = np.clip(cab / np.maximum(caa, 1e-12), *DEPTH_SCALE_RANGE)
    rms = np.sqrt(np.maximum((caa - 2.0 * cab / k + cbb / k**2) / n, 0.0))
    rms = np.where(both.any(axis=1), rms, 1.0)
    score = (iou - COARSE_DEPTH_WEIGHT * depth_trust * rms).reshape(c, v) + view_prior(library)
    return np.where(_valid_views(library, cand), score, -np.inf)


def view_prior(library: TemplateLibrary) -> np.ndarray:
    """(V,) score bonus of each library view: objects are mostly seen upright from slightly above."""
    return -0.03 * ((library.angles[:, 1] - 20.0) / 60.0) ** 2


def silhouette_scores(inst: desc.InstanceDescriptor, library: TemplateLibrary, cand: list[int]) -> np.ndarray:
    """(C, V) how well each candidate view's outline fits the object's, proportions apart: IoU of the
    silhouettes stretched to fill their boxes, minus ``ASPECT_WEIGHT`` per unit of log aspect ratio
    beyond ``ASPECT_FREE`` (a lattice fit changes proportions cheaply, a shape not)."""
    sil, aspect = library.silhouettes
    sil, aspect = sil[cand], aspect[cand]
    c, v, k2 = sil.shape
    a8, a_aspect = desc.stretched_silhouettes(inst.coverage[None])
    flat = sil.reshape(c * v, k2)
    inter = np.minimum(flat, a8[0]).sum(axis=1, dtype=np.uint32)
    union = np.maximum(flat, a8[0]).sum(axis=1, dtype=np.uint32)
    iou = (inter / np.maximum(union, 1)).reshape(c, v)
    return iou - ASPECT_WEIGHT * np.maximum(np.abs(aspect - a_aspect[0]) - ASPECT_FREE, 0.0)


def prune(silhouette: np.ndarray, keep: int = PRUNE_KEEP) -> np.ndarray:
    """Rows of ``silhouette`` (``silhouette_scores`` plus the view prior, -inf for repeated views)
    whose best view is among the ``keep`` best, in their order."""
    if len(silhouette) <= keep:
        return np.arange(len(silhouette))
    return np.sort(np.argsort(-silhouette.max(axis=1), kind="stable")[:keep])


def _seed_templates(best: np.ndarray, categories: list[str], count: int, siblings: int) -> np.ndarray:
    """The candidates (indices into ``best``, their best coarse scores) whose poses are refined: the
    ``count`` best, then the ``siblings`` next best of the leading category (a category's templates
    differ in parts, a stool's stretchers or a column, which the coarse outline hardly sees)."""
    ranked = np.argsort(-best, kind="stable").tolist()
    order = ranked[:count]
    if siblings > 0 and ranked:
        order += [k for k in ranked if categories[k] == categories[ranked[0]] and k not in order][:siblings]
    return np.array(order, dtype=int)


def _initial_pose(library: TemplateLibrary, t: int, view: int, inst: desc.InstanceDescriptor, camera: Camera,
                  rotations: np.ndarray) -> Pose:
    """Place the template so its view window lands on the instance's window."""
    cx, cy, side, dref = (float(x) for x in library.windows[t, view])
    x0, y0, side_px = inst.window
    f = float(camera.focal_px)
    u = np.array([x0 + 0.5 * side_px, y0 + 0.5 * side_px])
    ray = np.array([(u[0] - 0.5 * camera.width) / f, (0.5 * camera.height - u[1]) / f, -1.0])
    r_ray = rotation_between(np.array([0.0, 0.0, -1.0]), ray)
    rot = r_ray @ rotations[view]
    scale = inst.side_m / side
    centre = ray * inst.z_ref
    t_vec = centre - scale * r_ray @ np.array([cx, cy, -dref])
    return Pose(rot, t_vec, scale)


def _dilate(mask: np.ndarray) -> np.ndarray:
    """3x3 binary dilation."""
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    grown = out.copy()
    grown[:, 1:] |= out[:, :-1]
    grown[:, :-1] |= out[:, 1:]
    return grown


def tolerant_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU that forgives one pixel of misalignment: pixels of each mask within one pixel of the
    other count as shared (thin legs and handles would otherwise dominate the score)."""
    na, nb = int(a.sum()), int(b.sum())
    if na == 0 or nb == 0:
        return 0.0
    shared_a = int((a & _dilate(b)).sum())
    shared_b = int((b & _dilate(a)).sum())
    shared = 0.5 * (shared_a + shared_b)
    return float(shared / (na + nb - shared))


def fit_score(vertices: np.ndarray, triangles: np.ndarray, window: Window, pose: Pose, object_size: float,
              depth_scale: bool = False, depth_trust: float = 1.0) -> tuple[float, float, float, float]:
    """(score, IoU, relative depth error, relief scale) of a posed template against the window's
    mask and depth (the relief rescaled to the template's first with ``depth_scale``)."""
    ras = window.render(vertices, triangles, pose)
    hit = ras.mask
    iou = tolerant_iou(hit, window.mask)
    k = relief_scale(ras, window) if depth_scale else 1.0
    zi = window.rescaled(k, window.z_centre).z if depth_scale else window.z
    inter = ~_dilate(~hit) & ~_dilate(~window.mask)  # away from both outlines: no mixed depths
    if not inter.any():
        inter = hit & window.mask
    if inter.any():
        # saturating: a rim seen a pixel off (a depth jump inside the outline) costs little
        err = float(np.minimum(np.abs(ras.depth[inter] - zi[inter]) / object_size, DEPTH_CAP).mean())
    else:
        err = 1.0
    roll = roll_degrees(pose.rotation)
    score = iou - DEPTH_WEIGHT * depth_trust * err - ROLL_WEIGHT * (roll / 30.0) ** 2
    return score, iou, err, k


def score_window(inst: desc.InstanceDescriptor, mask: np.ndarray, zdepth: np.ndarray, camera: Camera,
                 grid: int = SCORE_GRID) -> tuple[Window, float]:
    """The window poses are scored in (``grid`` cells a side around the object) and the object's size."""
    x0, y0, side_px = inst.window
    centre = np.array([x0 + 0.5 * side_px, y0 + 0.5 * side_px])
    window = Window.sample(mask, zdepth, camera, centre, side_px * WINDOW_GROW, grid)
    return window, inst.side_m / (1.0 + 2.0 * desc.MARGIN)


def match_instance(
    mask: np.ndarray, zdepth: np.ndarray, camera: Camera, library: TemplateLibrary, label: str | None = None, *,
    top: int = 3, refine_templates: int = 6, second_views: int = 4, extra_views: int = 2, iterations: int = 10,
    threshold: float = THRESHOLD, depth_scale: bool = False, depth_trust: float = 1.0, prune_keep: int = PRUNE_KEEP,
    fine: int = 0, siblings: int = 0,
) -> MatchResult:
    """The ``top`` best templates for one object (``mask`` (H, W) bool, ``zdepth`` (H, W) distances
    along the camera axis, ``camera`` with ``width``, ``height`` and ``focal_px``).

    Candidates are the templates answering to ``label`` (all of them for an unknown label), of which
    the ``prune_keep`` best by silhouette are compared in full.
    ``depth_scale``: the depth is relative (its relief has an unknown scale), fit that scale too.
    ``depth_trust`` (``templates.fit.DEPTH_TRUST``) weights every depth term against the silhouette.
    The best view of the ``refine_templates`` best candidates, and ``extra_views`` more views (at
    least 45 degrees apart) of the first ``second_views``, are refined; each template keeps its
    best refined pose. The ``fine`` best templates' poses are refined once more on the finer grid they
    are scored on. The ``siblings`` next best templates of the leading category, pruned or not,
    are refined too (``_seed_templates``).
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    result = MatchResult(label=str(label or "object"), threshold=threshold, timings=timings)
    mask = np.asarray(mask, dtype=bool)
    zdepth = np.asarray(zdepth, dtype=np.float64)
    if mask.shape != zdepth.shape:
        raise ValueError(f"mask {mask.shape} and depth {zdepth.shape} differ in shape")
    if mask.sum() < 16 or len(library) == 0:
        return result
    inst = desc.instance_descriptor(mask, zdepth, float(camera.focal_px))
    cand = library.candidates(label)
    silhouette = np.where(_valid_views(library, cand), silhouette_scores(inst, library, cand), -np.inf)
    kept = prune(silhouette + view_prior(library), prune_keep)
    scores = coarse_scores(inst, library, [cand[i] for i in kept], depth_scale, depth_trust, silhouette[kept])
    if siblings > 0:  # the leading category's templates the pruning left out, scored coarsely too
        lead = library.templates[cand[kept[int(scores.max(axis=1).argmax())]]].category
        extra = np.setdiff1d(np.array([i for i, ti in enumerate(cand) if library.templates[ti].category == lead],
                                      dtype=kept.dtype), kept)
        scores = np.concatenate([scores, coarse_scores(inst, library, [cand[i] for i in extra], depth_scale,
                                                       depth_trust, silhouette[extra])])
        kept = np.concatenate([kept, extra])
    cand = [cand[i] for i in kept]
    timings["coarse"] = time.perf_counter() - t0

    best_view = scores.argmax(axis=1)
    order = _seed_templates(scores.max(axis=1), [library.templates[t].category for t in cand],
                            max(refine_templates, top), siblings)
    seeds = [(int(k), int(best_view[k])) for k in order]
    rotations = desc.view_rotations()
    apart = np.degrees(np.arccos(np.clip((np.einsum("aij,bij->ab", rotations, rotations) - 1.0) * 0.5, -1, 1)))
    for k in order[:second_views]:  # other, distant views of the leading templates (front/back flips)
        row = scores[k].copy()
        chosen = [int(best_view[k])]
        for _ in range(extra_views):
            row[np.any(apart[chosen] < 45.0, axis=0)] = -np.inf
            if not np.isfinite(row.max()):
                break
            chosen.append(int(row.argmax()))
            seeds.append((int(k), chosen[-1]))

    fine_win, object_size = score_window(inst, mask, zdepth, camera)
    coarse_win = score_window(inst, mask, zdepth, camera, REFINE_GRID)[0]
    best_per_template: dict[int, Match] = {}

    def refined(ti: int, window: Window, pose: Pose, steps: int) -> tuple[Pose, float, float, float, float]:
        """``pose`` of template ``ti`` refined ``steps`` ICP iterations on ``window``, scored on the fine grid."""
        tpl = library.templates[ti]
        verts = tpl.vertices.astype(np.float64)
        pose = refine(verts, tpl.triangles, window, pose, steps, depth_scale=depth_scale, depth_trust=depth_trust)
        return (pose, *fit_score(verts, tpl.triangles, fine_win, pose, object_size, depth_scale, depth_trust))

    t1 = time.perf_counter()
    for k, view in seeds:  # a few ICP runs
        ti = cand[k]
        tpl = library.templates[ti]
        start = _initial_pose(library, ti, view, inst, camera, rotations)
        pose, score, iou, err, relief = refined(ti, coarse_win, start, iterations)
        m = Match(tpl.name, tpl.category, score, iou, err, pose, float(scores[k, view]),
                  (float(library.angles[view][0]), float(library.angles[view][1])), tpl.source, relief)
        if ti not in best_per_template or score > best_per_template[ti].score:
            best_per_template[ti] = m
    for ti, m in sorted(best_per_template.items(), key=lambda kv: -kv[1].score)[:fine]:
        pose, score, iou, err, relief = refined(ti, fine_win, m.pose, FINE_ITERATIONS)
        if score > m.score:
            best_per_template[ti] = replace(m, score=score, iou=iou, depth_error=err, pose=pose, depth_scale=relief)
    timings["refine"] = time.perf_counter() - t1
    result.matches = sorted(best_per_template.values(), key=lambda m: -m.score)[:top]
    timings["total"] = time.perf_counter() - t0
    return result
