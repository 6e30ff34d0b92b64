"""The bundled template library as a catalogue (issue 20, part 3): its size and categories, the COCO
labels a learned segmentation engine emits, sane meshes in metres, and symmetry flags that the
geometry really has (the lattice fit keeps them)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from scipy.spatial import cKDTree

PRIMITIVES = {"cube", "sphere", "cylinder", "cone", "torus", "capsule"}
# COCO category names of everyday indoor photos, as COCO spells them
COCO = ("laptop", "tv", "keyboard", "book", "clock", "vase", "potted plant", "bench", "bed", "toilet", "sink",
        "refrigerator", "microwave", "suitcase", "backpack", "cell phone", "remote", "chair", "couch", "dining table",
        "cup", "wine glass", "bottle", "bowl", "car", "oven", "toaster", "handbag", "truck")
# Largest bounding box side per category, metres (a phone is 15 cm long, a pickup 5.3 m)
EXTENT = {
    "chair": (0.6, 1.3), "table": (0.45, 2.0), "stool": (0.3, 0.9), "sofa": (1.2, 2.6), "bench": (0.8, 2.0),
    "bed": (1.8, 2.4), "toilet": (0.5, 1.1), "sink": (0.5, 1.2), "cabinet": (0.4, 2.2), "mug": (0.07, 0.16),
    "cup": (0.05, 0.18), "glass": (0.06, 0.25), "bottle": (0.15, 0.4), "vase": (0.15, 0.5), "bowl": (0.1, 0.35),
    "plate": (0.15, 0.35), "can": (0.08, 0.2), "jar": (0.06, 0.3), "pan": (0.2, 0.6), "bin": (0.2, 0.7),
    "plant": (0.2, 1.5), "laptop": (0.25, 0.45), "tv": (0.4, 2.0), "keyboard": (0.25, 0.5), "phone": (0.1, 0.3),
    "remote": (0.1, 0.3), "microwave": (0.35, 0.7), "refrigerator": (0.8, 2.1), "oven": (0.8, 1.2),
    "toaster": (0.2, 0.5), "clock": (0.1, 0.5), "lamp": (0.3, 1.9), "book": (0.15, 0.35), "box": (0.1, 0.6),
    "suitcase": (0.3, 1.2), "backpack": (0.3, 0.8), "handbag": (0.15, 0.7), "car": (3.5, 5.5),
}
SYMMETRY_TOLERANCE = 0.02  # of the bounding box diagonal


@pytest.fixture(scope="module")
def mods(monocle):
    names = {"library": "templates.library", "mesh": "templates.mesh", "hf": "inference.engines.hf_segment"}
    return {k: importlib.import_module(f"{monocle.__name__}.{v}") for k, v in names.items()}


@pytest.fixture(scope="module")
def library(mods):
    return mods["library"].bundled_library()


def test_size_and_categories(library):
    """At least 100 templates over at least 30 everyday categories, each with two variants or more."""
    counts: dict[str, int] = {}
    for t in library.templates:
        counts[t.category] = counts.get(t.category, 0) + 1
    everyday = {c: n for c, n in counts.items() if c not in PRIMITIVES}
    assert len(library) >= 100
    assert len(everyday) >= 30, sorted(everyday)
    assert all(n >= 2 for n in everyday.values()), everyday
    assert set(everyday) <= set(EXTENT), set(everyday) - set(EXTENT)
    assert len(set(library.names)) == len(library)


@pytest.mark.parametrize("coco", COCO)
def test_coco_labels_narrow_the_search(library, mods, coco):
    """Every COCO name, raw or as the learned engine turns it into a plain noun, is answered by at
    least one template, and by far from all of them."""
    lib = mods["library"]
    for label in dict.fromkeys((coco, mods["hf"].plain_label(coco))):
        hits = [t for t in library.templates if lib.answers_to(t, label)]
        assert hits, label
        cand = library.candidates(label)
        assert len(cand) == len(hits) < 0.25 * len(library), (label, len(cand))


def _triangle_areas(v: np.ndarray, tri: np.ndarray) -> np.ndarray:
    return 0.5 * np.linalg.norm(np.cross(v[tri[:, 1]] - v[tri[:, 0]], v[tri[:, 2]] - v[tri[:, 0]]), axis=1)


def test_meshes_are_sane(library, mods):
    """Finite, closed and outward-facing, no degenerate triangles, upright on the origin, and as big
    as the real thing."""
    mesh = mods["mesh"]
    for t in library.templates:
        v = t.vertices.astype(np.float64)
        assert np.isfinite(v).all(), t.name
        assert 100 <= len(v) <= 4000, (t.name, len(v))  # low-poly: a paperback is a rounded box
        m = mesh.PolyMesh(v, np.full(len(t.triangles), 3), t.triangles)
        assert mesh.is_closed(m) and mesh.signed_volume(m) > 0, t.name
        areas = _triangle_areas(v, t.triangles)
        size = t.size
        assert areas.min() > 1e-9 * size * size, (t.name, float(areas.min()))
        lo, hi = v.min(axis=0), v.max(axis=0)
        assert lo[2] == 0.0, t.name
        assert np.all(np.abs(lo[:2] + hi[:2]) < 0.35 * (hi[:2] - lo[:2])), t.name
        if t.category in PRIMITIVES:
            continue
        ext = hi - lo
        low, high = EXTENT[t.category]
        assert low <= ext.max() <= high, (t.name, ext.round(3).tolist())
        upright = ext[2] >= 0.02 * ext.max()  # flat things lie flat, nothing is tipped over below the floor
        assert upright and (v[:, 2] >= 0).all(), t.name


def _surface_samples(t, n: int, rng: np.random.Generator) -> np.ndarray:
    v = t.vertices.astype(np.float64)
    tri = t.triangles
    areas = _triangle_areas(v, tri)
    pick = rng.choice(len(tri), n, p=areas / areas.sum())
    a, b = rng.random((2, n))
    flip = a + b > 1
    a, b = np.where(flip, 1 - a, a), np.where(flip, 1 - b, b)
    p0, p1, p2 = v[tri[pick, 0]], v[tri[pick, 1]], v[tri[pick, 2]]
    return p0 + a[:, None] * (p1 - p0) + b[:, None] * (p2 - p0)


def _mismatch(points: np.ndarray, tree: cKDTree, matrix: np.ndarray) -> float:
    """Largest distance from the transformed surface samples to the untransformed ones."""
    return float(tree.query(points @ matrix.T)[0].max())


def _rz(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def test_symmetry_flags_match_geometry(library, mods):
    """A revolution template is unchanged by any turn about +Z, an n-fold one by a turn of 360/n
    degrees, a mirror one by its mirror flips (within 2 % of its size); every template has a mirror code."""
    lib = mods["library"]
    rng = np.random.default_rng(0)
    checked = {"revolution": 0, "n-fold": 0, "mirror": 0}
    for t in library.templates:
        assert t.mirror in lib.MIRROR_AXES, t.name
        pts = _surface_samples(t, 60_000, rng)
        tree = cKDTree(pts)
        tol = SYMMETRY_TOLERANCE * t.size
        if t.symmetry in (lib.SYM_REVOLUTION, lib.SYM_SPHERE):
            assert t.mirror == "xy", t.name
            for turn in (0.37, 1.9, 4.4):
                assert _mismatch(pts, tree, _rz(turn)) < tol, (t.name, turn)
            checked["revolution"] += 1
        elif t.symmetry > 1:
            assert _mismatch(pts, tree, _rz(2 * np.pi / t.symmetry)) < tol, t.name
            checked["n-fold"] += 1
        for axis in t.mirror:
            flip = np.diag([-1.0 if axis == "x" else 1.0, -1.0 if axis == "y" else 1.0, 1.0])
            assert _mismatch(pts, tree, flip) < tol, (t.name, axis)
            checked["mirror"] += 1
    assert min(checked.values()) >= 10, checked
    # a flag that is wrong is caught: the mug's handle is not mirrored left-right
    mug = library.get("Mug")
    pts = _surface_samples(mug, 60_000, rng)
    assert _mismatch(pts, cKDTree(pts), np.diag([-1.0, 1.0, 1.0])) > 5 * SYMMETRY_TOLERANCE * mug.size
