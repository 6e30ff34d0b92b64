"""Freestyle drawings of bundled templates (tools/drawing_render.py: a real bpy render in the ID line
language, plain and X-ray) through the worker with ``--engine auto``: one object, on its silhouette."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import drawing_render as dr
import numpy as np
import pytest
from conftest import run_worker

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "templates.blend"


@pytest.mark.parametrize(("template", "view", "xray"), [
    ("Mug", (-35.0, 15.0), False),
    ("Pan Saucepan", (40.0, 25.0), True),
    # dense detail (keys) merges into blobs of ink heavier than the outline: still one object, and line art
    ("Keyboard", (160.0, 10.0), False),
    # ... and from above in X-ray, where the keys merge into more ink than the strokes: line art by its
    # strokes' median width, not by how much ink is wide
    ("Keyboard", (-35.0, 15.0), True),
    ("Remote", (160.0, 10.0), True),
    # a face drawn as its own loop of outline (a microwave oven's door window) is on the object, not a hole through it
    ("Microwave Compact", (40.0, 25.0), False),
    # drawers whose outlines run on into the chest's, touching no outer edge, each with its handle: faces
    ("Cabinet Dresser", (40.0, 25.0), False),
])
def test_freestyle_drawing_gives_one_object(ext_dir, tmp_path, template, view, xray):
    scene = dr.setup_scene(640, 480, xray=xray)
    (ob,) = dr.template_objects(ASSETS, [template])
    scene.collection.objects.link(ob)
    ob.location = (0.0, 0.0, 0.0)
    dr.aim(scene, ob, *view)
    rgb, truth = dr.render_drawing(scene)
    assert 0.01 < truth.mean() < 0.5
    ink = (rgb.min(axis=2) < 128).mean()
    assert 0.002 < ink < 0.1  # a line drawing: a few percent of the paper is ink
    cv2.imwrite(str(tmp_path / "drawing.png"), rgb[..., ::-1])
    code, _, err = run_worker(ext_dir, "run", "--image", str(tmp_path / "drawing.png"), "--out", str(tmp_path / "r"),
                              "--engine", "auto")
    assert code == 0, err
    result = json.loads((tmp_path / "r" / "result.json").read_text())
    assert result["engine"]["name"] == "drawing"
    (inst,) = result["instances"]
    mask = cv2.imread(str(tmp_path / "r" / inst["mask"]), cv2.IMREAD_GRAYSCALE) > 0
    iou = float((mask & truth).sum()) / float((mask | truth).sum())
    assert iou >= 0.9, iou
    assert "outline" in result["lines"]["widths_px"]
    lines = cv2.imread(str(tmp_path / "r" / "lines.png"), cv2.IMREAD_GRAYSCALE)
    rim = truth & ~cv2.erode(truth.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    near = cv2.dilate(rim.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & (lines > 0)
    # the silhouette is read as a line that closes the object (outline, or internal where Freestyle's
    # overlapping strokes made part of the outline read heavier), never as contour or annotation
    assert np.mean((lines[near] == 1) | (lines[near] == 2)) >= 0.9
