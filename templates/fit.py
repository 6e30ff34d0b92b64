"""Fit the lattices of an object's matched templates: the step between the rigid match and the
placement, shared by the Blender blend and the benchmarks.

How far the object's depth map may pull the template depends on where the depth came from
(``DEPTH_TRUST``): a metric map or the user's own file is trusted fully, a learned relative map
(after the match fitted its relief scale) half, the classic and drawing engines' reliefs (guesses from the
silhouette) barely; the outline of the mask always counts fully.

Depth trusted at least ``POSE_TRUST`` (a metric map, the user's own) also refines the placed
template's pose on the object's visible surface (``templates.pose_fit``: turned, moved and
stretched along its own axes) before its lattice is fitted again: the rigid match's pose is a
coarse one, and the lattice cannot turn a template or move its axis. A surface of revolution is then
moved along the view onto the axis its seen surface has (``place_on_axis``, ``templates.axis``): the
outline and a weak depth term leave it about 1 % of the size off there, and its hidden side with it.
It then takes the seen surface's profile (``templates.profile``): between its lattice's few layers the
template's profile is the library's, about 1 % of the size off a real bowl's, all round.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

try:
    from ..geometry.blas import single_threaded
except ImportError:  # imported as a top-level ``templates`` (tools/, bench/: the repository root on sys.path)
    from geometry.blas import single_threaded  # type: ignore[no-redef]

from . import axis as taxis
from .ffd import Lattice, is_revolution, lattice_for, mirror_axes, symmetry_basis
from .ffd_fit import FitSettings, LatticeFit, fit_lattice
from .library import SYM_REVOLUTION, TemplateLibrary
from .match import Camera, Match, MatchResult, Pose
from .policy import MEASURED_TRUST
from .pose_fit import refine_pose
from .profile import fit_profile, revolution_body

# Where the depth came from -> weight of the depth term in the lattice fit (the outline's is 1).
DEPTH_TRUST = {
    "metric": 1.0,  # a metric depth model, or any map the worker was told is metric
    "file": 1.0,  # the user's own depth map (scanned, rendered): exact up to the relief scale fitted
    "relative": 0.5,  # a learned relative map, its relief scale fitted by the match
    "classic": 0.1,  # the classic engine's relief: a guess from the silhouette
    "drawing": 0.1,  # the drawing engine's relief: the outline inflated, a guess from the silhouette too
}


# The fit's weights as placed: with depth trusted fully the depth term outweighs the outline five to
# one (a mirror lattice cannot move the template's mirror planes, nor one of revolution its axis over a
# guessed relief, so an outline that disagrees with the rigid pose would otherwise pull the seen front
# off the depth map; see ``settings_for`` for surfaces of revolution over measured depth).
FIT_SETTINGS = FitSettings(depth_weight=5.0)
POSE_TRUST = MEASURED_TRUST  # depth trusted at least this much refines the pose on the visible surface
# Categories whose real members often have oval sections (flasks, shampoo and flat wine bottles): their
# surfaces of revolution may flatten, layer by layer (``ffd.symmetry_basis``'s ``oval``).
OVAL_CATEGORIES = frozenset({"bottle"})


# With measured depth a surface of revolution's axis moves with the fit, so the outline no longer pulls the
# seen front off the depth map, and the depth term (the template's visible vertices against the map's
# pixels they fall on, off near the outline and on a bowl's rim) weighs less: on meshes/category (oracle,
# true category) the blend's full F@0.1 over bottle, can, bowl and plate went 0.61 -> 0.65 from weight 5 to
# 0.25, and its visible F@0.1 0.954 -> 0.962 (1 and 0.5 lay between; below 0.25 a flat bottle's fit jumps).
REVOLUTION_DEPTH_WEIGHT = 0.25


# Depth trusted no more than this is a relief guessed from the silhouette (the classic and drawing engines
# inflate the mask): it tells the lattice nothing the outline does not, and pulls the template toward the
# inflation's dome. On meshes/category (classic engine, true category, December 2026) fitting the outline
# alone took full F@0.1 0.276 -> 0.327 (a tea cup's lattice had moved 32 % of its size chasing the dome:
# 0.19 -> 0.70; a plate 0.20 -> 0.84) and the default blend's 0.147 -> 0.173, at a volumetric IoU of
# 0.397 -> 0.360 (a carton's depth, no longer held, came out thinner); a tenth of the weight lay between
# (0.310 / 0.385).
GUESSED_TRUST = DEPTH_TRUST["classic"]


def settings_for(category: str, trust: float = 1.0, revolution: bool = False) -> FitSettings:
    """The lattice fit's settings for a template of ``category`` (a surface of ``revolution`` or not) over
    depth trusted ``trust``: with measured depth a surface of revolution's axis may move across (and an
    oval category's sections flatten) and its depth weighs ``REVOLUTION_DEPTH_WEIGHT``; a guessed relief
    cannot tell how far along the view the axis or a section should go, so there neither does, and a relief
    guessed from the silhouette alone (``GUESSED_TRUST``) is left out of the fit."""
    if trust <= GUESSED_TRUST:
        return replace(FIT_SETTINGS, move_axis=False, depth_weight=0.0)
    if trust < POSE_TRUST:
        return replace(FIT_SETTINGS, move_axis=False)
    if not revolution:
        return FIT_SETTINGS
    return replace(FIT_SETTINGS, depth_weight=REVOLUTION_DEPTH_WEIGHT, oval=category in OVAL_CATEGORIES)

# singular values of the stretch's vertex fit (relative to the largest) below which its directions are left at
# the control points' stretch (``stretch_lattice``): over the library stretched by (1.2, 0.69, 1.2) and
# (0.9, 1.1, 1.3) the lattices' largest offset went 9114 -> 0.20 of the template's size, its vertices' RMS
# error 0.69 % -> 0.69 % (at most 0.08 % more on any template)
STRETCH_RCOND = 1e-2
POSE_TURNS = (0.0, 45.0, 90.0, 135.0, 180.0, 225.0, 270.0, 315.0)  # starts about the up axis (not for revolution)
# The placed template's lattice, fitted again from its refined pose's stretch, keeps its offsets near that
# stretch (``FitSettings.magnitude``, a hundred times retrieval's, whose threshold was set with its own): a
# thin template's lattice points across its thickness are barely tied to the photo, and a keyboard's went
# 0.55 of its size astray (RMS 0.21; 0.006 with this, its outline IoU 0.960 -> 0.974). On meshes/category
# (oracle) full F@0.1 0.631 -> 0.638, visible F@0.1 0.971 -> 0.976 with TURN_MARGIN (pose_fit); 1e-2 gave
# 0.639 / 0.974, its true-category row 0.649 against 0.652
PLACED_MAGNITUDE = 1e-3
IOU_SLACK = 0.02  # a refined pose may lose this much silhouette IoU (it gains the depth) ...
# ... but not a surface of revolution's over measured depth: its lattice moves the axis itself, and on
# meshes/category a refined pose that fitted the outline worse left a bowl's rim off (visible F@0.1 0.94 -> 0.78)
REVOLUTION_IOU_SLACK = 0.0


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
                       settings=settings or settings_for(tpl.category, trust, is_revolution(tpl.symmetry)))


def fit_matches(result: MatchResult, library: TemplateLibrary, camera: Camera, mask: np.ndarray,
                zdepth: np.ndarray, trust: float, settings: FitSettings | None = None) -> list[LatticeFit]:
    """One fitted lattice per match of ``result`` (best first), so Swap Template needs no refit."""
    return [fit_match(m, library, camera, mask, zdepth, trust, settings) for m in result.matches]


def stretch_lattice(vertices: np.ndarray, symmetry: int, pose: Pose, settings: FitSettings | None = None,
                    resize: bool = True) -> tuple[Pose, Lattice]:
    """A pose whose matrix holds a stretch along the model's axes (``templates.pose_fit``) split into a
    similarity (with the stretch's uniform part) and the rest lattice's offsets that stretch the template
    alike: the Fit slider then scales the stretch with the rest of the fit (0 = the library's proportions).
    The lattice reproduces the stretch at the vertices as closely as its interpolation allows (exactly away
    from its ends)."""
    cfg = settings or FIT_SETTINGS
    v = np.asarray(vertices, np.float64)
    lat = lattice_for(v, symmetry, cfg.resolution, cfg.margin, cfg.layers)
    d = np.linalg.norm(pose.rotation, axis=0)
    rot = pose.rotation / d[None, :]
    # the stretch's uniform part (least squares over the vertices) goes to the similarity: at Fit 0 the
    # placed template keeps the library's proportions at the size the refined pose found, not the rigid
    # match's. Not for retrieval's scoring (``resize`` False): its threshold was set with the whole stretch
    # in the lattice, and a thin-legged table's fit from the other split scored 0.865 where 0.88 placed it
    spread = v.var(axis=0)
    grow = float(d @ spread / max(float(spread.sum()), 1e-30)) if resize else 1.0
    d = d / grow
    c = lat.origin
    sim = Pose(rot, pose.translation + pose.scale * grow * rot @ ((d - 1.0) * c), pose.scale * grow)
    revolution = is_revolution(symmetry)
    basis = symmetry_basis(lat, revolution, () if revolution else mirror_axes(v, cfg.mirror_tolerance), cfg.oval,
                           cfg.move_axis)
    # the stretch at the control points: what the lattice's interpolation reproduces away from its ends
    theta = np.linalg.lstsq(basis, ((d - 1.0) * (lat.rest_points() - c)).ravel(), rcond=None)[0]
    w = lat.weights(v)
    fields = np.stack([(w @ b.reshape(-1, 3)).ravel() for b in basis.T], axis=1)  # each basis offset at the vertices
    # corrected at the vertices (near the ends) only along what the vertices determine: a thin template's
    # points across its thickness are barely tied to any vertex, and a full least-squares solve gave them
    # offsets thousands of times its size that cancel at the vertices (a wall clock's fit, 2360 x)
    miss = ((d - 1.0) * (v - c)).ravel() - fields @ theta
    theta = theta + np.linalg.lstsq(fields, miss, rcond=STRETCH_RCOND)[0]
    return sim, lat.with_offsets((basis @ theta).reshape(-1, 3))


def refine_match(match: Match, fit: LatticeFit, library: TemplateLibrary, camera: Camera, mask: np.ndarray,
                 zdepth: np.ndarray, trust: float, settings: FitSettings | None = None,
                 turns: tuple[float, ...] = POSE_TURNS, placed: bool = True) -> tuple[Match, LatticeFit]:
    """``match`` with its pose refined on the object's visible surface (its stretch handed to the
    lattice, ``stretch_lattice``) and its lattice fitted again from there, for depth trusted at least
    ``POSE_TRUST``; ``match`` and its ``fit`` as they were otherwise, or when the refined template fits
    the outline worse (by more than ``IOU_SLACK``; a surface of revolution's by anything). The
    refinement starts from the pose turned about the template's up axis by each of ``turns`` (degrees; a
    surface of revolution needs no turn). ``placed``: the template to be placed, whose stretch gives its
    uniform part to the pose (``stretch_lattice``'s ``resize``) and whose lattice is held near that
    stretch (``PLACED_MAGNITUDE``); False for retrieval's scoring, which keeps ``settings`` and the whole
    stretch in the lattice, as its threshold was set."""
    if trust < POSE_TRUST:
        return match, fit
    t0 = time.perf_counter()
    tpl = library.get(match.template, match.source)
    revolution = is_revolution(tpl.symmetry)
    cfg = settings or settings_for(tpl.category, trust, revolution)
    if placed:
        cfg = replace(cfg, magnitude=PLACED_MAGNITUDE)
    depth = rescaled_depth(zdepth, mask, match.depth_scale)
    pose, err = refine_pose(tpl.vertices, tpl.triangles, match.pose, camera, mask, depth, revolution,
                            turns=(0.0,) if revolution else turns)
    if not np.isfinite(err):
        return match, fit
    sim, start = stretch_lattice(tpl.vertices, tpl.symmetry, pose, cfg, resize=placed)
    new = fit_lattice(tpl.vertices, tpl.triangles, sim, camera, mask, depth, trust, tpl.symmetry, settings=cfg,
                      lattice=start)
    if not new.iou >= fit.iou - (REVOLUTION_IOU_SLACK if revolution else IOU_SLACK):
        return match, fit
    return replace(match, pose=sim), replace(new, seconds=fit.seconds + time.perf_counter() - t0)


AXIS_POINTS = 16  # points along a template's axis of revolution, deformed by its lattice, that give its axis
# A body of revolution with parts (a mug's or a tea cup's handle: ``profile.revolution_body``) keeps its pose
# and takes the seen profile only, read about each one's own axis, so the two may lean apart further than a
# surface of revolution's may before it is moved (on meshes/category's cup and mug the fitted template's axis
# leaned 3-4.5 degrees from the seen one where the profile took full F@0.1 0.74 -> 0.79, 0.46 -> 0.49;
# 8.8 degrees on a view where the handle faced the camera). A surface of revolution's may not (the library's
# faceted Bowl leans its seen axis 3-6 degrees on some views: its profile then cost full F@0.1 0.995 -> 0.961).
BODY_TILT = 6.0
# The profile, unlike the move, is taken where fewer of the seen side's normals meet the seen axis: a handle's
# do not (a third of a tea cup's on its renders, where the seen axis was within 1 degree and 0.4 % of the
# size), nor a real can's dented, ribbed side's (67-70 %): its profile took full F@0.1 0.72 -> 0.77 and
# 0.68 -> 0.79 on meshes/category (it is not moved: that axis lies 1.1 % of the size off the GT one there)
PROFILE_INLIERS = 0.6


def place_on_axis(match: Match, fit: LatticeFit, library: TemplateLibrary, camera: Camera, mask: np.ndarray,
                  zdepth: np.ndarray, trust: float) -> tuple[Match, LatticeFit]:
    """``match`` moved along the view onto the axis of revolution of the object's seen surface
    (``templates.axis``), for a surface of revolution over depth trusted at least ``POSE_TRUST``, and
    its ``fit`` given the seen surface's profile about that axis (``templates.profile``); the pose is
    scaled about the camera, so its outline stays. A body of revolution with parts (a mug) keeps its
    pose and takes the profile only. Both as they were for other templates, for guessed depth, or
    where the seen surface's axis is not the template's (``axis.seen_offset``)."""
    tpl = library.get(match.template, match.source)
    revolution = tpl.symmetry == SYM_REVOLUTION
    if trust < POSE_TRUST or not (revolution or revolution_body(tpl.vertices)):
        return match, fit
    height = np.linspace(float(tpl.vertices[:, 2].min()), float(tpl.vertices[:, 2].max()), AXIS_POINTS)
    axis_points = fit.lattice.deform(np.stack([np.zeros_like(height), np.zeros_like(height), height], axis=1))
    template = taxis.template_axis(match.pose, axis_points)
    size = float(match.pose.scale) * tpl.size
    points, normals = taxis.surface_points(mask, rescaled_depth(zdepth, mask, match.depth_scale), camera, size)
    seen = taxis.revolution_axis(points, normals, template, size)
    if seen is None or taxis.seen_offset(seen, template, size, taxis.MAX_TILT if revolution else BODY_TILT,
                                         PROFILE_INLIERS) is None:
        return match, fit
    pose = taxis.onto_seen_axis(match.pose, seen, template, size) if revolution else None  # its own, stricter gates
    if pose is not None:
        match = replace(match, pose=pose)
        template = taxis.template_axis(pose, axis_points)
    profile = fit_profile(tpl.vertices, tpl.triangles, match.pose, fit.lattice, points, normals, template,
                          (seen.direction, seen.point), size)
    return match, replace(fit, profile=profile)


@single_threaded()
def refine_matches(result: MatchResult, fits: list[LatticeFit], library: TemplateLibrary, camera: Camera,
                   mask: np.ndarray, zdepth: np.ndarray, trust: float) -> tuple[MatchResult, list[LatticeFit]]:
    """The best match of ``result`` refined as by ``refine_match`` from every turn of ``POSE_TURNS`` (the
    ranking stays). The others (Swap Template's) keep the lattice retrieval fitted at their silhouette pose:
    refining them took 0.2-0.75 s more per placed object (bench_retrieval's category views, oracle depth;
    the median of retrieval plus refinement 0.96 -> 0.79 s) for candidates that are seldom shown. The best's
    lattice is fitted again with its offsets held near its refined stretch (``PLACED_MAGNITUDE``)."""
    if trust < POSE_TRUST or not fits:
        return result, fits
    best, fit = refine_match(result.matches[0], fits[0], library, camera, mask, zdepth, trust, turns=POSE_TURNS)
    best, fit = place_on_axis(best, fit, library, camera, mask, zdepth, trust)
    return replace(result, matches=[best, *result.matches[1:]]), [fit, *fits[1:]]
