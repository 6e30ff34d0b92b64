"""A drawn object comes out as deep as its drawn size says: a real worker run on a sheet of drawn
boxes and a disk, a real closed build, the evaluated meshes measured in the camera's axes."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import bpy
import cv2
import numpy as np
import pytest
from conftest import run_worker
from scene_checks import evaluated_world

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "templates.blend"
W, H = 960, 640
SS = 4  # drawn supersampled, then shrunk: anti-aliased strokes as a scan has them
# name -> (x0, y0, x1, y1) of a drawn box, or (cx, cy, r) of a drawn disk, in pixels
SHAPES = {"tall": (60, 120, 160, 520), "flat": (220, 440, 620, 540), "square": (660, 80, 900, 320),
          "bar": (180, 60, 225, 400), "disk": (400, 220, 130)}


def _sheet() -> np.ndarray:
    img = np.full((H * SS, W * SS, 3), 255, np.uint8)
    for shape in SHAPES.values():
        if len(shape) == 4:
            x0, y0, x1, y1 = (v * SS for v in shape)
            cv2.rectangle(img, (x0, y0), (x1, y1), (0, 0, 0), 5 * SS, cv2.LINE_AA)
        else:
            cx, cy, r = (v * SS for v in shape)
            cv2.circle(img, (cx, cy), r, (0, 0, 0), 5 * SS, cv2.LINE_AA)
    return cv2.resize(img, (W, H), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def drawn(ext_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("drawing_proportions")
    cv2.imwrite(str(root / "sheet.png"), _sheet()[..., ::-1])
    code, _, err = run_worker(ext_dir, "run", "--image", str(root / "sheet.png"), "--out", str(root / "result"),
                              "--engine", "drawing")
    assert code == 0, err
    return root / "result"


def _centre(shape: tuple[int, ...]) -> tuple[float, float]:
    return (0.5 * (shape[0] + shape[2]), 0.5 * (shape[1] + shape[3])) if len(shape) == 4 else shape[:2]


def _extents(monocle, folder, **settings) -> dict[str, np.ndarray]:
    """(width, height, depth) in the camera's axes of each built object, by the shape it was drawn as."""
    geometry = importlib.import_module(monocle.__name__ + ".geometry")
    build = importlib.import_module(monocle.__name__ + ".scene.build")
    bpy.ops.wm.read_homefile(app_template="")
    report = build.build_from_result(folder, geometry.MeshSettings(detail=8_000, back="closed", thickness=0.0,
                                                                   ground=False, **settings))
    to_cam = np.array(report.camera.matrix_world.inverted(), np.float64)
    result = json.loads((folder / "result.json").read_text())
    out = {}
    for obj, rec in zip(report.objects, result["instances"]):
        world = evaluated_world(obj)
        cam = world @ to_cam[:3, :3].T + to_cam[:3, 3]
        x0, y0, x1, y1 = rec["bbox"]
        name = min(SHAPES, key=lambda k: np.hypot(_centre(SHAPES[k])[0] - 0.5 * (x0 + x1),
                                                   _centre(SHAPES[k])[1] - 0.5 * (y0 + y1)))
        out[name] = cam.max(axis=0) - cam.min(axis=0)
    assert set(out) == set(SHAPES)
    return out


def test_each_drawn_object_is_as_deep_as_its_drawn_size(monocle, drawn):
    result = json.loads((drawn / "result.json").read_text())
    assert result["depth"]["kind"] == "relief"
    extra = result["depth"]["extra"]
    assert extra["proportions"] == "silhouette"
    per_size, radii = float(extra["depth_of_size"]), float(extra["depth_radii"])
    size = _extents(monocle, drawn)
    # front to back as deep as the drawn size (the mean of width and height), or as deep as
    # depth_radii inscribed radii where that is less, whatever else is on the sheet
    for name, (w, h, d) in size.items():
        radius = 0.5 * min(w, h)  # a box's inscribed radius is half its narrow side, a disk's its radius
        expected = min(per_size * 0.5 * (w + h), radii * radius)
        assert d / expected == pytest.approx(1.0, abs=0.15), (name, size[name], expected)
    assert size["tall"][2] == pytest.approx(size["flat"][2], rel=0.1)  # the same box, stood up or laid flat
    assert size["bar"][2] / size["bar"][0] == pytest.approx(0.5 * radii, rel=0.15)  # thin: round-ish, not a fin
    assert size["bar"][2] < 0.8 * per_size * 0.5 * (size["bar"][0] + size["bar"][1])  # the cap, not its size
    # the result's record says the same proportions
    for rec in result["instances"]:
        x0, y0, x1, y1 = rec["bbox"]
        name = min(SHAPES, key=lambda k: np.hypot(_centre(SHAPES[k])[0] - 0.5 * (x0 + x1),
                                                   _centre(SHAPES[k])[1] - 0.5 * (y0 + y1)))
        w, h, d = size[name]
        assert rec["extra"]["relief"]["depth_over_width"] == pytest.approx(d / w, rel=0.15), name


def test_depth_range_does_not_change_a_drawing(monocle, drawn):
    """The Depth Range spreads a relief without a scale; a drawing's has its own, and Distance moves
    the whole sheet: every proportion stays."""
    base = _extents(monocle, drawn)
    deeper = _extents(monocle, drawn, depth_range=4.0)
    farther = _extents(monocle, drawn, distance=10.0)
    for name in SHAPES:
        assert deeper[name] == pytest.approx(base[name], rel=1e-3)
        assert farther[name] / farther[name][0] == pytest.approx(base[name] / base[name][0], rel=0.02)


def test_a_placed_template_gives_its_own_depth(monocle, ext_dir, tmp_path):
    """The template step's depth proportions still win over the drawing's: a drawn bottle with its
    template placed (the bottles alone, whatever retrieval would accept) takes the depth the fit gives,
    along the camera rays."""
    import drawing_render as dr

    geometry = importlib.import_module(monocle.__name__ + ".geometry")
    build = importlib.import_module(monocle.__name__ + ".scene.build")
    blend = importlib.import_module(monocle.__name__ + ".scene.template_blend")
    scene = dr.setup_scene(800, 600)
    (ob,) = dr.template_objects(ASSETS, ["Bottle Large"])
    scene.collection.objects.link(ob)
    ob.location = (0.0, 0.0, 0.0)
    dr.aim(scene, ob, 160.0, 10.0)
    rgb, _ = dr.render_drawing(scene)
    cv2.imwrite(str(tmp_path / "bottle.png"), rgb[..., ::-1])
    code, _, err = run_worker(ext_dir, "run", "--image", str(tmp_path / "bottle.png"), "--out", str(tmp_path / "r"),
                              "--engine", "drawing")
    assert code == 0, err
    bpy.ops.wm.read_homefile(app_template="")
    settings = geometry.MeshSettings(detail=6_000, back="closed", ground=False)
    report = build.build_from_result(tmp_path / "r", settings)
    (obj,) = report.objects
    to_cam = np.array(report.camera.matrix_world.inverted(), np.float64)

    def depth() -> float:
        z = (evaluated_world(obj) @ to_cam[:3, :3].T + to_cam[:3, 3])[:, 2]
        return float(z.max() - z.min())

    before = depth()
    library = importlib.import_module(monocle.__name__ + ".templates.library")
    lib = library.bundled_library()
    keep = [i for i, t in enumerate(lib.templates) if t.category == "bottle"]  # retrieval apart: the bottles
    bottles = lib.subset(keep)
    (placed,) = blend.blend_from_result(tmp_path / "r", settings, report.objects, report.camera, library=bottles,
                                        threshold=-1.0)
    assert placed.object is not None
    assert placed.depth_scale != pytest.approx(1.0, abs=0.02)
    # the relief about the object's middle divided by the fitted scale: the depth follows it
    assert depth() / before == pytest.approx(1.0 / placed.depth_scale, rel=0.25)
