"""The worker as a real subprocess: protocol, exit codes, files."""

from __future__ import annotations

import json

import numpy as np
from conftest import run_worker
from PIL import Image


def _coffee(ext_dir):
    import skimage.data

    return str((__import__("pathlib").Path(skimage.data.__file__).parent / "coffee.png"))


def test_engines_lists_classic(ext_dir):
    code, events, _ = run_worker(ext_dir, "engines")
    assert code == 0
    engines = {e["name"]: e for e in events[0]["engines"]}
    assert engines["classic"]["available"] is True
    assert "cpu" in engines["classic"]["devices"]


def test_run_writes_result(ext_dir, tmp_path):
    code, events, _ = run_worker(ext_dir, "run", "--image", _coffee(ext_dir), "--out", str(tmp_path))
    assert code == 0
    assert events[-1]["event"] == "result"
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["schema"] == 1
    assert (result["image"]["width"], result["image"]["height"]) == (600, 400)
    assert result["instances"]
    for inst in result["instances"]:
        mask = np.asarray(Image.open(tmp_path / inst["mask"]))
        assert mask.shape == (400, 600)
        assert int((mask > 0).sum()) == inst["area"]
    depth = np.load(tmp_path / result["depth"]["file"])["depth"]
    assert depth.shape == (400, 600) and depth.dtype.name == result["depth"]["dtype"]
    assert result["depth"]["kind"] == "relative_inverse"
    assert all(e["event"] in ("progress", "warning", "result") for e in events)
