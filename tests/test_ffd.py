"""Free-form deformation of templates (issue 20, part 1): the numpy lattice against Blender's
Lattice modifier, and the lattice fit to a mask and depth map (recovery, symmetry, depth trust)."""

from __future__ import annotations

import importlib

import bpy
import numpy as np
import pytest
from mathutils import Matrix
from scene_checks import evaluated_world


@pytest.fixture(scope="module")
def tmod(monocle):
    """The installed templates package's modules."""
    names = ("ffd", "ffd_fit", "library", "match", "mesh", "render", "synthetic")
    return {n: importlib.import_module(f"{monocle.__name__}.templates.{n}") for n in names}


def _blender_lattice_deform(lattice, points: np.ndarray, placement: np.ndarray, strength: float) -> np.ndarray:
    """World positions of ``points`` (model space of an object at ``placement``) after a Lattice modifier
    driven by a Blender Lattice object built from ``lattice``."""
    nu, nv, nw = lattice.resolution
    lt = bpy.data.lattices.new("FFD")
    lat_obj = bpy.data.objects.new("FFD", lt)
    bpy.context.scene.collection.objects.link(lat_obj)
    lt.points_u, lt.points_v, lt.points_w = nu, nv, nw
    lt.interpolation_type_u, lt.interpolation_type_v, lt.interpolation_type_w = lattice.interpolation
    rest = np.empty(lattice.num_points * 3, dtype=np.float32)
    lt.points.foreach_get("co", rest)
    assert np.allclose(rest.reshape(-1, 3), lattice.local_rest(), atol=1e-6)  # same point order and rest grid
    lt.points.foreach_set("co_deform", lattice.local_points().astype(np.float32).ravel())
    lat_obj.matrix_world = Matrix((placement @ lattice.matrix()).tolist())

    mesh = bpy.data.meshes.new("Points")
    mesh.from_pydata(points.tolist(), [], [])
    obj = bpy.data.objects.new("Points", mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj.matrix_world = Matrix(placement.tolist())
    mod = obj.modifiers.new("Lattice", "LATTICE")
    mod.object = lat_obj
    mod.strength = strength
    return evaluated_world(obj)


@pytest.mark.parametrize(("resolution", "interpolation", "strength"), [
    ((4, 4, 4), ("KEY_BSPLINE",) * 3, 1.0),
    ((3, 3, 3), ("KEY_BSPLINE",) * 3, 0.6),
    ((2, 3, 5), ("KEY_LINEAR",) * 3, 1.0),
    ((2, 2, 4), ("KEY_LINEAR", "KEY_LINEAR", "KEY_BSPLINE"), 1.0),
    ((4, 3, 4), ("KEY_CATMULL_ROM", "KEY_CARDINAL", "KEY_BSPLINE"), 1.0),
])
def test_blender_lattice_matches_numpy(tmod, resolution, interpolation, strength):
    """Blender's Lattice modifier moves points, inside the box, near its faces and well outside it,
    exactly as ``Lattice.deform`` does (within 1e-5 of the box size), for a placed, rotated and
    scaled template object."""
    ffd = tmod["ffd"]
    rng = np.random.default_rng(7)
    lattice = ffd.Lattice((1, 1, 1), (0.1, -0.2, 0.3), (0.8, 0.5, 1.2), interpolation=interpolation)
    lattice = ffd.Lattice(resolution, lattice.origin, lattice.size, interpolation=interpolation)
    size = float(np.linalg.norm(lattice.size))
    lattice = lattice.with_offsets(rng.normal(scale=0.06 * size, size=(lattice.num_points, 3)))
    local = rng.uniform(-0.8, 0.8, size=(4000, 3))  # a third of them outside the box
    local[:500] = np.clip(local[:500], -0.5, 0.5)  # on the box's faces
    points = local @ (lattice.axes * lattice.size).T + lattice.origin
    placement = np.array(Matrix.LocRotScale((1.0, -2.0, 0.5), Matrix.Rotation(0.7, 3, (0.3, 0.2, 0.9)).to_quaternion(),
                                            (1.7, 1.7, 1.7)))
    got = _blender_lattice_deform(lattice, points, placement, strength)
    want = lattice.deform(points, strength) @ placement[:3, :3].T + placement[:3, 3]
    err = np.abs(got - want).max() / (1.7 * size)
    moved = np.abs(want - (points @ placement[:3, :3].T + placement[:3, 3])).max() / (1.7 * size)
    assert moved > 0.05  # the lattice really deforms
    assert err < 1e-5, err
    w = lattice.weights(points)
    assert np.allclose(points + strength * w @ lattice.offsets, lattice.deform(points, strength))
