"""A placed surface of revolution goes onto the axis of the object's seen surface (issue 20: the
hidden side was about 1 % of the size too far; ``templates.axis``, ``templates.fit.place_on_axis``)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest


@pytest.fixture(scope="module")
def tmod(monocle):
    names = ("axis", "fit", "library", "match", "retrieve", "synthetic", "render")
    return {n: importlib.import_module(f"{monocle.__name__}.templates.{n}") for n in names}


def _photo(tmod, name: str, azimuth: float, elevation: float):
    template = tmod["library"].bundled_library().get(name)
    view = tmod["synthetic"].render_view(template, azimuth, elevation, width=384, height=384)
    return template, view, tmod["match"].Pose(view.rotation, view.translation, 1.0)


def _outline(tmod, template, view, pose) -> np.ndarray:
    cam = view.camera
    xy, z = tmod["render"].project_perspective(pose.apply(template.vertices), cam.focal_px, 0.5 * cam.width,
                                               0.5 * cam.height)
    return tmod["render"].rasterize(xy, z, template.triangles, view.mask.shape).mask


@pytest.mark.parametrize(("name", "azimuth", "elevation"),
                         [("Can Food", 250.0, 15.0), ("Bottle Wine", 30.0, 10.0), ("Glass Tumbler", 10.0, 20.0)])
def test_seen_axis_is_the_objects(tmod, name, azimuth, elevation):
    """The axis of revolution read from a depth map alone, started 3 degrees and 3 % of the size off,
    lies within 1 degree and 1 % of the size of the object's (its faceted normals are about 2 degrees
    off radial)."""
    ax = tmod["axis"]
    template, view, pose = _photo(tmod, name, azimuth, elevation)
    size = template.size
    points, normals = ax.surface_points(view.mask, view.zdepth, view.camera, size)
    tilt = np.array([np.radians(3.0), 0.0, 0.0])
    start = (pose.rotation[:, 2] + np.cross(tilt, pose.rotation[:, 2]), pose.translation + [0.0, 0.0, 0.03 * size])
    seen = ax.revolution_axis(points, normals, start, size)
    assert seen is not None
    d, q = pose.rotation[:, 2], pose.translation
    assert np.degrees(np.arccos(min(1.0, abs(float(seen.direction @ d))))) < 1.0
    foot = q + ((seen.point - q) @ d) * d
    assert np.linalg.norm(seen.point - foot) < 0.01 * size


@pytest.mark.parametrize(("name", "azimuth", "elevation", "along"),
                         [("Can Food", 250.0, 15.0, 0.02), ("Bottle Wine", 30.0, 10.0, -0.015)])
def test_a_template_too_far_goes_onto_the_axis(tmod, name, azimuth, elevation, along):
    """A revolution template placed ``along`` its size too far (or too near) along the view, its pose scaled
    about the camera so its outline is the photo's, comes back within 0.4 % of its size of where the photo
    has it, its outline unchanged; the same template over a guessed relief (trust 0.1) stays where it was."""
    fit_mod, match = tmod["fit"], tmod["match"]
    template, view, pose = _photo(tmod, name, azimuth, elevation)
    size = template.size
    centre = pose.apply(0.5 * (template.vertices.min(axis=0) + template.vertices.max(axis=0))[None])[0]
    k = 1.0 + along * size / np.linalg.norm(centre)
    wrong = match.Pose(pose.rotation, k * pose.translation, k * pose.scale)
    m = match.Match(template.name, template.category, 0.95, 1.0, 0.0, wrong, 0.95, (azimuth, elevation))
    lib = tmod["library"].bundled_library()
    rest = tmod["retrieve"].unfitted(template)
    placed, _ = fit_mod.place_on_axis(m, rest, lib, view.camera, view.mask, view.zdepth, 1.0)
    before = np.linalg.norm(wrong.apply(template.vertices) - pose.apply(template.vertices), axis=1).max() / size
    after = np.linalg.norm(placed.pose.apply(template.vertices) - pose.apply(template.vertices), axis=1).max() / size
    assert before > 0.9 * abs(along)
    assert after < 0.004, after
    same = _outline(tmod, template, view, placed.pose) == _outline(tmod, template, view, wrong)
    assert same.mean() > 0.999
    guessed, fit = fit_mod.place_on_axis(m, rest, lib, view.camera, view.mask, view.zdepth, 0.1)
    assert guessed.pose is wrong and fit is rest


def test_a_mug_is_left_where_it_is(tmod):
    """A template that is not a surface of revolution (a mug: its handle) keeps its pose, placed 1 % too far."""
    fit_mod, match = tmod["fit"], tmod["match"]
    template, view, pose = _photo(tmod, "Mug", 60.0, 20.0)
    moved = match.Pose(pose.rotation, 1.01 * pose.translation, 1.01 * pose.scale)
    m = match.Match(template.name, template.category, 0.95, 1.0, 0.0, moved, 0.95, (60.0, 20.0))
    rest = tmod["retrieve"].unfitted(template)
    out, fit = fit_mod.place_on_axis(m, rest, tmod["library"].bundled_library(), view.camera, view.mask,
                                     view.zdepth, 1.0)
    assert out is m
    v = template.vertices.astype(np.float64)  # its profile (test_template_profile) takes in the 1 % it was scaled by
    assert np.linalg.norm(fit.deform(v) - v, axis=1).max() < 0.01 * template.size


def test_a_move_within_the_estimates_error_is_not_made(tmod):
    """A can placed 0.3 % of its size too far (less than the seen axis' error on the library's own shapes,
    ``axis.MIN_ALONG``) keeps its pose."""
    fit_mod, match = tmod["fit"], tmod["match"]
    template, view, pose = _photo(tmod, "Can Food", 250.0, 15.0)
    centre = pose.apply(0.5 * (template.vertices.min(axis=0) + template.vertices.max(axis=0))[None])[0]
    k = 1.0 + 0.003 * template.size / np.linalg.norm(centre)
    near = match.Pose(pose.rotation, k * pose.translation, k * pose.scale)
    m = match.Match(template.name, template.category, 0.95, 1.0, 0.0, near, 0.95, (250.0, 15.0))
    out, _ = fit_mod.place_on_axis(m, tmod["retrieve"].unfitted(template), tmod["library"].bundled_library(),
                                   view.camera, view.mask, view.zdepth, 1.0)
    assert out is m
