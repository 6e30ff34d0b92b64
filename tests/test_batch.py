"""The headless batch with real folders, as a studio uses it: relative paths, names that mirror the
inputs, textures that never overwrite or swap, resume, shared output folders, links, signals, bad numbers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import bpy
import numpy as np
import pytest
from conftest import ROOT
from monocle import cli
from monocle.batch import files, inputs
from PIL import Image


def photo(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (96, 72)) -> Path:
    """A small photo of one disk; each colour gives different bytes (and so a different cache entry)."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.full((h, w, 3), 230, np.uint8)
    rgb[(xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (min(w, h) / 3) ** 2] = colour
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, format="PNG")
    return path


def run(*args: str) -> int:
    return cli.main(["reconstruct", *args, "--detail", "600"])


def report(path: Path) -> dict:
    return json.loads(path.read_text())


def glb_texture(path: Path) -> np.ndarray:
    """The photo texture inside a .glb, as pixels."""
    bpy.ops.wm.read_homefile(app_template="", use_empty=True)
    bpy.ops.import_scene.gltf(filepath=str(path))
    (image,) = [i for i in bpy.data.images if i.size[0] > 0]
    return np.array(image.pixels[:]).reshape(image.size[1], image.size[0], -1)


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


# -- 1. relative paths ------------------------------------------------------------------------------
def test_relative_paths_from_the_users_folder(tmp_path, monkeypatch):
    photos = tmp_path / "photos"
    photo(photos / "cat.png", (200, 40, 40))
    mask = np.zeros((72, 96), np.uint8)
    mask[20:50, 30:70] = 255
    Image.fromarray(mask).save(photos / "cat-mask.png")
    monkeypatch.chdir(photos)
    assert run("cat.png", "-o", "out", "--mask", "cat-mask.png", "--report", "r.json") == 0
    assert (photos / "out" / "cat.glb").is_file()
    item = report(photos / "r.json")["items"][0]
    assert item["status"] == "ok" and Path(item["input"]) == photos / "cat.png"


def test_relative_paths_through_the_script(tmp_path):
    """``cd photos && scripts/monocle.py reconstruct cat.png -o out``: the README's own example."""
    photos = tmp_path / "photos"
    photo(photos / "cat.png", (30, 160, 60))
    env = dict(os.environ, MONOCLE_PROFILE=str(tmp_path / "profile"))
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "monocle.py"), "reconstruct", "cat.png", "-o",
                           "out", "--detail", "600"], cwd=photos, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (photos / "out" / "cat.glb").is_file()


# -- 2. textures never overwrite user files or swap between outputs -----------------------------------
def test_obj_and_usd_textures_stay_with_their_output(tmp_path):
    ow = tmp_path / "ow"
    top = photo(ow / "a.png", (220, 30, 30))
    sub = photo(ow / "sub" / "a.png", (30, 30, 220))
    before = top.read_bytes()
    assert run(str(ow), "-o", str(ow), "--format", "obj,usd", "--report", str(tmp_path / "r.json")) == 0
    assert top.read_bytes() == before  # the user's photo is untouched
    for folder, src in ((ow, top), (ow / "sub", sub)):
        mtl = (folder / "a.mtl").read_text()
        assert "map_Kd a_textures/a.png" in mtl
        np.testing.assert_array_equal(pixels(folder / "a_textures" / "a.png"), pixels(src))
        bpy.ops.wm.read_homefile(app_template="", use_empty=True)
        bpy.ops.wm.usd_import(filepath=str(folder / "a.usd"))
        (image,) = [i for i in bpy.data.images if i.size[0] > 0]
        assert Path(bpy.path.abspath(image.filepath)) == folder / "a_textures" / "a.png"
    # a second run finds the same two inputs (not the texture copies) and skips both
    assert run(str(ow), "-o", str(ow), "--format", "obj,usd", "--report", str(tmp_path / "r2.json")) == 0
    assert [i["status"] for i in report(tmp_path / "r2.json")["items"]] == ["skipped", "skipped"]


def test_same_names_in_two_folders_keep_their_own_textures(tmp_path):
    red = photo(tmp_path / "in" / "A" / "a.png", (220, 30, 30))
    blue = photo(tmp_path / "in" / "B" / "a.png", (30, 30, 220))
    out = tmp_path / "out"
    assert run(str(tmp_path / "in"), "-o", str(out), "--format", "obj,glb") == 0
    for folder, src in (("A", red), ("B", blue)):
        np.testing.assert_array_equal(pixels(out / folder / "a_textures" / "a.png"), pixels(src))
        got = glb_texture(out / folder / "a.glb")[..., :3]
        assert np.abs(got.mean(axis=(0, 1)) - pixels(src).mean(axis=(0, 1)) / 255).max() < 0.02


# -- 3./4. names mirror the inputs; resume matches input to output ------------------------------------
def test_names_mirror_folders_and_never_collide(tmp_path):
    root = tmp_path / "in"
    photo(root / "A" / "a.png", (200, 0, 0))
    photo(root / "B" / "a.png", (0, 200, 0))
    photo(root / "C" / "a-2.png", (0, 0, 200))
    out = tmp_path / "out"
    assert run(str(root), "-o", str(out), "--report", str(tmp_path / "r.json")) == 0
    items = report(tmp_path / "r.json")["items"]
    outputs = [i["outputs"]["glb"] for i in items]
    assert sorted(outputs) == sorted(str(out / p) for p in ("A/a.glb", "B/a.glb", "C/a-2.glb"))
    assert all(Path(p).is_file() for p in outputs)
    # two files named directly that would share a name: a usage error, nothing written
    code = run(str(root / "A" / "a.png"), str(root / "B" / "a.png"), "-o", str(tmp_path / "flat"))
    assert code == 2 and not list((tmp_path / "flat").glob("*.glb"))


def test_resume_builds_a_new_photo_with_an_old_name(tmp_path):
    rs = tmp_path / "rs"
    photo(rs / "x" / "a.png", (200, 100, 0))
    out = tmp_path / "out"
    assert run(str(rs), "-o", str(out)) == 0
    first = (out / "x" / "a.glb").stat().st_mtime_ns
    photo(rs / "w" / "a.png", (0, 100, 200))
    assert run(str(rs), "-o", str(out), "--report", str(tmp_path / "r.json")) == 0
    statuses = {Path(i["input"]).parent.name: i["status"] for i in report(tmp_path / "r.json")["items"]}
    assert statuses == {"x": "skipped", "w": "ok"}
    assert (out / "x" / "a.glb").stat().st_mtime_ns == first and (out / "w" / "a.glb").is_file()
    assert not list(out.glob("*.glb"))  # no a-2.glb or stray top-level names


# -- 6./7./8. writes stay inside the output folder ----------------------------------------------------
def test_report_temp_file_is_never_followed(tmp_path):
    src = photo(tmp_path / "in" / "p.png", (120, 60, 200))
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.symlink(victim, out / "r.json.tmp")
    os.symlink(victim, out / "r.tmp")
    assert run(str(src), "-o", str(out), "--report", str(out / "r.json")) == 0
    assert victim.read_text() == "precious"
    assert report(out / "r.json")["totals"]["ok"] == 1
    # a report path that is itself a link is replaced, its target untouched
    os.unlink(out / "r.json")
    os.symlink(victim, out / "r.json")
    assert run(str(src), "-o", str(out), "--report", str(out / "r.json"), "--overwrite") == 0
    assert victim.read_text() == "precious" and not (out / "r.json").is_symlink()


def test_linked_texture_folder_is_not_followed(tmp_path):
    src = photo(tmp_path / "in" / "a.png", (90, 200, 90))
    out = tmp_path / "out"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out.mkdir()
    os.symlink(elsewhere, out / "a_textures")
    assert run(str(src), "-o", str(out), "--format", "obj", "--report", str(tmp_path / "r.json")) == 1
    item = report(tmp_path / "r.json")["items"][0]
    assert item["status"] == "failed" and item["code"] == "output_unsafe"
    assert list(elsewhere.iterdir()) == [] and not (out / "a.obj").exists() and not (out / "a.mtl").exists()


def test_only_this_hosts_dead_temp_folders_are_removed(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    other = out / ".monocle-tmp-render-node-7_1_abc"  # another machine's export in progress
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    mine_dead = out / f".monocle-tmp-{files.host_id()}_{dead.pid}_def"
    mine_alive = out / f".monocle-tmp-{files.host_id()}_{os.getppid()}_ghi"
    for d in (other, mine_dead, mine_alive):
        d.mkdir()
        (d / "part.glb").write_bytes(b"x")
    src = photo(tmp_path / "in" / "p.png", (10, 10, 10))
    assert run(str(src), "-o", str(out)) == 0
    assert other.is_dir() and mine_alive.is_dir() and not mine_dead.exists()
    # a day-old folder of this host is stale even if its pid was reused by a live process
    old = time.time() - 2 * files.STALE_AFTER_S
    os.utime(mine_alive, (old, old))
    assert files.remove_stale_temp(out) == [mine_alive] and other.is_dir()


# -- 11./12./14. limits checked before any work ------------------------------------------------------
@pytest.mark.parametrize("option, value", [
    ("--depth-strength", "nan"), ("--depth-strength", "inf"), ("--thickness", "nan"), ("--detail", "-5"),
    ("--focal-mm", "0"), ("--focal-mm", "-50"), ("--focal-mm", "nan"), ("--distance", "-1"),
    ("--template-weight", "1.5"), ("--max-size", "4"), ("--tear-threshold", "inf"), ("--shard", "3/2"),
    ("--shard", "0/4"), ("--shard", "half"), ("--jobs", "0"), ("--cache-max-mb", "-1"),
    ("--template-category", "spaceship"),
])
def test_nonsense_numbers_are_refused(tmp_path, capsys, option, value):
    src = photo(tmp_path / "in" / "p.png", (50, 50, 50))
    assert cli.main(["reconstruct", str(src), "-o", str(tmp_path / "out"), option, value]) == 2
    err = capsys.readouterr().err
    assert option in err and "Traceback" not in err
    assert not list((tmp_path / "out").glob("*.*"))


def test_unwritable_report_is_refused_up_front(tmp_path, capsys):
    src = photo(tmp_path / "in" / "p.png", (50, 90, 50))
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    t = time.perf_counter()
    assert run(str(src), "-o", str(tmp_path / "out"), "--report", str(blocker / "r.json")) == 2
    assert time.perf_counter() - t < 5 and "Traceback" not in capsys.readouterr().err
    assert not (tmp_path / "out" / "p.glb").exists()


def test_jobs_are_capped_by_the_machine(tmp_path, capsys):
    root = tmp_path / "in"
    for n in range(3):
        photo(root / f"p{n}.png", (40 * n, 90, 140))
    assert run(str(root), "-o", str(tmp_path / "out"), "--jobs", "64") == 0
    err = capsys.readouterr().err
    cores = len(os.sched_getaffinity(0))
    assert "--jobs 64 capped to" in err and f"{cores} cores" in err
    assert len(list((tmp_path / "out").glob("*.glb"))) == 3


# -- 15. a full disk: a plain code, no output left -----------------------------------------------------
def test_disk_full_is_reported_and_leaves_nothing(tmp_path, tiny_disk):
    src = photo(tmp_path / "in" / "big.png", (200, 50, 120), size=(640, 480))
    rep = tmp_path / "r.json"
    free = os.statvfs(tiny_disk).f_bavail * os.statvfs(tiny_disk).f_frsize
    (tiny_disk / "filler").write_bytes(b"\0" * max(0, free - 64 * 1024))  # 64 KB left: too little for the .glb
    assert cli.main(["reconstruct", str(src), "-o", str(tiny_disk), "--detail", "20000", "--format", "glb,obj",
                       "--report", str(rep)]) == 1
    item = report(rep)["items"][0]
    assert item["status"] == "failed" and item["code"] == "disk_full", item
    assert "full" in item["message"] and "Traceback" not in item["message"]
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["filler"]  # no partial .glb, no temp folder


# -- 13. Ctrl-C: the report of what is done, exit 130 ---------------------------------------------------
def test_ctrl_c_writes_the_report_and_exits_130(tmp_path):
    root = tmp_path / "in"
    for n in range(6):
        photo(root / f"p{n}.png", (30 * n, 200 - 20 * n, 90), size=(480, 360))
    out, rep, profile = tmp_path / "out", tmp_path / "r.json", tmp_path / "profile"
    env = dict(os.environ, MONOCLE_PROFILE=str(profile))
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "monocle.py"), "reconstruct", str(root), "-o",
                             str(out), "--detail", "20000", "--report", str(rep)], env=env,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not list(out.glob("*.glb")):
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole foreground process group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    data = report(rep)
    statuses = [i["status"] for i in data["items"]]
    assert statuses.count("ok") >= 1 and set(statuses) <= {"ok", "cancelled", "not_run"}
    assert statuses.count("ok") < 6
    assert sorted(p.name for p in out.iterdir()) == sorted(f"p{n}.glb" for n, s in enumerate(statuses) if s == "ok")
    scratch = [p for p in profile.rglob("cache/tmp/*")]
    assert scratch == []  # no half-written inference left in the cache


# -- 17./20. odd names and links in the inputs ----------------------------------------------------------
def test_odd_file_names(tmp_path):
    root = tmp_path / "in"
    photo(root / "back\\slash.png", (200, 10, 10))
    photo(root / "..png", (10, 200, 10))
    raw = os.fsencode(str(root)) + b"/caf\xe9.png"  # not UTF-8
    photo(Path(os.fsdecode(raw)), (10, 10, 200))
    rep = tmp_path / "r.json"
    assert run(str(root), "-o", str(tmp_path / "out"), "--report", str(rep)) == 0
    assert report(rep)["totals"]["ok"] == 3
    names = sorted(os.listdir(os.fsencode(str(tmp_path / "out"))))
    assert names == sorted([b"back_slash.glb", b"image.glb", b"caf%E9.glb"])  # names any system can read


def test_glob_does_not_follow_a_link_loop(tmp_path, monkeypatch):
    loop = tmp_path / "loop"
    photo(loop / "a" / "x.png", (100, 100, 10))
    photo(loop / "y.png", (10, 100, 100))
    os.symlink("..", loop / "a" / "back")
    monkeypatch.chdir(tmp_path)
    sources = inputs.collect(["loop/**/*.png"])
    assert [str(s.rel) for s in sources] == ["a/x", "y"]
    assert run("loop/**/*.png", "-o", "out") == 0
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.glb")) == [
        "a/x.glb", "y.glb"]


# -- farms: --shard K/N ------------------------------------------------------------------------------
def test_shards_are_disjoint_cover_everything_and_are_stable(tmp_path):
    root = tmp_path / "in"
    for n in range(7):
        (root / f"d{n % 3}").mkdir(parents=True, exist_ok=True)
        (root / f"d{n % 3}" / f"p{n}.png").write_bytes(b"")
    sources = inputs.collect([str(root)])
    for n in (1, 2, 3, 7, 9):
        slices = [inputs.shard(sources, k, n) for k in range(1, n + 1)]
        flat = [s.path for part in slices for s in part]
        assert sorted(flat) == sorted(s.path for s in sources) and len(flat) == len(set(flat))
        assert slices == [inputs.shard(inputs.collect([str(root)]), k, n) for k in range(1, n + 1)]
        assert max(map(len, slices)) - min(map(len, slices)) <= 1
    assert inputs.parse_shard("2/8") == (2, 8)


def test_shard_runs_only_its_slice(tmp_path):
    root = tmp_path / "in"
    for n in range(3):
        photo(root / f"p{n}.png", (60 * n, 60, 200 - 60 * n))
    out = tmp_path / "out"
    reports = []
    for k in (1, 2):
        rep = tmp_path / f"r{k}.json"
        assert run(str(root), "-o", str(out), "--shard", f"{k}/2", "--report", str(rep)) == 0
        reports.append(report(rep))
    assert [len(r["items"]) for r in reports] == [2, 1] and reports[0]["inputs_total"] == 3
    assert sorted(p.name for p in out.glob("*.glb")) == ["p0.glb", "p1.glb", "p2.glb"]



def test_setup_env_command_respects_online_access(tmp_path, capsys):
    """``blender -b -c monocle setup-env`` downloads nothing unless Blender runs with online access."""
    assert not bpy.app.online_access
    assert cli.main(["setup-env", str(tmp_path / "env")]) == 1
    assert "--online-mode" in capsys.readouterr().err and not (tmp_path / "env").exists()
