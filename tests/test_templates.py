"""The bundled template library and the matcher (issue 7): assets as generated, descriptors up to
date with their script, retrieval and orientation on renders of every template, and an unknown
object (the Stanford bunny) left without a template."""

from __future__ import annotations

import importlib
import subprocess
import sys
import uuid
from pathlib import Path

import bpy
import numpy as np
import pytest
from template_checks import bunny_template, matching_stats, mesh_template

ROOT = Path(__file__).resolve().parent.parent
PRIMITIVES = {"cube", "sphere", "cylinder", "cone", "torus", "capsule"}


@pytest.fixture(scope="module")
def tmod(monocle):
    """The installed templates package's modules."""
    names = ("library", "match", "mesh", "synthetic", "descriptors", "render", "retrieve", "icp")
    return {n: importlib.import_module(f"{monocle.__name__}.templates.{n}") for n in names}


@pytest.fixture(scope="module")
def library(tmod):
    return tmod["library"].bundled_library()


def test_library_contents(library, tmod, ext_dir):
    """At least 100 templates over at least 30 object categories plus the six primitives, every one
    a closed, outward-facing mesh in metres, upright, with its base centre at the origin (the
    catalogue itself is checked in test_template_library.py)."""
    mesh = tmod["mesh"]
    cats = {t.category for t in library.templates}
    assert len(library) >= 100
    assert len(cats - PRIMITIVES) >= 30
    assert PRIMITIVES <= cats
    for wanted in ("chair", "table", "stool", "sofa", "mug", "cup", "bottle", "vase", "bowl", "lamp", "book",
                   "box", "can", "plate", "car"):
        assert wanted in cats, wanted
    assert sum(t.category == "mug" for t in library.templates) >= 2
    assert sum(t.category == "table" for t in library.templates) >= 2
    for t in library.templates:
        m = mesh.PolyMesh(t.vertices, np.full(len(t.triangles), 3), t.triangles)
        assert mesh.is_closed(m), t.name
        assert mesh.signed_volume(m) > 0, t.name
        lo, hi = t.vertices.min(axis=0), t.vertices.max(axis=0)
        assert lo[2] == 0.0, t.name  # origin on the base ...
        assert np.all(np.abs(lo[:2] + hi[:2]) < 0.35 * (hi[:2] - lo[:2])), t.name  # ... near its centre
        assert 0.005 < float(hi[2]) < 2.0, t.name  # metres: a phone lying flat is 9 mm high, a fridge 1.8 m
    mug = library.get("Mug")
    assert 0.09 < float(mug.vertices[:, 2].max()) < 0.11
    g = tmod["descriptors"].GRID
    assert library.coverage.shape == (len(library), len(library.angles), g, g)
    assert (library.coverage.reshape(len(library), -1).max(axis=1) == 255).all()
    assert ext_dir.joinpath("assets", "templates.blend").is_file()
    size = sum(p.stat().st_size for p in ext_dir.joinpath("assets").iterdir())
    # committed binaries: descriptors are ~32 kB a template, meshes and previews ~20 kB (grows with the catalogue)
    assert size < 54_000 * len(library)


def test_label_candidates(library):
    """A label finds the templates that answer to it; unknown labels give all templates."""
    def cats(label):
        return {library.templates[i].category for i in library.candidates(label)}

    assert cats("wine glass") == {"glass"}
    assert cats("cup") == {"cup", "mug", "glass"}  # COCO's "cup" covers tumblers too
    assert cats("television") == cats("tv") == {"tv"} and cats("potted plant") == {"plant"}
    assert cats("dining table") >= {"table"} and "chair" not in cats("dining table")
    assert cats("couch") == {"sofa", "chair"}
    assert len(library.candidates("object")) == len(library) == len(library.candidates("giraffe"))


def test_blend_assets(library, ext_dir):
    """templates.blend holds one asset per template, with catalog (one per category), tags, custom
    properties, a preview and the very vertices the descriptors were made from."""
    assets = ext_dir / "assets"
    catalogs = {}
    for line in (assets / "blender_assets.cats.txt").read_text().splitlines():
        if line and not line.startswith("#") and not line.startswith("VERSION"):
            cid, path, _ = line.split(":")
            catalogs[cid] = path
    assert all(uuid.UUID(c) for c in catalogs)
    bpy.ops.wm.open_mainfile(filepath=str(assets / "templates.blend"))
    objs = {o.name: o for o in bpy.data.objects}
    assert set(objs) == set(library.names)
    catalog_of: dict[str, set[str]] = {}
    for t in library.templates:
        obj = objs[t.name]
        assert obj.asset_data is not None
        assert catalogs[obj.asset_data.catalog_id].startswith("Monocle")
        assert obj["monocle_category"] == t.category
        assert obj["monocle_labels"] == ", ".join(t.labels)
        assert obj["monocle_symmetry"] == t.symmetry and obj["monocle_mirror"] == t.mirror
        assert t.category in [tag.name for tag in obj.asset_data.tags]
        w, h = obj.preview.image_size
        px = np.empty(w * h * 4, np.float32)
        obj.preview.image_pixels_float.foreach_get(px)
        alpha = px.reshape(h, w, 4)[..., 3]
        assert w == h == 128 and 0.03 < alpha.mean() < 0.9, t.name
        co = np.empty(len(obj.data.vertices) * 3, np.float32)
        obj.data.vertices.foreach_get("co", co)
        assert np.array_equal(co.reshape(-1, 3), t.vertices), t.name
        sizes = np.empty(len(obj.data.polygons), np.int32)
        obj.data.polygons.foreach_get("loop_total", sizes)
        assert (sizes == 4).mean() > 0.8, t.name  # quad-based
        catalog_of.setdefault(t.category, set()).add(catalogs[obj.asset_data.catalog_id])
    assert all(len(paths) == 1 for paths in catalog_of.values()), catalog_of
    everyday = {next(iter(p)) for c, p in catalog_of.items() if c not in PRIMITIVES}
    assert len(everyday) == len(catalog_of) - len(PRIMITIVES)


def test_descriptors_match_script(library, tmp_path):
    """The committed descriptors are what tools/make_templates.py makes today (three templates)."""
    names = ["Mug", "Chair Dining", "Torus"]
    cmd = [sys.executable, str(ROOT / "tools" / "make_templates.py"), "--no-blend", "--out", str(tmp_path)]
    for n in names:
        cmd += ["--only", n]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    fresh = type(library).load(tmp_path / "templates_descriptors.npz")
    for k, name in enumerate(fresh.names):
        i = library.index(name)
        assert np.array_equal(fresh.templates[k].vertices, library.templates[i].vertices)
        assert np.array_equal(fresh.templates[k].triangles, library.templates[i].triangles)
        assert np.abs(fresh.coverage[k].astype(int) - library.coverage[i]).max() <= 1
        assert np.abs(fresh.depth[k].astype(int) - library.depth[i]).max() <= 1


def test_match_renders(library, tmod):
    """Two random upright views of every template (numpy renders with exact depth, small roll,
    off-centre) matched against the whole library with no label: right category first in >= 90 %
    of views, in the top three in >= 96 %, orientation within 20 degrees in >= 80 %, and the true
    template passes the threshold whenever it is among the candidates.

    With 100+ templates the library holds near-twins of other categories that differ mostly in real
    size (a mini fridge and a pedal bin, a tumbler and a paper cup), which scale-free descriptors
    cannot tell apart without a label or metric depth: top three measured 0.970 (1.000 with the
    35-template library), so the bound is 0.96."""
    stats = matching_stats(tmod["match"], tmod["synthetic"], library, views_per_template=2, seed=11)
    detail = [(f["template"], f["view"], f["got"], f["orientation"]) for f in stats["failures"]]
    assert stats["top1"] >= 0.90, detail
    assert stats["top3"] >= 0.96, detail
    assert stats["orientation_under_20"] >= 0.80, detail
    assert stats["min_true_score_found"] >= tmod["match"].THRESHOLD, detail


def test_match_pose_is_exact(library, tmod):
    """The refined pose reprojects the template onto the object: scale within 2 %, position within
    1 % of the object's size, and the posed template covers the mask."""
    syn, match = tmod["synthetic"], tmod["match"]
    for name, az, el in (("Chair Dining", 30.0, 25.0), ("Car Sedan", 200.0, 15.0), ("Mug", 120.0, 35.0)):
        tpl = library.get(name)
        view = syn.render_view(tpl, az, el, 2.0, offset=(0.05, -0.04))
        res = match.match_instance(view.mask, view.zdepth, view.camera, library, tpl.category)
        best = res.matches[0]
        assert best.template == name
        assert best.pose.scale == pytest.approx(1.0, abs=0.02)
        size = float(np.linalg.norm(np.ptp(tpl.vertices, axis=0)))
        centre = 0.5 * (tpl.vertices.min(axis=0) + tpl.vertices.max(axis=0))
        truth = view.rotation @ centre + view.translation
        assert np.linalg.norm(best.pose.apply(centre[None])[0] - truth) < 0.01 * size
        assert match.orientation_error(best.pose.rotation, view.rotation, tpl.symmetry) < 5.0
        assert best.iou > 0.95


def test_bunny_gets_no_template(library, tmod, bench_data):
    """The Stanford bunny is not in the library: no template passes the threshold in any of six views."""
    syn, match = tmod["synthetic"], tmod["match"]
    bunny = bunny_template(tmod["library"], bench_data)
    rng = np.random.default_rng(5)
    best = []
    for _ in range(6):
        view = syn.render_view(bunny, *syn.random_viewpoint(rng))
        res = match.match_instance(view.mask, view.zdepth, view.camera, library, "object")
        assert res.matches, "the matcher always reports its best candidates"
        assert not res.accepted and res.best is None
        best.append(res.matches[0].score)
    assert max(best) < match.THRESHOLD - 0.02, best
    # the same views of a real template pass
    mug = syn.render_view(library.get("Mug"), 40.0, 30.0)
    assert match.match_instance(mug.mask, mug.zdepth, mug.camera, library).accepted


def test_retrieval_scores_after_the_fit(library, tmod, bench_data):
    """Scored after the lattice fit, the bunny (trusted or guessed depth) still gets no template, a
    mug with other proportions gets the mug, and a template needing a large deformation scores less."""
    syn, retrieve, lib = tmod["synthetic"], tmod["retrieve"], tmod["library"]
    bunny = bunny_template(lib, bench_data)
    for az, el in ((30.0, 20.0), (200.0, 10.0)):
        view = syn.render_view(bunny, az, el)
        for trust in (1.0, 0.1):
            res, fits = retrieve.retrieve(view.mask, view.zdepth, view.camera, library, "object", trust=trust)
            assert res.matches and len(fits) == len(res.matches)
            assert not res.accepted, [(m.template, round(m.score, 3)) for m in res.matches]
            assert res.threshold == pytest.approx(retrieve.threshold_for(trust))
    mug = library.get("Mug")
    squat = lib.Template("Squat Mug", mug.category, mug.labels, mug.symmetry,
                         (mug.vertices * np.array([1.2, 1.2, 0.8])).astype(np.float32), mug.triangles)
    view = syn.render_view(squat, 40.0, 25.0)
    res, fits = retrieve.retrieve(view.mask, view.zdepth, view.camera, library, "object")
    assert res.accepted and res.matches[0].category == "mug", [(m.template, m.score) for m in res.matches]
    assert res.matches[0].score == max(m.score for m in res.matches)
    moved, stretch = retrieve.deformation(fits[0], mug.size)
    assert moved < 0.05 and stretch < 0.4, (moved, stretch)  # new proportions are (almost) free


def test_orientation_error_symmetry(tmod):
    """Orientation error ignores the rotations a template's symmetry makes invisible."""
    match, render = tmod["match"], tmod["render"]
    a = render.look_rotation(30.0, 20.0)
    assert match.orientation_error(a, render.look_rotation(30.0 + 90.0, 20.0), 4) < 1e-6
    assert match.orientation_error(a, render.look_rotation(30.0 + 90.0, 20.0), 1) == pytest.approx(90.0, abs=1e-6)
    assert match.orientation_error(a, render.look_rotation(77.0, 20.0), 0) < 1e-6
    assert match.orientation_error(a, render.look_rotation(30.0, 35.0), 0) == pytest.approx(15.0, abs=1e-6)


def test_relative_depth_scale(library, tmod):
    """Relative depth maps carry an unknown relief scale: with ``depth_scale`` the matcher fits it
    (here the relief is halved) and still finds the template, upright."""
    syn, match = tmod["synthetic"], tmod["match"]
    for name, az, el in (("Chair Dining", 20.0, 25.0), ("Bottle Wine", 0.0, 15.0), ("Car SUV", 130.0, 20.0)):
        tpl = library.get(name)
        view = syn.render_view(tpl, az, el)
        z = view.zdepth.astype(np.float64)
        med = float(np.median(z[view.mask]))
        squashed = np.where(view.mask, med + 0.5 * (z - med), 0.0)
        fitted = match.match_instance(view.mask, squashed, view.camera, library, "object", depth_scale=True)
        plain = match.match_instance(view.mask, squashed, view.camera, library, "object")
        best = fitted.matches[0]
        assert best.template == name and fitted.accepted
        assert best.depth_scale == pytest.approx(0.5, abs=0.1)
        assert match.orientation_error(best.pose.rotation, view.rotation, tpl.symmetry) < 20.0
        own = [m.score for m in plain.matches if m.template == name]
        assert not own or own[0] < best.score


def test_stretched_silhouettes_take_proportions_out(tmod):
    """Outlines compared proportions apart: a 2:1 and a 1:3 rectangle stretch to the same full square,
    and their log aspect ratios say how tall they were."""
    d = tmod["descriptors"]
    g = d.GRID
    cov = np.zeros((3, g, g), dtype=np.float32)
    cov[0, 10:20, 4:24] = 1.0  # 2 wide : 1 high
    cov[1, 3:45, 17:31] = 1.0  # 1 wide : 3 high
    cov[2, 3:45, 17:31] = 1.0
    cov[2, 3:24, 17:24] = 0.0  # a notch out of its top left quarter
    sil, aspect = d.stretched_silhouettes(cov)
    k = d.STRETCH_GRID
    assert sil.shape == (3, k * k) and sil.dtype == np.uint8
    assert (sil[0] == 255).all() and (sil[1] == 255).all()
    assert aspect[0] == pytest.approx(np.log(0.5)) and aspect[1] == pytest.approx(np.log(3.0))
    notch = sil[2].reshape(k, k) == 0
    assert notch[: k // 2, : k // 2].all() and not notch[k // 2:].any() and not notch[:, k // 2:].any()


def test_pruning_keeps_a_template_with_other_proportions(library, tmod):
    """The coarse stage compares outlines proportions apart, so a can a fifth wider and a table a
    third longer than the library's keep their template among the few the library is pruned to
    (the table's, and an unchanged bottle's, outline ranks first)."""
    syn, match, lib, desc = tmod["synthetic"], tmod["match"], tmod["library"], tmod["descriptors"]
    for name, stretch, az, el in (("Can", (1.2, 1.2, 1.0), -35.0, 15.0),
                                  ("Table Rectangular", (1.3, 1.0, 1.0), 40.0, 25.0),
                                  ("Bottle Wine", (1.0, 1.0, 1.0), 160.0, 10.0)):
        tpl = library.get(name)
        other = lib.Template(name + " other", tpl.category, tpl.labels, tpl.symmetry,
                             (tpl.vertices * np.array(stretch)).astype(np.float32), tpl.triangles)
        view = syn.render_view(other, az, el, width=512, height=384, focal_mm=35.0, fill=0.5)
        inst = desc.instance_descriptor(view.mask, view.zdepth, float(view.camera.focal_px))
        cand = list(range(len(library)))
        sil = np.where(match._valid_views(library, cand), match.silhouette_scores(inst, library, cand), -np.inf)
        kept = match.prune(sil + match.view_prior(library))
        assert len(kept) == match.PRUNE_KEEP < len(library)
        assert library.index(name) in kept, name
        if name != "Can":  # a can is one of many cylinders
            assert int(np.argmax(sil.max(axis=1))) == library.index(name), name


def test_third_party_objects_get_their_category_or_none(library, tmod, bench_data):
    """Retrieval on meshes that are not templates (exact depth, the 3D bench's image size): a tea cup
    and a bowl of meshes/category get a template of their category, leading every other category by
    the ambiguity margin; a cow and Suzanne, outside the library, get none, with exact depth or with
    depth trusted as little as the classic engine's relief."""
    syn, retrieve, lib = tmod["synthetic"], tmod["retrieve"], tmod["library"]
    for name, az, el in (("cup/cup_03", -35.0, 15.0), ("bowl/bowl_01", 40.0, 25.0)):
        obj = mesh_template(lib, bench_data / "meshes" / "category" / f"{name}.ply", name.split("/")[0])
        view = syn.render_view(obj, az, el, width=512, height=384, focal_mm=35.0, fill=0.5)
        res, fits = retrieve.retrieve(view.mask, view.zdepth, view.camera, library, "object")
        got = [(m.template, m.category, round(m.score, 3)) for m in res.matches]
        assert res.accepted and res.matches[0].category == obj.category, got
        others = [m.score for m in res.matches if m.category != obj.category]
        assert not others or res.matches[0].score - max(others) >= retrieve.AMBIGUITY_MARGIN, got
        assert len(fits) == len(res.matches)
    for path in ("common3d/cow.obj", "common3d/suzanne.obj"):
        obj = mesh_template(lib, bench_data / "meshes" / path)
        for az, el in ((40.0, 25.0), (160.0, 10.0)):
            view = syn.render_view(obj, az, el, width=512, height=384, focal_mm=35.0, fill=0.5)
            for trust in (1.0, 0.1):
                res, _ = retrieve.retrieve(view.mask, view.zdepth, view.camera, library, "object", trust=trust)
                assert res.matches and not res.accepted, (path, az, trust, [(m.template, m.score) for m in res.matches])


def test_a_rigid_fit_is_not_lost_to_a_wandering_lattice(library, tmod, bench_data):
    """A third-party plate (exact depth) fits the Plate template rigidly; its lattice fit, pulled about
    by the thin rim's depth, would score far less. Retrieval keeps the rigid score, places the plate and
    reports the rigid score beside it; no fitted score is below its rigid one."""
    syn, retrieve, lib = tmod["synthetic"], tmod["retrieve"], tmod["library"]
    plate = mesh_template(lib, bench_data / "meshes" / "category" / "plate" / "plate_03.ply", "plate")
    view = syn.render_view(plate, -35.0, 15.0, width=512, height=384, focal_mm=35.0, fill=0.5)
    res, fits = retrieve.retrieve(view.mask, view.zdepth, view.camera, library, "object")
    got = [(m.template, m.category, round(m.score, 3), m.rigid_score) for m in res.matches]
    assert res.accepted and res.matches[0].category == "plate", got
    assert res.matches[0].score == pytest.approx(res.matches[0].rigid_score), got
    assert all(m.rigid_score is not None and m.score >= m.rigid_score for m in res.matches), got
    assert len(fits) == len(res.matches)


def test_no_fit_where_none_could_reach_the_threshold(library, tmod, bench_data):
    """When even the best rigid match plus the most a fit may add misses the threshold, retrieval fits
    nothing: the bunny seen with the classic engine's trust comes back rigid (unfitted lattices, each
    score its rigid score); asked to place whatever it finds (threshold -inf), the same view is fitted."""
    syn, retrieve, lib = tmod["synthetic"], tmod["retrieve"], tmod["library"]
    view = syn.render_view(bunny_template(lib, bench_data), 30.0, 20.0)
    res, fits = retrieve.retrieve(view.mask, view.zdepth, view.camera, library, "object", trust=0.1)
    assert res.matches and not res.accepted and len(fits) == len(res.matches)
    assert res.matches[0].rigid_score + retrieve.MAX_FIT_GAIN < res.threshold
    assert all(m.score == m.rigid_score for m in res.matches)
    assert all(np.array_equal(f.lattice.points(), f.lattice.rest_points()) for f in fits)
    forced, fitted = retrieve.retrieve(view.mask, view.zdepth, view.camera, library, "object", trust=0.1,
                                       threshold=-np.inf)
    # it passes the threshold (other categories may tie it: ambiguous, so still not placed) and is fitted
    assert forced.matches[0].score >= forced.threshold
    assert any(not np.allclose(f.lattice.points(), f.lattice.rest_points()) for f in fitted)
    assert all(m.rigid_score <= m.score <= m.rigid_score + retrieve.MAX_FIT_GAIN for m in forced.matches)


def guessed_relief(monocle, view) -> np.ndarray:
    """The classic engine's relief of the view's mask (its inflation) at the object's distance: a
    guess from the outline, as the classic and drawing engines make it."""
    inflate = importlib.import_module(f"{monocle.__name__}.inference.engines.classic").inflate
    z = view.zdepth.astype(np.float64)
    med = float(np.median(z[view.mask]))
    height = inflate(view.mask).astype(np.float64) * med / float(view.camera.focal_px)
    return np.where(view.mask, med - height + float(height[view.mask].mean()), 0.0)


def one_template(library, name: str):
    """A library of the one template ``name`` (its stored descriptors)."""
    return library.subset([library.index(name)])


def test_a_guessed_relief_keeps_the_pose_on_the_outline(library, tmod, monocle):
    """With depth trusted as little as the classic engine's relief, the refinement follows the outline:
    each template, alone in the library, seen off the library's view grid with the inflated relief of
    its own silhouette, comes back covering its silhouette (IoU >= 0.97) with its up axis within 10
    degrees of the truth. A relief that pulled as hard as exact depth tilted a plate 45 degrees off its outline and
    left a square table at IoU 0.63."""
    syn, match = tmod["synthetic"], tmod["match"]
    trust = 0.1
    assert trust < tmod["icp"].LATERAL_TRUST
    for name, az, el in (("Plate", 160.0, 10.0), ("Table Square", 160.0, 10.0), ("Chair Dining", 40.0, 25.0),
                         ("Clock Wall", 40.0, 25.0)):
        tpl = library.get(name)
        view = syn.render_view(tpl, az, el, width=512, height=384, focal_mm=35.0, fill=0.5)
        res = match.match_instance(view.mask, guessed_relief(monocle, view), view.camera,
                                   one_template(library, name), "object", top=1,
                                   depth_scale=True, depth_trust=trust)
        best = res.matches[0]
        assert best.iou >= 0.97, (name, best.iou)
        # its up axis (an outline cannot tell a clock's face from its back)
        assert match.orientation_error(best.pose.rotation, view.rotation, 0) < 10.0, name


def test_templates_from_their_outline_and_a_guessed_relief(library, tmod, monocle):
    """Bundled templates seen off the view grid with only their outline to go by (the inflated relief,
    trusted as the classic engine's) retrieve themselves first from the whole library, at least 7 of 8
    (a refinement pulled by the relief as by exact depth found 4: a slat-back chair for the dining
    chair, a plant for the bar stool, a hatchback for the sedan, a desk lamp for the floor lamp)."""
    syn, retrieve = tmod["synthetic"], tmod["retrieve"]
    cases = (("Chair Dining", 40.0, 25.0), ("Table Round", -35.0, 15.0), ("Bottle Wine", 160.0, 10.0),
             ("Stool Bar", 40.0, 25.0), ("Car Sedan", -35.0, 15.0), ("Plant Cactus", 160.0, 10.0),
             ("Lamp Floor", 40.0, 25.0), ("Bench Park", 160.0, 10.0))
    right = []
    for name, az, el in cases:
        tpl = library.get(name)
        view = syn.render_view(tpl, az, el, width=512, height=384, focal_mm=35.0, fill=0.5)
        res, _ = retrieve.retrieve(view.mask, guessed_relief(monocle, view), view.camera, library, "object",
                                   depth_scale=True, trust=0.1)
        right.append(bool(res.matches) and res.matches[0].template == name)
    assert sum(right) >= 7, list(zip([c[0] for c in cases], right))


def test_thin_legged_furniture_with_other_proportions_fits(library, tmod):
    """A square table with legs 1.6 times as long (exact depth): no rigid pose with the library's
    proportions reaches the threshold (the legs land beside the object's), but with measured depth
    retrieval refines the leading match's pose, proportions included, and places the table, its
    floor (``rigid_score``) the refined pose's affine score; with a guessed relief the pose is not
    refined (rigid scores stay the floor)."""
    syn, retrieve, lib, match = tmod["synthetic"], tmod["retrieve"], tmod["library"], tmod["match"]
    table = library.get("Table Square")
    tall = lib.Template("Tall Table", table.category, table.labels, table.symmetry,
                        (table.vertices * np.array([1.0, 1.0, 1.6])).astype(np.float32), table.triangles)
    view = syn.render_view(tall, 40.0, 25.0, width=512, height=384, focal_mm=35.0, fill=0.5)
    rigid = match.match_instance(view.mask, view.zdepth, view.camera, library, "object")
    assert rigid.matches[0].score < retrieve.THRESHOLD, [(m.template, m.score) for m in rigid.matches]
    res, fits = retrieve.retrieve(view.mask, view.zdepth, view.camera, library, "object")
    got = [(m.template, round(m.score, 3), m.rigid_score) for m in res.matches]
    assert res.accepted and res.matches[0].category == "table", got
    assert res.matches[0].iou > 0.95 and len(fits) == len(res.matches), got
    first_rigid = {m.template: m.score for m in rigid.matches}
    # the refined pose with new proportions alone passes the threshold the rigid pose missed
    assert res.matches[0].rigid_score >= res.threshold > first_rigid["Table Square"], (got, first_rigid)
    assert all(m.rigid_score <= m.score <= m.rigid_score + retrieve.MAX_FIT_GAIN + 1e-9 for m in res.matches)
    guessed, _ = retrieve.retrieve(view.mask, view.zdepth, view.camera, library, "object", trust=0.1)
    rigid_scores = {m.template: m.score
                    for m in match.match_instance(view.mask, view.zdepth, view.camera, library, "object", top=5,
                                                  refine_templates=retrieve.REFINE_TEMPLATES,
                                                  second_views=retrieve.SECOND_VIEWS, extra_views=1,
                                                  depth_trust=0.1).matches}
    assert all(m.rigid_score == pytest.approx(rigid_scores[m.template]) for m in guessed.matches)


def test_alike_shapes(library, tmod):
    """``alike_distance``: a shape against itself moved by 1 % of its size reads 1 %, against other
    samples of itself almost 0; a mug against a mug without a handle (scaled to its height) is not
    alike, though the handle is a small share of the surface; ``ambiguous_with`` survives JSON."""
    retrieve, match = tmod["retrieve"], tmod["match"]
    mug = library.get("Mug")
    pts, nrm = retrieve.surface_points(mug.vertices, mug.triangles)
    assert pts.shape == nrm.shape == (retrieve.ALIKE_SAMPLES, 3)
    assert np.allclose(np.linalg.norm(nrm, axis=1), 1.0)
    assert np.array_equal(pts, retrieve.surface_points(mug.vertices, mug.triangles)[0])  # fixed seed
    size = float(np.linalg.norm(np.ptp(mug.vertices, axis=0)))
    assert retrieve.alike_distance((pts, nrm), (pts + [0.01 * size, 0, 0], nrm), size) == pytest.approx(0.01, abs=2e-3)
    plain = library.get("Mug Plain")  # the mug's body without its handle
    scale = np.ptp(mug.vertices[:, 2]) / np.ptp(plain.vertices[:, 2])
    other = retrieve.surface_points(plain.vertices * scale, plain.triangles)
    assert retrieve.alike_distance((pts, nrm), other, size) > retrieve.ALIKE
    assert retrieve.alike_distance((pts, nrm), retrieve.surface_points(mug.vertices, mug.triangles, 5000), size) < 0.015
    res = match.MatchResult("object", ambiguous_with=["jar"])
    assert match.MatchResult.from_json(res.to_json()).ambiguous_with == ["jar"]
