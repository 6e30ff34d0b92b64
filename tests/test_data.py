"""The small data set the tests read (tests/data, see its LICENSES.md): complete, sound, and what
tests/data/make_data.py writes, so the committed files and their generator never drift apart."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
from monocle.geometry.check import is_closed
from monocle.geometry.mesh import PolyMesh, signed_volume
from PIL import Image
from template_checks import load_obj

DATA = Path(__file__).resolve().parent / "data"
GRABCUT = DATA / "masks" / "grabcut"


@pytest.fixture(scope="module")
def make_data():
    spec = importlib.util.spec_from_file_location("make_data", DATA / "make_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_fixture_reads_the_in_repo_copy(bench_data):
    """The tests read tests/data, never ../shared, unless MONOCLE_BENCH_DATA says otherwise."""
    chosen = os.environ.get("MONOCLE_BENCH_DATA")
    assert bench_data == (Path(chosen) if chosen else DATA)


def test_grabcut_stand_ins_are_complete(make_data):
    """Thirteen photos, each with a one-object truth mask of its size and a box around the object."""
    names = sorted(p.stem for p in (GRABCUT / "imgs").glob("*.jpg"))
    assert names == sorted(entry[0] for entry in make_data.GRABCUT) and len(names) == 13
    for name in names:
        photo = Image.open(GRABCUT / "imgs" / f"{name}.jpg")
        truth = np.asarray(Image.open(GRABCUT / "seg_GT" / f"{name}.bmp").convert("L")) > 127
        assert truth.shape == (photo.height, photo.width), name
        assert 0.03 < truth.mean() < 0.6, name
        x0, y0, x1, y1 = (int(v) for v in (GRABCUT / "bboxes" / f"{name}.txt").read_text().split())
        inside = np.zeros_like(truth)
        inside[y0:y1 + 1, x0:x1 + 1] = True
        assert truth[inside].sum() == truth.sum() and inside.mean() < 0.95, name


def test_grabcut_stand_ins_are_what_make_data_writes(make_data, tmp_path):
    """Regenerated, the masks and boxes are the committed ones bit for bit and the photos agree up to
    JPEG encoding."""
    make_data.write_grabcut(tmp_path)
    for name, *_ in make_data.GRABCUT:
        for sub, suffix in (("seg_GT", "bmp"), ("bboxes", "txt")):
            path = Path(sub) / f"{name}.{suffix}"
            assert (tmp_path / path).read_bytes() == (GRABCUT / path).read_bytes(), path
        new = np.asarray(Image.open(tmp_path / "imgs" / f"{name}.jpg"), dtype=np.float64)
        old = np.asarray(Image.open(GRABCUT / "imgs" / f"{name}.jpg"), dtype=np.float64)
        assert np.abs(new - old).mean() < 1.0, name


def _closed_outward(v: np.ndarray, f: np.ndarray) -> tuple[bool, float]:
    """Whether every edge of the triangles is shared by two of them, and the enclosed volume (the product's checks)."""
    sizes = np.full(len(f), 3)
    return is_closed(sizes, f.ravel(), oriented=False), signed_volume(PolyMesh(v, sizes, f.ravel()))


def test_mesh_stand_ins_are_what_make_data_writes(make_data):
    """The bunny stand-in is one closed, outward-facing surface about the Stanford bunny's size, and
    Suzanne is Blender's monkey; both as make_data writes them now."""
    v, f = load_obj(DATA / "meshes" / "common3d" / "stanford-bunny.obj")
    closed, volume = _closed_outward(v, f)
    assert closed and volume > 0
    assert 0.1 < float(np.ptp(v, axis=0).max()) < 0.25
    v_new, f_new = make_data.bunny_standin()
    assert np.array_equal(f_new, f) and np.allclose(v_new, v, atol=2e-6)
    v, f = load_obj(DATA / "meshes" / "common3d" / "suzanne.obj")
    v_new, faces = make_data.suzanne()
    assert v.shape == (507, 3) and len(faces) == 500
    assert np.allclose(v_new, v, atol=2e-6)
