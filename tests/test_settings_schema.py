"""One settings schema: the panel's properties, the command line and the worker's options are made
from the same choices and defaults (inference/options.py, geometry/settings.py)."""

from __future__ import annotations

import importlib
import json
from dataclasses import fields

import bpy
import numpy as np
import pytest
from conftest import run_worker
from PIL import Image


@pytest.fixture(scope="module")
def schema(monocle):
    return {name: importlib.import_module(f"{monocle.__name__}.{name}")
            for name in ("inference.options", "geometry.settings", "cli", "props")}


def test_panel_choices_and_defaults_come_from_the_schema(schema):
    opts, mesh = schema["inference.options"], schema["geometry.settings"]
    props = bpy.types.Scene.bl_rna.properties["monocle"].fixed_type.properties
    expect = {"back": (mesh.Back, True), "backdrop": (mesh.Backdrop, True), "objects": (opts.Objects, True),
              "engine": (opts.EngineName, False), "seg_mode": (opts.SegMode, False),
              "drawing_material": (mesh.DrawingMaterial, False)}
    for prop, (choice, upper) in expect.items():
        ids = [item.identifier for item in props[prop].enum_items]
        assert ids == [m.upper() if upper else str(m) for m in choice], prop
        assert all(item.name and item.description for item in props[prop].enum_items), prop
    defaults = mesh.MeshSettings()
    for f in fields(defaults):
        value = getattr(defaults, f.name)
        got = props[f.name].default
        assert (got.lower() if isinstance(got, str) else got) == pytest.approx(value), f.name
    assert props["engine"].default == opts.ENGINE and props["max_size"].default == opts.MAX_SIZE


def test_command_line_choices_come_from_the_schema(schema):
    opts, mesh, cli = schema["inference.options"], schema["geometry.settings"], schema["cli"]
    rec = cli.build_parser()._subparsers._group_actions[0].choices["reconstruct"]
    actions = {a.dest: a for a in rec._actions}
    for dest, choice in (("back", mesh.Back), ("backdrop", mesh.Backdrop), ("objects", opts.Objects),
                         ("engine", opts.EngineName), ("seg_mode", opts.SegMode),
                         ("drawing_material", mesh.DrawingMaterial)):
        assert tuple(actions[dest].choices) == tuple(str(m) for m in choice), dest
    args = rec.parse_args(["x.png", "-o", "out", "--depth-kind", "relative-inverse"])
    assert args.depth_kind == "relative_inverse"
    assert rec.parse_args(["x.png", "-o", "o"]).detail == mesh.MeshSettings.detail


def test_worker_reads_either_spelling_of_the_depth_kind_and_refuses_others(ext_dir, tmp_path):
    rgb = np.full((64, 96, 3), 220, np.uint8)
    rgb[16:48, 24:72] = (40, 60, 180)
    Image.fromarray(rgb).save(tmp_path / "p.png")
    np.save(tmp_path / "d.npy", np.linspace(1, 2, 64 * 96, dtype=np.float32).reshape(64, 96))
    base = ["run", "--image", str(tmp_path / "p.png"), "--depth", str(tmp_path / "d.npy")]
    for spelling in ("relative-inverse", "relative_inverse", "metric"):
        code, _, stderr = run_worker(ext_dir, *base, "--out", str(tmp_path / spelling), "--depth-kind", spelling)
        assert code == 0, stderr
        kind = json.loads((tmp_path / spelling / "result.json").read_text())["depth"]["kind"]
        assert kind == spelling.replace("-", "_")
    code, events, _ = run_worker(ext_dir, *base, "--out", str(tmp_path / "bad"), "--depth-kind", "inverse")
    assert code == 2 and events[-1]["event"] == "error" and "metric, relative_inverse" in events[-1]["message"]
