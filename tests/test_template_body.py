"""The template body blend (issue 20): the fitted template's own mesh, its seen side pulled along the
camera rays onto the reconstruction. A mug-like template (a closed cylinder and a torus handle) over
an exact reconstruction of it, seen with the handle in front of the cup: the body keeps the hole
between handle and cup, which the ray shell fills; the seen side lies on the reconstruction; weight
0 / 1, the Fit slider, Swap and Apply work as on the shell."""

from __future__ import annotations

import importlib
import math
from dataclasses import replace

import bpy
import numpy as np
import pytest
from mathutils import Vector
from mathutils.bvhtree import BVHTree
from scene_checks import evaluated_triangles, evaluated_world
from template_checks import surface_distance, worker_result

W, H = 320, 240
RADIUS, HEIGHT = 0.04, 0.1
RING, TUBE = 0.025, 0.006  # the handle: torus major and minor radius
RING_X = RADIUS + 0.01  # the handle's centre, on +X at half height
HOLE = np.array([RING_X + 0.006, 0.0, 0.5 * HEIGHT])  # a point of the handle's hole, outside the cup


@pytest.fixture(scope="module")
def mods(monocle):
    names = {"tb": "scene.template_blend", "tl": "scene.template_library", "body": "scene.template_body",
             "build": "scene.build", "geometry": "geometry", "synthetic": "templates.synthetic",
             "match": "templates.match", "mesh": "templates.mesh", "ingest": "scene.ingest",
             "ffd": "templates.ffd", "retrieve": "templates.retrieve", "tbody": "templates.body"}
    return {k: importlib.import_module(f"{monocle.__name__}.{v}") for k, v in names.items()}


def _mug(mesh_mod):
    """A closed cylinder with a torus handle in the XZ plane on +X (two closed shells)."""
    profile = np.array([[0.0, 0.0], [RADIUS, 0.0], [RADIUS, HEIGHT], [0.0, HEIGHT]])
    cup = mesh_mod.lathe(profile, segments=48, max_len=0.006)
    ring = mesh_mod.torus(RING, TUBE, segments=40, ring_segments=12)
    upright = np.array([[1.0, 0, 0, RING_X], [0, 0, -1.0, 0], [0, 1.0, 0, 0.5 * HEIGHT], [0, 0, 0, 1]])
    return mesh_mod.merge(cup, ring.transformed(upright))


@pytest.fixture(scope="module")
def scene(ext_dir, mods, tmp_path_factory):
    """The mug saved as a one-template library, its photo from +X (handle in front) through the worker."""
    folder = tmp_path_factory.mktemp("body")
    poly = _mug(mods["mesh"])
    bpy.ops.wm.read_homefile(app_template="", use_empty=True)
    me = mods["ingest"].mesh_from_arrays("Test Mug", poly.vertices, poly.face_sizes, poly.loops)
    me.materials.append(bpy.data.materials.new("Test Mug Glaze"))
    obj = bpy.data.objects.new("Test Mug", me)
    bpy.context.scene.collection.objects.link(obj)
    obj["monocle_category"] = "mug"
    obj.asset_mark()
    blend = folder / "mugs.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.wm.read_homefile(app_template="", use_empty=True)
    lib = mods["tl"].library_of_file(blend)
    tpl = lib.get("Test Mug")
    view = mods["synthetic"].render_view(tpl, 90.0, 10.0, width=W, height=H, fill=0.6)
    return lib, tpl, view, worker_result(ext_dir, view, folder / "photo")


def _place(mods, scene, blend: str, lattice=None):
    """Build the reconstruction (closed back) and place the template at its true pose."""
    lib, tpl, view, result = scene
    settings = mods["geometry"].MeshSettings(detail=20_000, back="closed")
    report = mods["build"].build_from_result(result, settings, focal_mm=50.0)
    match_mod = mods["match"]
    pose = match_mod.Pose(view.rotation, view.translation, 1.0)
    match = match_mod.Match(tpl.name, tpl.category, 1.0, 1.0, 0.0, pose, 1.0, (90.0, 10.0), source=tpl.source)
    res = match_mod.MatchResult("mug", [match], threshold=0.0)
    fit = mods["retrieve"].unfitted(tpl)
    if lattice is not None:
        fit = replace(fit, lattice=lattice)
    camera = mods["build"].camera_for_result(mods["build"].read_result(result), 50.0)
    obj = mods["tb"].place_template(report.objects[0], report.camera, res, camera, library=lib, fits=[fit],
                                    trust=1.0, blend=blend)
    bpy.context.view_layer.update()
    return report, obj


def _set(obj, key: str, value: float) -> None:
    obj[key] = value
    obj.update_tag()
    bpy.context.view_layer.update()


def _tree(obj) -> BVHTree:
    """The evaluated object in its own model space (the template's)."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    return BVHTree.FromObject(obj.evaluated_get(depsgraph), depsgraph)


def _model_world(obj) -> np.ndarray:
    return np.array(obj.matrix_world, np.float64)


def _in_hole_is_empty(obj) -> bool:
    """Whether a ray from inside the handle's hole, along the handle's axis, leaves without meeting
    the blended surface (in the template's model space: the object's matrix is the pose)."""
    tree = _tree(obj)
    return all(tree.ray_cast(Vector(HOLE.tolist()), Vector(d))[0] is None for d in ((0, 1, 0), (0, -1, 0)))


def _recon_surface(recon) -> tuple[np.ndarray, np.ndarray]:
    return evaluated_triangles(recon)


def _weights(obj, name: str = "Monocle Visible") -> np.ndarray:
    group = obj.vertex_groups[name].index
    out = np.zeros(len(obj.data.vertices))
    for v in obj.data.vertices:  # test inspection of one object's group, not a hot path
        for g in v.groups:
            if g.group == group:
                out[v.index] = g.weight
    return out


def test_body_keeps_the_handle_hole(mods, scene):
    """The ray shell fills the hole behind the handle (its rays' first hit is the handle, the last the
    cup's far side); the body keeps it, and its seen side lies on the reconstruction."""
    _, shell = _place(mods, scene, "shell")
    assert not _in_hole_is_empty(shell)
    report, obj = _place(mods, scene, "body")
    assert [m.type for m in obj.modifiers] == ["LATTICE", "VERTEX_WEIGHT_MIX", "VERTEX_WEIGHT_MIX", "NODES",
                                               "SHRINKWRAP", "UV_PROJECT"]
    assert mods["tb"].is_template(obj) and mods["tb"].reconstruction_of(obj) == report.objects[0]
    assert _in_hole_is_empty(obj)
    # the seen side at the default weight: on the reconstruction, within 1 % of the object's size
    size = float(np.linalg.norm([2 * RADIUS + RING + TUBE + 0.01, 2 * RADIUS, HEIGHT]))
    weights = _weights(obj)
    seen = weights > 0.99
    assert 0.2 < seen.mean() < 0.6, float(seen.mean())
    rec_v, rec_t = _recon_surface(report.objects[0])
    d = surface_distance(evaluated_world(obj)[seen], rec_v, rec_t)
    assert np.percentile(d, 99) < 0.01 * size and d.max() < 0.02 * size, (np.percentile(d, 99) / size, d.max() / size)


def test_body_weight_and_fit_live(mods, scene):
    """Weight 0: the seen side on the reconstruction; weight 1: the pure fitted template; Fit moves the
    hidden side live; Apply bakes what the viewport shows."""
    _, tpl, _, _ = scene
    lattice = mods["retrieve"].unfitted(tpl).lattice  # the template's own lattice, stretched along X
    side = np.sign(lattice.rest_points()[:, :1] - lattice.origin[0])
    stretched = lattice.with_offsets(side * np.array([0.1 * RADIUS, 0.0, 0.0]))
    report, obj = _place(mods, scene, "body", stretched)
    model = obj.data
    rest = np.empty(len(model.vertices) * 3)
    model.vertices.foreach_get("co", rest)
    rest = rest.reshape(-1, 3)
    m = _model_world(obj)
    fitted_world = stretched.deform(rest) @ m[:3, :3].T + m[:3, 3]
    rigid_world = rest @ m[:3, :3].T + m[:3, 3]
    weights = _weights(obj)
    hidden, seen = (weights == 0) & (_weights(obj, "Monocle Overhang") == 0), weights > 0.99
    size = float(np.linalg.norm(np.ptp(rigid_world, axis=0)))

    _set(obj, "monocle_template_weight", 1.0)  # the pure fitted template
    assert np.abs(evaluated_world(obj) - fitted_world).max() < 1e-5 * size
    _set(obj, "monocle_template_fit", 0.0)  # Fit 0: the rigid template, live
    assert np.abs(evaluated_world(obj) - rigid_world).max() < 1e-5 * size
    _set(obj, "monocle_template_fit", 1.0)

    _set(obj, "monocle_template_weight", 0.0)  # the seen side on the reconstruction, the hidden fitted
    ev0 = evaluated_world(obj)
    assert np.abs(ev0[hidden] - fitted_world[hidden]).max() < 1e-5 * size
    rec_v, rec_t = _recon_surface(report.objects[0])
    d = surface_distance(ev0[seen], rec_v, rec_t)
    assert np.percentile(d, 99) < 0.01 * size
    # ... whatever the Fit: the pull casts from the camera through the vertex as the lattice left it
    _set(obj, "monocle_template_fit", 0.0)
    d0 = surface_distance(evaluated_world(obj)[seen], rec_v, rec_t)
    assert np.percentile(d0, 99) < 0.01 * size
    assert np.abs(evaluated_world(obj)[hidden] - rigid_world[hidden]).max() < 1e-5 * size

    _set(obj, "monocle_template_weight", 0.5)
    shown = evaluated_world(obj)
    mods["tb"].apply_template(obj)
    baked = np.empty(len(obj.data.vertices) * 3)
    obj.data.vertices.foreach_get("co", baked)
    baked = baked.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3]
    assert len(obj.modifiers) == 0 and not mods["tb"].is_template(obj)
    assert np.abs(baked - shown).max() < 1e-6 * max(size, 1.0)


def test_body_overhang_goes_onto_the_reconstruction(mods, scene):
    """A fitted template wider than the photo's object (its outline past the mask on both sides): the
    seen vertices whose rays miss the reconstruction (the overhang) go onto its nearest surface point
    at the default weight instead of standing off it, and back onto the template at weight 1."""
    _, tpl, _, _ = scene
    lattice = mods["retrieve"].unfitted(tpl).lattice
    side = np.sign(lattice.rest_points()[:, 1:2] - lattice.origin[1])  # model Y: across the photo
    wide = lattice.with_offsets(side * np.array([0.0, 0.25 * RADIUS, 0.0]))
    report, obj = _place(mods, scene, "body", wide)
    over = _weights(obj, "Monocle Overhang")
    assert (over > 0.99).sum() >= 20, int((over > 0.99).sum())
    assert not ((over > 0) & (_weights(obj) > 0)).any()  # a vertex is pulled one way or the other
    m = _model_world(obj)
    rest = np.empty(len(obj.data.vertices) * 3)
    obj.data.vertices.foreach_get("co", rest)
    fitted_world = wide.deform(rest.reshape(-1, 3)) @ m[:3, :3].T + m[:3, 3]
    size = float(np.linalg.norm(np.ptp(fitted_world, axis=0)))
    rec_v, rec_t = _recon_surface(report.objects[0])
    moved = over > 0.99
    before = surface_distance(fitted_world[moved], rec_v, rec_t)
    assert np.median(before) > 0.02 * size, float(np.median(before) / size)  # the template stands off it
    after = surface_distance(evaluated_world(obj)[moved], rec_v, rec_t)
    assert after.max() < 1e-3 * size, float(after.max() / size)
    _set(obj, "monocle_template_weight", 1.0)
    assert np.abs(evaluated_world(obj) - fitted_world).max() < 1e-5 * size


def test_ray_targets_match_a_plane(mods):
    """The numpy cast: points in front of and behind a plane facing the camera go onto it along their
    rays; points whose ray misses, or whose hit is too far, are not pulled."""
    tbody = mods["tbody"]
    plane = np.array([[-1.0, -1.0, -5.0], [1.0, -1.0, -5.0], [1.0, 1.0, -5.0], [-1.0, 1.0, -5.0]])
    tris = np.array([[0, 1, 2], [0, 2, 3]])
    pts = np.array([[0.1, 0.2, -4.9], [-0.3, 0.1, -5.2], [3.0, 0.0, -5.0], [0.0, 0.0, -2.0], [0.2, -0.2, -5.05]])
    wanted = np.array([True, True, True, True, False])
    target, hit = tbody.ray_targets(pts, wanted, plane, tris, max_gap=0.1)
    assert hit.tolist() == [True, True, False, False, False]
    for p, t in zip(pts[hit], target[hit]):
        assert t[2] == pytest.approx(-5.0, abs=1e-9)
        ray = p / np.linalg.norm(p)
        assert np.linalg.norm(np.cross(ray, t / np.linalg.norm(t))) < 1e-9
    assert math.isfinite(float(target[hit].sum()))



def test_overhang_of_a_template_wider_than_the_reconstruction(mods):
    """The numpy pulls: a template plane twice as wide as the reconstruction's plane, both facing the
    camera: the vertices over the reconstruction are pulled, those past its outline are the overhang;
    over a guessed relief (low depth trust) nothing is the overhang."""
    tbody, match_mod = mods["tbody"], mods["match"]
    n = 21
    g = np.linspace(-2.0, 2.0, n)
    x, y = np.meshgrid(g, g)
    verts = np.stack([x.ravel(), y.ravel(), np.full(n * n, -5.0)], axis=1)
    quads = (np.arange(n - 1)[:, None] * n + np.arange(n - 1)[None, :]).ravel()
    tris = np.concatenate([np.stack([quads, quads + 1, quads + n + 1], 1),
                           np.stack([quads, quads + n + 1, quads + n], 1)])
    surface = np.array([[-1.0, -1.0, -5.0], [1.0, -1.0, -5.0], [1.0, 1.0, -5.0], [-1.0, 1.0, -5.0]])
    surface_tris = np.array([[0, 1, 2], [0, 2, 3]])
    pose = match_mod.Pose(np.eye(3), np.zeros(3), 1.0)
    camera = mods["geometry"].CameraModel(320, 240, 35.0)
    inside = np.all(np.abs(verts[:, :2]) < 0.99, axis=1)
    outside = np.any(np.abs(verts[:, :2]) > 1.01, axis=1)
    weights, target, over = tbody.body_pulls(verts, tris, pose, camera, 1.0, surface, surface_tris)
    assert (weights[inside] == 1.0).all() and (over[inside] == 0.0).all()
    assert (weights[outside] == 0.0).all() and (over[outside] == 1.0).all()
    assert np.abs(target[inside] - verts[inside]).max() < 1e-9  # already on the plane
    _, _, guessed = tbody.body_pulls(verts, tris, pose, camera, 0.1, surface, surface_tris)
    assert not guessed.any()
