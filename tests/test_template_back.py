"""Who gives the hidden side with trusted depth (issue 20, part 1): the fitted template where it
matches the mask well, the reconstruction's own back where it does not."""

from __future__ import annotations

import importlib
from dataclasses import replace

import bpy
import numpy as np
import pytest
from template_checks import worker_result

W, H = 320, 240


@pytest.fixture(scope="module")
def mods(monocle):
    names = {"tb": "scene.template_blend", "shell": "scene.template_shell", "build": "scene.build",
             "geometry": "geometry", "library": "templates.library", "synthetic": "templates.synthetic",
             "mesh": "templates.mesh", "policy": "templates.policy"}
    return {k: importlib.import_module(f"{monocle.__name__}.{v}") for k, v in names.items()}


@pytest.fixture(scope="module")
def can_result(ext_dir, mods, tmp_path_factory):
    """A worker result (user mask + metric depth) of the library's can, a little wider than the library's."""
    lib = mods["library"]
    can = lib.bundled_library().get("Can")
    shown = lib.Template("Wide Can", can.category, can.labels, can.symmetry,
                         (can.vertices * np.array([1.1, 1.1, 1.0])).astype(np.float32), can.triangles)
    view = mods["synthetic"].render_view(shown, 30.0, 20.0, width=W, height=H, fill=0.55)
    return worker_result(ext_dir, view, tmp_path_factory.mktemp("can"))


def test_poor_fit_keeps_the_reconstructions_back(mods, can_result):
    settings = mods["geometry"].MeshSettings(detail=20_000, back="closed")
    bpy.ops.wm.read_homefile(app_template="", use_empty=True)
    report = mods["build"].build_from_result(can_result, settings, focal_mm=50.0)
    lib = mods["library"].bundled_library()
    keep = [i for i, t in enumerate(lib.templates) if t.category == "can"]  # retrieval apart: the can's templates
    cans = lib.subset(keep)
    matched = mods["tb"].match_result(can_result, settings, focal_mm=50.0, library=cans, threshold=-1.0)
    assert matched.depth_trust == 1.0
    match, fit = matched.results[0].matches[0], matched.fits[0][0]
    assert match.category == "can" and fit.iou >= mods["policy"].MIN_FIT_IOU
    tpl = mods["tb"].load_template_mesh(lib.get(match.template))
    dense, _ = mods["mesh"].densify(tpl.mesh)
    source = report.objects[0]
    args = (source, report.camera, dense.vertices, dense.triangles(), match)
    good = mods["shell"].shell_arrays(*args, fit, 1.0)
    back = ~mods["shell"]._flags(source.data, "front")
    assert (good[3][back] == 0.0).mean() > 0.5  # the fitted template gives most of the hidden side
    poor = mods["shell"].shell_arrays(*args, replace(fit, iou=0.6), 1.0)
    assert (poor[3] == 1.0).all()  # none of it: every vertex follows the reconstruction
    guessed = mods["shell"].shell_arrays(*args, replace(fit, iou=0.6), 0.1)
    assert (guessed[3][back] == 0.0).mean() > 0.5  # a guessed relief's back is no better than a poor template
