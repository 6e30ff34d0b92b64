"""Templates from the artist's side: the operator blends one when asked, the slider and
swap/apply operators work on it, the command line reports it."""

from __future__ import annotations

import json

import bpy
import numpy as np
import pytest
from monocle import cli
from monocle.scene import template_blend as tb
from PIL import Image


def _bowl_photo(tmp_path):
    """A synthetic product shot: a dark rounded blob on white (the classic engine finds it)."""
    h, w = 240, 320
    yy, xx = np.mgrid[0:h, 0:w]
    inside = ((xx - 160) / 90.0) ** 2 + ((yy - 130) / 60.0) ** 2 < 1
    img = np.full((h, w, 3), 245, np.uint8)
    img[inside] = (150, 60, 40)
    path = tmp_path / "blob.png"
    Image.fromarray(img).save(path)
    return path


def test_operator_blends_a_template_and_the_controls_work(tmp_path):
    s = bpy.context.scene.monocle
    s.image_path, s.detail, s.use_templates, s.template_weight = str(_bowl_photo(tmp_path)), 3000, True, 0.7
    assert bpy.ops.monocle.reconstruct() == {"FINISHED"}
    templates = [o for o in bpy.data.objects if tb.is_template(o)]
    summary = bpy.context.window_manager.monocle_status.summary
    assert f"{len(templates)} template(s)" in summary
    if not templates:  # nothing in the library fits this blob well enough: the reconstruction stands
        return
    obj = templates[0]
    assert obj[tb.WEIGHT_PROP] == pytest.approx(0.7)  # kept as a float32 property
    bpy.context.view_layer.objects.active = obj
    assert bpy.ops.monocle.template_swap.poll()
    assert bpy.ops.monocle.template_swap() == {"FINISHED"}
    assert bpy.ops.monocle.template_apply() == {"FINISHED"}
    assert not tb.is_template(obj)


def test_swap_and_apply_need_a_template():
    assert not bpy.ops.monocle.template_swap.poll()
    assert not bpy.ops.monocle.template_apply.poll()


def test_cli_reports_templates(tmp_path):
    photo = _bowl_photo(tmp_path)
    report = tmp_path / "r.json"
    assert cli.main(["reconstruct", str(photo), "-o", str(tmp_path / "o"), "--template-weight", "1.5"]) == 2
    assert cli.main(["reconstruct", str(photo), "-o", str(tmp_path / "o"), "--detail", "2000",
                     "--template-weight", "0.5", "--report", str(report)]) == 0
    obj = json.loads(report.read_text())["items"][0]["objects"][0]
    t = obj["template"]
    assert {"accepted", "threshold"} <= set(t) and len(t.get("top", t.get("matches", []))) >= 1


def test_cli_places_the_category_asked_for(tmp_path, capsys):
    """A folder of one kind of object: --template-category places that category's best template on every
    object whatever it scores (the blob is no bowl to retrieval), at the default weight."""
    photo = _bowl_photo(tmp_path)
    assert cli.main(["reconstruct", str(photo), "-o", str(tmp_path / "o"), "--template-category", "spaceship"]) == 2
    assert "chair" in capsys.readouterr().err  # the refusal lists the categories there are
    report = tmp_path / "r.json"
    assert cli.main(["reconstruct", str(photo), "-o", str(tmp_path / "o"), "--detail", "2000",
                     "--template-category", "bowl", "--report", str(report)]) == 0
    objects = json.loads(report.read_text())["items"][0]["objects"]
    assert objects
    for obj in objects:
        t = obj["template"]
        assert t["accepted"] and t["object"] and {m["category"] for m in t["matches"]} == {"bowl"}
