"""Foreground extraction of the classic engine, through the real worker subprocess.

Quality on the GrabCut photos (mean IoU of the union of returned masks), and
synthetic images whose true masks are known exactly: transparency, the box
hint, ``--objects largest``, specks, a genuine hole, and an empty photo.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_worker
from PIL import Image


def _run(ext_dir: Path, image: Path, out: Path, *extra: str) -> tuple[dict, list[np.ndarray]]:
    code, events, stderr = run_worker(ext_dir, "run", "--image", str(image), "--out", str(out), *extra)
    assert code == 0, (events, stderr[-2000:])
    result = json.loads((out / "result.json").read_text())
    masks = [np.asarray(Image.open(out / inst["mask"])) > 0 for inst in result["instances"]]
    return result, masks


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def _disc(shape: tuple[int, int], cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def _backdrop(h: int, w: int, seed: int) -> np.ndarray:
    """A studio-like backdrop: vertical light-grey gradient with a vignette and sensor noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    grey = 230.0 - 50.0 * yy / h
    vignette = 1.0 - 0.2 * (((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2)
    img = np.repeat((grey * vignette)[..., None], 3, axis=2)
    return img + rng.normal(0.0, 2.0, img.shape)


def _save_rgb(path: Path, img: np.ndarray) -> Path:
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB").save(path)
    return path


# --- GrabCut photos ---------------------------------------------------------------------------------------------


def _grabcut_ious(ext_dir: Path, bench_data: Path, tmp_path: Path, with_box: bool) -> dict[str, float]:
    data = bench_data / "masks" / "grabcut"
    ious = {}
    for image in sorted((data / "imgs").glob("*.jpg")):
        gt = np.asarray(Image.open(data / "seg_GT" / f"{image.stem}.bmp").convert("L")) > 127
        extra = []
        if with_box:
            box = (data / "bboxes" / f"{image.stem}.txt").read_text().split()
            extra = ["--box", ",".join(box)]
        _, masks = _run(ext_dir, image, tmp_path / image.stem, *extra)
        assert masks, image.name
        ious[image.stem] = _iou(np.logical_or.reduce(masks), gt)
    assert len(ious) == 13
    return ious


def test_grabcut_photos_without_hint(ext_dir, bench_data, tmp_path):
    ious = _grabcut_ious(ext_dir, bench_data, tmp_path, with_box=False)
    assert np.mean(list(ious.values())) >= 0.80, ious


def test_grabcut_photos_with_box(ext_dir, bench_data, tmp_path):
    ious = _grabcut_ious(ext_dir, bench_data, tmp_path, with_box=True)
    assert np.mean(list(ious.values())) >= 0.88, ious
    # with the object boxed, no photo may fail outright
    assert min(ious.values()) >= 0.75, ious


# --- transparency -----------------------------------------------------------------------------------------------


@pytest.fixture
def two_blobs(tmp_path) -> tuple[Path, np.ndarray, np.ndarray]:
    """RGBA image: two separate opaque discs (the larger one textured) on a transparent background."""
    h, w = 240, 360
    big, small = _disc((h, w), 110, 120, 70), _disc((h, w), 280, 90, 40)
    rng = np.random.default_rng(3)
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[..., :3] = rng.integers(0, 256, (h, w, 3))  # colour under transparent pixels must not matter
    rgba[..., 3] = np.where(big | small, 255, 0)
    path = tmp_path / "blobs.png"
    Image.fromarray(rgba, "RGBA").save(path)
    return path, big, small


def test_alpha_gives_one_instance_per_opaque_part(ext_dir, tmp_path, two_blobs):
    path, big, small = two_blobs
    result, masks = _run(ext_dir, path, tmp_path / "out")
    assert len(masks) == 2
    assert _iou(masks[0], big) >= 0.99 and _iou(masks[1], small) >= 0.99  # largest first
    assert [inst["area"] for inst in result["instances"]] == sorted((m.sum() for m in masks), reverse=True)
    assert all(inst["score"] >= 0.9 for inst in result["instances"])  # crisp alpha: a confident separation


def test_alpha_largest_keeps_one(ext_dir, tmp_path, two_blobs):
    path, big, _ = two_blobs
    _, masks = _run(ext_dir, path, tmp_path / "out", "--objects", "largest")
    assert len(masks) == 1
    assert _iou(masks[0], big) >= 0.99


# --- photos without transparency ---------------------------------------------------------------------------------


@pytest.fixture
def two_objects(tmp_path) -> tuple[Path, np.ndarray, np.ndarray]:
    """A red disc and a blue square on a studio backdrop, with a few small specks of dirt."""
    h, w = 320, 480
    img = _backdrop(h, w, seed=1)
    disc = _disc((h, w), 140, 170, 70)
    square = np.zeros((h, w), bool)
    square[110:230, 290:410] = True
    img[disc] = (200, 40, 35)
    img[square] = (40, 70, 190)
    for x, y in ((40, 40), (440, 290), (240, 60), (60, 280)):
        img[y:y + 3, x:x + 3] = (20, 20, 20)
    return _save_rgb(tmp_path / "objects.png", img), disc, square


def test_finds_every_object_and_drops_specks(ext_dir, tmp_path, two_objects):
    path, disc, square = two_objects
    result, masks = _run(ext_dir, path, tmp_path / "out")
    assert len(masks) == 2, [inst["area"] for inst in result["instances"]]
    first, second = sorted((disc, square), key=lambda m: -int(m.sum()))  # largest first
    assert _iou(masks[0], first) >= 0.95 and _iou(masks[1], second) >= 0.95
    assert all(0.5 <= inst["score"] <= 1.0 for inst in result["instances"])


def test_box_hint_restricts_the_result(ext_dir, tmp_path, two_objects):
    path, disc, square = two_objects
    result, masks = _run(ext_dir, path, tmp_path / "out", "--box", "270,90,430,250")
    union = np.logical_or.reduce(masks)
    assert _iou(union, square) >= 0.95
    assert not (union & disc).any()
    outside = np.ones_like(union)
    outside[90:250, 270:430] = False
    assert not (union & outside).any()


def test_product_shot_keeps_a_genuine_hole(ext_dir, tmp_path):
    """A mug with a handle on a backdrop with a soft shadow: the handle's opening stays background."""
    h, w = 480, 640
    img = _backdrop(h, w, seed=2)
    yy, xx = np.mgrid[:h, :w]
    body = (np.abs(xx - 280) <= 90) & (np.abs(yy - 250) <= 120)
    ring = ((xx - 370) / 60.0) ** 2 + ((yy - 250) / 70.0) ** 2
    handle = (ring <= 1.0) & (ring >= 0.55) & (xx > 370)
    hole = (ring < 0.45) & (xx > 375)
    mug = body | handle
    shadow = np.roll(mug, (14, 22), axis=(0, 1)) & ~mug
    img[shadow] *= 0.75
    shade = 0.6 + 0.4 * np.cos(np.clip((xx - 280) / 120.0, -1.5, 1.5))
    img[mug] = (np.array([190.0, 45.0, 35.0]) * shade[mug, None])
    result, masks = _run(ext_dir, _save_rgb(tmp_path / "mug.png", img), tmp_path / "out")
    union = np.logical_or.reduce(masks)
    assert _iou(union, mug) >= 0.93
    assert (union & hole).sum() <= 0.1 * hole.sum()
    assert result["instances"][0]["score"] >= 0.5


def test_pale_carton_keeps_its_lit_face_and_leaves_its_shadow(ext_dir, tmp_path):
    """A grey carton on a studio backdrop: its shaded side far darker than the backdrop, its lit side a
    little paler (the prior scores it far below the shaded side, and it was cut away: the bench's box,
    can and table renders lost a third of their outline so), its top between them; its cast shadow on the
    backdrop stays background."""
    h, w = 384, 512
    img = _backdrop(h, w, seed=3)
    yy, xx = np.mgrid[:h, :w]
    shaded = (xx >= 170) & (xx < 250) & (yy >= 110 + (xx - 170) * 0.25) & (yy < 320 + (xx - 170) * 0.25)
    lit = (xx >= 250) & (xx < 350) & (yy >= 130 - (xx - 250) * 0.2) & (yy < 340 - (xx - 250) * 0.2)
    top = (yy < 130 - (xx - 250) * 0.2) & (yy >= 90) & (xx >= 190) & (xx < 350) & ~shaded & ~lit
    top &= yy >= 110 - (xx - 190) * 0.125
    carton = shaded | lit | top
    shadow = np.roll(carton, (10, 40), axis=(0, 1)) & ~carton
    img[shadow] *= 0.7
    backdrop = float(img[~carton & ~shadow].mean())
    img[shaded] = 0.45 * backdrop + np.random.default_rng(4).normal(0.0, 2.0, (int(shaded.sum()), 3))
    img[lit] += 25.0  # a little paler than the backdrop behind it
    img[top] += 12.0
    result, masks = _run(ext_dir, _save_rgb(tmp_path / "carton.png", img), tmp_path / "out")
    assert len(masks) == 1, [inst["area"] for inst in result["instances"]]
    assert _iou(masks[0], carton) >= 0.95, _iou(masks[0], carton)
    assert (masks[0] & lit).sum() >= 0.95 * lit.sum()
    assert (masks[0] & shadow).sum() <= 0.1 * shadow.sum()


def test_the_demo_photo_keeps_the_cup_with_its_saucer(ext_dir, tmp_path):
    """``make demo``'s photo (scikit-image's ``coffee``, CC0): an espresso cup with a white rim, a brown
    body and a saucer on a wooden table. One object, the cup with its handle and saucer, the wood left
    out. (The pale-face seed, applied on this busy background, left only the white rim and the spoon:
    a larger seed tipped GrabCut's colour models, so it is kept to plain backdrops.)"""
    import skimage.data

    photo = Path(skimage.data.__file__).parent / "coffee.png"
    result, masks = _run(ext_dir, photo, tmp_path / "out", "--objects", "largest")
    mask = masks[0]
    inside = {"white rim": (60, 300), "brown body": (200, 250), "handle": (265, 225), "saucer": (360, 300)}
    outside = {"wood, right": (350, 550), "wood, left": (100, 30), "wood, top right": (40, 560)}
    assert all(mask[yx] for yx in inside.values()), {k: bool(mask[yx]) for k, yx in inside.items()}
    assert not any(mask[yx] for yx in outside.values()), {k: bool(mask[yx]) for k, yx in outside.items()}
    assert 60_000 <= mask.sum() <= 100_000, int(mask.sum())


def test_featureless_photo_reports_no_object(ext_dir, tmp_path):
    path = _save_rgb(tmp_path / "grey.png", np.full((200, 300, 3), 128.0))
    code, events, _ = run_worker(ext_dir, "run", "--image", str(path), "--out", str(tmp_path / "out"))
    assert code == 2
    assert events[-1]["event"] == "error" and events[-1]["code"] == "no_object"
