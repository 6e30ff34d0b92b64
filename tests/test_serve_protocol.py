"""The serve worker's protocol holds against hostile or careless clients (no models needed)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import worker_env
from PIL import Image
from serve_client import Worker, started_workers, strict_json

QUICK = 30  # seconds: a worker that still listens answers `engines` at once


@pytest.fixture
def worker(ext_dir):
    with started_workers(ext_dir, QUICK) as start:
        yield start


def _still_answers(w: Worker, request_id: str = "after") -> None:
    events = w.request(request_id, ["engines"], timeout=QUICK)
    assert [e["event"] for e in events] == ["engines", "done"] and events[-1]["exit_code"] == 0


def _bad_request(w: Worker) -> dict:
    event = w.events(lambda e: e["event"] == "error", QUICK)[-1]
    assert event["code"] == "bad_request" and event["id"] is None and event["message"].endswith(".")
    return event


@pytest.mark.parametrize(
    "line",
    [
        "[" * 100_000,  # deeper than Python's recursion limit
        '{"id": "deep", "args": ' + "[" * 50_000 + "]" * 50_000 + "}",
        " " * (3 << 20) + "{}",  # longer than any request
    ],
    ids=["nested-list", "nested-args", "too-long"],
)
def test_reader_survives_any_line(worker, line):
    w = worker()
    w.send(line)
    _bad_request(w)
    _still_answers(w)
    assert "Traceback" not in "".join(w.stderr)


def test_reader_survives_bytes_that_are_not_utf8(worker):
    w = worker()
    w.send_bytes(b'{"id": "caf\xe9", "args": ["engines"]}\n')
    _bad_request(w)
    _still_answers(w)


@pytest.mark.parametrize("bad_id", ["NaN", "Infinity", "-Infinity", "1e400", "true", "[1]", '{"a": 1}'])
def test_ids_that_cannot_be_echoed_are_refused(worker, bad_id):
    w = worker()
    w.send('{"id": ' + bad_id + ', "args": ["engines"]}')
    event = _bad_request(w)  # strict JSON: a NaN echoed back would fail to parse here
    assert "id" in event["message"]
    _still_answers(w)


@pytest.mark.parametrize("good_id", ["7", 7, 2.5, None])
def test_valid_ids_are_echoed(worker, good_id):
    w = worker()
    events = w.request(good_id, ["engines"], timeout=QUICK)
    assert [e["id"] for e in events] == [good_id, good_id]
    assert events[-1]["exit_code"] == 0


def test_cancel_of_an_unknown_id_is_not_remembered(worker):
    w = worker()
    w.send({"id": "c1", "cancel": "later"})
    warning = w.events(lambda e: e["event"] == "warning", QUICK)[-1]
    assert warning["id"] == "c1" and warning["code"] == "cancel_unknown" and "later" in warning["message"]
    events = w.request("later", ["engines"], timeout=QUICK)
    assert [e["event"] for e in events] == ["engines", "done"] and events[-1]["exit_code"] == 0
    # a cancel for a request that is over is just as unknown, and the id can be used again
    w.send({"id": "c2", "cancel": "later"})
    assert w.events(lambda e: e["event"] == "warning", QUICK)[-1]["code"] == "cancel_unknown"
    _still_answers(w, "later")
    w.send('{"id": "c3", "cancel": NaN}')  # a valid request id with an invalid target: answered under its id
    event = w.events(lambda e: e["event"] == "error", QUICK)[-1]
    assert event["code"] == "bad_request" and event["id"] == "c3"


def test_cancel_reaches_a_queued_request(worker, tmp_path):
    rgb = np.full((1200, 1600, 3), 220, np.uint8)
    rgb[300:900, 400:1200] = (40, 70, 160)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    w = worker()
    run = {"id": "run", "args": ["run", "--image", str(tmp_path / "a.png"), "--out", str(tmp_path / "out")]}
    queued = {"id": "queued", "args": ["engines"]}
    w.send("\n".join(json.dumps(r) for r in (run, queued, {"id": "c", "cancel": "queued"})))
    events = w.events(lambda e: e["event"] == "done" and e["id"] == "queued", QUICK)
    by_id = {i: [e for e in events if e.get("id") == i] for i in ("run", "queued", "c")}
    assert by_id["run"][-1]["event"] == "done" and by_id["run"][-1]["exit_code"] == 0
    assert [(e["event"], e.get("code")) for e in by_id["queued"]] == [("error", "cancelled"), ("done", None)]
    assert by_id["c"] == []  # the cancel itself is answered by the cancelled request
    assert (tmp_path / "out" / "result.json").is_file()


def test_emitter_never_writes_invalid_json(ext_dir):
    code = (
        "from inference.protocol import Emitter\n"
        "e = Emitter()\n"
        "e.progress('depth', float('nan'), 'x')\n"
        "e.emit('done', seconds=float('inf'), nested={'a': [1.0, float('-inf')]}, ok=2.5)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ext_dir, env=worker_env(ext_dir), capture_output=True,
                          text=True, timeout=QUICK)
    assert proc.returncode == 0, proc.stderr
    events = [strict_json(line) for line in proc.stdout.splitlines()]
    assert events[0]["fraction"] == 0.0
    assert events[1] == {"event": "done", "seconds": None, "nested": {"a": [1.0, None]}, "ok": 2.5}
