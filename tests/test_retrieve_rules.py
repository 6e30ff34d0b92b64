"""Retrieval's coarse stages and acceptance rule (issue 20): the pruning keeps a template of other
proportions, a guessed relief's close scores are judged with a margin of their own, and a tall
carton finds the box category; flat bottles and tube-frame lounge chairs find theirs."""

from __future__ import annotations

import importlib

import numpy as np
import pytest


@pytest.fixture(scope="module")
def tmod(monocle):
    """The installed templates package's modules."""
    names = ("library", "match", "synthetic", "descriptors", "retrieve", "mesh", "fit")
    return {n: importlib.import_module(f"{monocle.__name__}.templates.{n}") for n in names}


@pytest.fixture(scope="module")
def library(tmod):
    return tmod["library"].bundled_library()


def stretched(tmod, library, name: str, factors: tuple[float, float, float]):
    """The template ``name`` with its axes scaled by ``factors`` (another object of its kind)."""
    tpl = library.get(name)
    return tmod["library"].Template(name + " other", tpl.category, tpl.labels, tpl.symmetry,
                                    (tpl.vertices * np.array(factors)).astype(np.float32), tpl.triangles)


def render(tmod, tpl, az: float, el: float):
    """The 3D bench's image size and lens, the object filling half the frame."""
    return tmod["synthetic"].render_view(tpl, az, el, width=512, height=384, focal_mm=35.0, fill=0.5)


def guessed_relief(monocle, view) -> np.ndarray:
    """The classic engine's relief of the view's mask (its inflation) at the object's distance."""
    inflate = importlib.import_module(f"{monocle.__name__}.inference.engines.classic").inflate
    z = view.zdepth.astype(np.float64)
    med = float(np.median(z[view.mask]))
    height = inflate(view.mask).astype(np.float64) * med / float(view.camera.focal_px)
    return np.where(view.mask, med - height + float(height[view.mask].mean()), 0.0)


def test_pruning_keeps_a_taller_jar(library, tmod):
    """A mason jar a quarter taller and a fifth narrower ranks 29th to 35th of the library by
    outline from the 3D bench's views (many cylinders and boxes look more like it, proportions apart):
    the silhouette-only pruning keeps it (it kept 24 templates, and lost it in all three views)."""
    match, desc = tmod["match"], tmod["descriptors"]
    jar = stretched(tmod, library, "Jar Mason", (0.8, 0.8, 1.25))
    cand = list(range(len(library)))
    for az, el in ((-35.0, 15.0), (40.0, 25.0), (160.0, 10.0)):
        view = render(tmod, jar, az, el)
        inst = desc.instance_descriptor(view.mask, view.zdepth, float(view.camera.focal_px))
        sil = np.where(match._valid_views(library, cand), match.silhouette_scores(inst, library, cand), -np.inf)
        kept = match.prune(sil + match.view_prior(library))
        assert len(kept) == match.PRUNE_KEEP < len(library)
        assert library.index("Jar Mason") in kept, az


def test_a_guessed_relief_is_judged_with_its_own_margin(library, tmod, monocle):
    """With depth trusted as little as the classic engine's relief, the scores are the outline's and
    lie close together: a wine bottle and a tea cup (only their outline and the inflated relief to go
    by) lead every other category by 0.04 to 0.05 and are placed with their category; the margin a
    lead must reach falls with the trust."""
    retrieve = tmod["retrieve"]
    leads = []
    for name, az, el in (("Bottle Wine", -35.0, 15.0), ("Bottle Wine", 40.0, 25.0), ("Cup Tea", -35.0, 15.0)):
        tpl = library.get(name)
        view = render(tmod, tpl, az, el)
        res, _ = retrieve.retrieve(view.mask, guessed_relief(monocle, view), view.camera, library, "object",
                                   depth_scale=True, trust=0.1)
        got = [(m.template, m.category, round(m.score, 3)) for m in res.matches]
        assert res.accepted and res.matches[0].category == tpl.category, (name, az, got)
        others = [m.score for m in res.matches if m.category != tpl.category]
        leads.append(res.matches[0].score - max(others, default=0.0))
    assert min(leads) >= retrieve.ambiguity_for(0.1), leads
    assert retrieve.ambiguity_for(1.0) == pytest.approx(retrieve.AMBIGUITY_MARGIN)
    assert retrieve.ambiguity_for(0.1) < retrieve.ambiguity_for(0.5) < retrieve.AMBIGUITY_MARGIN


def test_a_tall_carton_is_a_box(library, tmod):
    """A plain carton standing up, proportions of a cereal box (exact depth): the box category's
    tall carton fits it best from all three of the 3D bench's views (a library without one gave it a
    suitcase or a standing book), and places it where no other category comes close."""
    retrieve, lib = tmod["retrieve"], tmod["library"]
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (0, 1)], np.float64)
    quads = ((0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3))
    tris = np.array([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))], np.int32)
    carton = lib.Template("Carton", "box", ("box",), 2, (corners * [0.11, 0.045, 0.36]).astype(np.float32), tris)
    placed = 0
    for az, el in ((-35.0, 15.0), (40.0, 25.0), (160.0, 10.0)):
        view = render(tmod, carton, az, el)
        res, _ = retrieve.retrieve(view.mask, view.zdepth, view.camera, library, "object")
        got = [(m.template, m.category, round(m.score, 3)) for m in res.matches]
        assert res.matches[0].category == "box", (az, got)
        placed += res.accepted
    assert placed >= 1


FLAT_BOTTLES = ("Bottle Oval", "Bottle Flask")
SLED_CHAIRS = ("Chair Sled Lounge", "Chair Sled Arms")


def test_flat_bottles_and_open_frame_lounge_chairs(library, tmod):
    """The bottle category has flat bottles (a shampoo bottle, a flask: about half as deep as wide,
    mirror-symmetric front to back and side to side, not surfaces of revolution, so their views
    about +Z are not taken as repeats) and the chair category lounge chairs on a bent-tube frame,
    open underneath; every one a closed, outward-facing mesh."""
    mesh = tmod["mesh"]
    for name in (*FLAT_BOTTLES, *SLED_CHAIRS):
        tpl = library.get(name)
        m = mesh.PolyMesh(tpl.vertices, np.full(len(tpl.triangles), 3), tpl.triangles)
        assert mesh.is_closed(m) and mesh.signed_volume(m) > 0, name
        assert tpl.category == ("bottle" if name in FLAT_BOTTLES else "chair"), name
    for name in FLAT_BOTTLES:
        tpl = library.get(name)
        width, depth, _ = np.ptp(tpl.vertices, axis=0)
        assert 0.3 < depth / width < 0.7, name
        assert tpl.symmetry == 2 and tpl.mirror == "xy", name
    for name in SLED_CHAIRS:
        v = library.get(name).vertices
        height = float(v[:, 2].max())
        under = v[(v[:, 2] > 0.1 * height) & (v[:, 2] < 0.3 * height)]
        # below the seat only the two side frames: nothing near the middle
        assert np.abs(under[:, 0]).min() > 0.4 * np.ptp(v[:, 0]), name


@pytest.mark.parametrize("name, factors, category", [
    ("Bottle Oval", (1.2, 1.15, 0.85), "bottle"),  # a squat detergent bottle
    ("Chair Sled Lounge", (1.15, 1.1, 0.9), "chair"),  # a wider, lower lounge chair
])
def test_a_flat_bottle_and_a_tube_frame_lounge_chair_find_their_category(library, tmod, name, factors, category):
    """A flat bottle of other proportions and a sled-frame lounge chair of other proportions (exact
    depth) get their category from all three of the 3D bench's views and are placed from at least
    two; without the flat bottles and the sled chairs, the best was a fridge, a cabinet, a bed or a
    sofa, and nothing was placed."""
    retrieve = tmod["retrieve"]
    obj = stretched(tmod, library, name, factors)
    family = FLAT_BOTTLES if category == "bottle" else SLED_CHAIRS
    without = library.subset([i for i, t in enumerate(library.templates) if t.name not in family])
    placed = 0
    for az, el in ((-35.0, 15.0), (40.0, 25.0), (160.0, 10.0)):
        view = render(tmod, obj, az, el)
        res, _ = retrieve.retrieve(view.mask, view.zdepth, view.camera, library, "object")
        got = [(m.template, m.category, round(m.score, 3)) for m in res.matches]
        assert res.matches[0].category == category, (az, got)
        placed += res.accepted
        before, _ = retrieve.retrieve(view.mask, view.zdepth, view.camera, without, "object")
        assert not (before.accepted and before.matches[0].category == category), az
    assert placed >= 2


def test_a_food_tin_is_best_matched_by_a_can(library, tmod):
    """A food tin a little smaller and squatter than the library's (exact depth): the can category's
    food tin fits it best from all three of the 3D bench's views (the drinks cans' necked tops do
    not: a tall mug, a storage jar or a tumbler came first). Still refused, as a tie with those
    cylinders within the ambiguity margin."""
    retrieve = tmod["retrieve"]
    tin = library.get("Can Food")
    assert tin.symmetry == tmod["library"].SYM_REVOLUTION
    obj = stretched(tmod, library, "Can Food", (0.95, 0.95, 0.9))
    for az, el in ((-35.0, 15.0), (40.0, 25.0), (160.0, 10.0)):
        view = render(tmod, obj, az, el)
        res, _ = retrieve.retrieve(view.mask, view.zdepth, view.camera, library, "object")
        got = [(m.template, m.category, round(m.score, 3)) for m in res.matches]
        assert res.matches[0].template == "Can Food", (az, got)



def test_measured_depth_places_a_plate_seen_almost_edge_on(library, tmod):
    """A plate a little wider, narrower and deeper than the library's, exact depth, seen from 10 and 8
    degrees above as the 3D bench's cameras see it: the leading templates' poses are refined once more
    on the score grid, and the placed plate's centre comes within 1 % of its size of the object's from
    every view (4 % off from behind before: on the coarse refinement grid the plate is an ellipse a few
    cells high)."""
    retrieve, fit, lib = tmod["retrieve"], tmod["fit"], tmod["library"]
    tpl = library.get("Plate")
    plate = lib.Template("Plate other", "plate", ("plate",), tpl.symmetry,
                         (tpl.vertices * np.array([1.08, 0.95, 1.05])).astype(np.float32), tpl.triangles)
    centre = 0.5 * (plate.vertices.min(axis=0) + plate.vertices.max(axis=0)).astype(np.float64)
    size = float(np.linalg.norm(np.ptp(plate.vertices, axis=0)))
    for az, el in ((160.0, 10.0), (-35.0, 15.0), (40.0, 8.0)):
        view = render(tmod, plate, az, el)
        res, fits = retrieve.retrieve(view.mask, view.zdepth, view.camera, library, "object")
        assert res.accepted and res.matches[0].category == "plate", (az, res.matches[:2])
        res, _ = fit.refine_matches(res, fits, library, view.camera, view.mask, view.zdepth, 1.0)
        truth = view.rotation @ centre + view.translation
        placed = res.matches[0].pose.apply((0.5 * (tpl.vertices.min(axis=0) + tpl.vertices.max(axis=0)))[None]
                                           .astype(np.float64))[0]
        assert np.linalg.norm(placed - truth) < 0.01 * size, (az, np.linalg.norm(placed - truth) / size)


def test_seeds_are_the_best_then_the_leaders_siblings(tmod):
    """The poses refined: the best few by coarse score, then the leading category's next best."""
    seeds = tmod["match"]._seed_templates
    best = np.array([0.9, 0.85, 0.84, 0.83, 0.8, 0.7, 0.6])
    cats = ["stool", "backpack", "backpack", "backpack", "box", "stool", "stool"]
    assert seeds(best, cats, 3, 0).tolist() == [0, 1, 2]
    assert seeds(best, cats, 3, 1).tolist() == [0, 1, 2, 5]
    assert seeds(best, cats, 2, 5).tolist() == [0, 1, 5, 6]
    assert seeds(best[:0], [], 3, 2).tolist() == []


def test_the_leading_categorys_templates_are_refined_though_pruned(library, tmod):
    """A category's templates differ in parts the coarse outline hardly sees (a stool's stretchers or a
    column: meshes/category's square stool ranked 67th of 121 by outline on one view, where its category
    led): with ``siblings`` they are scored and refined, pruned or not."""
    match = tmod["match"]
    view = render(tmod, library.get("Stool Round"), 40.0, 25.0)
    stools = {t.name for t in library.templates if t.category == "stool"}
    args = (view.mask, view.zdepth, view.camera, library)
    plain = match.match_instance(*args, top=20, refine_templates=1, prune_keep=1)
    assert [m.template for m in plain.matches] == ["Stool Round"]
    got = match.match_instance(*args, top=20, refine_templates=1, prune_keep=1, siblings=2)
    assert {m.template for m in got.matches} == stools and len(stools) == 3
    assert got.matches[0].template == "Stool Round"
    assert all(m.iou > 0.0 for m in got.matches)  # posed and scored, not left at their coarse views
