"""A drawing's internal line folds the built object: the mesh Blender evaluates (relief modifier
included) changes its normal across the line, and not where no line is drawn."""

from __future__ import annotations

import importlib
import json

import bpy
import cv2
import numpy as np
import pytest
from conftest import run_worker
from monocle.scene.evaluated import evaluated_mesh
from scene_checks import project_to_pixels

W, H = 640, 420
BOX = (170, 110, 470, 310)  # the drawn box, x0, y0, x1, y1 in pixels
LINE_X = 320  # the internal line runs down the middle of the box
INTERNAL = 2


def _drawing(internal_line: bool) -> np.ndarray:
    """A box in the ID line language (thick outline), with or without a medium internal line."""
    ss = 4
    img = np.full((H * ss, W * ss, 3), 255, np.uint8)
    x0, y0, x1, y1 = (v * ss for v in BOX)
    cv2.rectangle(img, (x0, y0), (x1, y1), (0, 0, 0), 6 * ss, cv2.LINE_AA)
    if internal_line:
        cv2.line(img, (LINE_X * ss, y0), (LINE_X * ss, y1), (0, 0, 0), 3 * ss, cv2.LINE_AA)
    return cv2.resize(img, (W, H), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def results(ext_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("drawing_crease")
    made = {}
    for name, line in (("plain", False), ("line", True)):
        image = root / f"{name}.png"
        cv2.imwrite(str(image), _drawing(line)[..., ::-1])
        code, _, err = run_worker(ext_dir, "run", "--image", str(image), "--out", str(root / name),
                                  "--engine", "drawing")
        assert code == 0, err
        made[name] = root / name
    return made


def _face_normals_and_pixels(obj: bpy.types.Object, cam: bpy.types.Object) -> tuple[np.ndarray, np.ndarray]:
    """World normals of the evaluated mesh's faces and the pixels their centres project to."""
    with evaluated_mesh(obj) as (mesh, mat):
        n = len(mesh.polygons)
        normals = np.empty(n * 3, np.float32)
        centres = np.empty(n * 3, np.float32)
        mesh.polygons.foreach_get("normal", normals)
        mesh.polygons.foreach_get("center", centres)
    world = centres.reshape(-1, 3) @ mat[:3, :3].T + mat[:3, 3]
    normals = normals.reshape(-1, 3) @ np.linalg.inv(mat[:3, :3])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return normals, project_to_pixels(cam, bpy.context.scene, world)


def _fold_degrees(normals: np.ndarray, px: np.ndarray, x: float, offset: float) -> float:
    """Angle between the mean normals of the front faces just left and just right of the column
    ``x`` (``offset`` to ``offset + 3`` pixels away), over the middle rows of the box."""
    rows = (px[:, 1] > BOX[1] + 40) & (px[:, 1] < BOX[3] - 40)
    front = normals[:, 2] > 0  # towards the camera (the open back's faces look away)

    def mean(lo: float, hi: float) -> np.ndarray:
        sel = rows & front & (px[:, 0] > lo) & (px[:, 0] < hi)
        assert sel.sum() >= 10
        m = normals[sel].mean(axis=0)
        return m / np.linalg.norm(m)

    left, right = mean(x - offset - 3, x - offset), mean(x + offset, x + offset + 3)
    return float(np.degrees(np.arccos(np.clip(left @ right, -1.0, 1.0))))


def test_internal_line_folds_the_built_mesh(monocle, results):
    geometry = importlib.import_module(monocle.__name__ + ".geometry")
    build = importlib.import_module(monocle.__name__ + ".scene.build")
    folds = {}
    for name, folder in results.items():
        result = json.loads((folder / "result.json").read_text())
        assert len(result["instances"]) == 1
        lines = cv2.imread(str(folder / result["lines"]["file"]), cv2.IMREAD_GRAYSCALE)
        # the line-class map says where the internal line runs: the fold is measured there
        cols = np.nonzero(lines[BOX[1] + 40:BOX[3] - 40] == INTERNAL)[1]
        if name == "line":
            assert cols.size > 100 and abs(float(np.median(cols)) - LINE_X) <= 1.0
        else:
            assert cols.size == 0
        bpy.ops.wm.read_homefile(app_template="")
        report = build.build_from_result(folder, geometry.MeshSettings(detail=20_000, back="open"))
        (obj,) = report.objects
        normals, px = _face_normals_and_pixels(obj, report.camera)
        places = ((LINE_X, 3.0), (LINE_X, 6.0), (LINE_X - 60, 3.0))
        folds[name] = [_fold_degrees(normals, px, x, off) for x, off in places]
    # across the line the surface folds; the same place on the box without the line is smooth
    assert min(folds["line"][:2]) >= 20.0, folds
    assert max(folds["plain"][:2]) <= 5.0, folds
    # and the fold keeps to the line: away from it the surface is as smooth as without the line
    assert folds["line"][2] <= 5.0 and folds["plain"][2] <= 5.0, folds
