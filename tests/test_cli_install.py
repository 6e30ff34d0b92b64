"""How ``scripts/monocle.py`` gets the extension into its profile: built from tracked files only,
installed once under a lock (concurrent runs on one fresh profile both succeed), then reused.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "monocle.py"
INSTALLING = "monocle: installing the extension"


def _script(profile: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ, MONOCLE_PROFILE=str(profile))
    return subprocess.Popen([sys.executable, str(SCRIPT), *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> str:
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-4000:]
    return err


def _install_state(profile: Path) -> tuple[int, int, int]:
    ext = profile / "extensions" / "user_default" / "monocle"
    return ext.stat().st_ino, (ext / "cli.py").stat().st_ino, (profile / "monocle-install.key").stat().st_mtime_ns


def test_concurrent_runs_install_once_and_later_runs_reuse_it(photo_dir, tmp_path):
    image = photo_dir / "box.jpg"
    profile = tmp_path / "profile"  # fresh: both runs find no install
    outs = [tmp_path / "out-a", tmp_path / "out-b", tmp_path / "out-c"]
    runs = [_script(profile, "reconstruct", str(image), "-o", str(out), "--detail", "2000") for out in outs[:2]]
    logs = [_finish(run) for run in runs]
    assert sum(log.count(INSTALLING) for log in logs) == 1, logs
    glbs = [(out / "box.glb").read_bytes() for out in outs[:2]]
    assert glbs[0][:4] == b"glTF" and len(glbs[0]) > 10_000
    assert glbs[0] == glbs[1]  # same code, same input: the waiting run used the same install

    before = _install_state(profile)
    log = _finish(_script(profile, "reconstruct", str(image), "-o", str(outs[2]), "--detail", "2000"))
    assert INSTALLING not in log
    assert _install_state(profile) == before  # not unpacked again
    assert (outs[2] / "box.glb").read_bytes() == glbs[0]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def _tracked_copy(dest: Path) -> Path:
    """A git repository holding this working tree's tracked files (uncommitted edits included)."""
    for name in _git(ROOT, "ls-files", "-z").split("\0"):
        if name and (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    _git(dest, "init", "-q")
    _git(dest, "add", "-A")
    return dest


def _build(repo: Path, out: Path) -> tuple[list[str], str]:
    proc = subprocess.run([sys.executable, str(repo / "tools" / "build_extension.py"), "--no-wheels", "--out",
                           str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    (archive,) = out.glob("*.zip")
    with zipfile.ZipFile(archive) as zf:
        return zf.namelist(), proc.stderr


def _digest(repo: Path) -> str:
    code = "import sys, build_extension as b; print(b.source_digest(b.current_platform_tag()))"
    return subprocess.run([sys.executable, "-c", code], cwd=repo / "tools", check=True, capture_output=True,
                          text=True, timeout=60).stdout.strip()


def _scratch(repo: Path) -> None:
    """Untracked, unignored files a developer leaves around: a folder and a module not yet added."""
    (repo / "scratch").mkdir()
    (repo / "scratch" / "notes.py").write_text("SECRET = 1\n")
    (repo / "geometry" / "draft.py").write_text("DRAFT = 1\n")


def test_zip_packs_tracked_files_only(tmp_path):
    repo = _tracked_copy(tmp_path / "repo")
    _scratch(repo)
    with (repo / "pipeline.py").open("a") as fh:
        fh.write("# an uncommitted edit\n")
    names, log = _build(repo, tmp_path / "dist")
    assert "__init__.py" in names and "geometry/lattice.py" in names
    assert not [n for n in names if n.startswith("scratch/") or n == "geometry/draft.py"]
    assert "not packing 2 untracked file(s)" in log and "geometry/draft.py" in log  # said, not silent
    with zipfile.ZipFile(next((tmp_path / "dist").glob("*.zip"))) as zf:
        assert zf.read("pipeline.py").endswith(b"# an uncommitted edit\n")  # working-tree content

    shutil.rmtree(repo / ".git")  # an unpacked source tarball: every file but the excluded ones
    names, _ = _build(repo, tmp_path / "dist-tarball")
    assert "scratch/notes.py" in names and "geometry/draft.py" in names
    assert not [n for n in names if n.startswith(("tests/", "tools/", ".git/"))]


def test_install_key_follows_tracked_content_only(tmp_path):
    repo = _tracked_copy(tmp_path / "repo")
    digest = _digest(repo)
    _scratch(repo)
    assert _digest(repo) == digest  # what is not packed does not cause a reinstall
    with (repo / "pipeline.py").open("a") as fh:
        fh.write("# an uncommitted edit\n")
    edited = _digest(repo)
    assert edited != digest
    _git(repo, "add", "geometry/draft.py")
    assert _digest(repo) not in (digest, edited)
