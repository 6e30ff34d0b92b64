"""The placed template's pose refined on the visible surface (issue 20, part 1, trusted depth): a
template photographed turned, moved and stretched is recovered from a pose off by all three, and a
surface of revolution stays one."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from scipy.spatial import cKDTree


@pytest.fixture(scope="module")
def tmod(monocle):
    names = ("pose_fit", "library", "match", "synthetic", "fit", "ffd")
    return {n: importlib.import_module(f"{monocle.__name__}.templates.{n}") for n in names}


def _turn(degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    return np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])


def _apart(tmod, tpl, a, b) -> np.ndarray:
    """Distances between the template's surface placed by poses ``a`` and ``b``, both ways (a symmetric
    template turned onto itself is the same shape)."""
    pts, _ = tmod["pose_fit"].surface_samples(tpl.vertices, tpl.triangles, 5000)
    pa, pb = a.apply(pts), b.apply(pts)
    return np.concatenate([cKDTree(pb).query(pa)[0], cKDTree(pa).query(pb)[0]])


def _photo(tmod, name: str, stretch: np.ndarray, azimuth: float = 35.0, elevation: float = 20.0):
    lib = tmod["library"]
    tpl = lib.bundled_library().get(name)
    shown = lib.Template(name, tpl.category, tpl.labels, tpl.symmetry, (tpl.vertices * stretch).astype(np.float32),
                         tpl.triangles)
    view = tmod["synthetic"].render_view(shown, azimuth, elevation, width=320, height=240, fill=0.55)
    truth = tmod["match"].Pose(view.rotation * stretch[None, :], view.translation, 1.0)
    return tpl, view, truth


@pytest.mark.parametrize("name, stretch, turn", [("Box Shoebox", (1.3, 0.8, 1.2), 40.0),
                                                 ("Chair Dining", (1.15, 0.9, 1.1), -30.0)])
def test_recovers_turned_moved_stretched_pose(tmod, name, stretch, turn):
    stretch = np.asarray(stretch)
    tpl, view, truth = _photo(tmod, name, stretch)
    v = tpl.vertices.astype(np.float64)
    size = float(np.linalg.norm(np.ptp(truth.apply(v), axis=0)))
    start = tmod["match"].Pose(view.rotation @ _turn(turn), view.translation + np.array([0.04, -0.03, 0.05]) * size,
                               1.0)
    assert np.abs(start.apply(v) - truth.apply(v)).max() > 0.15 * size  # far off to begin with
    pose, err = tmod["pose_fit"].refine_pose(v, tpl.triangles, start, view.camera, view.mask, view.zdepth,
                                             turns=tmod["fit"].POSE_TURNS)
    off = _apart(tmod, tpl, pose, truth)
    assert err < 0.01
    assert np.median(off) < 0.01 * size and np.quantile(off, 0.99) < 0.03 * size, (np.median(off) / size,
                                                                                  np.quantile(off, 0.99) / size)


def test_revolution_stays_revolution(tmod):
    stretch = np.array([1.25, 1.25, 0.85])
    tpl, view, truth = _photo(tmod, "Can", stretch, azimuth=10.0)
    v = tpl.vertices.astype(np.float64)
    size = float(np.linalg.norm(np.ptp(truth.apply(v), axis=0)))
    start = tmod["match"].Pose(view.rotation, view.translation + np.array([0.03, 0.02, -0.04]) * size, 1.0)
    pose, _ = tmod["pose_fit"].refine_pose(v, tpl.triangles, start, view.camera, view.mask, view.zdepth,
                                           revolution=True)
    columns = np.linalg.norm(pose.rotation, axis=0)
    assert columns[0] == pytest.approx(columns[1], rel=1e-9)  # the same radial scale across the axis
    off = _apart(tmod, tpl, pose, truth)
    assert np.median(off) < 0.01 * size, np.median(off) / size


def test_too_little_seen_keeps_the_pose(tmod):
    tpl, view, _ = _photo(tmod, "Can", np.ones(3))
    start = tmod["match"].Pose(view.rotation, view.translation, 1.0)
    pose, err = tmod["pose_fit"].refine_pose(tpl.vertices, tpl.triangles, start, view.camera,
                                             np.zeros_like(view.mask), view.zdepth)
    assert pose is start and err == float("inf")


@pytest.mark.parametrize("name", ["Clock Wall", "Book Paperback", "Laptop"])
def test_stretch_of_a_thin_template_moves_its_surface_not_just_its_vertices(tmod, name):
    """The refined pose's stretch goes to the lattice (``fit.stretch_lattice``); the Blender blend deforms
    more than the template's vertices with it (its densified faces, its rim between a wall clock's two
    faces). Every point of the surface follows the stretch, and the lattice's points stay near it (they
    had offsets thousands of times the clock's size that cancelled at its vertices alone: a spiked mesh
    in Blender, bench_quality's Clock Wall views at visible F@0.1 0.46-0.61)."""
    tpl = tmod["library"].bundled_library().get(name)
    v = tpl.vertices.astype(np.float64)
    stretch = np.array([1.2, 0.69, 1.2])
    pose = tmod["match"].Pose(np.diag(stretch), np.zeros(3), 1.0)
    sim, lattice = tmod["fit"].stretch_lattice(v, tpl.symmetry, pose)
    pts, _ = tmod["pose_fit"].surface_samples(v, tpl.triangles, 20000)
    off = np.linalg.norm(sim.apply(lattice.deform(pts)) - pose.apply(pts), axis=1)
    assert off.max() < 0.01 * tpl.size, off.max() / tpl.size
    assert np.abs(lattice.offsets).max() < 0.5 * tpl.size, np.abs(lattice.offsets).max() / tpl.size


def test_fit_zero_keeps_the_refined_size(tmod):
    """At Fit 0 (the lattice at rest) a template keeps the library's proportions at the size its refined
    pose found: a wall clock stretched (1.2, 0.69, 1.2) by the refinement shows at 1.2 times the rigid
    match's size, not at the rigid match's (the stretch's uniform part is the similarity's)."""
    tpl = tmod["library"].bundled_library().get("Clock Wall")
    v = tpl.vertices.astype(np.float64)
    pose = tmod["match"].Pose(np.diag([1.2, 0.69, 1.2]), np.zeros(3), 1.0)
    sim, _ = tmod["fit"].stretch_lattice(v, tpl.symmetry, pose)
    rigid, stretched = np.ptp(sim.apply(v), axis=0), np.ptp(pose.apply(v), axis=0)
    assert np.abs(rigid[[0, 2]] / stretched[[0, 2]] - 1.0).max() < 0.02, rigid / stretched


@pytest.mark.parametrize("name, azimuth, elevation", [("Clock Wall", 160.0, 10.0), ("Bottle Flask", 160.0, 10.0),
                                                      ("Suitcase Briefcase", 160.0, 10.0)])
def test_exact_pose_on_its_exact_render_stays(tmod, name, azimuth, elevation):
    """Started from the exact pose on a template's own exact render (bench_quality's third view), the
    refinement keeps the template's proportions: every axis within 1.5 % (a template point in a boundary
    pixel the mask leaves out had been pulled inside: the clock came out 11 % thinner, the flask 5 %)."""
    tpl = tmod["library"].bundled_library().get(name)
    view = tmod["synthetic"].render_view(tpl, azimuth, elevation, width=512, height=384, focal_mm=35.0, fill=0.5)
    truth = tmod["match"].Pose(view.rotation, view.translation, 1.0)
    pose, err = tmod["pose_fit"].refine_pose(tpl.vertices, tpl.triangles, truth, view.camera, view.mask,
                                             view.zdepth)
    stretch = np.linalg.norm(pose.scale * pose.rotation, axis=0)
    assert np.isfinite(err)
    assert np.abs(stretch - 1.0).max() < 0.015, stretch
