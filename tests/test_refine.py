"""Segment corrections in the worker, as a real subprocess: ``refine`` (command line and serve
request) and ``run --corrections``, measured against the true masks of a two-object photo."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import read_depth, run_worker
from PIL import Image
from segment_scene import iou, read_mask, write_mask, write_scene
from serve_client import started_workers


@pytest.fixture
def photo(tmp_path):
    return write_scene(tmp_path / "in")


@pytest.fixture
def missed(ext_dir, photo, tmp_path):
    """A result that found the disc and missed the box (a user mask of the disc only)."""
    path, disc, box = photo
    out = tmp_path / "r0"
    code, _, err = run_worker(ext_dir, "run", "--image", str(path), "--out", str(out), "--engine", "classic",
                              "--mask", str(write_mask(tmp_path / "disc.png", disc)))
    assert code == 0, err
    return out


def refine(ext_dir, base, out, photo_path, *args):
    code, events, err = run_worker(ext_dir, "refine", "--base", str(base), "--out", str(out), "--image",
                                   str(photo_path), *args)
    return code, events, err


def masks(folder):
    data = json.loads((folder / "result.json").read_text())
    return data, {i["id"]: read_mask(folder / i["mask"]) for i in data["instances"]}


def test_add_a_missed_object_by_click_keeps_the_rest(ext_dir, photo, missed, tmp_path):
    path, disc, box = photo
    out = tmp_path / "r1"
    code, events, err = refine(ext_dir, missed, out, path, "--action", "add", "--point", "480,250,+")
    assert code == 0, err
    assert events[-1] == {"event": "result", "path": str(out / "result.json")}
    data, got = masks(out)
    assert data["changed"] == [1] and data["removed"] == [] and data["next_id"] == 2
    assert data["prompts"] == [{"action": "add", "points": [[480.0, 250.0, 1]], "segmenter": "grabcut"}]
    assert iou(got[1], box) > 0.95
    assert iou(got[0], disc) == 1.0
    # the untouched mask is the earlier file itself (linked, not re-encoded)
    assert os.path.samefile(out / "mask_000.png", missed / "mask_000.png")
    # the classic engine's depth was inflated for the new object only
    before, after = read_depth(missed / "depth.npz"), read_depth(out / "depth.npz")
    assert np.allclose(before[disc], after[disc], atol=1e-3)
    # (before: the engine's floor rule off the objects; after: the new object stands out of it)
    assert after[box].min() > 0.5 and after[box].min() > before[box].max()
    assert os.path.samefile(out / "reference_000.png", missed / "mask_000.png")


def test_add_by_box_then_merge_split_and_remove(ext_dir, photo, missed, tmp_path):
    path, disc, box = photo
    r1, r2, r3, r4 = (tmp_path / f"s{i}" for i in range(1, 5))
    assert refine(ext_dir, missed, r1, path, "--action", "add", "--box", "390,140,565,355")[0] == 0
    assert iou(masks(r1)[1][1], box) > 0.95

    assert refine(ext_dir, r1, r2, path, "--action", "merge", "--point", "180,240", "--point", "480,250")[0] == 0
    data, got = masks(r2)
    assert list(got) == [0] and data["changed"] == [0] and data["removed"] == [1]
    assert iou(got[0], disc | box) > 0.97

    assert refine(ext_dir, r2, r3, path, "--action", "split", "--box", "380,130,600,370")[0] == 0
    data, got = masks(r3)
    assert sorted(data["changed"]) == [0, 2]  # the rest keeps its id, the part gets a new one
    assert iou(got[0], disc) > 0.97 and iou(got[2], box) > 0.95
    assert [p["action"] for p in data["prompts"]] == ["add", "merge", "split"]

    assert refine(ext_dir, r3, r4, path, "--action", "remove", "--point", "180,240,+")[0] == 0
    data, got = masks(r4)
    assert list(got) == [2] and data["removed"] == [0] and data["changed"] == []
    assert not (r4 / "mask_000.png").exists()


def test_paint_strokes_fix_an_outline(ext_dir, photo, tmp_path):
    """A box object whose right third the engine lost: a paint-in stroke over it brings it back,
    and a paint-out stroke takes a strip away again, leaving the rest of the outline alone."""
    path, disc, box = photo
    cols = np.nonzero(box.any(0))[0]
    cut = cols[0] + 2 * (cols[-1] - cols[0]) // 3
    partial = box.copy()
    partial[:, cut:] = False
    base = tmp_path / "p0"
    labels = np.zeros(box.shape, np.uint8)
    labels[disc], labels[partial] = 1, 2
    Image.fromarray(labels).save(tmp_path / "labels.png")
    assert run_worker(ext_dir, "run", "--image", str(path), "--out", str(base), "--engine", "classic",
                      "--mask", str(tmp_path / "labels.png"))[0] == 0
    data, got = masks(base)
    target = next(i for i, m in got.items() if iou(m, partial) > 0.9)
    assert iou(got[target], box) < 0.8

    rows = np.nonzero(box.any(1))[0]
    stroke = np.zeros(box.shape, np.uint8)
    stroke[rows[0] + 10:rows[-1] - 10, cut + 8:cut + 24] = 255  # a stroke down the lost third
    strokes = write_mask(tmp_path / "in.png", stroke > 0)
    out = tmp_path / "p1"
    code, _, err = refine(ext_dir, base, out, path, "--action", "paint", "--strokes", str(strokes))
    assert code == 0, err
    data, got = masks(out)
    assert data["changed"] == [target]
    assert iou(got[target], box) > 0.95

    erase = np.zeros(box.shape, np.uint8)
    erase[rows[0]:rows[0] + 30, cols[0]:cols[-1] + 1] = 128  # paint out the top strip
    Image.fromarray(erase).save(tmp_path / "out.png")
    out2 = tmp_path / "p2"
    assert refine(ext_dir, out, out2, path, "--action", "paint", "--strokes", str(tmp_path / "out.png"),
                  "--target", str(target))[0] == 0
    _, got2 = masks(out2)
    assert not (got2[target] & (erase > 0)).any()
    assert iou(got2[target], box & ~(erase > 0)) > 0.95


def test_bad_prompts_are_one_sentence(ext_dir, photo, missed, tmp_path):
    path = photo[0]
    for args, code_name in (
        (("--action", "remove", "--point", "5,5"), "no_object_there"),
        (("--action", "add", "--point", "5000,5,+"), "bad_argument"),
        (("--action", "merge", "--point", "180,240"), "bad_argument"),
        (("--action", "add", "--point", "x,y"), "bad_argument"),
    ):
        code, events, _ = refine(ext_dir, missed, tmp_path / "bad", path, *args)
        assert code == 2, args
        assert events[-1]["event"] == "error" and events[-1]["code"] == code_name
        assert events[-1]["message"].endswith(".") and "\n" not in events[-1]["message"]
    code, events, _ = refine(ext_dir, tmp_path / "nowhere", tmp_path / "bad", path, "--action", "remove",
                             "--target", "0")
    assert code == 2 and events[-1]["code"] == "result_unreadable"


def test_serve_request_and_sidecar_give_the_same_masks(ext_dir, photo, missed, tmp_path):
    path, disc, box = photo
    with started_workers(ext_dir, ready_timeout=60) as start:
        w = start()
        events = w.request("a", ["refine", "--base", str(missed), "--out", str(tmp_path / "w1"), "--image",
                                 str(path), "--action", "add", "--point", "480,250,+"])
    assert events[-1]["event"] == "done" and events[-1]["exit_code"] == 0
    served = masks(tmp_path / "w1")[1][1]

    sidecar = tmp_path / "fix.json"
    sidecar.write_text(json.dumps({"corrections": [{"action": "add", "points": [[480, 250, 1]]}]}))
    out = tmp_path / "side"
    code, _, err = run_worker(ext_dir, "run", "--image", str(path), "--out", str(out), "--engine", "classic",
                              "--mask", str(tmp_path / "disc.png"), "--corrections", str(sidecar))
    assert code == 0, err
    data, got = masks(out)
    assert data["prompts"] == [{"action": "add", "points": [[480.0, 250.0, 1]], "segmenter": "grabcut"}]
    assert np.array_equal(got[1], served)

    sidecar.write_text(json.dumps({"corrections": [{"action": "shrink"}]}))
    code, events, _ = run_worker(ext_dir, "run", "--image", str(path), "--out", str(tmp_path / "x"),
                                 "--corrections", str(sidecar))
    assert code == 2 and events[-1]["code"] == "bad_argument" and not (tmp_path / "x" / "result.json").exists()


def test_paint_in_takes_pixels_from_the_object_that_had_them(ext_dir, photo, tmp_path):
    """The box's left third was given to the disc: painting it into the box (the stroke starts on the
    box) moves those pixels, and both objects come out whole."""
    path, disc, box = photo
    cols = np.nonzero(box.any(0))[0]
    rows = np.nonzero(box.any(1))[0]
    third = cols[0] + (cols[-1] - cols[0]) // 3
    labels = np.zeros(box.shape, np.uint8)
    labels[disc] = 1
    labels[box] = 2
    labels[:, :third][box[:, :third]] = 1
    Image.fromarray(labels).save(tmp_path / "wrong.png")
    base = tmp_path / "w0"
    assert run_worker(ext_dir, "run", "--image", str(path), "--out", str(base), "--engine", "classic",
                      "--mask", str(tmp_path / "wrong.png"))[0] == 0
    _, got = masks(base)
    d = next(i for i, m in got.items() if m[disc].all())
    b = next(i for i in got if i != d)
    stroke = np.zeros(box.shape, np.uint8)
    stroke[rows[0] + 5:rows[-1] - 5, cols[0] + 5:third + 30] = 255
    Image.fromarray(stroke).save(tmp_path / "s.png")
    code, _, err = refine(ext_dir, base, tmp_path / "w1", path, "--action", "paint", "--strokes",
                          str(tmp_path / "s.png"), "--point", f"{third + 20},{rows[0] + 40},+")
    assert code == 0, err
    data, got = masks(tmp_path / "w1")
    assert sorted(data["changed"]) == sorted([d, b])
    assert iou(got[b], box) > 0.95 and iou(got[d], disc) > 0.95


def _tiny_sam(folder):
    """A SAM with random weights in transformers' format (the released models' layout, tiny sizes)."""
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("transformers")
    torch.manual_seed(0)
    vision = tf.SamVisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_dim=64,
                                output_channels=32, global_attn_indexes=[1], window_size=4, num_pos_feats=16)
    prompt = tf.SamPromptEncoderConfig(hidden_size=32, image_embedding_size=64)
    decoder = tf.SamMaskDecoderConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_dim=64,
                                      iou_head_hidden_dim=32)
    config = tf.SamConfig(vision_config=vision.to_dict(), prompt_encoder_config=prompt.to_dict(),
                          mask_decoder_config=decoder.to_dict())
    tf.SamModel(config).eval().save_pretrained(folder)
    tf.SamProcessor(image_processor=tf.SamImageProcessor()).save_pretrained(folder)
    return folder


def test_learned_segmenter_runs_and_falls_back_to_grabcut(ext_dir, photo, missed, tmp_path):
    path, disc, box = photo
    sam = _tiny_sam(tmp_path / "sam")
    code, events, err = refine(ext_dir, missed, tmp_path / "l1", path, "--action", "add", "--box",
                               "390,140,565,355", "--segmenter", "learned", "--segmenter-model", str(sam))
    assert code == 0, err
    assert not [e for e in events if e["event"] == "warning"], events
    data, got = masks(tmp_path / "l1")
    assert data["prompts"][-1]["segmenter"] == "learned" and data["changed"] == [1]
    assert got[1].shape == box.shape and not (got[1] & disc).any()  # never over another object

    code, events, err = refine(ext_dir, missed, tmp_path / "l2", path, "--action", "add", "--point", "480,250,+",
                               "--segmenter", "learned", "--segmenter-model", str(tmp_path / "none"))
    assert code == 0, err
    assert [e["code"] for e in events if e["event"] == "warning"] == ["segmenter_unavailable"]
    data, got = masks(tmp_path / "l2")
    assert data["prompts"][-1]["segmenter"] == "grabcut" and iou(got[1], box) > 0.95
