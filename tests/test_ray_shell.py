"""The fitted template resampled on a reconstruction's camera rays (issue 20: the visible side stays
the reconstruction, the hidden side is the fitted template): nearest and farthest hits against a
brute-force ray cast, the hits' rest-space points mapped back by the lattice, misses and the floor."""

from __future__ import annotations

import importlib

import numpy as np
import pytest


@pytest.fixture(scope="module")
def tmod(monocle):
    names = ("ffd", "library", "mesh", "ray_shell", "synthetic")
    return {n: importlib.import_module(f"{monocle.__name__}.templates.{n}") for n in names}


def _cast(origin_dirs: np.ndarray, v: np.ndarray, tris: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(nearest, farthest) distance of every ray from the origin to the triangles (nan: none);
    Moller-Trumbore over all triangles, an independent check of the raster-based cast."""
    a, b, c = v[tris[:, 0]], v[tris[:, 1]], v[tris[:, 2]]
    e1, e2 = b - a, c - a
    near, far = np.full(len(origin_dirs), np.nan), np.full(len(origin_dirs), np.nan)
    for i, d in enumerate(origin_dirs):
        p = np.cross(d, e2)
        det = np.einsum("ij,ij->i", e1, p)
        ok = np.abs(det) > 1e-14
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        s = -a
        u = np.einsum("ij,ij->i", s, p) * inv
        q = np.cross(s, e1)
        w = (q @ d) * inv
        t = np.einsum("ij,ij->i", e2, q) * inv
        hit = ok & (u >= 0) & (w >= 0) & (u + w <= 1) & (t > 0)
        if hit.any():
            near[i], far[i] = t[hit].min(), t[hit].max()
    return near, far


def test_hits_match_a_brute_force_cast(tmod):
    lib = tmod["library"].bundled_library()
    tpl = lib.get("Mug")
    mesh = tmod["mesh"].PolyMesh(tpl.vertices, np.full(len(tpl.triangles), 3), tpl.triangles.ravel())
    dense, _ = tmod["mesh"].densify(mesh)
    rest = dense.vertices.astype(np.float64)
    tris = dense.triangles().astype(np.int64)
    view = tmod["synthetic"].render_view(tpl, 30.0, 20.0, width=320, height=240)
    # a fitted shape: the template bent by a lattice (the rest points must come back through it)
    lattice = tmod["ffd"].lattice_for(rest, 1, (3, 3, 3))
    size = float(np.linalg.norm(np.ptp(rest, axis=0)))
    lattice = lattice.with_offsets(np.random.default_rng(2).normal(0.0, 0.02 * size, (lattice.num_points, 3)))
    fitted_model = lattice.deform(rest)
    posed = fitted_model @ view.rotation.T + view.translation

    rng = np.random.default_rng(0)
    f = view.camera.focal_px
    rows, cols = np.nonzero(view.mask)
    pick = rng.choice(len(rows), 200, replace=False)
    px = np.stack([cols[pick] + rng.random(200), rows[pick] + rng.random(200)], axis=1)
    px = np.vstack([px, [[2.0, 2.0], [318.0, 3.0], [5.0, 236.0]]])  # three rays that miss
    dirs = np.stack([(px[:, 0] - 160.0) / f, -(px[:, 1] - 120.0) / f, -np.ones(len(px))], axis=1)
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    depth = float(-view.translation[2])
    points = np.vstack([dirs * depth, dirs * depth])  # front copies, then back copies on the same rays
    m = len(px)
    front = np.arange(2 * m) < m
    floor = np.zeros(2 * m)
    out, hit, tri, dist = tmod["ray_shell"].resample(points, front, ~front, posed, rest, tris, floor)

    near, far = _cast(dirs, posed, tris)
    posed_size = float(np.linalg.norm(np.ptp(posed, axis=0)))
    seen = ~np.isnan(near)
    assert seen[:200].mean() > 0.9 and not seen[200:].any()
    assert not hit[200:m].any() and not hit[m + 200:].any()  # misses are misses
    both = seen & hit[:m] & hit[m:]
    assert both.mean() > 0.85
    assert np.abs(dist[:m][both] - near[both]).max() < 0.01 * posed_size
    assert np.abs(dist[m:][both] - far[both]).max() < 0.01 * posed_size
    assert np.median(np.abs(dist[:m][both] - near[both])) < 1e-3 * posed_size
    # the rest-space points, bent by the lattice and posed, land on the hits along the rays
    back_to = lattice.deform(out[hit]) @ view.rotation.T + view.translation
    along = np.concatenate([dirs, dirs])[hit] * dist[hit][:, None]
    assert np.median(np.linalg.norm(back_to - along, axis=1)) < 2e-3 * posed_size
    assert np.percentile(np.linalg.norm(back_to - along, axis=1), 95) < 0.01 * posed_size

    # a floor beyond every back hit turns the backs into misses (never in front of the reconstruction)
    _, hit2, _, _ = tmod["ray_shell"].resample(points, front, ~front, posed, rest, tris, np.full(2 * m, 1e9))
    assert not hit2[m:].any() and (hit2[:m] == hit[:m]).all()
