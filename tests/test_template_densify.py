"""The template blend's mesh is dense enough to follow the photo on its seen side, whatever short
edges the template has (``geometry.mesh.densify``)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest


@pytest.fixture(scope="module")
def mods(monocle):
    names = {"tb": "scene.template_blend", "library": "templates.library", "mesh": "templates.mesh"}
    return {k: importlib.import_module(f"{monocle.__name__}.{v}") for k, v in names.items()}


def _edges(mesh) -> np.ndarray:
    return np.linalg.norm(mesh.vertices[mesh.loops] - mesh.vertices[mesh.loops[mesh.next_corners()]], axis=1)


def test_a_bevelled_box_is_split(mods):
    """The tall carton's faces are single quads between many short bevel edges (three edges in four are
    under 0.4 % of its size; its sides' edges are 26 % of it): densified, no edge is longer than a tenth of
    its size, and it stays under the face cap."""
    lib = mods["library"].bundled_library()
    tpl = mods["tb"].load_template_mesh(lib.get("Box Tall"))
    size = float(np.linalg.norm(np.ptp(tpl.mesh.vertices, axis=0)))
    before = _edges(tpl.mesh) / size
    assert np.percentile(before, 75) < 0.01 and before.max() > 0.25
    dense, parents = mods["mesh"].densify(tpl.mesh)
    assert _edges(dense).max() / size < 0.1
    assert dense.num_faces <= 60_000 and len(parents) == dense.num_faces
    assert set(np.unique(parents)) == set(range(tpl.mesh.num_faces))


def test_a_rounded_box_is_split(mods):
    """A box with rounded edges (four segments each: most of its edges are short) has its sides split too."""
    m = mods["mesh"]
    rounded = m.box((0.2, 0.09, 0.27), radius=0.004, round_segments=4)
    size = float(np.linalg.norm(np.ptp(rounded.vertices, axis=0)))
    assert np.percentile(_edges(rounded), 75) < 0.02 * size < _edges(rounded).max()
    dense, _ = m.densify(rounded)
    assert _edges(dense).max() < 0.1 * size


def test_an_even_mesh_is_split_as_before(mods):
    """A mesh of even edges (a cube) is split until its edges are under a fiftieth of its size."""
    m = mods["mesh"]
    dense, _ = m.densify(m.box((1.0, 1.0, 1.0)))
    size = float(np.linalg.norm(np.ptp(dense.vertices, axis=0)))
    assert np.percentile(_edges(dense), 75) <= size / 50.0
    assert _edges(dense).max() > size / 200.0  # not split further than asked
