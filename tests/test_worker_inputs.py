"""Every kind of input file a user may hand the worker, good and bad."""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import run_worker, worker_env
from PIL import Image

H, W = 96, 128


def _disk() -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    return (xx - 64) ** 2 + (yy - 48) ** 2 < 30**2


def _scene_rgb() -> np.ndarray:
    """A dark disk on a light background, easy to segment whatever the encoding."""
    rgb = np.full((H, W, 3), 225, np.uint8)
    rgb[_disk()] = (40, 70, 160)
    return rgb


def _check_ok(ext_dir, image: Path, out: Path, size: tuple[int, int], *extra: str) -> dict:
    code, events, err = run_worker(ext_dir, "run", "--image", str(image), "--out", str(out), *extra)
    assert code == 0, (events, err)
    assert events[-1] == {"event": "result", "path": str(out / "result.json")}
    result = json.loads((out / "result.json").read_text())
    assert (result["image"]["width"], result["image"]["height"]) == size
    mask = np.asarray(Image.open(out / result["instances"][0]["mask"]))
    assert mask.shape == (size[1], size[0])
    assert np.load(out / result["depth"]["file"])["depth"].shape == (size[1], size[0])
    return result


def _result_depth(out: Path) -> np.ndarray:
    """The depth map a run wrote, whichever array file result.json names."""
    data = np.load(out / json.loads((out / "result.json").read_text())["depth"]["file"])
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            return data[data.files[0]].astype(np.float32)
    return data.astype(np.float32)


def _disk_iou(result: dict, out: Path) -> float:
    mask = np.asarray(Image.open(out / result["instances"][0]["mask"])) > 0
    truth = _disk()
    return float((mask & truth).sum() / (mask | truth).sum())


@pytest.mark.parametrize(
    "name, make",
    [
        ("rgb.png", lambda a: Image.fromarray(a)),
        ("rgb.jpg", lambda a: Image.fromarray(a)),
        ("rgb.tif", lambda a: Image.fromarray(a)),
        ("rgb.webp", lambda a: Image.fromarray(a)),
        ("rgb.bmp", lambda a: Image.fromarray(a)),
        ("gray.png", lambda a: Image.fromarray(a).convert("L")),
        ("palette.png", lambda a: Image.fromarray(a).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)),
        ("cmyk.jpg", lambda a: Image.fromarray(a).convert("CMYK")),
        ("gray16.png", lambda a: Image.fromarray(np.asarray(Image.fromarray(a).convert("L")).astype(np.uint16) * 257)),
    ],
)
def test_formats_and_pixel_layouts(ext_dir, tmp_path, name, make):
    path = tmp_path / name
    make(_scene_rgb()).save(path)
    result = _check_ok(ext_dir, path, tmp_path / "out", (W, H))
    assert _disk_iou(result, tmp_path / "out") > 0.9


def test_rgba_uses_alpha(ext_dir, tmp_path):
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., :3] = 128  # the colour carries no hint: only alpha says where the object is
    yy, xx = np.mgrid[0:H, 0:W]
    rgba[..., 3] = np.where((xx - 64) ** 2 + (yy - 48) ** 2 < 30**2, 255, 0)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    result = _check_ok(ext_dir, tmp_path / "a.png", tmp_path / "out", (W, H))
    assert _disk_iou(result, tmp_path / "out") > 0.97


def test_exr_input(ext_dir, tmp_path):
    os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
    import cv2

    linear = (_scene_rgb().astype(np.float32) / 255.0) ** 2.2
    assert cv2.imwrite(str(tmp_path / "hdr.exr"), linear[:, :, ::-1].copy())
    result = _check_ok(ext_dir, tmp_path / "hdr.exr", tmp_path / "out", (W, H))
    assert result["image"]["mode"] == "EXR"
    assert _disk_iou(result, tmp_path / "out") > 0.9


def test_exif_orientation_and_focal_length(ext_dir, tmp_path):
    # stored turned a quarter counter-clockwise, tagged "rotate 90 CW to view" (orientation 6)
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(_scene_rgb(), k=1)))
    assert stored.size == (H, W)
    exif = Image.Exif()
    exif[0x0112] = 6
    exif.get_ifd(0x8769)[0xA405] = 28
    stored.save(tmp_path / "phone.jpg", exif=exif.tobytes())
    result = _check_ok(ext_dir, tmp_path / "phone.jpg", tmp_path / "out", (W, H))
    assert result["camera"]["focal_35mm"] == 28.0
    assert _disk_iou(result, tmp_path / "out") > 0.9


def test_large_image_processed_downscaled_returned_full_size(ext_dir, tmp_path):
    big = Image.fromarray(_scene_rgb()).resize((W * 10, H * 10), Image.Resampling.NEAREST)
    big.save(tmp_path / "big.png")
    result = _check_ok(ext_dir, tmp_path / "big.png", tmp_path / "out", (W * 10, H * 10), "--max-size", "256")
    assert result["engine"]["settings"]["max_size"] == 256
    mask = np.asarray(Image.open(tmp_path / "out" / result["instances"][0]["mask"])) > 0
    # the disk has radius 300 px at full size: area within 3%
    assert abs(mask.sum() / (np.pi * 300**2) - 1) < 0.03


def _truncated_jpeg(path: Path) -> None:
    Image.fromarray(_scene_rgb()).save(path.with_suffix(".full.jpg"))
    data = path.with_suffix(".full.jpg").read_bytes()
    path.write_bytes(data[: len(data) // 3])


@pytest.mark.parametrize(
    "name, make, code",
    [
        ("missing.png", None, "image_missing"),
        ("text.png", lambda p: p.write_text("this is not an image\n"), "image_unreadable"),
        ("truncated.jpg", _truncated_jpeg, "image_unreadable"),
        ("tiny.png", lambda p: Image.new("RGB", (1, 1)).save(p), "image_too_small"),
        ("empty.png", lambda p: p.write_bytes(b""), "image_unreadable"),
        ("notes.txt", lambda p: p.write_text("hello"), "image_unsupported"),
    ],
)
def test_bad_inputs_give_exit_2_and_one_sentence(ext_dir, tmp_path, name, make, code):
    path = tmp_path / name
    if make:
        make(path)
    out = tmp_path / "out"
    rc, events, err = run_worker(ext_dir, "run", "--image", str(path), "--out", str(out))
    assert rc == 2, err
    errors = [e for e in events if e["event"] == "error"]
    assert len(errors) == 1 and errors[0]["code"] == code
    message = errors[0]["message"]
    assert message.endswith(".") and "\n" not in message and "Traceback" not in message
    assert not (out / "result.json").exists()
    assert "Traceback" not in err


def test_bad_arguments_exit_2(ext_dir, tmp_path):
    rc, events, _ = run_worker(ext_dir, "run", "--image", "x.png")
    assert rc == 2 and events[-1]["code"] == "bad_argument"
    Image.fromarray(_scene_rgb()).save(tmp_path / "a.png")
    rc, events, _ = run_worker(ext_dir, "run", "--image", str(tmp_path / "a.png"), "--out", str(tmp_path / "o"),
                               "--box", "10,10,5,5")
    assert rc == 2 and events[-1]["code"] == "bad_argument"


def test_user_mask_and_depth_files(ext_dir, tmp_path):
    Image.fromarray(_scene_rgb()).save(tmp_path / "a.png")
    labels = np.zeros((H, W), np.uint8)
    labels[10:40, 10:50] = 1
    labels[50:90, 70:120] = 2
    Image.fromarray(labels).save(tmp_path / "labels.png")
    depth = np.linspace(2.0, 3.0, W, dtype=np.float32)[None, :].repeat(H, 0)
    np.save(tmp_path / "depth.npy", depth)
    result = _check_ok(ext_dir, tmp_path / "a.png", tmp_path / "out", (W, H), "--mask", str(tmp_path / "labels.png"),
                       "--depth", str(tmp_path / "depth.npy"), "--depth-kind", "metric")
    assert [i["area"] for i in result["instances"]] == [30 * 40, 40 * 50]
    assert result["depth"]["kind"] == "metric"
    stored = np.load(tmp_path / "out" / result["depth"]["file"])["depth"]
    assert stored.dtype == np.float32 and np.array_equal(stored, depth)  # a user's map is kept exactly
    # an all-zero mask is a clear error
    Image.fromarray(np.zeros((H, W), np.uint8)).save(tmp_path / "empty.png")
    rc, events, _ = run_worker(ext_dir, "run", "--image", str(tmp_path / "a.png"), "--out", str(tmp_path / "o2"),
                               "--mask", str(tmp_path / "empty.png"))
    assert rc == 2 and events[-1]["code"] == "mask_empty"


def test_depth_map_of_another_aspect_is_refused_like_a_mask(ext_dir, tmp_path):
    photo = Image.fromarray(_scene_rgb()).resize((600, 400), Image.Resampling.NEAREST)
    photo.save(tmp_path / "a.png")
    np.save(tmp_path / "thin.npy", np.ones((10, 1000), np.float32))
    Image.fromarray(np.full((10, 1000), 255, np.uint8)).save(tmp_path / "thin_mask.png")
    cases = (("--depth", "thin.npy", "depth_unreadable"), ("--mask", "thin_mask.png", "mask_unreadable"))
    for flag, name, code in cases:
        out = tmp_path / f"out{flag}"
        rc, events, err = run_worker(ext_dir, "run", "--image", str(tmp_path / "a.png"), "--out", str(out),
                                     flag, str(tmp_path / name))
        assert rc == 2, err
        assert events[-1]["event"] == "error" and events[-1]["code"] == code
        message = events[-1]["message"]
        assert "1000x10" in message and "600x400" in message and message.endswith(".")
        assert not (out / "result.json").exists()
    # the same aspect at another size is scaled to the photo
    half = np.linspace(2.0, 3.0, 300, dtype=np.float32)[None, :].repeat(200, 0)
    np.save(tmp_path / "half.npy", half)
    out = tmp_path / "ok"
    rc, events, err = run_worker(ext_dir, "run", "--image", str(tmp_path / "a.png"), "--out", str(out),
                                 "--depth", str(tmp_path / "half.npy"), "--depth-kind", "metric")
    assert rc == 0, err
    depth = _result_depth(out)
    assert depth.shape == (400, 600)
    assert abs(float(depth[:, 0].mean()) - 2.0) < 0.01 and abs(float(depth[:, -1].mean()) - 3.0) < 0.01


def _exr_attr(name: str, kind: str, value: bytes) -> bytes:
    return name.encode() + b"\0" + kind.encode() + b"\0" + struct.pack("<i", len(value)) + value


def _write_black_exr(path: Path, width: int, height: int, channels: str = "BGR") -> None:
    """A valid scanline OpenEXR file, ZIP compressed, every pixel zero: about 6 kB per megapixel on disk."""
    chlist = b"".join(c.encode() + b"\0" + struct.pack("<iB3xii", 1, 0, 1, 1) for c in sorted(channels)) + b"\0"
    box = struct.pack("<4i", 0, 0, width - 1, height - 1)
    header = b"".join([
        _exr_attr("channels", "chlist", chlist), _exr_attr("compression", "compression", b"\x03"),
        _exr_attr("dataWindow", "box2i", box), _exr_attr("displayWindow", "box2i", box),
        _exr_attr("lineOrder", "lineOrder", b"\x00"), _exr_attr("pixelAspectRatio", "float", struct.pack("<f", 1)),
        _exr_attr("screenWindowCenter", "v2f", struct.pack("<2f", 0, 0)),
        _exr_attr("screenWindowWidth", "float", struct.pack("<f", 1)),
    ]) + b"\0"
    head = b"\x76\x2f\x31\x01" + struct.pack("<i", 2) + header
    chunks = (height + 15) // 16

    def block(lines: int) -> bytes:  # 16 lines of half floats, zero after EXR's byte predictor
        return zlib.compress(b"\0" + b"\x80" * (lines * width * len(channels) * 2 - 1), 9)

    full = block(16)
    offsets, body = [], bytearray()
    for i in range(chunks):
        data = full if height - 16 * i >= 16 else block(height - 16 * i)
        offsets.append(len(head) + 8 * chunks + len(body))
        body += struct.pack("<ii", 16 * i, len(data)) + data
    path.write_bytes(head + struct.pack(f"<{chunks}Q", *offsets) + bytes(body))


def _run_capped(ext_dir: Path, *args: str, gib: float = 1.0) -> tuple[int, list[dict], str]:
    """``python -m inference ARGS`` with its address space capped: a decode of the whole image cannot fit."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (int(gib * 2**30), int(gib * 2**30)))

    env = worker_env(ext_dir, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "inference", *args], cwd=ext_dir, env=env, capture_output=True,
                          text=True, timeout=120, preexec_fn=cap)
    return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines()], proc.stderr


def test_black_exr_writer_is_a_real_exr(tmp_path):
    os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
    import cv2

    _write_black_exr(tmp_path / "b.exr", 70, 41)
    data = cv2.imread(str(tmp_path / "b.exr"), cv2.IMREAD_UNCHANGED)
    assert data.shape == (41, 70, 3) and data.dtype == np.float32 and not data.any()


def test_every_format_is_held_to_the_pixel_limit_before_decoding(ext_dir, tmp_path):
    """The issue's 2 MB EXR of 20000x12000 pixels (240 MP) would take gigabytes to decode: refused from its header."""
    _write_black_exr(tmp_path / "huge.exr", 20000, 12000)
    assert (tmp_path / "huge.exr").stat().st_size < 3_000_000
    photo = tmp_path / "a.png"
    Image.fromarray(_scene_rgb()).resize((640, 480)).save(photo)
    # a depth map or mask as huge as that, in EXR and in .npy (its header claims it; the data is not there)
    with open(tmp_path / "huge.npy", "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (12000, 20000)})
        fh.write(b"\0" * 4096)
    cases = [
        (("--image", str(tmp_path / "huge.exr")), "image_too_large"),
        (("--image", str(photo), "--depth", str(tmp_path / "huge.exr")), "depth_unreadable"),
        (("--image", str(photo), "--depth", str(tmp_path / "huge.npy")), "depth_unreadable"),
        (("--image", str(photo), "--mask", str(tmp_path / "huge.exr")), "mask_unreadable"),
    ]
    for i, (args, code) in enumerate(cases):
        t = time.monotonic()
        rc, events, err = _run_capped(ext_dir, "run", *args, "--out", str(tmp_path / f"out{i}"))
        assert rc == 2, (args, events, err)
        assert events[-1]["event"] == "error" and events[-1]["code"] == code, events[-1]
        assert "20000x12000 pixels, more than Monocle can process" in events[-1]["message"]
        assert time.monotonic() - t < 30
        assert not (tmp_path / f"out{i}" / "result.json").exists()


def test_exr_within_the_limit_still_loads(ext_dir, tmp_path):
    _write_black_exr(tmp_path / "black.exr", 300, 200, channels="Y")
    photo = tmp_path / "a.png"
    Image.fromarray(_scene_rgb()).resize((300, 200)).save(photo)
    rc, events, err = _run_capped(ext_dir, "run", "--image", str(photo), "--depth", str(tmp_path / "black.exr"),
                                  "--out", str(tmp_path / "out"), "--depth-kind", "metric", gib=2.0)
    assert rc == 0, (events, err)
    assert not _result_depth(tmp_path / "out").any()


def test_float_rgb_tiff_is_decoded_as_linear_light(ext_dir, tmp_path):
    os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
    import cv2

    linear = (_scene_rgb().astype(np.float32) / 255.0) ** 2.2
    assert cv2.imwrite(str(tmp_path / "float.tif"), linear[:, :, ::-1].copy())
    with pytest.raises(Exception):  # the case this covers: PIL alone cannot read it
        Image.open(tmp_path / "float.tif").load()
    result = _check_ok(ext_dir, tmp_path / "float.tif", tmp_path / "out", (W, H))
    assert result["image"]["mode"] == "TIFF"
    assert _disk_iou(result, tmp_path / "out") > 0.9
    # the same file as a depth map: its red channel
    rc, events, err = run_worker(ext_dir, "run", "--image", str(tmp_path / "float.tif"), "--out",
                                 str(tmp_path / "d"), "--depth", str(tmp_path / "float.tif"), "--depth-kind", "metric")
    assert rc == 0, (events, err)
    # OpenCV stores float RGB TIFF as SGI LogLuv, which keeps values within about 0.02
    np.testing.assert_allclose(_result_depth(tmp_path / "d"), linear[:, :, 0], atol=0.02)


@pytest.mark.parametrize("name", [b"caf\xe9.png", b"caf\xe9.exr", b"back\\slash.png", b"..png", b"\xff\xfe.tif"])
def test_awkward_file_names(ext_dir, tmp_path, name):
    """Names that are not UTF-8, hold a backslash or are mostly dots load like any other."""
    os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
    import cv2

    folder = os.fsencode(tmp_path / "in")
    os.mkdir(folder)
    raw = os.path.join(folder, name)
    suffix = os.fsdecode(name).rsplit(".", 1)[-1]
    ok, data = cv2.imencode("." + suffix, (_scene_rgb()[:, :, ::-1] / 255.0).astype(np.float32) if suffix == "exr"
                            else _scene_rgb()[:, :, ::-1].copy())
    assert ok
    with open(raw, "wb") as fh:
        fh.write(data.tobytes())
    image = os.fsdecode(raw)  # what sys.argv holds for such a name
    result = _check_ok(ext_dir, Path(image), tmp_path / "out", (W, H), "--depth", image, "--depth-kind", "metric")
    assert os.fsencode(result["image"]["path"]) == raw
    assert os.fsencode(result["engine"]["settings"]["depth_file"]) == raw
    assert _disk_iou(result, tmp_path / "out") > 0.9
    # errors that name the file are still one plain line of JSON
    (tmp_path / "garbage").write_bytes(b"not an image at all")
    bad = os.path.join(folder, name + b".png")
    os.rename(tmp_path / "garbage", bad)
    rc, events, err = run_worker(ext_dir, "run", "--image", os.fsdecode(bad), "--out", str(tmp_path / "o2"))
    assert rc == 2 and events[-1]["code"] == "image_unreadable" and "Traceback" not in err


def test_result_folder_with_an_undecodable_name(ext_dir, tmp_path):
    """Masks are encoded in memory and written by Python: OpenCV's own writer crashed on such paths."""
    photo = tmp_path / "a.png"
    Image.fromarray(_scene_rgb()).save(photo)
    out = Path(os.fsdecode(os.fsencode(str(tmp_path)) + b"/r\xe9sultat"))
    result = _check_ok(ext_dir, photo, out, (W, H))
    assert _disk_iou(result, out) > 0.9
