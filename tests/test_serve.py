"""``python -m inference serve``: the warm worker as a real subprocess."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from hf_fixtures import build_depth_anything, build_mask2former
from serve_client import started_workers


@pytest.fixture(scope="session")
def serve_models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("serve-models")
    return {
        "depth": build_depth_anything(root / "depth"),
        "depth2": build_depth_anything(root / "depth2", seed=1),
        "seg": build_mask2former(root / "seg", favour="cup"),
    }


@pytest.fixture
def worker(ext_dir):
    with started_workers(ext_dir) as start:
        yield start


def _run_args(photo_dir: Path, out: Path, models: dict[str, Path], image: str, depth: str = "depth") -> list[str]:
    return ["run", "--engine", "transformers", "--device", "cpu", "--image",
            str(photo_dir / image), "--out", str(out),
            "--depth-model", str(models[depth]), "--seg-model", str(models["seg"])]


def test_several_requests_one_model_load(worker, serve_models, photo_dir, tmp_path):
    w = worker("--idle-timeout", "300")
    ready = w.events(lambda e: True)[0]
    assert ready["event"] == "ready" and ready["protocol"] == 1 and ready["pid"] == w.proc.pid

    results, dones = [], []
    for i, image in enumerate(("toy.jpg", "fruit.jpg", "box.jpg")):
        events = w.request(f"r{i}", _run_args(photo_dir, tmp_path / f"out{i}", serve_models, image))
        assert all(e["id"] == f"r{i}" for e in events)  # every event says which request it answers
        assert [e["event"] for e in events][-2:] == ["result", "done"]
        dones.append(events[-1])
        results.append(json.loads(Path(events[-2]["path"]).read_text()))

    assert [d["exit_code"] for d in dones] == [0, 0, 0]
    assert [d["loaded"] for d in dones] == [2, 0, 0]  # both models load once, for the first request only
    assert [d["model_loads"] for d in dones] == [2, 2, 2] and [d["requests"] for d in dones] == [1, 2, 3]
    assert [r["engine"]["runtime"]["warm"] for r in results] == [False, True, True]
    cold, warm = results[0]["timings"], results[2]["timings"]
    assert cold["imports"] > 0 and cold["model_load"] > 0
    assert warm["imports"] == 0 and warm["model_load"] == 0 and warm["prepare"] < 0.1
    assert warm["total"] < cold["total"] and cold["warm_total"] < cold["total"]
    for r in results:
        assert r["instances"] and {i["label"] for i in r["instances"]} == {"cup"}

    # a one-shot command in the same worker, then Blender quitting closes stdin
    events = w.request("e", ["engines"])
    assert events[0]["event"] == "engines" and events[0]["id"] == "e"
    w.proc.stdin.close()
    assert w.events(lambda e: e["event"] == "exit")[-1]["reason"] == "stdin_closed"
    assert w.proc.wait(timeout=30) == 0


def test_changing_a_model_reloads_only_that_model(worker, serve_models, photo_dir, tmp_path):
    w = worker()
    first = w.request("a", _run_args(photo_dir, tmp_path / "a", serve_models, "toy.jpg"))[-1]
    second = w.request("b", _run_args(photo_dir, tmp_path / "b", serve_models, "toy.jpg", depth="depth2"))[-1]
    assert (first["loaded"], second["loaded"], second["model_loads"]) == (2, 1, 3)
    result = json.loads((tmp_path / "b" / "result.json").read_text())
    assert result["depth"]["extra"]["model"] == str(serve_models["depth2"])


def test_bad_requests_and_shutdown(worker, serve_models, photo_dir, tmp_path):
    w = worker()
    w.send("this is not json")
    event = w.events(lambda e: e["event"] == "error")[-1]
    assert event["code"] == "bad_request" and event["id"] is None
    events = w.request("1", [])
    assert events[0]["code"] == "bad_request" and events[-1]["exit_code"] == 2
    events = w.request("2", ["serve"])
    assert events[0]["code"] == "bad_request"
    events = w.request("3", ["run", "--engine", "transformers"])  # argparse: --image and --out missing
    assert events[0]["event"] == "error" and events[0]["code"] == "bad_argument" and events[0]["id"] == "3"
    assert events[-1]["exit_code"] == 2
    events = w.request("4", _run_args(photo_dir, tmp_path / "o", serve_models, "nope.jpg"))
    assert events[-2]["code"] == "image_missing" and events[-1]["exit_code"] == 2
    # the worker still answers after all that
    events = w.request("5", ["models"])
    assert events[0]["event"] == "models"
    w.send({"id": "6", "shutdown": True})
    events = w.events(lambda e: e["event"] == "exit")
    assert events[-2]["event"] == "done" and events[-2]["id"] == "6" and events[-1]["reason"] == "shutdown"
    assert w.proc.wait(timeout=30) == 0


def test_cancel_stops_a_request_and_keeps_the_worker(worker, serve_models, photo_dir, tmp_path):
    w = worker()
    w.send({"id": "slow", "args": _run_args(photo_dir, tmp_path / "a", serve_models, "toy.jpg")})
    w.send({"id": "x", "cancel": "slow"})
    events = w.events(lambda e: e["event"] == "done")
    assert events[-2]["event"] == "error" and events[-2]["code"] == "cancelled"
    assert events[-1]["id"] == "slow" and events[-1]["exit_code"] == 1
    assert not (tmp_path / "a" / "result.json").exists()
    done = w.request("next", _run_args(photo_dir, tmp_path / "b", serve_models, "toy.jpg"))[-1]
    assert done["exit_code"] == 0


def test_idle_timeout_exits(worker):
    w = worker("--idle-timeout", "1")
    t = time.monotonic()
    events = w.events(lambda e: e["event"] == "exit", timeout=60)
    assert [e["event"] for e in events] == ["ready", "exit"] and events[-1]["reason"] == "idle"
    assert w.proc.wait(timeout=30) == 0
    assert time.monotonic() - t < 30
