"""The template body: the numpy half of a blend that keeps the fitted template's own mesh (its
handles, legs, insides: what no camera ray's first or last hit sees) and puts its seen side on the
reconstruction.

Every template vertex the camera sees (``templates.blend.visibility_weights``) gets a pull target:
the first point where the camera ray through it meets the reconstruction's surface (its front, as the
photo's depth placed it). Seen vertices whose ray misses the reconstruction (the template's outline
reaches past the mask) or meets it farther than ``MAX_GAP`` of the object's size behind the vertex
(the ray passes the template's part through a hole of the reconstruction, or a wrong part of the
template lies there) keep the template: their weight is 0. Hidden vertices keep the template too.

The Blender half (``scene.template_body``) makes the same cast live, in geometry nodes, from the
camera through each (lattice-deformed) vertex; this module gives the weights it starts from and, for
the benchmark's bound, the blended vertices themselves.
"""

from __future__ import annotations

import math

import numpy as np

from .blend import visibility_weights
from .match import Camera, Pose
from .policy import MEASURED_TRUST
from .ray_shell import GRID, resample

# With measured depth the body is used where the fitted template's silhouette IoU against the mask is at
# least this (else the ray shell: the reconstruction's seen side vertex for vertex): on meshes/category the
# body's seen side loses visible F@0.1 where the outline fits worse, more than the full shape gains
BODY_MIN_IOU = 0.94
MAX_GAP = 0.1  # fraction of the object's size a seen vertex may lie off the reconstruction along its ray
# fraction of the size a hit may lie off its ray: the raster picks each ray's triangle, a neighbour of the
# one it crosses where triangles are finer than its pixels, and the hit is put on it
ON_RAY = 2.0 / GRID


def body_fits(fit_iou: float, trust: float) -> bool:
    """Whether the template body (rather than the ray shell) suits a fitted template of silhouette IoU
    ``fit_iou`` (NaN: not fitted) over depth trusted ``trust``."""
    return float(trust) < MEASURED_TRUST or math.isnan(fit_iou) or fit_iou >= BODY_MIN_IOU


def ray_targets(points: np.ndarray, wanted: np.ndarray, surface: np.ndarray, triangles: np.ndarray,
                max_gap: float = MAX_GAP) -> tuple[np.ndarray, np.ndarray]:
    """Where the camera ray through each ``wanted`` point first meets the surface.

    ``points`` (N, 3) and ``surface`` (V, 3) are in camera space (camera at the origin, looking down
    -Z), ``triangles`` (T, 3) index ``surface``. Returns (targets (N, 3), hit (N,) bool); a hit is
    within ``max_gap`` of the points' size of its point (other rows are undefined)."""
    pts = np.asarray(points, np.float64)
    surf = np.asarray(surface, np.float64)
    wanted = np.asarray(wanted, bool)
    target, hit, _, dist = resample(pts, wanted, np.zeros(len(pts), bool), surf, surf, triangles)
    if hit.any():
        size = float(np.linalg.norm(np.ptp(pts, axis=0)))
        hit &= np.abs(dist - np.linalg.norm(pts, axis=1)) <= max_gap * size
        # the raster's triangle met well off the ray (the ray passes outside the surface's outline): a miss,
        # as the exact cast that Blender makes finds it
        rays = pts / np.maximum(np.linalg.norm(pts, axis=1, keepdims=True), 1e-30)
        hit &= np.linalg.norm(np.cross(target, rays), axis=1) <= ON_RAY * size
    return target, hit


def body_weights(fitted: np.ndarray, triangles: np.ndarray, pose: Pose, camera: Camera, trust: float,
                 surface: np.ndarray, surface_triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-vertex pull weights of the template body and its camera-space pull targets
    (``body_pulls`` without the overhang)."""
    weights, target, _ = body_pulls(fitted, triangles, pose, camera, trust, surface, surface_triangles)
    return weights, target


def body_pulls(fitted: np.ndarray, triangles: np.ndarray, pose: Pose, camera: Camera, trust: float,
               surface: np.ndarray, surface_triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-vertex pull weights of the template body, its camera-space pull targets and its overhang.

    ``fitted``: the fitted template's vertices in model space (posed by ``pose``); ``surface`` /
    ``surface_triangles``: the reconstruction in camera space. A vertex weighs its visibility
    (``templates.blend.visibility_weights`` for depth ``trust``) where its ray meets the
    reconstruction near it, else 0. (Pulling also the hidden vertices that lie in front of the
    reconstruction onto it, where the camera would have seen them, measured about even on the visible
    side and fills a handle's hole where the reconstruction's tear leaves a skirt: not done.)
    The overhang weighs the visibility of the seen vertices the pull leaves (their ray misses the
    reconstruction, or meets it far off: the fitted outline reaches past the mask, a rim stands above
    the photo's): the camera sees them where the photo shows something else, so the blend moves them
    onto the reconstruction's nearest surface point instead; with measured depth only (measured on
    meshes/category: onto the classic engine's guessed relief it cost classic+truecat full F)."""
    seen = visibility_weights(fitted, triangles, pose, camera, trust)
    posed = pose.apply(fitted)
    target, hit = ray_targets(posed, np.ones(len(posed), bool), surface, surface_triangles)
    weights = np.where(hit, seen, 0.0)
    # what the pull uncovered (template parts hidden behind what went onto the surface) and meets the
    # surface near it goes onto it too
    again = visibility_weights(blended(posed, weights, target), triangles, Pose(np.eye(3), np.zeros(3), 1.0),
                               camera, trust)
    weights = np.where(hit & (weights == 0), again, weights)
    if float(trust) < MEASURED_TRUST:  # a guessed relief (the classic engine's) is no place to put it
        return weights, target, np.zeros(len(weights))
    overhang = np.where(weights == 0, np.maximum(seen, again), 0.0)
    return weights, target, overhang


def blended(posed: np.ndarray, weights: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The body's vertices (camera space) with every vertex moved ``weights`` of the way onto its
    target (what the Blender modifiers show at a weight where the seen side is the photo's)."""
    w = np.asarray(weights, np.float64)[:, None]
    return np.where(w > 0, posed + w * (np.asarray(target, np.float64) - posed), posed)
