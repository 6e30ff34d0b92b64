"""The ground the objects stand on: a plane fitted to the backdrop around the objects' feet.

The backdrop's pixels just around each object's lowest outline are back-projected with the
camera (their depth is the map's; the objects' own pixels are left out) and a plane is fitted
to them robustly (RANSAC, then a least-squares refit on the inliers). An object whose
surroundings lie on that plane is then slid along the camera rays (scaled about the camera
centre) until its lowest point touches it: through the camera it looks exactly as before,
and it stands on the ground.

Planes are ``n . x + offset = 0`` in camera space (x right, y up, looking down -z), with
``n`` a unit vector and ``offset > 0``: the camera is on the side ``n`` points to.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from . import CameraModel, MeshData

FOOT_FRACTION = 0.15  # the lowest outline points: the bottom 15 % of the object's height
BAND_FRACTION = 0.25  # backdrop pixels within this fraction of the object's height of its feet
MIN_SAMPLES = 30
MAX_SAMPLES = 20_000
ITERATIONS = 256
INLIER_FRACTION = 0.005  # inlier distance, as a fraction of the samples' median depth
MIN_SUPPORT = 0.5  # an object stands on the plane when this fraction of its own samples are inliers
MIN_UP = 0.5  # a ground faces up in the camera: n_y at least this (a camera tilted up to 60 degrees)
SCALE_RANGE = (0.25, 4.0)  # a placement that moves an object farther than this along its rays is refused


@dataclass
class GroundPlane:
    """A fitted ground in camera space, and how well it is supported."""

    normal: np.ndarray  # (3,) unit, camera space, pointing to the camera's side
    offset: float  # n . x + offset = 0; the camera's distance to the plane
    inliers: int
    samples: int
    rms: float  # inliers' distance to the plane, scene units
    supported: list[bool] = field(default_factory=list)  # per object: its surroundings lie on the plane

    def as_dict(self) -> dict:
        return {"normal": [round(float(v), 6) for v in self.normal], "offset": round(float(self.offset), 6),
                "inliers": int(self.inliers), "samples": int(self.samples), "rms": round(float(self.rms), 6)}


def back_project(rows: np.ndarray, cols: np.ndarray, z: np.ndarray, camera: CameraModel) -> np.ndarray:
    """Camera-space points (N, 3) of pixel centres at camera-axis depth ``z`` (N,)."""
    pixels = np.stack([cols + 0.5, rows + 0.5], axis=1)
    return camera.rays(pixels) * np.asarray(z, dtype=np.float64)[:, None]


def foot_samples(mask: np.ndarray, union: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (rows, cols) of the backdrop around an object's lowest outline points (the work is
    done in a window round the object's feet, not over the whole photo)."""
    import cv2

    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return np.empty(0, np.intp), np.empty(0, np.intp)
    top, bottom = int(rows[0]), int(rows[-1])
    height = bottom - top + 1
    feet = bottom - max(1, int(FOOT_FRACTION * height)) + 1  # the first row of the feet
    band = max(3, int(BAND_FRACTION * height))
    cols = np.flatnonzero(mask[feet:bottom + 1].any(axis=0))
    h, w = mask.shape
    r0, r1 = max(0, feet - band), min(h, bottom + band + 2)
    c0, c1 = max(0, int(cols[0]) - band), min(w, int(cols[-1]) + band + 1)
    m = mask[r0:r1, c0:c1]
    edge = m.copy()
    edge[:-1] &= ~m[1:]  # outline pixels with nothing of the object under them
    edge[: feet - r0] = False
    kernel = np.ones((2 * band + 1, 2 * band + 1), np.uint8)
    near = cv2.dilate(edge.astype(np.uint8), kernel).astype(bool)
    near[: feet - r0] = False  # at or below the feet
    near &= ~cv2.dilate(union[r0:r1, c0:c1].astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    rr, cc = np.nonzero(near)
    return rr + r0, cc + c0


def _at_most(pixels: tuple[np.ndarray, np.ndarray], n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = pixels
    if rows.size <= n:
        return rows, cols
    pick = np.sort(rng.choice(rows.size, n, replace=False))
    return rows[pick], cols[pick]


def fit_plane(points: np.ndarray, threshold: float, rng: np.random.Generator,
              iterations: int = ITERATIONS) -> tuple[np.ndarray, float, np.ndarray] | None:
    """RANSAC plane through (N, 3) points: (unit normal, offset, inlier mask), refitted by least
    squares on the inliers; None with fewer than three points or no non-degenerate triple."""
    p = np.asarray(points, dtype=np.float64)
    n = p.shape[0]
    if n < 3:
        return None
    triples = rng.integers(0, n, size=(iterations, 3))
    a, b, c = p[triples[:, 0]], p[triples[:, 1]], p[triples[:, 2]]
    normals = np.cross(b - a, c - a)
    length = np.linalg.norm(normals, axis=1)
    ok = length > 1e-12
    if not ok.any():
        return None
    normals = normals[ok] / length[ok, None]
    offsets = -np.einsum("ij,ij->i", normals, a[ok])
    counts = (np.abs(p @ normals.T + offsets) < threshold).sum(axis=0)  # (N, iterations) in one product
    best = int(np.argmax(counts))
    inliers = np.abs(p @ normals[best] + offsets[best]) < threshold
    for _ in range(2):  # least squares on the inliers, then the inliers of that plane
        if inliers.sum() < 3:
            break
        q = p[inliers]
        centre = q.mean(axis=0)
        normal = np.linalg.svd(q - centre, full_matrices=False)[2][-1]
        offset = -float(normal @ centre)
        inliers = np.abs(p @ normal + offset) < threshold
        normals[best], offsets[best] = normal, offset
    return normals[best], float(offsets[best]), inliers


def find_ground(masks: list[np.ndarray], depth: np.ndarray, camera: CameraModel,
                seed: int = 0) -> GroundPlane | None:
    """The plane the objects stand on, from the backdrop's depth ``depth`` (H, W) (camera-axis
    distances) around each object's feet; None when there is none that faces up."""
    union = np.zeros(depth.shape, dtype=bool)
    for m in masks:
        union |= m
    rng = np.random.default_rng(seed)
    per_object = [_at_most(foot_samples(m, union), MAX_SAMPLES // max(1, len(masks)), rng) for m in masks]
    rows = np.concatenate([r for r, _ in per_object]) if per_object else np.empty(0, np.intp)
    cols = np.concatenate([c for _, c in per_object]) if per_object else np.empty(0, np.intp)
    z = depth[rows, cols].astype(np.float64)
    good = np.isfinite(z) & (z > 0)
    if good.sum() < MIN_SAMPLES:
        return None
    owner = np.repeat(np.arange(len(masks)), [r.size for r, _ in per_object])[good]
    points = back_project(rows[good], cols[good], z[good], camera)
    threshold = INLIER_FRACTION * float(np.median(-points[:, 2]))
    fit = fit_plane(points, threshold, rng)
    if fit is None:
        return None
    normal, offset, inliers = fit
    if offset < 0:
        normal, offset = -normal, -offset
    if normal[1] < MIN_UP or inliers.sum() < MIN_SAMPLES:
        return None
    distance = np.abs(points @ normal + offset)
    on_plane = distance < threshold
    supported = [bool(on_plane[owner == i].mean() >= MIN_SUPPORT) if np.any(owner == i) else False
                 for i in range(len(masks))]
    rms = float(np.sqrt(np.mean(distance[on_plane] ** 2))) if on_plane.any() else 0.0
    return GroundPlane(normal, offset, int(on_plane.sum()), int(points.shape[0]), rms, supported)


def stand_scale(points: np.ndarray, plane: GroundPlane) -> float | None:
    """The factor that scales camera-space ``points`` (an object's surface) about the camera
    centre so that their lowest point touches ``plane``; None when no such placement is sensible."""
    heights = np.asarray(points, dtype=np.float64) @ plane.normal
    lowest = float(heights.min())
    if lowest >= 0:  # the object would have to pass through the camera
        return None
    s = -plane.offset / lowest
    return s if SCALE_RANGE[0] <= s <= SCALE_RANGE[1] else None


def scaled_mesh(data: MeshData, s: float) -> MeshData:
    """``data`` scaled by ``s`` about the camera centre: the same image through the camera, the
    same UVs, every vertex and relief vector ``s`` times as far (new arrays; ``data`` is left as it is)."""
    texture = data.relief_texture
    if texture is not None:
        texture = texture.copy()
        texture[..., :3] *= np.float32(s)
    return replace(data, vertices=np.asarray(data.vertices, dtype=np.float32) * np.float32(s),
                   relief=np.asarray(data.relief, dtype=np.float32) * np.float32(s), relief_texture=texture)
