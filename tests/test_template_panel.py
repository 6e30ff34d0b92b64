"""The Templates panel describes the selected template (issue 20): which template and how well it
matched, how well its lattice fits, and the depth proportions its reconstruction took from it,
beside the toggle that turns that off. Drawn through the panel's real draw()."""

from __future__ import annotations

import json

import bpy
from monocle import geometry
from monocle.scene import build, template_blend, template_info
from monocle.templates import library, synthetic
from template_checks import worker_result
from test_panels import _draw

W, H = 320, 240
ICONS = set(bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"].enum_items.keys())


def _chair_from_relative_depth(ext_dir, tmp_path):
    """A Chair Dining render with only a relative (inverse) depth map, built into 0.3 scene units of
    Depth Range: the placed template sets its depth."""
    view = synthetic.render_view(library.bundled_library().get("Chair Dining"), 30.0, 20.0, width=W, height=H)
    out = worker_result(ext_dir, view, tmp_path, relative=True)  # the inverse depth a relative model gives
    settings = geometry.MeshSettings(detail=20_000, back="closed", distance=5.0, depth_range=0.3)
    report = build.build_from_result(out, settings, focal_mm=50.0)
    return template_blend.blend_from_result(out, settings, report.objects, report.camera, weight=0.5,
                                            focal_mm=50.0)[0]


def test_the_panel_says_what_was_placed_and_the_depth_it_gave(ext_dir, tmp_path):
    rep = _chair_from_relative_depth(ext_dir, tmp_path)
    obj = rep.object
    assert obj is not None and rep.depth_scale != 1.0
    lines = template_info.template_lines(obj)
    texts = [text for text, _ in lines]
    best = rep.result.matches[0]
    assert texts[0] == f"{best.template} ({best.category}), match {best.score:.2f}"
    assert any(t.startswith("Outline fit ") and t.endswith("%") for t in texts)
    assert f"Depth from template: {1.0 / rep.depth_scale:.2f}x the built relief" in texts
    assert all(icon in ICONS for _, icon in lines)  # Blender refuses an unknown icon name while drawing

    bpy.context.view_layer.objects.active = obj
    drawn = _draw(bpy.types.MONOCLE_PT_templates)
    for text in texts:
        assert ("label", text) in drawn
    assert ("prop", "template_depth") in drawn  # the toggle beside what it did

    rivals = template_blend.template_matches(obj)
    rivals.ambiguous_with = ["jar", "can"]  # a look-alike the view cannot tell apart is named
    obj[template_blend.MATCHES_PROP] = json.dumps(rivals.to_json())
    assert ("Looks alike from here: jar, can", "QUESTION") in template_info.template_lines(obj)
