"""MoGe-2: the focal length and shift recovery, and an ONNX model with MoGe-2's interface run
through the real worker (``--engine moge`` and as the transformers engine's depth model)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import moge_fixtures
import numpy as np
import onnxruntime  # noqa: F401 - installed by requirements-dev.txt: missing is a broken environment, not a skip
import pytest
from conftest import MODULE, read_depth, run_worker
from PIL import Image

worker_run = importlib.import_module(MODULE + ".inference.run")
mg = importlib.import_module(MODULE + ".inference.engines.moge_geometry")
focal_to_pixels, pixels_to_focal = mg.focal_to_pixels, mg.pixels_to_focal
metric_depth, recover_focal_shift = mg.metric_depth, mg.recover_focal_shift


def _scene(h: int = 180, w: int = 260) -> np.ndarray:
    """A depth map with a slanted floor, a bump and a step: enough relief that the focal length is observable."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    depth = 3.0 + 0.004 * xx - 0.006 * yy + 0.6 * np.exp(-((xx - 0.6 * w) ** 2 + (yy - 0.4 * h) ** 2) / 900.0)
    depth[int(0.6 * h):, : int(0.3 * w)] -= 1.1
    return depth


def _point_map(depth: np.ndarray, focal_px: float, scale: float, shift: float) -> np.ndarray:
    h, w = depth.shape
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    x = (xx - 0.5 * w) / focal_px * depth
    y = (yy - 0.5 * h) / focal_px * depth
    return np.stack([x, y, depth - shift], axis=-1) * scale


@pytest.mark.parametrize("focal_px,scale,shift", [(180.0, 1.0, 0.0), (420.0, 0.31, 1.2), (900.0, 2.5, -4.0),
                                                  (250.0, 0.07, 1.85)])
def test_focal_and_shift_come_back_from_a_synthetic_point_map(focal_px, scale, shift):
    depth = _scene()
    h, w = depth.shape
    points = _point_map(depth, focal_px, scale, shift)
    found = recover_focal_shift(points)
    assert focal_to_pixels(found.focal, w, h) == pytest.approx(focal_px, rel=0.01)
    assert found.shift == pytest.approx(scale * shift, rel=0.01, abs=1e-6)
    metric, fpx = metric_depth(points, None, metric_scale=1.0 / scale)
    assert fpx == pytest.approx(focal_px, rel=0.01)
    assert np.nanmax(np.abs(metric - depth) / depth) < 0.01


def test_recovery_ignores_masked_garbage_and_keeps_a_known_focal():
    depth = _scene()
    h, w = depth.shape
    points = _point_map(depth, 300.0, 0.5, 0.9)
    mask = np.ones((h, w), dtype=bool)
    mask[:40] = False  # the "sky": nonsense where the model says it has no geometry
    points[:40] = np.random.default_rng(0).normal(0.0, 50.0, (40, w, 3))
    found = recover_focal_shift(points, mask)
    assert focal_to_pixels(found.focal, w, h) == pytest.approx(300.0, rel=0.01)
    assert found.shift == pytest.approx(0.45, rel=0.01)
    known = recover_focal_shift(points, mask, focal=pixels_to_focal(300.0, w, h))
    assert known.shift == pytest.approx(0.45, rel=0.01)
    metric, _ = metric_depth(points, mask, 2.0)
    assert np.isnan(metric[:40]).all() and np.nanmax(np.abs(metric[40:] - depth[40:]) / depth[40:]) < 0.01
    # a wrong focal length cannot make the points project onto their pixels: the error shows in the depth
    wrong = recover_focal_shift(points, mask, focal=pixels_to_focal(600.0, w, h))
    assert abs(wrong.shift - 0.45) > 0.05


def test_too_few_points_is_a_plain_error():
    points = _point_map(_scene(), 300.0, 1.0, 0.0)
    mask = np.zeros(points.shape[:2], dtype=bool)
    mask[5, 5:8] = True
    with pytest.raises(ValueError, match="too few"):
        recover_focal_shift(points, mask)


def _photo(tmp_path: Path, size: tuple[int, int] = (320, 240)) -> Path:
    """A grey backdrop with a textured disk (something the classic cut-out finds), no EXIF."""
    w, h = size
    rng = np.random.default_rng(3)
    rgb = np.full((h, w, 3), 200, dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    disk = (xx - 0.5 * w) ** 2 + (yy - 0.5 * h) ** 2 < (0.3 * h) ** 2
    rgb[disk] = rng.integers(20, 140, (int(disk.sum()), 3), dtype=np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(rgb).save(path)
    return path


def test_worker_runs_an_onnx_model_with_moges_interface(ext_dir, tmp_path):
    model = moge_fixtures.build(tmp_path / "moge" / "model.onnx", seed=5)
    photo = _photo(tmp_path)
    out = tmp_path / "out"
    code, events, stderr = run_worker(ext_dir, "run", "--image", str(photo), "--out", str(out), "--engine", "moge",
                                      "--depth-model", str(model.parent), "--moge-tokens", "2400")
    assert code == 0, (events, stderr[-2000:])
    result = json.loads((out / "result.json").read_text())
    w, h = 320, 240
    assert result["engine"]["name"] == "moge" and result["engine"]["settings"]["moge_tokens"] == 2400
    cam = result["camera"]
    assert cam["focal_source"] == "model" and cam["focal_35mm"] is None
    assert cam["focal_px"] == pytest.approx(moge_fixtures.FOCAL * 0.5 * np.hypot(w, h), rel=1e-3)
    assert result["depth"]["kind"] == "metric" and result["depth"]["extra"]["metric_scale"] == pytest.approx(2.4)
    depth = read_depth(out / result["depth"]["file"])
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    expected = moge_fixtures.true_depth(rgb, 5) * moge_fixtures.AFFINE_SCALE * 2.4  # metres: scale x tokens/1000
    assert np.abs(depth - expected).max() < 1e-3 * expected.max()
    assert result["timings"]["model_load"] > 0 and result["engine"]["runtime"]["warm"] is False


def test_a_downscaled_run_reports_the_focal_length_at_input_resolution(ext_dir, tmp_path):
    model = moge_fixtures.build(tmp_path / "m.onnx", seed=1, static=True)  # a static export: no num_tokens input
    photo = _photo(tmp_path, (640, 480))
    code, events, stderr = run_worker(ext_dir, "run", "--image", str(photo), "--out", str(tmp_path / "o"),
                                      "--engine", "moge", "--depth-model", str(model), "--max-size", "320")
    assert code == 0, (events, stderr[-2000:])
    result = json.loads((tmp_path / "o" / "result.json").read_text())
    assert result["camera"]["focal_px"] == pytest.approx(moge_fixtures.FOCAL * 0.5 * np.hypot(640, 480), rel=2e-3)
    assert result["depth"]["extra"]["focal_px_working"] == pytest.approx(moge_fixtures.FOCAL * 200.0, rel=2e-3)
    assert result["depth"]["extra"]["metric_scale"] == pytest.approx(1.8)


def test_missing_and_wrong_models_are_one_sentence(ext_dir, tmp_path):
    photo = _photo(tmp_path)
    code, events, _ = run_worker(ext_dir, "run", "--image", str(photo), "--out", str(tmp_path / "a"), "--engine",
                                 "moge", "--depth-model", str(tmp_path / "nowhere" / "model.onnx"))
    err = events[-1]
    assert code == 1 and err["event"] == "error" and err["code"] == "model_missing"
    assert err["message"].count(". ") == 0 and err["message"].endswith(".")
    empty = tmp_path / "hub"
    empty.mkdir()
    code, events, _ = run_worker(ext_dir, "run", "--image", str(photo), "--out", str(tmp_path / "b"), "--engine",
                                 "moge", "--offline", "--cache-dir", str(empty), MONOCLE_REUSE_HF_CACHE="0")
    err = events[-1]
    assert code == 1 and err["code"] == "model_missing" and "Ruicheng/moge-2-vits-normal-onnx" in err["message"]
    assert "about 140 MB" in err["message"] and err["message"].count(". ") == 0
    not_moge = _not_moge(tmp_path / "other.onnx")
    code, events, _ = run_worker(ext_dir, "run", "--image", str(photo), "--out", str(tmp_path / "c"), "--engine",
                                 "moge", "--depth-model", str(not_moge))
    assert events[-1]["code"] == "model_invalid" and "not a MoGe-2 ONNX export" in events[-1]["message"]
    assert not (tmp_path / "c" / "result.json").exists()


def _not_moge(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["depth"])], "other",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "h", "w"])],
                              [helper.make_tensor_value_info("depth", TensorProto.FLOAT, [1, 3, "h", "w"])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def test_focal_source_is_recorded_for_exif_and_default(ext_dir, tmp_path):
    assert worker_run.DEFAULT_FOCAL_MM == 50.0 and worker_run.SENSOR_MM == 36.0  # geometry.CameraModel's defaults
    photo = _photo(tmp_path)
    code, _, _ = run_worker(ext_dir, "run", "--image", str(photo), "--out", str(tmp_path / "d"))
    cam = json.loads((tmp_path / "d" / "result.json").read_text())["camera"]
    assert code == 0 and cam["focal_source"] == "default" and cam["focal_px"] == pytest.approx(50 / 36 * 320)
    exif = Image.Exif()
    exif[0x8769] = {0xA405: 26}  # FocalLengthIn35mmFilm in the Exif IFD
    jpg = tmp_path / "exif.jpg"
    Image.open(photo).save(jpg, exif=exif)
    code, _, _ = run_worker(ext_dir, "run", "--image", str(jpg), "--out", str(tmp_path / "e"))
    cam = json.loads((tmp_path / "e" / "result.json").read_text())["camera"]
    assert code == 0 and cam["focal_source"] == "exif" and cam["focal_px"] == pytest.approx(26 / 36 * 320)


def test_engines_check_lists_moge(ext_dir):
    code, events, _ = run_worker(ext_dir, "engines")
    moge = {e["name"]: e for e in events[0]["engines"]}["moge"]
    assert code == 0 and moge["available"] and moge["versions"]["onnxruntime"]


def test_transformers_engine_takes_a_moge_depth_model(ext_dir, tmp_path):
    """Learned engine, MoGe as its depth model: metric depth and the model's focal length, no transformers depth."""
    model = moge_fixtures.build(tmp_path / "moge" / "model.onnx", seed=2)
    photo = _photo(tmp_path)
    code, events, stderr = run_worker(ext_dir, "run", "--image", str(photo), "--out", str(tmp_path / "o"), "--engine",
                                      "transformers", "--seg-model", "classic", "--depth-model", str(model),
                                      "--device", "cpu")
    assert code == 0, (events, stderr[-2000:])
    result = json.loads((tmp_path / "o" / "result.json").read_text())
    assert result["depth"]["kind"] == "metric" and result["camera"]["focal_source"] == "model"
    assert result["camera"]["focal_px"] == pytest.approx(moge_fixtures.FOCAL * 200.0, rel=1e-3)
    assert result["engine"]["runtime"]["models"]["depth"]["path"] == str(model)
    assert result["engine"]["settings"]["moge_tokens"] == 3600


def test_the_button_uses_the_models_focal_length_unless_told_otherwise(tmp_path):
    """Reconstruct from Image with the moge engine on a photo without EXIF: the built camera has the
    model's focal length; Focal Length: Manual still wins."""
    import bpy

    model = moge_fixtures.build(tmp_path / "model.onnx", seed=4)
    settings = bpy.context.scene.monocle
    settings.image_path = str(_photo(tmp_path))
    settings.engine, settings.depth_model, settings.detail = "moge", str(model), 3000
    assert bpy.ops.monocle.reconstruct() == {"FINISHED"}
    lens = moge_fixtures.FOCAL * 0.5 * np.hypot(320, 240) * 36.0 / 320
    assert bpy.context.scene.camera.data.lens == pytest.approx(lens, rel=1e-3)
    settings.focal_mode, settings.focal_mm = "MANUAL", 35.0
    assert bpy.ops.monocle.reconstruct() == {"FINISHED"}
    assert bpy.context.scene.camera.data.lens == pytest.approx(35.0)


def test_the_panel_says_why_moge_cannot_run_and_the_setup_shows_its_download(monocle, tmp_path):
    import bpy

    prefs = importlib.import_module(MODULE + ".prefs")
    ml_env = importlib.import_module(MODULE + ".operators.ml_env")
    assert not bpy.app.online_access  # as the tests run Blender
    settings = bpy.context.scene.monocle
    settings.engine = "moge"
    settings.depth_model = "depth-anything/Depth-Anything-V2-Small-hf"  # the transformers engine's: not MoGe's
    assert prefs.model_problem(settings) == ("Model Ruicheng/moge-2-vits-normal-onnx (140 MB) is not downloaded and "
                                             "online access is off")
    settings.depth_model = str(moge_fixtures.build(tmp_path / "model.onnx"))
    assert prefs.model_problem(settings) is None
    settings.engine = "classic"
    settings.depth_model = ""
    assert prefs.model_problem(settings) is None
    plan = {"download_mb": 370}
    assert ml_env.stage_text("Installing torch", plan) == "Installing torch (about 370 MB in all)"
    assert ml_env.stage_text(None, {"download_mb": 3470}) == "Setting up the learned engine (about 3.5 GB in all)"
    assert ml_env.stage_text("Checking", None) == "Checking"


def test_the_photos_exif_focal_length_wins_and_sets_moges_depth(ext_dir, tmp_path):
    """With EXIF the camera uses the photo's focal length, MoGe's shift is solved for it (as MoGe does with a
    known field of view), and the model's own estimate stays in result.json."""
    model = moge_fixtures.build(tmp_path / "model.onnx", seed=5)
    exif = Image.Exif()
    exif[0x8769] = {0xA405: 35}  # FocalLengthIn35mmFilm: 35 mm, where the model's point map says about 29 mm
    photo = tmp_path / "exif.png"
    Image.open(_photo(tmp_path)).save(photo, exif=exif)
    code, events, stderr = run_worker(ext_dir, "run", "--image", str(photo), "--out", str(tmp_path / "o"),
                                      "--engine", "moge", "--depth-model", str(model))
    assert code == 0, (events, stderr[-2000:])
    result = json.loads((tmp_path / "o" / "result.json").read_text())
    cam = result["camera"]
    assert cam["focal_source"] == "exif" and cam["focal_px"] == pytest.approx(35 / 36 * 320)
    assert cam["model_focal_px"] == pytest.approx(moge_fixtures.FOCAL * 200.0, rel=1e-3)
    assert result["depth"]["extra"]["shift_focal"] == "exif"
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    true_metres = moge_fixtures.true_depth(rgb, 5) * moge_fixtures.AFFINE_SCALE * 3.6
    depth = read_depth(tmp_path / "o" / result["depth"]["file"])
    # another focal length needs another shift to make the points project onto their pixels
    assert np.abs(depth - true_metres).mean() > 0.02
    z = moge_fixtures.true_depth(rgb, 5)  # the model's point map, rebuilt here, solved with the EXIF focal length
    uv = mg.view_plane_uv(320, 240)
    points = moge_fixtures.AFFINE_SCALE * np.dstack([uv * z[..., None] / moge_fixtures.FOCAL,
                                                     z - moge_fixtures.AFFINE_SHIFT])
    expected, _ = metric_depth(points, None, 3.6, focal=pixels_to_focal(35 / 36 * 320, 320, 240))
    assert np.abs(depth - expected).max() < 1e-3 * expected.max()


def test_a_serve_worker_loads_moge_once(ext_dir, tmp_path):
    from serve_client import started_workers

    model = moge_fixtures.build(tmp_path / "model.onnx", seed=6)
    photo = _photo(tmp_path)
    with started_workers(ext_dir, ready_timeout=120) as start:
        w = start("--idle-timeout", "120")
        dones, results = [], []
        for i in range(3):
            events = w.request(f"r{i}", ["run", "--image", str(photo), "--out", str(tmp_path / f"o{i}"), "--engine",
                                         "moge", "--depth-model", str(model)])
            dones.append(events[-1])
            results.append(json.loads(Path(events[-2]["path"]).read_text()))
    assert [d["exit_code"] for d in dones] == [0, 0, 0] and [d["loaded"] for d in dones] == [1, 0, 0]
    assert [r["engine"]["runtime"]["warm"] for r in results] == [False, True, True]
    assert results[0]["timings"]["model_load"] > 0 and results[2]["timings"]["model_load"] == 0
    assert results[2]["camera"]["focal_px"] == results[0]["camera"]["focal_px"]
