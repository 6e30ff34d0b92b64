"""The benchmark's metric code (bench/metrics.py) against cases whose answer is known by hand."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import metrics


def _grid_plane(n: int = 40, size: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """A size x size square in z = 0 made of n x n quads (polygon faces, not triangles)."""
    t = np.linspace(-size / 2, size / 2, n + 1)
    x, y = np.meshgrid(t, t, indexing="ij")
    v = np.stack([x.ravel(), y.ravel(), np.zeros(x.size)], 1)
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    a = (i * (n + 1) + j).ravel()
    return v, np.stack([a, a + n + 1, a + n + 2, a + 1], 1)


def _box(lo, hi) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    corners = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], float)
    v = lo + corners * (hi - lo)
    quads = np.array([[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]])
    return v, quads


def test_sampling_is_area_weighted_and_on_the_surface():
    v, f = _box((0, 0, 0), (4, 1, 1))  # faces of area 4 (x4) and 1 (x2): 16/18 of the points on the long sides
    pts, normals = metrics.sample_surface(v, f, 36_000, seed=1)
    on_end = (np.abs(pts[:, 0]) < 1e-9) | (np.abs(pts[:, 0] - 4) < 1e-9)
    assert on_end.mean() == pytest.approx(2 / 18, abs=0.01)
    dist = np.min(np.abs(np.concatenate([pts, pts - [4, 1, 1]], 1)), axis=1)
    assert dist.max() < 1e-9
    assert np.allclose(np.linalg.norm(normals, axis=1), 1.0)


def test_identical_meshes_score_perfectly():
    v, f = _grid_plane()
    scale, centre = metrics.gt10_transform(v)
    assert scale == pytest.approx(1.0)
    a, na = metrics.sample_surface(v, f, 20_000, seed=1)
    b, nb = metrics.sample_surface(v, f, 20_000, seed=2)
    m = metrics.surface_metrics(a, na, b, nb)
    assert m["chamfer_l1"] < 0.05  # two independent samples of the same surface: only sampling spacing
    assert m["f@0.1"] > 0.99  # 20k points on 100 units^2: a few holes in the sample are wider than 0.1
    assert m["normal_consistency"] == pytest.approx(1.0)
    same = metrics.surface_metrics(a, na, a, na)
    assert same["chamfer_l1"] == 0.0 and same["chamfer_l2"] == 0.0 and same["f@0.1"] == 1.0


@pytest.mark.parametrize(("shift", "f01", "f03"), [(0.2, 0.0, 1.0), (0.05, 1.0, 1.0), (0.4, 0.0, 0.0)])
def test_plane_shifted_along_its_normal(shift, f01, f03):
    """The same sample shifted along the normal: every nearest neighbour is straight across, so
    Chamfer-L1 = shift, Chamfer-L2 = 2 shift^2, and F flips from 0 to 1 when tau passes the shift."""
    v, f = _grid_plane(size=10.0)
    gt, ngt = metrics.sample_surface(v * [0.5, 0.5, 1], f, 20_000, seed=3)  # the inner 5 x 5
    pred = gt + [0, 0, shift]  # same points, shifted: accuracy = completeness = shift exactly
    m = metrics.surface_metrics(pred, ngt, gt, ngt)
    assert m["chamfer_l1"] == pytest.approx(shift, rel=1e-9)
    assert m["chamfer_l2"] == pytest.approx(2 * shift**2, rel=1e-9)
    assert m["f@0.1"] == f01 and m["f@0.3"] == f03
    assert m["normal_consistency"] == pytest.approx(1.0)
    # averaged over a subset of 5000 queries per direction: every distance is still exactly the shift
    sub = metrics.surface_metrics(pred, ngt, gt, ngt, max_queries=5000)
    assert sub["chamfer_l1"] == pytest.approx(shift, rel=1e-9) and sub["f@0.1"] == f01 and sub["f@0.3"] == f03
    # flipped normals are not penalised (absolute cosine)
    assert metrics.surface_metrics(pred, -ngt, gt, ngt)["normal_consistency"] == pytest.approx(1.0)


def test_perpendicular_normals_score_zero():
    pts = np.random.default_rng(0).random((100, 3))
    nz = np.tile([0.0, 0.0, 1.0], (100, 1))
    nx = np.tile([1.0, 0.0, 0.0], (100, 1))
    assert metrics.surface_metrics(pts, nz, pts, nx)["normal_consistency"] == pytest.approx(0.0)


def test_gt10_normalisation():
    v, _ = _box((1, 2, 3), (3, 6, 4))  # longest edge 4 along y, centre (2, 4, 3.5)
    scale, centre = metrics.gt10_transform(v)
    n = metrics.normalise(v, scale, centre)
    assert scale == pytest.approx(2.5)
    assert np.allclose(n.min(0), [-2.5, -5, -1.25]) and np.allclose(n.max(0), [2.5, 5, 1.25])


def test_volumetric_iou_of_two_boxes():
    """Unit-height boxes [0,2]x[0,1]x[0,1] and [1,3]x[0,1]x[0,1]: overlap 1, union 3 -> IoU 1/3."""
    va, fa = _box((0, 0, 0), (2, 1, 1))
    vb, fb = _box((1, 0, 0), (3, 1, 1))
    assert metrics.volumetric_iou(va, fa, vb, fb, n=60_000) == pytest.approx(1 / 3, abs=0.01)
    assert metrics.volumetric_iou(va, fa, va, fa, n=10_000) == 1.0
    vc, fc = _box((5, 5, 5), (6, 6, 6))
    assert metrics.volumetric_iou(va, fa, vc, fc, n=10_000) == 0.0


def test_inside_mesh_on_a_box_with_many_triangles():
    vb, fb = _box((-1, -1, -1), (1, 1, 1))
    pts = np.random.default_rng(5).uniform(-2, 2, (20_000, 3))
    expected = np.all(np.abs(pts) < 1, axis=1)
    assert (metrics.inside_mesh(pts, vb, fb) == expected).mean() > 0.999


def test_visibility_against_a_depth_map():
    """A camera at the origin looking down -Z at a wall at depth 5: points on the wall are seen,
    points behind it (depth 7) are hidden, points outside the frame are not seen."""
    depth = np.full((100, 100), 5.0)
    depth[:, :10] = np.nan  # background column
    pts = np.array([[0, 0, -5], [1, 1, -5.0005], [0, 0, -7], [100, 0, -5], [-2.3, 0, -5]], float)
    vis = metrics.visible_mask(pts, depth, focal_px=50.0, tol=0.01)
    # x = 50 + 50 * (-2.3) / 5 = 27 (inside); 50 + 50*100/5 outside
    assert vis.tolist() == [True, True, False, False, True]
    pts2 = np.array([[-4.5, 0, -5]])  # x = 50 - 45 = 5: the NaN column
    assert not metrics.visible_mask(pts2, depth, 50.0, 0.01)[0]


def test_icp_recovers_a_similarity():
    v, f = _box((0, 0, 0), (3, 2, 1))
    gt, _ = metrics.sample_surface(v, f, 5000, seed=0)
    angle = 0.15
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    pred = 1.1 * gt @ rot.T + [0.2, -0.1, 0.05]
    m = metrics.icp(pred, gt, iterations=60, trim=1.0)
    aligned = metrics.apply(m, pred)
    assert np.abs(aligned - gt).max() < 1e-3
    assert np.cbrt(np.linalg.det(m[:3, :3])) == pytest.approx(1 / 1.1, rel=1e-3)


def test_relative_depth_affine_in_inverse_depth_is_perfect():
    gt = np.random.default_rng(0).uniform(0.5, 8.0, (60, 80))
    gt[0, :5] = 0.0  # invalid pixels are ignored
    pred = 3.0 * np.where(gt > 0, 1 / np.maximum(gt, 1e-9), 0) + 0.7
    m = metrics.relative_depth_metrics(pred, gt)
    assert m["abs_rel"] == pytest.approx(0.0, abs=1e-9)
    assert m["delta1"] == 1.0
    assert m["scale"] == pytest.approx(1 / 3) and m["shift"] == pytest.approx(-0.7 / 3)
    assert m["pixels"] == gt.size - 5


def test_metric_depth_known_errors():
    gt = np.full((10, 10), 2.0)
    pred = gt.copy()
    pred[:5] = 3.0  # half the pixels 50 % too far: AbsRel 0.25, ratio 1.5 fails delta1, passes delta2
    m = metrics.depth_metrics(pred, gt)
    assert m["abs_rel"] == pytest.approx(0.25)
    assert m["delta1"] == 0.5 and m["delta2"] == 1.0
    assert m["rmse"] == pytest.approx(np.sqrt(0.5))


def test_mask_iou():
    a = np.zeros((10, 10), np.uint8)
    b = np.zeros((10, 10), bool)
    a[:, :6] = 255  # 60 px
    b[:, 4:] = True  # 60 px, overlap 20 px, union 100 px
    assert metrics.mask_iou(a, b) == pytest.approx(0.2)
    assert metrics.mask_iou(b, b) == 1.0
    assert metrics.mask_iou(np.zeros((3, 3)), np.zeros((3, 3))) == 0.0


def test_triangulate_flat_and_closedness():
    """A quad and a pentagon given as Blender's face sizes + corner list fan out into 2 + 3 triangles."""
    tris = metrics.triangulate_flat(np.array([4, 5]), np.arange(9))
    assert tris.tolist() == [[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7], [4, 7, 8]]
    v, quads = _box((0, 0, 0), (1, 1, 1))
    assert (metrics.triangulate_flat(np.full(6, 4), quads.ravel()) == metrics.triangulate(quads)).all()
    assert metrics.is_closed(np.full(6, 4), quads.ravel())  # 12 edges, each shared by 2 faces
    assert not metrics.is_closed(np.full(5, 4), quads[:5].ravel())  # one face missing: 4 border edges
    fin = np.concatenate([quads.ravel(), [0, 1, 3]])  # a triangle on edge 0-1 makes it 3-way: not manifold
    assert not metrics.is_closed(np.array([4] * 6 + [3]), fin)
    assert not metrics.is_closed(np.zeros(0, int), np.zeros(0, int))


def _square(x0: float, x1: float, y0: float, y1: float, depth) -> tuple[np.ndarray, np.ndarray]:
    """A quad in camera space (looking down -Z) with corners at the given X/Y; ``depth(X)`` its axial depth."""
    xy = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)
    v = np.stack([xy[:, 0], xy[:, 1], -np.array([depth(x) for x in xy[:, 0]])], 1)
    return v, np.array([[0, 1, 2], [0, 2, 3]])


def test_rasterized_depth_of_a_facing_square():
    """X, Y in [-1, 1] at depth 5, f = 50 px, 100 x 100: it spans u, v in [40, 60], i.e. exactly the
    20 x 20 pixels whose centres (col + 0.5) lie in that range, all at depth 5."""
    v, t = _square(-1, 1, -1, 1, lambda x: 5.0)
    z = metrics.rasterize_depth(v, t, 50.0, 100, 100)
    covered = np.isfinite(z)
    assert covered.sum() == 400 and covered[40:60, 40:60].all()
    assert np.allclose(z[covered], 5.0)
    # a nearer square in front of part of it wins there (z-buffer), the rest keeps depth 5
    v2, t2 = _square(0, 1, 0, 1, lambda x: 3.0)  # u in [50, 66.7], v in [33.3, 50]: cols 50-66, rows 33-49
    both = metrics.rasterize_depth(np.concatenate([v, v2]), np.concatenate([t, t2 + 4]), 50.0, 100, 100)
    assert np.allclose(both[33:50, 50:67], 3.0) and np.allclose(both[50:60, 40:60], 5.0)
    assert np.isfinite(both).sum() == 400 + 17 * 17 - 10 * 10  # union of the two footprints


def test_rasterized_depth_is_perspective_correct():
    """A plane whose depth is 5 + 0.5 X: along the ray through x_n = (u - cx) / f, X = x_n d, so
    d = 5 / (1 - 0.5 x_n) exactly, not the screen-linear interpolation of the corner depths."""
    v, t = _square(-1, 1, -1, 1, lambda x: 5.0 + 0.5 * x)
    z = metrics.rasterize_depth(v, t, 50.0, 100, 100)
    rows, cols = np.nonzero(np.isfinite(z))
    x_n = (cols + 0.5 - 50.0) / 50.0
    assert len(cols) > 300
    assert np.allclose(z[rows, cols], 5.0 / (1.0 - 0.5 * x_n), rtol=1e-9)
    # nothing behind the camera is drawn
    behind = v.copy()
    behind[:, 2] *= -1
    assert not np.isfinite(metrics.rasterize_depth(behind, t, 50.0, 100, 100)).any()


def test_occupancy_grid_of_a_hollow_box_matches_ray_parity():
    """A box inside a box (one mesh): points between the walls are inside, points in the inner box
    cross two surfaces and are outside. The column-wise grid must agree with point-wise ray parity."""
    vo, fo = _box((-1, -1, -1), (1, 1, 1))
    vi, fi = _box((-0.5, -0.5, -0.5), (0.5, 0.5, 0.5))
    v, f = np.concatenate([vo, vi]), np.concatenate([fo, fi + 8])
    lo, step, shape, off = np.array([-1.2, -1.2, -1.2]), np.full(3, 0.1), (24, 24, 24), np.array([0.37, 0.61, 0.19])
    grid = metrics.occupancy_grid(v, f, lo, step, shape, off)
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, 3)
    pts = lo + (idx + off) * step
    expected = np.all(np.abs(pts) < 1, 1) & ~np.all(np.abs(pts) < 0.5, 1)
    assert (grid.ravel() == expected).all()
    assert (grid.ravel() == metrics.inside_mesh(pts, v, f)).all()


def test_volumetric_iou_of_nested_boxes():
    """A box and the same box halved about its centre: the small one is inside, IoU = 1/8."""
    va, fa = _box((-1, -1, -1), (1, 1, 1))
    vb, fb = _box((-0.5, -0.5, -0.5), (0.5, 0.5, 0.5))
    assert metrics.volumetric_iou(va, fa, vb, fb, n=200_000) == pytest.approx(1 / 8, abs=0.005)


def test_icp_on_a_subset_and_a_shared_tree():
    v, f = _box((0, 0, 0), (3, 2, 1))
    gt, ngt = metrics.sample_surface(v, f, 5000, seed=0)
    angle = 0.1
    rot = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    pred = 0.9 * gt @ rot.T + [0.1, 0.2, -0.1]
    m = metrics.icp(pred, gt, iterations=60, trim=1.0, max_points=800)
    assert np.abs(metrics.apply(m, pred) - gt).max() < 1e-3  # the fit on 800 points moves all 5000
    assert np.cbrt(np.linalg.det(m[:3, :3])) == pytest.approx(1 / 0.9, rel=1e-3)
    from scipy.spatial import cKDTree

    a = metrics.surface_metrics(pred, ngt, gt, ngt)
    b = metrics.surface_metrics(pred, ngt, gt, ngt, gt_tree=cKDTree(gt))
    assert a == b
    # a subset of the queries estimates the same means (the other side keeps all its points)
    c = metrics.surface_metrics(pred, ngt, gt, ngt, max_queries=2500)
    assert c["chamfer_l1"] == pytest.approx(a["chamfer_l1"], rel=0.05)
    assert c["f@0.3"] == pytest.approx(a["f@0.3"], abs=0.03)


def test_icp_from_camera_recovers_a_build_at_the_wrong_distance():
    """A reconstruction at 2.5x the true distance is the same picture at the wrong scale: the ICP that
    also starts from the build scaled about the camera recovers it, where one from the build alone does not."""
    v, f = _box((-1.5, -1.0, -0.5), (1.5, 1.0, 0.5))
    gt, _ = metrics.sample_surface(v, f, 6000, seed=0)
    camera = np.array([0.0, -2.0, 8.0])
    front = gt[gt[:, 2] > 0.49]  # the face the camera sees, and ...
    front = np.vstack([front, gt[(gt[:, 1] < -0.99)]])  # ... the side it sees at a slant
    far = camera + 2.5 * (front - camera)
    plain = metrics.apply(metrics.icp(far, front, trim=0.9), far)
    assert np.abs(plain - front).max() > 0.1
    m = metrics.icp_from_camera(far, front, camera, trim=0.9)
    assert np.abs(metrics.apply(m, far) - front).max() < 1e-2
    assert np.cbrt(np.linalg.det(m[:3, :3])) == pytest.approx(1 / 2.5, rel=1e-2)
