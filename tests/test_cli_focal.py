"""``--focal-mm`` on the headless command: an explicit flag wins over the photo's EXIF, as its help says."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import bpy
import numpy as np
from conftest import MODULE
from PIL import Image


def cli():
    return __import__(MODULE + ".cli", fromlist=["main"])


def _photo(path: Path, focal_35mm: int | None) -> Path:
    """A grey disk on a light background (the classic engine finds it), with or without an EXIF focal length."""
    yy, xx = np.mgrid[0:240, 0:320]
    disk = (xx - 160) ** 2 + (yy - 120) ** 2 < 70**2
    rgb = np.where(disk[..., None], [90, 60, 40], [235, 235, 230]).astype(np.uint8)
    img = Image.fromarray(rgb)
    exif = Image.Exif()
    if focal_35mm is not None:
        exif[0x8769] = {0xA405: focal_35mm}  # FocalLengthIn35mmFilm in the Exif IFD
    img.save(path, quality=95, exif=exif.tobytes())
    return path


def _lens_and_width(photo: Path, out: Path, *flags: str) -> tuple[float, float]:
    """The saved camera's lens (mm) and the object's width across the view (x, camera space), via the real CLI."""
    args = ["reconstruct", str(photo), "-o", str(out), "--format", "blend", "--detail", "2000", "--no-ground",
            "--engine", "classic", *flags]
    assert cli().main(args) == 0
    bpy.ops.wm.open_mainfile(filepath=str(out / f"{photo.stem}.blend"))
    cam = next(o for o in bpy.data.objects if o.type == "CAMERA")
    mesh = next(o for o in bpy.data.objects if o.type == "MESH" and "backdrop" not in o.name.lower())
    n = len(mesh.data.vertices)
    co = np.empty(n * 3, np.float32)
    mesh.data.vertices.foreach_get("co", co)
    world = np.array(mesh.matrix_world) @ np.c_[co.reshape(n, 3), np.ones(n)].T
    local = np.linalg.inv(np.array(cam.matrix_world)) @ world  # camera space: x across the view
    return float(cam.data.lens), float(np.ptp(local[0]))


def test_focal_flag_wins_over_exif(tmp_path):
    exif_photo = _photo(tmp_path / "exif35.jpg", 35)
    plain_photo = _photo(tmp_path / "plain.jpg", None)
    lens_exif, width_exif = _lens_and_width(exif_photo, tmp_path / "a")
    lens_flag, width_flag = _lens_and_width(exif_photo, tmp_path / "b", "--focal-mm", "26")
    lens_plain, _ = _lens_and_width(plain_photo, tmp_path / "c")
    lens_plain_flag, _ = _lens_and_width(plain_photo, tmp_path / "d", "--focal-mm", "26")
    assert lens_exif == 35.0  # no flag: the photo's EXIF
    assert lens_flag == 26.0  # the flag wins over EXIF
    assert lens_plain == 50.0  # neither: the 50 mm default
    assert lens_plain_flag == 26.0
    # the same photo at the same distance: a shorter lens sees a wider object, in proportion
    assert abs(width_flag / width_exif - 35.0 / 26.0) < 0.02 * 35.0 / 26.0


def test_focal_flag_help_says_it_wins():
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert cli().main(["reconstruct", "--help"]) == 0
    text = " ".join(buf.getvalue().split())
    assert "--focal-mm MM" in text and "wins over the photo's EXIF" in text
