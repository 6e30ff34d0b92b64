"""The ``transformers`` engine through the real worker subprocess, on real photos.

The models are random-weight builds of the real architectures' families (see
``hf_fixtures``), saved with ``save_pretrained`` into local folders and into a fake
Hugging Face hub cache, so the worker loads them the way users' machines do.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import read_depth, run_worker, worker_env
from PIL import Image

pytest.importorskip("torch")
pytest.importorskip("transformers")

from fake_hub import FakeHub
from hf_fixtures import (
    COCO_THINGS,
    build_clipseg,
    build_depth_anything,
    build_mask2former,
    install_in_hub_cache,
)

DEPTH_ID = "depth-anything/Depth-Anything-V2-Small-hf"
SEG_ID = "facebook/mask2former-swin-tiny-coco-instance"
COMMIT = "0123456789abcdef" * 2 + "01234567"
EVENTS = ("progress", "warning", "result")


@pytest.fixture(scope="session")
def hf_models(tmp_path_factory) -> dict[str, Path]:
    """Every test model, built once per session."""
    root = tmp_path_factory.mktemp("hf-models")
    m = {
        "depth": build_depth_anything(root / "depth"),
        "depth_metric": build_depth_anything(root / "depth-metric", metric=True),
        "seg_table": build_mask2former(root / "seg-table", favour="dining table"),
        "seg_nothing": build_mask2former(root / "seg-nothing", favour="nothing"),
        "seg_stuff": build_mask2former(
            root / "seg-stuff", labels=(*COCO_THINGS, "wall-other-merged", "sky-other-merged"),
            favour="wall-other-merged",
        ),
        "clip_hit": build_clipseg(root / "clip-hit", bias=5.0),
        "clip_miss": build_clipseg(root / "clip-miss", bias=-20.0),
        "cache": root / "hub",
        "empty_cache": root / "empty-hub",
    }
    install_in_hub_cache(m["cache"], DEPTH_ID, m["depth"], COMMIT)
    install_in_hub_cache(m["cache"], SEG_ID, m["seg_table"], COMMIT)
    m["empty_cache"].mkdir()
    return m


def _photo(photo_dir: Path, name: str = "toy.jpg") -> str:
    return str(photo_dir / name)


def _run(ext_dir, hf_models, out, *extra: str, image: str, depth: str = "depth", seg: str = "seg_table", **env: str):
    args = ["run", "--engine", "transformers", "--image", image, "--out", str(out), "--device", "cpu"]
    if depth:
        args += ["--depth-model", str(hf_models[depth])]
    if seg:
        args += ["--seg-model", str(hf_models[seg])]
    return run_worker(ext_dir, *args, *extra, timeout=300, **env)


def _masks(out: Path, result: dict) -> list[np.ndarray]:
    return [np.asarray(Image.open(out / inst["mask"])) > 0 for inst in result["instances"]]


def _codes(events: list[dict], kind: str) -> list[str]:
    return [e["code"] for e in events if e["event"] == kind]


def test_engines_reports_transformers_ready(ext_dir):
    code, events, _ = run_worker(ext_dir, "engines")
    assert code == 0
    engines = {e["name"]: e for e in events[0]["engines"]}
    t = engines["transformers"]
    assert t["available"] is True and t["missing"] == []
    assert t["devices"][-1] == "cpu"
    assert t["versions"]["torch"].startswith("2.13.0")
    assert t["message"].startswith("Ready")


def test_labels_from_local_folders(ext_dir, hf_models, photo_dir, tmp_path):
    image = _photo(photo_dir)
    code, events, stderr = _run(ext_dir, hf_models, tmp_path, image=image)
    assert code == 0, stderr
    assert all(e["event"] in EVENTS for e in events) and events[-1]["event"] == "result"
    assert "segmentation_fallback" not in _codes(events, "warning")
    result = json.loads((tmp_path / "result.json").read_text())
    w, h = result["image"]["width"], result["image"]["height"]
    assert (w, h) == Image.open(image).size

    assert result["engine"]["name"] == "transformers"
    settings = result["engine"]["settings"]
    assert settings["depth_model"] == str(hf_models["depth"]) and settings["seg_mode"] == "labels"
    runtime = result["engine"]["runtime"]
    assert (runtime["device"], runtime["dtype"], runtime["segmentation"]) == ("cpu", "float32", "model")
    assert runtime["models"]["depth"]["source"] == "folder" and runtime["models"]["depth"]["revision"] is None
    assert runtime["model_loads"] == 2 and runtime["warm"] is False

    # every query of this model says "dining table": the label must come out as the plain noun
    assert result["instances"]
    for inst, mask in zip(result["instances"], _masks(tmp_path, result)):
        assert inst["label"] == "table"
        assert inst["extra"]["class_name"] == "dining table"
        assert 0.5 <= inst["score"] <= 1.0
        assert mask.shape == (h, w) and int(mask.sum()) == inst["area"]

    d = result["depth"]
    assert np.load(tmp_path / d["file"])["depth"].dtype.name == d["dtype"] in ("float16", "float32")
    depth = read_depth(tmp_path / d["file"])
    assert depth.shape == (h, w)
    assert np.isfinite(depth).all() and depth.min() >= 0.0 and depth.std() > 1e-4
    assert d["kind"] == "relative_inverse"
    assert d["extra"]["model_type"] == "depth_anything" and d["extra"]["model"] == str(hf_models["depth"])
    iw, ih = d["extra"]["input_size"]
    # the processor keeps the aspect ratio and brings to 518 the side whose scale is nearer 1
    assert 518 in (iw, ih) and iw % 14 == 0 and ih % 14 == 0
    assert abs(iw / ih - w / h) < 0.05
    assert result["camera"]["focal_source"] == "default"  # no EXIF and a model that gives no focal length

    t = result["timings"]
    assert t["imports"] > 0 and t["model_load"] > 0 and t["download"] == 0
    assert t["prepare"] >= t["imports"] + t["model_load"] - 1e-3
    assert abs(t["warm_total"] - (t["total"] - t["prepare"])) < 1e-3


def test_depth_beside_segmentation_gives_the_sequential_result(ext_dir, hf_models, photo_dir, tmp_path):
    """On the CPU the depth pass runs in a second thread beside segmentation (half the threads each);
    --no-overlap runs them one after the other: the same result files."""
    image = _photo(photo_dir)
    runs = {}
    for name, extra in (("side", ()), ("sequential", ("--no-overlap",))):
        out = tmp_path / name
        code, events, stderr = _run(ext_dir, hf_models, out, *extra, image=image, MONOCLE_THREADS="2")
        assert code == 0, stderr
        assert not _codes(events, "warning")
        runs[name] = (out, json.loads((out / "result.json").read_text()))
    (side, a), (seq, b) = runs["side"], runs["sequential"]
    assert a["engine"]["runtime"]["depth_beside_segmentation"] is True
    assert b["engine"]["runtime"]["depth_beside_segmentation"] is False
    assert a["engine"]["runtime"]["threads"] == b["engine"]["runtime"]["threads"] == 2  # restored after the request
    assert a["instances"] and a["instances"] == b["instances"]
    for ma, mb in zip(_masks(side, a), _masks(seq, b)):
        assert np.array_equal(ma, mb)
    da, db = read_depth(side / a["depth"]["file"]), read_depth(seq / b["depth"]["file"])
    assert a["depth"]["kind"] == b["depth"]["kind"] and da.shape == db.shape
    # one thread or two sum in another order: equal up to float rounding (and the float16 storage's step)
    assert float(np.abs(da - db).max()) <= 2e-3 * float(np.abs(db).max())


def test_metric_depth_is_recorded(ext_dir, hf_models, photo_dir, tmp_path):
    code, _, stderr = _run(ext_dir, hf_models, tmp_path, image=_photo(photo_dir, "fruit.jpg"), depth="depth_metric")
    assert code == 0, stderr
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["depth"]["kind"] == "metric"
    depth = read_depth(tmp_path / result["depth"]["file"])
    assert 0.0 < float(depth.min()) and float(depth.max()) <= 20.0  # sigmoid * max_depth of the config


def test_nothing_found_falls_back_to_classic(ext_dir, hf_models, photo_dir, tmp_path):
    code, events, stderr = _run(ext_dir, hf_models, tmp_path, image=_photo(photo_dir), seg="seg_nothing")
    assert code == 0, stderr
    assert "segmentation_fallback" in _codes(events, "warning")
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["engine"]["runtime"]["segmentation"] == "classic"
    assert result["instances"] and {i["label"] for i in result["instances"]} == {"object"}


def test_background_classes_are_not_objects(ext_dir, hf_models, photo_dir, tmp_path):
    # the model is sure everything is "wall-other-merged": a COCO stuff class, never an object
    code, events, stderr = _run(ext_dir, hf_models, tmp_path, image=_photo(photo_dir), seg="seg_stuff")
    assert code == 0, stderr
    assert "segmentation_fallback" in _codes(events, "warning")


def test_foreground_mode_and_largest(ext_dir, hf_models, photo_dir, tmp_path):
    image = _photo(photo_dir, "fruit.jpg")
    code, events, stderr = _run(ext_dir, hf_models, tmp_path / "labels", image=image)
    assert code == 0, stderr
    code, fg_events, stderr = _run(ext_dir, hf_models, tmp_path / "fg", "--seg-mode", "foreground", image=image)
    assert code == 0, stderr
    assert "segmentation_fallback" not in _codes(events + fg_events, "warning")
    code, _, stderr = _run(ext_dir, hf_models, tmp_path / "big", "--objects", "largest", image=image)
    assert code == 0, stderr
    labels = json.loads((tmp_path / "labels" / "result.json").read_text())
    fg = json.loads((tmp_path / "fg" / "result.json").read_text())
    big = json.loads((tmp_path / "big" / "result.json").read_text())

    assert {i["label"] for i in fg["instances"]} == {"object"}
    fg_masks = _masks(tmp_path / "fg", fg)
    assert not np.any(np.sum(fg_masks, axis=0) > 1)  # parts of one foreground never overlap
    union_fg = np.any(fg_masks, axis=0)
    union_labels = np.any(_masks(tmp_path / "labels", labels), axis=0)
    # same queries with the class ignored: every labelled pixel is foreground too (labels mode may drop
    # an object mostly hidden by a more confident one, foreground mode keeps its pixels)
    covered = (union_fg & union_labels).sum() / union_labels.sum()
    assert covered > 0.95, covered
    assert union_fg.sum() >= union_labels.sum()

    assert len(big["instances"]) == 1
    assert big["instances"][0]["area"] == max(i["area"] for i in labels["instances"])


def test_prompt_segments_what_it_names(ext_dir, hf_models, photo_dir, tmp_path):
    image = _photo(photo_dir, "box.jpg")
    args = ["--prompt", "a chair", "--prompt-model", str(hf_models["clip_hit"])]
    code, _, stderr = _run(ext_dir, hf_models, tmp_path, *args, image=image, seg="", depth="depth")
    assert code == 0, stderr
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["engine"]["settings"]["prompt"] == "a chair"
    assert result["engine"]["runtime"]["segmentation"] == "prompt"
    assert set(result["engine"]["runtime"]["models"]) == {"prompt", "depth"}  # the label model is never loaded
    (inst,) = result["instances"]
    w, h = result["image"]["width"], result["image"]["height"]
    assert inst["label"] == "chair" and inst["area"] == w * h  # this model's mask logit is +5 everywhere


def test_prompt_without_match_is_no_object(ext_dir, hf_models, photo_dir, tmp_path):
    args = ["--prompt", "chair", "--prompt-model", str(hf_models["clip_miss"])]
    code, events, _ = _run(ext_dir, hf_models, tmp_path, *args, image=_photo(photo_dir, "box.jpg"), seg="")
    assert code == 2
    assert events[-1]["event"] == "error" and events[-1]["code"] == "no_object"
    assert "'chair'" in events[-1]["message"]
    assert not (tmp_path / "result.json").exists()


@pytest.mark.skipif(
    __import__("torch").cuda.is_available() or __import__("torch").backends.mps.is_available(),
    reason="this machine has a GPU",
)
def test_device_selection_on_cpu(ext_dir, hf_models, photo_dir, tmp_path):
    image = _photo(photo_dir, "fruit.jpg")
    base = ["run", "--engine", "transformers", "--image", image, "--depth-model", str(hf_models["depth"]),
            "--seg-model", str(hf_models["seg_table"])]
    code, events, stderr = run_worker(ext_dir, *base, "--out", str(tmp_path / "a"), "--device", "cuda", timeout=300)
    assert code == 0, stderr
    assert "device_unavailable" in _codes(events, "warning")
    assert json.loads((tmp_path / "a" / "result.json").read_text())["engine"]["runtime"]["device"] == "cpu"
    # auto (the Blender side passes MONOCLE_DEVICE) picks the CPU here, silently
    code, events, stderr = run_worker(ext_dir, *base, "--out", str(tmp_path / "b"), timeout=300, MONOCLE_DEVICE="auto")
    assert code == 0, stderr
    assert _codes(events, "warning") in ([], ["segmentation_fallback"])
    result = json.loads((tmp_path / "b" / "result.json").read_text())
    assert result["engine"]["settings"]["device"] == "auto" and result["engine"]["runtime"]["device"] == "cpu"


def test_hub_ids_load_from_the_cache_offline(ext_dir, hf_models, photo_dir, tmp_path):
    args = ["run", "--engine", "transformers", "--image", _photo(photo_dir), "--out", str(tmp_path),
            "--depth-model", DEPTH_ID, "--seg-model", SEG_ID, "--cache-dir", str(hf_models["cache"]), "--offline"]
    code, _, stderr = run_worker(ext_dir, *args, timeout=300)
    assert code == 0, stderr
    result = json.loads((tmp_path / "result.json").read_text())
    models = result["engine"]["runtime"]["models"]
    for role, spec in (("depth", DEPTH_ID), ("segmentation", SEG_ID)):
        assert (models[role]["model"], models[role]["source"], models[role]["revision"]) == (spec, "cache", COMMIT)
    assert (result["depth"]["extra"]["model"], result["depth"]["extra"]["revision"]) == (DEPTH_ID, COMMIT)


def test_offline_missing_model_is_a_clear_error(ext_dir, hf_models, photo_dir, tmp_path):
    # no --online/--offline flag: offline unless the Blender side says online access is on
    args = ["run", "--engine", "transformers", "--image", _photo(photo_dir), "--out", str(tmp_path),
            "--depth-model", DEPTH_ID, "--seg-model", "classic", "--cache-dir", str(hf_models["empty_cache"])]
    code, events, _ = run_worker(ext_dir, *args, timeout=300, MONOCLE_ONLINE="0")
    assert code == 1  # a missing model is a setup problem, like missing packages, not a bad input
    err = events[-1]
    assert (err["event"], err["code"]) == ("error", "model_missing")
    assert DEPTH_ID in err["message"] and "Allow Online Access" in err["message"] and "99 MB" in err["message"]
    assert not (tmp_path / "result.json").exists()
    assert not any((hf_models["empty_cache"]).iterdir())  # nothing was fetched or created


def test_bad_model_folders(ext_dir, hf_models, photo_dir, tmp_path):
    base = ["run", "--engine", "transformers", "--image", _photo(photo_dir), "--out", str(tmp_path),
            "--seg-model", "classic"]
    code, events, _ = run_worker(ext_dir, *base, "--depth-model", str(tmp_path / "nowhere" / "model"))
    assert code == 1 and events[-1]["code"] == "model_missing"
    (tmp_path / "empty").mkdir()
    code, events, _ = run_worker(ext_dir, *base, "--depth-model", str(tmp_path / "empty"))
    assert code == 1 and events[-1]["code"] == "model_invalid" and "config.json" in events[-1]["message"]
    # a segmentation model given as the depth model
    code, events, _ = run_worker(ext_dir, *base, "--depth-model", str(hf_models["seg_table"]), timeout=300)
    assert code == 1 and events[-1]["code"] == "model_invalid"


def test_online_download_failure_is_reported(ext_dir, hf_models, photo_dir, tmp_path):
    cache = tmp_path / "hub"
    args = ["run", "--engine", "transformers", "--image", _photo(photo_dir), "--out", str(tmp_path / "out"),
            "--depth-model", "someone/some-depth-model", "--seg-model", "classic", "--cache-dir", str(cache),
            "--online"]
    # nothing listens on port 9: the hub is unreachable, as on a machine without internet
    code, events, _ = run_worker(ext_dir, *args, timeout=300, HF_ENDPOINT="http://127.0.0.1:9",
                                 HF_HUB_DOWNLOAD_TIMEOUT="2", HF_HUB_ETAG_TIMEOUT="2")
    assert code == 1
    assert events[-1]["code"] == "download_failed" and "someone/some-depth-model" in events[-1]["message"]


def test_online_download_streams_progress(ext_dir, hf_models, photo_dir, tmp_path):
    repo, cache = "monocle-test/tiny-depth", tmp_path / "hub"
    files = {f.name: f.stat().st_size for f in hf_models["depth"].iterdir()}
    base = ["run", "--engine", "transformers", "--image", _photo(photo_dir), "--seg-model", "classic",
            "--cache-dir", str(cache)]
    with FakeHub({repo: hf_models["depth"]}, COMMIT, bytes_per_second=400_000) as hub:
        code, events, stderr = run_worker(ext_dir, *base, "--out", str(tmp_path / "a"), "--depth-model", repo,
                                          "--online", timeout=300, HF_ENDPOINT=hub.url)
        assert code == 0, stderr
        code, missing, _ = run_worker(ext_dir, *base, "--out", str(tmp_path / "b"), "--depth-model", "nobody/none",
                                      timeout=300, HF_ENDPOINT=hub.url, MONOCLE_ONLINE="1")
    downloads = [e for e in events if e["event"] == "progress" and e["stage"] == "download"]
    assert len(downloads) >= 3  # a ~0.7 MB model at 400 kB/s: progress every half second
    assert all(e["model"] == repo and e["total"] == sum(files.values()) for e in downloads)
    assert [e["bytes"] for e in downloads] == sorted(e["bytes"] for e in downloads)
    assert downloads[-1]["bytes"] == downloads[-1]["total"] and downloads[-1]["fraction"] == 1.0
    assert 0 < downloads[0]["bytes"] < downloads[0]["total"]
    result = json.loads((tmp_path / "a" / "result.json").read_text())
    assert result["engine"]["runtime"]["models"]["depth"]["source"] == "download"
    assert result["depth"]["extra"]["revision"] == COMMIT
    snapshot = cache / "models--monocle-test--tiny-depth" / "snapshots" / COMMIT
    for name in files:
        assert (snapshot / name).read_bytes() == (hf_models["depth"] / name).read_bytes()
    # an id the hub does not know: a clear error, not a crash
    assert code == 1 and missing[-1]["code"] == "model_missing" and "nobody/none" in missing[-1]["message"]

    # later, offline: the cached copy is used, nothing is fetched
    code, events, stderr = run_worker(ext_dir, *base, "--out", str(tmp_path / "c"), "--depth-model", repo,
                                      "--offline", timeout=300, HF_ENDPOINT="http://127.0.0.1:9")
    assert code == 0, stderr
    assert not [e for e in events if e.get("stage") == "download"]
    result = json.loads((tmp_path / "c" / "result.json").read_text())
    assert result["engine"]["runtime"]["models"]["depth"]["source"] == "cache"


def test_download_command(ext_dir, hf_models, tmp_path):
    repo = "monocle-test/tiny-seg"
    with FakeHub({repo: hf_models["seg_table"]}, COMMIT) as hub:
        code, events, stderr = run_worker(ext_dir, "download", "--model", repo, "--cache-dir", str(tmp_path),
                                          HF_ENDPOINT=hub.url)
    assert code == 0, stderr
    result = events[-1]
    assert result["event"] == "result" and result["revision"] == COMMIT and result["source"] == "download"
    assert Path(result["path"]).name == "config.json" and Path(result["path"]).is_file()
    assert events[-2]["stage"] == "download" and events[-2]["bytes"] == events[-2]["total"]


def test_models_command_lists_licences_and_cache(ext_dir, hf_models):
    code, events, _ = run_worker(ext_dir, "models", "--cache-dir", str(hf_models["cache"]))
    assert code == 0
    (event,) = events
    rows = {m["id"]: m for m in event["models"]}
    defaults = {m["task"]: m for m in event["models"] if m["default"]}
    assert set(defaults) == {"depth", "segmentation", "prompt"}
    assert defaults["depth"]["id"] == DEPTH_ID and defaults["segmentation"]["id"] == SEG_ID
    assert all(d["commercial"] is True for d in defaults.values())  # defaults must be usable commercially
    assert rows[DEPTH_ID]["licence"] == "Apache-2.0" and rows[DEPTH_ID]["parameters_m"] == 24.8
    assert rows[DEPTH_ID]["downloaded"] is True and rows[SEG_ID]["downloaded"] is True
    assert rows["CIDAS/clipseg-rd64-refined"]["downloaded"] is False
    assert all(m["download_mb"] > 0 and m["licence"] for m in event["models"])


def test_user_mask_and_depth_load_no_model(ext_dir, photo_dir, tmp_path):
    image = _photo(photo_dir, "box.jpg")
    w, h = Image.open(image).size
    mask = np.zeros((h, w), np.uint8)
    mask[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    np.save(tmp_path / "depth.npy", np.linspace(1, 2, w * h, dtype=np.float32).reshape(h, w))
    args = ["run", "--engine", "transformers", "--image", image, "--out", str(tmp_path / "out"),
            "--mask", str(tmp_path / "mask.png"), "--depth", str(tmp_path / "depth.npy"),
            "--depth-model", "nobody/not-here", "--seg-model", "nobody/not-here-either", "--offline"]
    code, _, stderr = run_worker(ext_dir, *args, timeout=300)
    assert code == 0, stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["engine"]["runtime"]["model_loads"] == 0 and result["engine"]["runtime"]["models"] == {}
    assert result["instances"][0]["area"] == int((mask > 0).sum())


def test_transparent_image_uses_its_alpha(ext_dir, hf_models, photo_dir, tmp_path):
    rgb = np.asarray(Image.open(_photo(photo_dir, "fruit.jpg")).convert("RGB"))
    h, w = rgb.shape[:2]
    alpha = np.zeros((h, w), np.uint8)
    alpha[h // 3: 2 * h // 3, w // 3: 2 * w // 3] = 255
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp_path / "cutout.png")
    code, _, stderr = _run(ext_dir, hf_models, tmp_path / "out", image=str(tmp_path / "cutout.png"))
    assert code == 0, stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["engine"]["runtime"]["segmentation"] == "alpha"
    assert result["instances"][0]["area"] == int((alpha > 0).sum())


def test_classic_engine_never_imports_torch(ext_dir, photo_dir, tmp_path):
    script = (
        "import sys; from inference.__main__ import main; "
        f"code = main(['run', '--image', {_photo(photo_dir)!r}, '--out', {str(tmp_path)!r}]); "
        "sys.stderr.write('TORCH=%s CODE=%s' % ('torch' in sys.modules, code))"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ext_dir, env=worker_env(ext_dir), capture_output=True,
                          text=True, timeout=300)
    assert "TORCH=False CODE=0" in proc.stderr
