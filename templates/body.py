"""The template body: the numpy half of a blend that keeps the fitted template's own mesh (its
handles, legs, insides: what no camera ray's first or last hit sees) and puts its seen side on the
reconstruction.

Every template vertex the camera sees (``templates.blend.visibility_weights``) gets a pull target:
the first point where the camera ray through it meets the reconstruction's surface (its front, as the
photo's depth placed it). Seen vertices whose ray misses the reconstruction (the template's outline
reaches past the mask) or meets it farther than ``MAX_GAP`` of the object's size from the vertex
(the ray passes the template's part through a hole of the reconstruction, or a wrong part of the
template lies there) keep the template: their weight is 0. Hidden vertices keep the template too.

The Blender half (``scene.template_body``) makes the same cast live, in geometry nodes, from the
camera through each (lattice-deformed) vertex; this module gives the weights it starts from and, for
the benchmark's bound, the blended vertices themselves.
"""

from __future__ import annotations

import numpy as np

from .blend import visibility_weights
from .match import Camera, Pose
from .ray_shell import resample

MAX_GAP = 0.1  # fraction of the object's size a seen vertex may lie off the reconstruction along its ray


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
    return target, hit


def body_weights(fitted: np.ndarray, triangles: np.ndarray, pose: Pose, camera: Camera, trust: float,
                 surface: np.ndarray, surface_triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-vertex pull weights of the template body and its camera-space pull targets.

    ``fitted``: the fitted template's vertices in model space (posed by ``pose``); ``surface`` /
    ``surface_triangles``: the reconstruction in camera space. A vertex weighs its visibility
    (``templates.blend.visibility_weights`` for depth ``trust``) where its ray meets the
    reconstruction near it, else 0."""
    seen = visibility_weights(fitted, triangles, pose, camera, trust)
    posed = pose.apply(fitted)
    target, hit = ray_targets(posed, seen > 0, surface, surface_triangles)
    return np.where(hit, seen, 0.0), target


def uncovered_faces(points: np.ndarray, front: np.ndarray, face_sizes: np.ndarray, loops: np.ndarray,
                    posed: np.ndarray, triangles: np.ndarray, max_gap: float = MAX_GAP) -> np.ndarray:
    """Which faces of the reconstruction (all corners ``front``) the template body leaves uncovered:
    a corner's camera ray meets the posed template's front farther than ``max_gap`` of the template's
    size from it, or misses it (the mask reaches past the template's outline). ``points`` and
    ``posed`` are in camera space; (F,) bool."""
    pts = np.asarray(points, np.float64)
    front = np.asarray(front, bool)
    tpl = np.asarray(posed, np.float64)
    _, hit, _, dist = resample(pts, front, np.zeros(len(pts), bool), tpl, tpl, triangles)
    size = float(np.linalg.norm(np.ptp(tpl, axis=0)))
    covered = hit & (np.abs(dist - np.linalg.norm(pts, axis=1)) <= max_gap * size)
    sizes = np.asarray(face_sizes, np.int64)
    corners = np.asarray(loops, np.int64)
    face_of_loop = np.repeat(np.arange(sizes.size), sizes)
    all_front = np.bincount(face_of_loop, front[corners], sizes.size) == sizes
    any_bare = np.bincount(face_of_loop, (front & ~covered)[corners], sizes.size) > 0
    return all_front & any_bare


def submesh(face_sizes: np.ndarray, loops: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The faces ``keep`` of a polygon mesh on their own: (their vertices' old indices, face sizes,
    corners renumbered into those vertices)."""
    sizes = np.asarray(face_sizes, np.int64)
    corners = np.asarray(loops, np.int64)
    keep = np.asarray(keep, bool)
    kept = corners[np.repeat(keep, sizes)]
    used, local = np.unique(kept, return_inverse=True)
    return used, sizes[keep].astype(np.int32), local.astype(np.int32).ravel()


def blended(posed: np.ndarray, weights: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The body's vertices (camera space) with every vertex moved ``weights`` of the way onto its
    target (what the Blender modifiers show at a weight where the seen side is the photo's)."""
    w = np.asarray(weights, np.float64)[:, None]
    return np.where(w > 0, posed + w * (np.asarray(target, np.float64) - posed), posed)
