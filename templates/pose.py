"""Poses and cameras of the template matcher, and the rotation maths the scores use.

Poses map model space to camera space: ``p_cam = scale * R @ p_model + t`` (Blender's camera
axes: x right, y up, looking down -z).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .library import SYM_REVOLUTION, SYM_SPHERE


class Camera(Protocol):
    width: int
    height: int

    @property
    def focal_px(self) -> float: ...


@dataclass
class Pose:
    """``p_cam = scale * rotation @ p_model + translation``."""

    rotation: np.ndarray
    translation: np.ndarray
    scale: float

    def apply(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        return np.einsum("ij,nj->ni", self.scale * self.rotation, p) + self.translation

    def inverse_apply(self, points: np.ndarray) -> np.ndarray:
        """Model-space points of camera-space ``points``; solved, not transposed, so a ``rotation``
        that holds a stretch along the model's axes (``templates.pose_fit``) inverts exactly too."""
        p = np.asarray(points, dtype=np.float64) - self.translation
        return np.linalg.solve(self.scale * self.rotation, p.T).T

    def matrix(self) -> np.ndarray:
        """4x4 camera-from-model matrix (scale included)."""
        m = np.eye(4)
        m[:3, :3] = self.scale * self.rotation
        m[:3, 3] = self.translation
        return m

    def to_json(self) -> dict[str, Any]:
        return {"rotation": np.round(self.rotation, 6).tolist(), "translation": np.round(self.translation, 6).tolist(),
                "scale": round(float(self.scale), 6)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Pose:
        return cls(np.asarray(data["rotation"], dtype=np.float64), np.asarray(data["translation"], dtype=np.float64),
                   float(data["scale"]))



def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking unit vector ``a`` to unit vector ``b``."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    v = np.cross(a, b)
    c = float(a @ b)
    if c < -1.0 + 1e-12:
        return -np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


def rotation_angle(r: np.ndarray) -> float:
    """Angle of a rotation matrix, degrees."""
    return math.degrees(math.acos(float(np.clip((np.trace(r) - 1.0) * 0.5, -1.0, 1.0))))


def _rot_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def orientation_error(r_est: np.ndarray, r_true: np.ndarray, symmetry: int = 1) -> float:
    """Angle (degrees) between two camera-from-model rotations, modulo the template's symmetry about +Z."""
    if symmetry == SYM_SPHERE:
        return 0.0
    if symmetry == SYM_REVOLUTION:
        return math.degrees(math.acos(float(np.clip(r_est[:, 2] @ r_true[:, 2], -1.0, 1.0))))
    return min(rotation_angle(r_est.T @ r_true @ _rot_z(2.0 * math.pi * k / symmetry)) for k in range(symmetry))


def roll_degrees(rotation: np.ndarray) -> float:
    """How far the model's up axis leans sideways in the image (degrees, 0 = upright)."""
    up = rotation[:, 2]
    return math.degrees(math.atan2(abs(float(up[0])), float(up[1])))
