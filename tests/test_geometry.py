"""The geometry layer (pure numpy) through the installed extension: camera, scene depth,
mesh building, backs and the relief texture the Blender layer displaces with."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

STRENGTHS = (0.0, 0.5, 1.0, 2.0)


@pytest.fixture(scope="module")
def geo(monocle):
    def mod(name: str):
        return importlib.import_module(f"{monocle.__name__}.geometry{name}")

    return SimpleNamespace(
        core=mod(""), camera=mod(".camera"), depth=mod(".depth"), plane=mod(".plane"), check=mod(".check"),
        topology=mod(".topology"), lattice=mod(".lattice"), sampling=mod(".sampling"), backs=mod(".backs"),
        tears=mod(".tears"), mesh=mod(".mesh"), render=importlib.import_module(f"{monocle.__name__}.templates.render"),
    )


def _pixel_centres(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w]
    return xx + 0.5, yy + 0.5


def _sphere(cam, centre, radius):
    """Binary mask (pixel centre hits the sphere) and camera-axis depth of a sphere."""
    xx, yy = _pixel_centres(cam.height, cam.width)
    rays = cam.rays(np.stack([xx.ravel(), yy.ravel()], axis=1))
    c = np.asarray(centre, dtype=np.float64)
    a = (rays * rays).sum(1)
    b = -2.0 * rays @ c
    disc = b * b - 4.0 * a * (c @ c - radius * radius)
    hit = disc > 0
    t = np.where(hit, (-b - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * a), 0.0)
    return hit.reshape(cam.height, cam.width), np.where(hit, t, 100.0).reshape(cam.height, cam.width)


def _disk_coverage(h, w, cx, cy, r, ss=8):
    """Anti-aliased (supersampled) coverage of a disk."""
    o = (np.arange(ss) + 0.5) / ss
    yy, xx = np.mgrid[0:h, 0:w]
    cov = np.zeros((h, w))
    for dy in o:
        for dx in o:
            cov += (xx + dx - cx) ** 2 + (yy + dy - cy) ** 2 < r * r
    return cov / (ss * ss)


def _pixels_of(md, cam) -> np.ndarray:
    uv = md.uvs.astype(np.float64)
    return np.stack([uv[:, 0] * cam.width, (1.0 - uv[:, 1]) * cam.height], axis=1)


def _reprojection_error(md, cam, strength: float) -> float:
    pts = md.vertices.astype(np.float64) + strength * md.relief.astype(np.float64)
    return float(np.abs(cam.project(pts) - _pixels_of(md, cam)).max())


def _boundary_vertices(geo, md) -> np.ndarray:
    border = geo.topology.boundary_corners(md.face_sizes, md.loops)
    return np.unique(md.loops[border])


def _face_areas_px(geo, md, cam) -> np.ndarray:
    p = _pixels_of(md, cam)
    p[:, 1] *= -1.0  # counter-clockwise on screen is positive
    return geo.topology.polygon_areas(p, md.face_sizes, md.loops)


def _signed_volume(geo, md, strength: float = 1.0) -> float:
    """Volume by the divergence theorem over fan triangles: positive when normals point out."""
    v = md.vertices.astype(np.float64) + strength * md.relief.astype(np.float64)
    return geo.mesh.signed_volume(geo.mesh.PolyMesh(v, md.face_sizes, md.loops))


def _rasterise(geo, md, cam) -> np.ndarray:
    """Silhouette of the mesh's faces at pixel resolution: the product's z-buffer over their fans,
    each vertex at the pixel its photo UV points to."""
    xy = _pixels_of(md, cam)
    tris = geo.mesh.fan_triangles(md.face_sizes, md.loops)
    return geo.render.rasterize(xy, np.zeros(len(xy)), tris, (cam.height, cam.width), perspective=False).mask


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def _front(geo, md):
    keep = md.groups["front"]
    faces = np.add.reduceat(keep[md.loops].astype(np.int64), geo.topology.face_starts(md.face_sizes))
    sel = faces == md.face_sizes
    return md.face_sizes[sel], md.loops[np.repeat(sel, md.face_sizes)]


# -- camera and depth -------------------------------------------------------------------------


def test_camera_from_result(geo):
    cam = geo.camera.camera_from_result(4000, 3000, 26.0)
    assert (cam.focal_mm, cam.sensor_mm) == (26.0, 36.0)
    assert cam.focal_px == pytest.approx(26.0 / 36.0 * 4000)
    assert geo.camera.camera_from_result(640, 480, None).focal_mm == 50.0
    assert geo.camera.camera_from_result(640, 480, float("nan"), fallback_focal_mm=35.0).focal_mm == 35.0
    assert geo.camera.camera_from_result(640, 480, 0, focal_px=640.0).focal_mm == pytest.approx(36.0)
    portrait = geo.camera.camera_from_result(300, 600, 50.0)
    assert portrait.focal_px == pytest.approx(50.0 / 36.0 * 600)  # sensor on the long side (AUTO fit)
    with pytest.raises(ValueError):
        geo.camera.camera_from_result(0, 10)


def test_relative_depth_is_normalised_globally_in_inverse_depth(geo):
    h, w = 60, 80
    inv = np.zeros((h, w), np.float32)
    a = np.zeros((h, w), bool)
    b = np.zeros((h, w), bool)
    a[5:30, 5:35] = True
    b[30:55, 40:75] = True
    xx, _ = _pixel_centres(h, w)
    inv[a] = 2.0 + 0.01 * xx[a]  # nearer object, slight tilt
    inv[b] = 0.5 + 0.002 * xx[b]
    settings = geo.core.MeshSettings(distance=4.0, depth_range=2.0)
    z = geo.depth.scene_depth(inv, "relative_inverse", [a, b], settings)
    assert z.shape == (h, w) and z.dtype == np.float32 and np.all(np.isfinite(z)) and np.all(z > 0)
    union = a | b
    assert z[union].min() == pytest.approx(4.0, rel=1e-3)
    assert z[union].max() == pytest.approx(6.0, rel=1e-3)
    assert z[a].max() < z[b].min()  # relative placement follows the map
    # inverse mapping: 1 / z is affine in the map (planes stay planes)
    sel = union & (z > 4.01) & (z < 5.99)
    coef = np.polyfit(inv[sel], 1.0 / z[sel], 1)
    assert np.abs(np.polyval(coef, inv[sel]) - 1.0 / z[sel]).max() < 1e-5


def test_metric_depth_passes_through_and_fills_holes(geo):
    d = np.full((20, 30), 3.0, np.float32)
    d[5, 5] = np.nan
    d[6, 6] = -1.0
    d[7, 7] = 7.5
    z = geo.depth.scene_depth(d, "metric", None, geo.core.MeshSettings())
    assert z[7, 7] == 7.5 and z[5, 5] == 3.0 and z[6, 6] == 3.0
    with pytest.raises(ValueError):
        geo.depth.scene_depth(d, "bogus", None, geo.core.MeshSettings())


def test_clean_metric_depth_takes_the_short_path_to_the_same_result(geo, monkeypatch):
    """A metric map without holes skips the validity maps; with any kind of hole (NaN, infinity,
    zero, negative, background, a near-zero value under the floor set inside the masks) or a
    mask of the wrong shape it takes the full path. Either way the result is the full path's."""
    settings = geo.core.MeshSettings()
    rng = np.random.default_rng(2)
    base = (2.0 + rng.random((40, 60))).astype(np.float32)
    mask = np.zeros((40, 60), bool)
    mask[10:20, 10:30] = True
    base[mask] += 5.0  # the farthest values are inside the mask
    cases = {"clean": (base, True)}
    for name, value in (("nan", np.nan), ("inf", np.inf), ("zero", 0.0), ("negative", -2.0), ("background", 2e9),
                        ("near zero", 1e-4)):
        d = base.copy()
        d[30, 45] = value
        cases[name] = (d, False)
    short = geo.depth._clean_metric
    taken = []
    monkeypatch.setattr(geo.depth, "_clean_metric", lambda v, m: taken.append(short(v, m) is not None) or short(v, m))
    for name, (d, clean) in cases.items():
        for masks in (None, [mask], np.stack([mask, ~mask])):
            taken.clear()
            got = geo.depth.scene_depth(d, "metric", masks, settings)
            assert taken == [clean], name
            monkeypatch.setattr(geo.depth, "_clean_metric", lambda v, m: None)
            assert np.array_equal(got, geo.depth.scene_depth(d, "metric", masks, settings)), name
            monkeypatch.setattr(geo.depth, "_clean_metric", lambda v, m: taken.append(short(v, m) is not None)
                                or short(v, m))
    with pytest.raises(ValueError):  # a mask of the wrong shape is reported as before
        geo.depth.scene_depth(base, "metric", [mask[:, :50]], settings)


# -- front surface ----------------------------------------------------------------------------


def test_sphere_reconstructs_within_one_percent(geo):
    cam = geo.camera.camera_from_result(640, 480, 50.0)
    centre, radius = (0.0, 0.0, -5.0), 1.0
    mask, z = _sphere(cam, centre, radius)
    md = geo.plane.build_object_mesh(mask, z, cam, geo.core.MeshSettings(back="open"))
    err = np.linalg.norm(md.vertices.astype(np.float64) + md.relief - np.asarray(centre), axis=1) - radius
    assert np.abs(err).max() < 0.01 * radius
    assert np.abs(err).mean() < 0.001 * radius
    # the relief vanishes along the outline: front, back and every strength meet there
    rim = _boundary_vertices(geo, md)
    relief_len = np.linalg.norm(md.relief, axis=1)
    assert relief_len[rim].mean() < 0.03 * relief_len.max() and relief_len[rim].max() < 0.1 * relief_len.max()


def test_silhouette_follows_the_subpixel_outline(geo):
    cam = geo.camera.camera_from_result(300, 260, 50.0)
    cx, cy, r = 151.3, 128.6, 90.37
    soft = _disk_coverage(260, 300, cx, cy, r)
    z = np.full(soft.shape, 5.0)
    md = geo.plane.build_object_mesh(soft, z, cam, geo.core.MeshSettings(back="open"))
    rim = _pixels_of(md, cam)[_boundary_vertices(geo, md)]
    err = np.hypot(rim[:, 0] - cx, rim[:, 1] - cy) - r
    assert np.abs(err).max() < 0.1

    binary = soft >= 0.5
    md = geo.plane.build_object_mesh(binary, z, cam, geo.core.MeshSettings(back="open"))
    rim = _pixels_of(md, cam)[_boundary_vertices(geo, md)]
    err = np.hypot(rim[:, 0] - cx, rim[:, 1] - cy) - r
    assert np.abs(err).max() < 0.4 and np.sqrt((err ** 2).mean()) < 0.15  # smoothed, not a staircase
    assert _iou(_rasterise(geo, md, cam), binary) > 0.985
    assert _face_areas_px(geo, md, cam).sum() == pytest.approx(binary.sum(), rel=0.005)


def test_hole_stays_a_hole(geo):
    cam = geo.camera.camera_from_result(200, 200, 50.0)
    xx, yy = _pixel_centres(200, 200)
    d = np.hypot(xx - 100, yy - 100)
    ring = (d < 80) & (d > 30)
    md = geo.plane.build_object_mesh(ring, np.full(ring.shape, 4.0), cam, geo.core.MeshSettings(back="open"))
    report = geo.check.edge_manifold_report(md.face_sizes, md.loops)
    assert report["boundary_loops"] == 2 and report["manifold"]
    px = _pixels_of(md, cam)
    assert np.hypot(px[:, 0] - 100, px[:, 1] - 100).min() > 29.5
    assert _iou(_rasterise(geo, md, cam), ring) > 0.98


def test_mask_touching_the_image_border(geo):
    cam = geo.camera.camera_from_result(120, 90, 50.0)
    mask = np.zeros((90, 120), bool)
    mask[:50, :70] = True
    md = geo.plane.build_object_mesh(mask, np.full(mask.shape, 3.0), cam, geo.core.MeshSettings(back="closed"))
    px = _pixels_of(md, cam)
    assert px[:, 0].min() == pytest.approx(0.0, abs=1e-4) and px[:, 1].min() == pytest.approx(0.0, abs=1e-4)
    assert px[:, 0].max() <= 70.5 and px[:, 1].max() <= 50.5
    sizes, loops = _front(geo, md)
    p = px.copy()
    p[:, 1] *= -1
    assert geo.topology.polygon_areas(p, sizes, loops).sum() == pytest.approx(mask.sum(), rel=0.01)
    assert geo.check.edge_manifold_report(md.face_sizes, md.loops)["watertight"]


@pytest.mark.parametrize("back", ["open", "closed", "solidify"])
def test_one_pixel_sliver_and_single_pixel(geo, back):
    cam = geo.camera.camera_from_result(100, 60, 50.0)
    mask = np.zeros((60, 100), bool)
    mask[30, 10:90] = True
    mask[10, 50] = True  # a lone pixel is its own part
    md = geo.plane.build_object_mesh(mask, np.full(mask.shape, 2.0), cam, geo.core.MeshSettings(back=back))
    px = _pixels_of(md, cam)
    line = px[:, 1] > 20
    assert line.any() and (~line).any()
    assert np.abs(px[line, 1] - 30.5).max() <= 0.75 and px[line, 0].min() >= 9.5 and px[line, 0].max() <= 90.5
    assert np.abs(px[~line] - [50.5, 10.5]).max() <= 0.75
    sizes, loops = _front(geo, md)
    p = px.copy()
    p[:, 1] *= -1
    assert 0.5 * 81 < geo.topology.polygon_areas(p, sizes, loops).sum() < 1.5 * 81
    report = geo.check.edge_manifold_report(md.face_sizes, md.loops)
    assert report["manifold"] and report["degenerate_faces"] == 0
    assert report["watertight"] == (back != "open")


def test_empty_mask_raises(geo):
    cam = geo.camera.camera_from_result(40, 30)
    with pytest.raises(ValueError, match="empty mask"):
        geo.plane.build_object_mesh(np.zeros((30, 40), bool), np.ones((30, 40)), cam, geo.core.MeshSettings())
    with pytest.raises(ValueError, match="empty mask"):
        geo.plane.build_object_mesh(np.full((30, 40), 0.3), np.ones((30, 40)), cam, geo.core.MeshSettings())


def test_two_objects_keep_their_depth_order(geo):
    h, w = 120, 160
    cam = geo.camera.camera_from_result(w, h, 35.0)
    xx, yy = _pixel_centres(h, w)
    near = np.hypot(xx - 50, yy - 60) < 30
    far = np.hypot(xx - 115, yy - 60) < 35
    inv = np.zeros((h, w), np.float32)
    inv[near] = 0.9 + 0.05 * np.cos(np.hypot(xx - 50, yy - 60)[near] / 30)  # a dome
    inv[far] = 0.3
    settings = geo.core.MeshSettings(distance=5.0, depth_range=2.0, back="open")
    z = geo.depth.scene_depth(inv, "relative_inverse", [near, far], settings)
    depths = []
    for m in (near, far):
        md = geo.plane.build_object_mesh(m, z, cam, settings)
        depths.append(-(md.vertices + md.relief)[:, 2])
    assert depths[0].max() < depths[1].min()
    assert depths[0].min() == pytest.approx(5.0, abs=0.02) and depths[1].max() == pytest.approx(7.0, abs=0.02)


def test_depth_step_tears_the_mesh(geo):
    cam = geo.camera.camera_from_result(160, 100, 50.0)
    mask = np.zeros((100, 160), bool)
    mask[20:80, 20:140] = True
    z = np.where(np.arange(160)[None, :] < 80, 5.0, 6.0) * np.ones((100, 1))
    torn = geo.plane.build_object_mesh(mask, z, cam, geo.core.MeshSettings(back="open", tear_threshold=0.05))
    depth = -(torn.vertices + torn.relief)[:, 2].astype(np.float64)
    starts = geo.topology.face_starts(torn.face_sizes)
    zmin = np.minimum.reduceat(depth[torn.loops], starts)
    zmax = np.maximum.reduceat(depth[torn.loops], starts)
    assert np.all(zmax / zmin - 1 <= 0.05)  # no face spans the step
    assert np.isclose(depth, 5.0, atol=1e-3).any() and np.isclose(depth, 6.0, atol=1e-3).any()
    assert geo.check.edge_manifold_report(torn.face_sizes, torn.loops)["boundary_loops"] == 2
    kept = geo.plane.build_object_mesh(mask, z, cam, geo.core.MeshSettings(back="open", tear_threshold=0.5))
    assert geo.check.edge_manifold_report(kept.face_sizes, kept.loops)["boundary_loops"] == 1
    closed = geo.plane.build_object_mesh(mask, z, cam, geo.core.MeshSettings(back="closed"))
    report = geo.check.edge_manifold_report(closed.face_sizes, closed.loops)
    assert report["watertight"] and report["manifold"]


# -- backs ------------------------------------------------------------------------------------


def _shapes() -> dict[str, tuple[np.ndarray, int]]:
    h, w = 160, 200
    xx, yy = _pixel_centres(h, w)
    d = np.hypot(xx - 100, yy - 80)
    ell = np.zeros((h, w), bool)
    ell[20:140, 30:80] = True
    ell[100:140, 30:170] = True
    return {"disk": (d < 60, 2), "annulus": ((d < 65) & (d > 25), 0), "L": (ell, 2)}


@pytest.mark.parametrize("back", ["closed", "solidify"])
@pytest.mark.parametrize("shape", ["disk", "annulus", "L"])
def test_backs_are_watertight_and_manifold(geo, back, shape):
    mask, euler = _shapes()[shape]
    cam = geo.camera.camera_from_result(mask.shape[1], mask.shape[0], 50.0)
    xx, yy = _pixel_centres(*mask.shape)
    z = 4.0 - 0.3 * np.cos(np.hypot(xx - 100, yy - 80) / 40)  # a bump, so the relief is not flat
    md = geo.plane.build_object_mesh(mask, z, cam, geo.core.MeshSettings(back=back, detail=8000, thickness=0.2))
    report = geo.check.edge_manifold_report(md.face_sizes, md.loops)
    assert report["watertight"] and report["manifold"], report
    assert report["degenerate_faces"] == 0 and report["euler"] == euler
    for s in (0.0, 1.0):
        assert _signed_volume(geo, md, s) > 0  # consistent outward normals
    front, back_group = md.groups["front"], md.groups["back"]
    assert front.any() and back_group.any() and (front | back_group).all()
    shared = front & back_group
    if back == "closed":  # the back shares exactly the front's outline, where the relief is zero
        f_sizes, f_loops = _front(geo, md)
        rim = _boundary_vertices(geo, SimpleNamespace(face_sizes=f_sizes, loops=f_loops))
        assert np.array_equal(np.flatnonzero(shared), rim)
        assert np.all(md.relief[shared] == 0)
    else:
        assert not shared.any()
    # every back vertex stays behind the front vertex of the same pixel for strengths in [0, 1]
    key = np.round(_pixels_of(md, cam) * 1e4).astype(np.int64)
    key = key[:, 0] * 10**9 + key[:, 1]
    only_back = back_group & ~front
    order = np.argsort(key[front])
    pos = np.searchsorted(key[front][order], key[only_back])
    assert np.array_equal(key[front][order][pos], key[only_back])
    for s in (0.0, 1.0):
        depth = -(md.vertices + s * md.relief)[:, 2]
        assert np.all(depth[only_back] >= depth[front][order][pos] - 1e-5)


# -- detail, reprojection and the relief texture ------------------------------------------------


@pytest.mark.parametrize("detail", [5_000, 20_000, 100_000])
def test_vertex_count_follows_detail(geo, detail):
    h, w = 480, 640
    cam = geo.camera.camera_from_result(w, h, 50.0)
    xx, yy = _pixel_centres(h, w)
    blob = ((xx - 320) / 250) ** 2 + ((yy - 240) / 180) ** 2 < 1
    md = geo.plane.build_object_mesh(blob, np.full(blob.shape, 5.0), cam, geo.core.MeshSettings(back="open",
                                                                                                 detail=detail))
    assert abs(md.num_vertices - detail) <= 0.2 * detail


def _grabcut(bench_data, name):
    m = np.asarray(Image.open(bench_data / "masks" / "grabcut" / "seg_GT" / f"{name}.bmp").convert("L"))
    return m > 127


def _dome_depth(mask):
    """An inflated dome over a real mask with a tilt and a fine texture, metric."""
    from scipy import ndimage

    dist = ndimage.distance_transform_edt(mask)
    h, w = mask.shape
    xx, yy = _pixel_centres(h, w)
    return 4.0 + 0.002 * yy - 0.02 * np.sqrt(dist) - 0.01 * np.sin(xx / 7.0) * np.cos(yy / 5.0)


@pytest.mark.parametrize("back", ["open", "solidify", "closed"])
def test_reprojection_is_exact_at_every_strength(geo, bench_data, back):
    mask = _grabcut(bench_data, "teddy")
    cam = geo.camera.camera_from_result(mask.shape[1], mask.shape[0], None)
    md = geo.plane.build_object_mesh(mask, _dome_depth(mask), cam, geo.core.MeshSettings(back=back))
    for s in STRENGTHS:
        assert _reprojection_error(md, cam, s) < 0.01
    # Blender's Displace reads the texel under each relief UV; every UV is a texel centre
    tex = md.relief_texture
    h, w = tex.shape[:2]
    fu = md.relief_uvs[:, 0].astype(np.float64) * w
    fv = md.relief_uvs[:, 1].astype(np.float64) * h
    assert np.abs(fu - np.floor(fu) - 0.5).max() < 1e-3 and np.abs(fv - np.floor(fv) - 0.5).max() < 1e-3
    texel = tex[np.floor(fv).astype(int), np.floor(fu).astype(int)]  # row 0 at the bottom (v = 0)
    assert np.array_equal(texel[:, :3], md.relief)  # one Displace modifier at +strength moves every vertex
    assert tex.shape[2] == 4 and np.all(tex[..., 3] == 1)
    back_only = md.groups["back"] & ~md.groups["front"]
    if back == "closed":  # the mirrored back reads negated texels of its own
        assert np.any(md.relief[back_only]) and not np.any(md.relief[md.groups["seam"]])
    # one texel per vertex (solidify: the back shares the front's), never more
    own = md.num_vertices // 2 if back == "solidify" else md.num_vertices
    assert own <= h * w < own + w


def test_relief_texture_is_as_large_as_the_mesh_not_its_box(geo):
    """A thin diagonal object fills ~1 % of its bounding box; its relief texture still has one
    texel per vertex (laid out over the box it would hold ~60 per vertex)."""
    import cv2

    h, w = 600, 800
    mask = np.zeros((h, w), np.uint8)
    cv2.line(mask, (25, 25), (775, 575), 255, 6)
    yy, xx = np.mgrid[0:h, 0:w]
    depth = (4.0 + 0.3 * np.sin(xx / 40.0)).astype(np.float32)  # a real relief, not a flat plane
    cam = geo.camera.camera_from_result(w, h, None)
    for back in ("open", "closed"):
        md = geo.plane.build_object_mesh(mask > 0, depth, cam, geo.core.MeshSettings(detail=4000, back=back))
        th, tw = md.relief_texture.shape[:2]
        assert md.num_vertices <= th * tw < md.num_vertices + tw, back
        assert np.any(md.relief)


def test_flat_relief_needs_one_texel(geo):
    mask = np.zeros((60, 80), bool)
    mask[10:50, 15:65] = True
    cam = geo.camera.camera_from_result(80, 60, None)
    md = geo.plane.build_object_mesh(mask, np.full(mask.shape, 3.0, np.float32), cam, geo.core.MeshSettings())
    assert not np.any(md.relief) and md.relief_texture.shape == (1, 1, 4)
    assert np.all(md.relief_uvs == 0.5)


def test_real_masks_close_watertight(geo, bench_data):
    for name in ("banana1", "bush", "cross", "llama", "flower"):
        mask = _grabcut(bench_data, name)
        cam = geo.camera.camera_from_result(mask.shape[1], mask.shape[0], None)
        md = geo.plane.build_object_mesh(mask, _dome_depth(mask), cam, geo.core.MeshSettings(detail=6000))
        report = geo.check.edge_manifold_report(md.face_sizes, md.loops)
        assert report["watertight"] and report["manifold"] and report["degenerate_faces"] == 0, (name, report)
        assert _signed_volume(geo, md) > 0, name
        sizes, loops = _front(geo, md)
        assert _iou(_rasterise(geo, SimpleNamespace(uvs=md.uvs, face_sizes=sizes, loops=loops), cam), mask) > 0.95, name


# -- the check helper can fail ------------------------------------------------------------------


def test_manifold_report_on_handmade_meshes(geo):
    cube = np.array([[0, 3, 2, 1], [4, 5, 6, 7], [0, 1, 5, 4], [1, 2, 6, 5], [2, 3, 7, 6], [3, 0, 4, 7]])
    sizes = np.full(6, 4)
    report = geo.check.edge_manifold_report(sizes, cube.ravel())
    assert report["watertight"] and report["manifold"] and report["euler"] == 2
    open_box = geo.check.edge_manifold_report(sizes[:5], cube[:5].ravel())
    assert open_box["boundary_edges"] == 4 and open_box["boundary_loops"] == 1 and not open_box["watertight"]
    flipped = cube.copy()
    flipped[0] = flipped[0][::-1]
    assert geo.check.edge_manifold_report(sizes, flipped.ravel())["inconsistent_edges"] == 4
    fin = np.concatenate([cube.ravel(), [0, 1, 8]])
    report = geo.check.edge_manifold_report(np.concatenate([sizes, [3]]), fin)
    assert report["nonmanifold_edges"] == 1 and not report["manifold"]


def test_closedness_is_one_test_with_or_without_orientation(geo):
    """``check.is_closed`` (what the templates, the benchmark metrics and the scene tests share) agrees
    with the full report: two faces per edge, and with ``oriented`` walked in opposite directions."""
    cube = np.array([[0, 3, 2, 1], [4, 5, 6, 7], [0, 1, 5, 4], [1, 2, 6, 5], [2, 3, 7, 6], [3, 0, 4, 7]])
    sizes = np.full(6, 4)
    flipped = cube.copy()
    flipped[0] = flipped[0][::-1]
    fin = np.concatenate([cube.ravel(), [0, 1, 8]])
    cases = [(sizes, cube.ravel()), (sizes[:5], cube[:5].ravel()), (sizes, flipped.ravel()),
             (np.concatenate([sizes, [3]]), fin)]
    for s, lp in cases:
        report = geo.check.edge_manifold_report(s, lp)
        assert geo.check.is_closed(s, lp, oriented=False) == report["watertight"]
        assert geo.check.is_closed(s, lp) == (report["watertight"] and report["manifold"])
    assert [geo.check.is_closed(s, lp) for s, lp in cases] == [True, False, False, False]
    assert geo.check.is_closed(sizes, flipped.ravel(), oriented=False)


def test_mesh_data_is_the_one_mesh_type(geo):
    """A built object is a ``PolyMesh`` with the photo's fields: its float32/int32 arrays are kept as the
    geometry layer made them, and the mesh operations (corner walk, fans, volume) work on it as on any."""
    cam = geo.camera.camera_from_result(120, 90, 50.0)
    xx, yy = _pixel_centres(90, 120)
    mask = np.hypot(xx - 60, yy - 45) < 30
    md = geo.plane.build_object_mesh(mask, np.full(mask.shape, 3.0), cam, geo.core.MeshSettings(back="closed"))
    assert isinstance(md, geo.mesh.PolyMesh)
    assert (md.vertices.dtype, md.face_sizes.dtype, md.loops.dtype) == (np.float32, np.int32, np.int32)
    assert np.array_equal(md.next_corners(), geo.topology.next_corner(md.face_sizes))
    assert geo.mesh.is_closed(md) and md.triangles().shape == (int((md.face_sizes - 2).sum()), 3)
    plain = geo.mesh.PolyMesh(md.vertices, md.face_sizes, md.loops)
    assert plain.vertices.dtype == np.float64 and plain.vertices is not md.vertices
    assert geo.mesh.signed_volume(plain) == geo.mesh.signed_volume(md) > 0


def test_mask_dtypes_agree(geo):
    cam = geo.camera.camera_from_result(120, 90, 50.0)
    xx, yy = _pixel_centres(90, 120)
    mask = np.hypot(xx - 60, yy - 45) < 30
    z = np.full(mask.shape, 3.0)
    ref = geo.plane.build_object_mesh(mask, z, cam, geo.core.MeshSettings(back="open"))
    for other in (mask.astype(np.uint8) * 255, mask.astype(np.float32)):
        md = geo.plane.build_object_mesh(other, z, cam, geo.core.MeshSettings(back="open"))
        assert np.array_equal(md.vertices, ref.vertices) and np.array_equal(md.loops, ref.loops)


# -- the edge table handed to Blender --------------------------------------------------------------


def _reference_edges(md) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique undirected face-boundary edges as (min, max) rows, and each corner's (min, max)
    pair with the next corner of its face, walked face by face from ``face_sizes``."""
    starts = np.r_[0, np.cumsum(md.face_sizes)[:-1]]
    face = np.repeat(np.arange(md.face_sizes.size), md.face_sizes)
    k = np.arange(md.loops.size) - starts[face]
    nxt = starts[face] + (k + 1) % md.face_sizes[face]
    pairs = np.sort(np.stack([md.loops, md.loops[nxt]], axis=1), axis=1)
    return np.unique(pairs, axis=0), pairs


@pytest.mark.parametrize("back", ["open", "solidify", "closed"])
@pytest.mark.parametrize("shape", ["disk", "annulus", "L"])
def test_edge_table_matches_the_faces(geo, back, shape):
    mask, _ = _shapes()[shape]
    cam = geo.camera.camera_from_result(mask.shape[1], mask.shape[0], 50.0)
    xx, yy = _pixel_centres(*mask.shape)
    # a depth step through the middle tears the mesh too, so off-lattice edges and split vertices appear
    z = 4.0 - 0.3 * np.cos(np.hypot(xx - 100, yy - 80) / 40) + np.where(xx > 120, 1.0, 0.0)
    for detail in (400, 8000):
        md = geo.plane.build_object_mesh(mask, z, cam, geo.core.MeshSettings(back=back, detail=detail, thickness=0.2))
        assert md.edges.dtype == np.int32 and md.corner_edges.dtype == np.int32
        assert md.edges.shape[1] == 2 and md.corner_edges.shape == md.loops.shape
        unique, corner_pairs = _reference_edges(md)
        table = np.sort(md.edges, axis=1)
        assert table.shape == unique.shape  # no duplicate, no missing edge
        assert np.array_equal(np.unique(table, axis=0), unique)
        assert np.array_equal(table[md.corner_edges], corner_pairs)  # corner i -> next corner of its face


def test_edge_table_of_any_mesh(geo):
    edges_mod = importlib.import_module(geo.core.__name__ + ".edges")
    cube = np.array([[0, 3, 2, 1], [4, 5, 6, 7], [0, 1, 5, 4], [1, 2, 6, 5], [2, 3, 7, 6], [3, 0, 4, 7]])
    sizes = np.r_[np.full(6, 4), 3, 5]
    loops = np.r_[cube.ravel(), [0, 1, 8], [8, 1, 9, 10, 11]]
    edges, corner_edges = edges_mod.mesh_edges(sizes, loops)
    md = SimpleNamespace(face_sizes=sizes, loops=loops)
    unique, corner_pairs = _reference_edges(md)
    assert edges.shape[0] == 12 + 2 + 4 == unique.shape[0]
    assert np.array_equal(np.sort(edges, axis=1)[corner_edges], corner_pairs)


def test_lattice_knows_whether_every_vertex_is_used(geo):
    """The build skips the per-corner unused-vertex scan when the lattice says every vertex is a
    corner of some face (counted on its cell grid): that flag must match a direct count."""
    import cv2

    lattice = importlib.import_module(geo.core.__name__ + ".lattice")
    outline_mod = importlib.import_module(geo.core.__name__ + ".outline")
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(60):
        mask = cv2.GaussianBlur(rng.random((60, 80)).astype(np.float32), (0, 0), 2.0) > 0.5
        outline = outline_mod.Outline.from_mask(mask, True)
        if outline.points.shape[0] == 0:
            continue
        for detail in (400, 6000):
            lat = lattice.build_lattice_mesh(outline, geo.plane.lattice_spacing(mask.sum(), outline.length, detail))
            used = np.bincount(lat.loops, minlength=lat.pixels.shape[0]) > 0
            assert lat.all_used == bool(used.all())
            seen.add(lat.all_used)
    assert seen == {True, False}  # both cases occur on these masks


def test_large_object_at_modest_detail_reads_coarser_blocks(geo, monkeypatch):
    """A sphere filling a 2400x1800 photo at the default detail has ~12 px lattice cells, so its
    mask and depth are read in blocks of several pixels (reduced pixels = photo pixels / factor,
    the same rays): the mesh keeps the full-resolution build's vertex count, silhouette and
    accuracy, and its vertices still project exactly onto the pixels their UVs name."""
    cam = geo.camera.camera_from_result(2400, 1800, 50.0)
    centre, radius = (0.1, -0.05, -5.0), 1.6
    mask, z = _sphere(cam, centre, radius)
    settings = geo.core.MeshSettings(back="closed")
    assert geo.plane.reduction_factor(int(mask.sum()), settings.detail) >= 3

    def build():
        md = geo.plane.build_object_mesh(mask, z, cam, settings)
        err = np.linalg.norm(md.vertices.astype(np.float64) + md.relief - np.asarray(centre), axis=1) - radius
        sizes, loops = _front(geo, md)
        front = SimpleNamespace(uvs=md.uvs, face_sizes=sizes, loops=loops)
        return md, np.abs(err[md.groups["front"]]), _iou(_rasterise(geo, front, cam), mask)

    md, err, iou = build()
    monkeypatch.setattr(geo.plane, "REDUCE_CELL_PIXELS", 10**9)  # every pixel, for comparison
    full, full_err, full_iou = build()
    assert md.num_vertices == pytest.approx(full.num_vertices, rel=0.03)
    assert iou > 0.998 and iou > full_iou - 0.001
    assert err.max() < 0.01 * radius and err.mean() < 0.001 * radius
    for s in STRENGTHS:
        assert _reprojection_error(md, cam, s) < 0.01
    report = geo.check.edge_manifold_report(md.face_sizes, md.loops)
    assert report["watertight"] and report["manifold"]
    print(f"reduced: {md.num_vertices} vertices, IoU {iou:.4f}, err max {err.max():.5f} mean {err.mean():.6f}; "
          f"full: {full.num_vertices}, IoU {full_iou:.4f}, err max {full_err.max():.5f} mean {full_err.mean():.6f}")


def test_tiled_outline_field_equals_the_full_pass(monocle, monkeypatch):
    """A large crop is smoothed only in the tiles near a change of coverage; the field is the
    one-pass field bit for bit: a thin diagonal pole (the tiled path), a soft-edged disc
    (coverage, not binary), a crop with one-pixel lines everywhere (falls back to one pass)."""
    import cv2

    outline = importlib.import_module(f"{monocle.__name__}.geometry.outline")
    grid = importlib.import_module(f"{monocle.__name__}.geometry.grid")
    pole = np.zeros((2150, 2700), np.uint8)  # above FIELD_TILED_PIXELS, sides not multiples of a tile
    cv2.line(pole, (40, 40), (2660, 2100), 255, 15)
    cv2.circle(pole, (300, 1800), 4, 255, -1)  # a small blob, far from the pole
    cv2.circle(pole, (2690, 30), 6, 255, -1)  # and one in the ragged last columns
    yy, xx = np.mgrid[0:2100, 0:2100]
    disc = np.clip(1.0 - np.hypot(xx - 700.3, yy - 420.7) / 3.0 + 60.0 / 3.0, 0.0, 1.0).astype(np.float32)
    lines = np.zeros((2100, 2100), np.float32)
    lines[::23, :] = 1.0
    lines[:, ::31] = 1.0
    one_pass = outline._smoothed
    windows = []
    monkeypatch.setattr(outline, "_smoothed", lambda m, binary: windows.append(m.size) or one_pass(m, binary))
    for cov, binary, tiled_path in ((pole > 0, True, True), (disc, False, True), (lines, True, False)):
        cov = np.asarray(cov, dtype=np.float32)
        windows.clear()
        tiled = outline.smoothed_field(cov, binary)
        assert tiled.dtype == np.float32 and np.array_equal(tiled, one_pass(cov, binary))
        if tiled_path:  # many small windows, covering well under half the crop
            assert len(windows) > 3 and sum(windows[1:]) < 0.5 * cov.size
        else:
            assert windows == [cov.size]
        # a bool mask (the usual input) gives the same field, and the bordered field is the padded one
        framed = outline.smoothed_field(cov > 0.5 if binary else cov, binary, border=1)
        assert np.array_equal(framed, np.pad(tiled, 1))
        # lattices read the field off its settled tiles' values, interpolating only near the outline
        traced = outline.Outline.from_mask(cov > 0.5 if binary else cov, binary, 5, 7)
        assert (traced.tiles is not None) == tiled_path
        for spacing, shift in ((0.7, 0.0), (1.0, 0.5), (2.6, 0.25), (7.3, 0.9)):
            xs = 5.0 - 2 * spacing + shift + spacing * np.arange(int(cov.shape[1] / spacing) + 4)
            ys = 7.0 - 2 * spacing + shift + spacing * np.arange(int(cov.shape[0] / spacing) + 4)
            assert np.array_equal(traced.sample_grid(xs, ys),
                                  grid.grid_bilinear(traced.field, traced.ox, traced.oy, 1.0, xs, ys))


def test_outline_tracing_matches_scikit_image(monocle):
    """The outline's marching squares visits only the crossings; its points and links are
    those of ``skimage.measure.find_contours`` (saddles included) on random masks, and every
    point has exactly one successor and one predecessor."""
    import cv2
    from skimage import measure

    outline = importlib.import_module(f"{monocle.__name__}.geometry.outline")
    rng = np.random.default_rng(1)
    saddles = 0
    for trial in range(40):
        h, w = (int(v) for v in rng.integers(5, 80, 2))
        noise = rng.random((h, w)).astype(np.float32)
        mask = noise > 0.6 if trial % 2 else cv2.GaussianBlur(noise, (0, 0), 1.5) > 0.5
        saddles += int(np.count_nonzero(mask[:-1, :-1] & mask[1:, 1:] & ~mask[1:, :-1] & ~mask[:-1, 1:]))
        field = outline.smoothed_field(mask, True, border=1)
        points, successor = outline.trace_level(field)
        assert np.array_equal(np.sort(successor), np.arange(successor.size))
        contours = measure.find_contours(field, 0.5)
        expected = np.concatenate([c[:-1] for c in contours]) if contours else np.zeros((0, 2))
        order = lambda p: np.lexsort((p[:, 1], p[:, 0]))  # noqa: E731
        assert np.array_equal(expected[order(expected)], points[order(points)])
        index = {tuple(p): i for i, p in enumerate(points)}
        links = {(index[tuple(p)], index[tuple(q)]) for c in contours for p, q in zip(c[:-1], c[1:])}
        mine = set(enumerate(successor.tolist()))
        assert links in (mine, {(b, a) for a, b in mine})
    assert saddles > 50  # the diagonal touches were exercised


def test_thin_object_fields_at_its_nodes_alone_are_the_full_lattices(geo, monkeypatch):
    """A thin object across its box uses few of its lattice's nodes and few of its crop's pixels,
    so depth, base and inflation are computed at those nodes and read from those pixels alone:
    the mesh is the one the whole lattice and crop give, bit for bit (a diagonal pole, with a
    depth jump across it and a hole in the depth)."""
    import cv2

    h, w = 900, 1200
    mask = np.zeros((h, w), np.uint8)
    cv2.line(mask, (60, 60), (1140, 840), 255, 14)
    cv2.circle(mask, (900, 300), 40, 255, -1)
    xx = np.arange(w, dtype=np.float32)[None, :]
    z = np.broadcast_to(4.0 + 0.3 * np.sin(xx / 40.0), (h, w)).copy()
    z[:, 600:] += 1.5  # a jump: torn faces, nearest-pixel samples
    z[425:440, 560:590] = np.nan  # no depth here: point samples from the nearest valid pixel
    cam = geo.camera.camera_from_result(w, h, None)
    chosen = []
    pick = geo.plane._nodes_to_sample
    for back in ("open", "closed"):
        settings = geo.core.MeshSettings(back=back)
        monkeypatch.setattr(geo.plane, "_nodes_to_sample",
                            lambda lat: chosen.append((pick(lat), lat.nx * lat.ny)) or chosen[-1][0])
        sparse = geo.plane.build_object_mesh(mask > 0, z, cam, settings)
        at, lattice_size = chosen[-1]
        assert at is not None and at.size * 20 < lattice_size  # the nodes alone: under 5 % of the lattice
        monkeypatch.setattr(geo.plane, "SPARSE_NODES", 10**9)  # the whole lattice
        monkeypatch.setattr(geo.plane, "SPARSE_PIXELS", 10**9)  # and the whole crop
        dense = geo.plane.build_object_mesh(mask > 0, z, cam, settings)
        monkeypatch.undo()
        for name in ("vertices", "relief", "uvs", "face_sizes", "loops", "relief_texture"):
            assert np.array_equal(getattr(sparse, name), getattr(dense, name)), (back, name)


def test_membrane_block_counts_are_exact(monocle):
    """The membrane counts a mask's pixels per block from its integral image, partial blocks
    at the right and bottom included."""
    membrane = importlib.import_module(f"{monocle.__name__}.geometry.membrane")
    rng = np.random.default_rng(3)
    for h, w, b in ((37, 53, 5), (40, 40, 8), (9, 300, 11), (64, 17, 1)):
        flags = rng.random((h, w)) > 0.7
        hb, wb = -(-h // b), -(-w // b)
        padded = np.zeros((hb * b, wb * b), dtype=np.int64)
        padded[:h, :w] = flags
        expected = padded.reshape(hb, b, wb, b).sum(axis=(1, 3))
        assert np.array_equal(membrane._block_counts(flags, b), expected)


def test_jumps_found_at_an_objects_own_pixels_are_the_full_passs(monocle):
    """A thin object's depth jumps are looked for at its own pixels only; they are the pixels
    the pass over its whole crop finds, at spans of 1-3 pixels, along rows and columns, next to
    invalid pixels and at the crop's edges."""
    sampling = importlib.import_module(f"{monocle.__name__}.geometry.sampling")
    rng = np.random.default_rng(4)
    h, w = 70, 90
    z = (3.0 + 0.05 * rng.random((h, w))).astype(np.float32)
    z[:, 40:] += 1.0  # a jump across the columns
    z[30:, :] += 0.8  # one across the rows
    z[50:52, 10:13] = 9.0  # a narrow spike (spans of 2 and 3)
    valid = rng.random((h, w)) > 0.1
    valid[:, :3] = True  # reaches the crop's edge
    rr, cc = np.nonzero(valid)
    full = sampling.jump_pixels(z, valid, 0.05)
    assert full.sum() > 100
    assert np.array_equal(sampling.jump_pixels(z, valid, 0.05, (rr, cc)), full)


def test_points_in_depth_holes_take_the_nearest_valid_pixel(monocle, monkeypatch):
    """A point with no valid depth around it reads the nearest valid pixel. The lookup runs
    tile by tile in widening windows; every answer must be a valid pixel at the true nearest
    distance (brute force over the whole crop), also for holes wider than a tile, points past
    the crop's edge and points whose nearest pixel lies in another tile."""
    sampling = importlib.import_module(f"{monocle.__name__}.geometry.sampling")
    monkeypatch.setattr(sampling, "NEAREST_TILE", 16)  # many tiles and windows on a small crop
    rng = np.random.default_rng(9)
    h, w = 60, 80
    z = rng.random((h, w)).astype(np.float32) + 1.0
    valid = np.zeros((h, w), dtype=bool)
    valid[20:28, :] = True  # a thin bar across the crop
    valid[5:9, 60:70] = True  # and a patch
    valid[20:28, 30:75] = False  # with a hole far wider than a tile
    valid[22:24, 10:12] = False  # and a small one
    sampler = sampling.DepthSampler(z, valid, 0, 0, np.inf)
    pts = np.stack([rng.uniform(-5, w + 5, 400), rng.uniform(-5, h + 5, 400)], axis=1)
    got = sampler.sample(pts)
    pr, pc = np.nonzero(sampler.valid)  # padded crop: pixel (r, c) of the crop is (r + 1, c + 1)
    fx = np.clip(pts[:, 0] + 0.5, 0.0, w + 1 - 1.000001)
    fy = np.clip(pts[:, 1] + 0.5, 0.0, h + 1 - 1.000001)
    r, c = np.rint(fy).astype(int), np.rint(fx).astype(int)
    c0, r0 = fx.astype(int), fy.astype(int)
    lost = ~(sampler.valid[r0, c0] | sampler.valid[r0, c0 + 1] | sampler.valid[r0 + 1, c0]
             | sampler.valid[r0 + 1, c0 + 1])
    assert lost.sum() > 200
    d2 = (pr[None, :] - r[lost, None]) ** 2 + (pc[None, :] - c[lost, None]) ** 2
    nearest = d2 == d2.min(axis=1, keepdims=True)
    zpad = sampler.z[pr, pc]
    assert all(np.any(zpad[row] == g) for row, g in zip(nearest, got[lost]))


def test_steep_faces_from_the_lattice_grid_match_their_corners(geo):
    """The quads' depth spans read off the lattice grid's cells give the same steep faces as
    every face's own corners: with warped outline nodes, a depth jump, a hole in the depth
    (flagged grid values, point-sampled vertices) and a slope that crosses the threshold."""
    import cv2

    h, w = 480, 640
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (320, 240), (250, 180), 15, 0, 360, 255, -1)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    z = 4.0 + 0.004 * xx + 0.3 * np.sin(yy / 9.0)  # steep enough on some rows to cross 5 % per cell
    z[:, 330:] += 1.0  # a jump
    z[200:215, 150:175] = np.nan  # a hole
    plane = geo.plane
    outline = plane.outline_of(mask > 0)
    lat = geo.lattice.build_lattice_mesh(outline, 3.0)
    valid = (mask > 0) & np.isfinite(z)
    sampler = geo.sampling.DepthSampler(np.where(valid, z, 0).astype(np.float32), valid, 0, 0, 0.05)
    xs, ys = geo.lattice.lattice_lines(outline, 3.0)
    z_grid, flagged = sampler.sample_grid(xs, ys)
    zv = plane._sample_vertices(lat.node, lat.pixels, z_grid, sampler.sample, flagged)
    assert flagged.any()
    by_grid = geo.tears.steep_faces(lat, zv, 0.05, (z_grid, flagged))
    by_corners = geo.tears.steep_faces(lat, zv, 0.05, None)
    assert 0 < np.count_nonzero(by_corners) < by_corners.size // 2
    assert np.array_equal(by_grid, by_corners)


def test_closed_seam_faces_found_from_the_lattice_are_every_seam_face(geo, monkeypatch):
    """The closed back looks for the faces on the seam among the lattice's cut polygons and
    the quads near a warped node only; the mesh is the one a search of every face gives, bit
    for bit (blobs that touch, a hole, a depth jump that tears faces and takes the full path)."""
    import cv2

    h, w = 300, 400
    mask = np.zeros((h, w), np.uint8)
    for centre, axes, angle in (((150, 140), (90, 60), 20), ((260, 160), (70, 80), 0), ((220, 70), (40, 25), 60)):
        cv2.ellipse(mask, centre, axes, angle, 0, 360, 255, -1)
    cv2.circle(mask, (200, 150), 12, 0, -1)
    yy, xx = np.mgrid[0:h, 0:w]
    cam = geo.camera.camera_from_result(w, h, None)
    plane = geo.plane
    split = geo.backs.split_for_closed_back
    for jump in (0.0, 1.0):
        z = (4 + 0.002 * xx + 0.2 * np.sin(yy / 13)).astype(np.float32)
        z[:, 200:] += jump
        settings = geo.core.MeshSettings(back="closed", detail=8000)
        calls = []
        monkeypatch.setattr(geo.backs, "split_for_closed_back", lambda *a: calls.append(a[6]) or split(*a))
        fast = plane.build_object_mesh(mask > 0, z, cam, settings)
        monkeypatch.setattr(geo.backs, "split_for_closed_back", lambda *a: split(*a[:6]))
        full = plane.build_object_mesh(mask > 0, z, cam, settings)
        monkeypatch.undo()
        assert (calls[0] is None) == (jump > 0)  # torn faces: the lattice's faces are not as built
        for name in ("vertices", "uvs", "face_sizes", "loops", "edges", "corner_edges"):
            assert np.array_equal(getattr(fast, name), getattr(full, name)), (jump, name)
