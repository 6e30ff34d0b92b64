"""Every advertised learned model against transformers' reference path.

Each model is built from its published ``config.json`` and ``preprocessor_config.json``
(``tests/data/hf_configs``; architecture scaled down, random weights). The reference is what
the model card does: the model's own image processor at its own size, the model, then the
processor's own ``post_process_*``. The engine must give the same numbers:

- depth maps at the photo's resolution: max |engine - reference| <= DEPTH_RTOL x max |reference|
  (relative-inverse maps are compared after clamping at 0, the engine's one documented guard);
- Mask2Former: every object is a reference segment with the same class and score (SCORE_ATOL),
  and its mask is that segment's mask less the pixels of more confident objects, pixel for pixel;
  every reference segment left out is background, tiny or mostly covered (hf_segment's rules);
- CLIPSeg: the masks are the connected parts of the reference probability map above the
  threshold, pixel for pixel, scores within SCORE_ATOL.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import MODULE
from PIL import Image

torch = pytest.importorskip("torch")
tf = pytest.importorskip("transformers")

from hf_fixtures import HF_CONFIGS, build_from_fixture, fixture_info, install_in_hub_cache

DEPTH_RTOL = 1e-5
SCORE_ATOL = 1e-5
THRESHOLD = 0.3  # lower than the default 0.5, so random weights give several objects to compare
DEPTH = ["depth-anything-v2-small", "depth-anything-v2-base", "depth-anything-v2-large",
         "depth-anything-v2-metric-indoor-small", "depth-anything-v2-metric-outdoor-small", "dpt-large"]
SEGMENTATION = ["mask2former-swin-tiny-coco-instance", "mask2former-swin-tiny-coco-panoptic"]
NOT_ADVERTISED = ["depth-pro", "zoedepth-nyu-kitti"]

hf = importlib.import_module(MODULE + ".inference.engines.hf")
seg = importlib.import_module(MODULE + ".inference.engines.hf_segment")
models = importlib.import_module(MODULE + ".inference.models")
protocol = importlib.import_module(MODULE + ".inference.protocol")


def _quiet(*_args) -> None:
    pass


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A 4:3 photo-like image larger than the models' reference sizes (640x480): smooth shapes and texture."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:480, 0:640].astype(np.float32)
    img = np.stack([xx / 640 * 200, yy / 480 * 180, 100 + 80 * np.sin(xx / 40) * np.cos(yy / 30)], -1)
    img[(xx - 400) ** 2 + (yy - 260) ** 2 < 110**2] = (220, 40, 40)
    img[80:200, 60:260] = (30, 160, 60)
    img += rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("parity")
    cache: dict[str, Path] = {}

    def get(name: str, **kwargs) -> Path:
        key = name + json.dumps(kwargs, sort_keys=True)
        if key not in cache:
            cache[key] = build_from_fixture(name, root / f"{name}-{len(cache)}", **kwargs)
        return cache[key]

    return get


def _reference(folder: Path, processor_cls=None):
    config = tf.AutoConfig.from_pretrained(folder)
    model = getattr(tf, config.architectures[0]).from_pretrained(folder).eval()
    processor = (processor_cls or tf.AutoImageProcessor).from_pretrained(folder)
    return model, processor


def test_every_advertised_model_has_a_fixture():
    # MoGe runs as an ONNX export through onnxruntime, not transformers: its fixture is the ONNX graph
    # tests/moge_fixtures.py builds with the export's inputs and outputs (tests/test_moge.py)
    advertised = {m.id for m in models.known_models() if not models.is_moge_model(m.id)}
    fixtures = {fixture_info(p.name)["id"]: p.name for p in HF_CONFIGS.iterdir() if (p / "fixture.json").is_file()}
    assert advertised <= set(fixtures), advertised - set(fixtures)
    for name in NOT_ADVERTISED:
        info = fixture_info(name)
        assert info["advertised"] is False and info["why_not"]
        assert info["id"] not in advertised
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert "Depth Pro" in readme and "ZoeDepth" in readme and "torchvision" in readme


@pytest.mark.parametrize("name", DEPTH)
def test_depth_matches_reference(name, built, photo):
    folder = built(name)
    model, processor = _reference(folder)
    inputs = processor(images=Image.fromarray(photo), return_tensors="pt")
    with torch.no_grad():
        out = model(**inputs)
    ref = processor.post_process_depth_estimation(out, target_sizes=[photo.shape[:2]])[0]["predicted_depth"]
    ref = ref.float().numpy()

    engine = hf.TransformersEngine(depth_model=str(folder), device="cpu", online=False)
    got = engine.depth(photo, [], _quiet)
    assert got.values.shape == photo.shape[:2]
    expected = ref if got.kind == "metric" else np.maximum(ref, 0.0)
    assert got.kind == ("metric" if "metric" in name else "relative_inverse")
    assert float(expected.std()) > 1e-3 * float(np.abs(expected).max())  # a map worth comparing
    err = float(np.abs(got.values - expected).max())
    assert err <= DEPTH_RTOL * float(np.abs(expected).max()), err
    w, h = got.extra["input_size"]
    assert (h, w) == tuple(inputs["pixel_values"].shape[-2:])
    if name.startswith("depth-anything"):
        assert min(h, w) == 518 and w % 14 == 0  # short side at 518, as Depth Anything V2's reference puts it


def test_depth_size_is_an_option_off_by_default(built, photo):
    folder = built("depth-anything-v2-small")
    default = hf.TransformersEngine(depth_model=str(folder), device="cpu", online=False)
    assert default.settings()["depth_size"] is None
    fast = hf.TransformersEngine(depth_model=str(folder), device="cpu", online=False, depth_size=266)
    got = fast.depth(photo, [], _quiet)
    assert got.values.shape == photo.shape[:2]
    w, h = got.extra["input_size"]
    assert min(h, w) == 266 and w % 14 == 0


@pytest.mark.parametrize("name", SEGMENTATION)
def test_segmentation_matches_reference(name, built, photo):
    folder = built(name)
    model, processor = _reference(folder)
    inputs = processor(images=Image.fromarray(photo), return_tensors="pt")
    assert tuple(inputs["pixel_values"].shape[-2:]) == (384, 384)  # the published size squashes the photo
    with torch.no_grad():
        out = model(**inputs)
    shape = photo.shape[:2]
    labels = {int(k): v for k, v in model.config.id2label.items()}
    if name.endswith("panoptic"):
        result = processor.post_process_panoptic_segmentation(
            out, threshold=THRESHOLD, label_ids_to_fuse=set(), target_sizes=[shape])[0]
        ref = [((result["segmentation"] == s["id"]).numpy(), s["label_id"], s["score"])
               for s in result["segments_info"]]
    else:
        result = processor.post_process_instance_segmentation(
            out, threshold=THRESHOLD, target_sizes=[shape], return_binary_maps=True)[0]
        ref = [(result["segmentation"][i].numpy() > 0.5, s["label_id"], s["score"])
               for i, s in enumerate(result["segments_info"])]
    assert ref, "the fixture should give the reference something to find"

    engine = hf.TransformersEngine(seg_model=str(folder), device="cpu", online=False, threshold=THRESHOLD)
    got = engine.segment(photo, None, None, "all", _quiet)
    assert engine.seg_source == "model" and got
    claimed = np.zeros(shape, dtype=bool)
    matched = set()
    for inst in got:  # most confident first
        k = next(i for i, (_, label_id, score) in enumerate(ref)
                 if label_id == inst.extra["class_id"] and abs(score - inst.score) <= SCORE_ATOL and i not in matched)
        matched.add(k)
        mask, label_id, _ = ref[k]
        assert inst.label == seg.plain_label(labels[label_id])
        assert np.array_equal(inst.mask, mask & ~claimed)
        claimed |= inst.mask
    least = seg.min_area(shape)
    for k, (mask, label_id, _) in enumerate(ref):
        if k in matched:
            continue
        own = int((mask & ~claimed).sum())  # claimed so far is an upper bound of what it could keep
        assert seg.is_background(labels[label_id]) or own < least or own < seg.OVERLAP_KEEP * int(mask.sum())


@pytest.mark.parametrize("bias", [-6.0, -9.0])
def test_prompt_matches_reference(bias, built, photo):
    folder = built("clipseg-rd64-refined", prompt_bias=bias)
    model, processor = _reference(folder, tf.AutoProcessor)
    inputs = processor(text=["cup"], images=[Image.fromarray(photo)], return_tensors="pt", padding=True)
    with torch.no_grad():
        logits = model(**inputs).logits
    prob = torch.nn.functional.interpolate(logits.sigmoid()[None], size=photo.shape[:2], mode="bilinear",
                                           align_corners=False)[0, 0].numpy()
    if bias < -8:  # a soft map: its maximum is below the old fixed threshold (0.4) and the object is still found
        assert 0.1 < prob.max() < 0.4
    threshold = max(seg.PROMPT_FLOOR, seg.PROMPT_RELATIVE * float(prob.max()))
    expected = seg.components(prob >= threshold, seg.min_area(photo.shape[:2]))

    engine = hf.TransformersEngine(prompt="cup", prompt_model=str(folder), device="cpu", online=False)
    got = engine.segment(photo, None, None, "all", _quiet)
    assert len(got) == len(expected) > 0
    for inst, mask in zip(got, expected):
        assert inst.label == "cup"
        assert np.array_equal(inst.mask, mask)
        assert abs(inst.score - float(prob[mask].mean())) <= SCORE_ATOL


def test_prompt_that_matches_nothing_finds_nothing(built, photo):
    folder = built("clipseg-rd64-refined", prompt_bias=-30.0)
    engine = hf.TransformersEngine(prompt="cup", prompt_model=str(folder), device="cpu", online=False)
    with pytest.raises(protocol.WorkerError) as err:
        engine.segment(photo, None, None, "all", _quiet)
    assert err.value.code == "no_object"


@pytest.mark.parametrize("name", NOT_ADVERTISED)
def test_models_that_need_torchvision_say_so(name, built, tmp_path, photo):
    if tf.utils.is_torchvision_available():
        pytest.skip("torchvision is installed here")
    if name == "depth-pro":  # only the processor matters: the model never loads without it
        folder = tmp_path / name
        folder.mkdir()
        for file in ("config.json", "preprocessor_config.json"):
            (folder / file).write_text((HF_CONFIGS / name / file).read_text())
        from safetensors.torch import save_file

        save_file({"unused": torch.zeros(1)}, str(folder / "model.safetensors"))
    else:
        folder = built(name)
    engine = hf.TransformersEngine(depth_model=str(folder), device="cpu", online=False)
    with pytest.raises(protocol.WorkerError) as err:
        engine.depth(photo, [], _quiet)
    assert err.value.code == "engine_unavailable"
    assert "torchvision" in err.value.message and "download may be incomplete" not in err.value.message


def test_half_precision_nan_retries_in_full_precision(built, photo):
    folder = built("depth-anything-v2-small")
    warnings = []

    class Emit:
        def warning(self, code, message):
            warnings.append(code)

    engine = hf.TransformersEngine(depth_model=str(folder), device="cpu", online=False, emit=Emit())
    reference = engine.depth(photo, [], _quiet).values
    lm = hf.RUNTIME.models["depth"]
    lm.model.to(dtype=torch.float16)
    lm.dtype = torch.float16

    def poison(module, args, output):  # what an overflowing half-precision pass gives
        if next(module.parameters()).dtype == torch.float16:
            output.predicted_depth.fill_(float("nan"))
        return output

    hook = lm.model.register_forward_hook(poison)
    try:
        got = engine.depth(photo, [], _quiet)
    finally:
        hook.remove()
    assert warnings == ["half_precision_unstable"]
    assert lm.dtype == torch.float32
    assert np.isfinite(got.values).all()
    # the weights went through half precision and back: equal to that rounding
    assert float(np.abs(got.values - reference).max()) <= 5e-2 * float(np.abs(reference).max())


def test_empty_model_folder_reuses_the_hugging_face_cache(built, tmp_path, monkeypatch):
    folder = built("depth-anything-v2-metric-indoor-small")
    own, user = tmp_path / "monocle-models", tmp_path / "hf-home" / "hub"
    own.mkdir()
    repo = "depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf"
    install_in_hub_cache(user, repo, folder)
    monkeypatch.setenv("HF_HUB_CACHE", str(user))
    monkeypatch.delenv("MONOCLE_REUSE_HF_CACHE", raising=False)
    found = models.resolve(repo, cache_dir=own, online=False)
    assert found.source == "cache" and found.path.is_relative_to(user)
    row = next(r for r in models.model_table(own) if r["id"] == repo)
    assert row["downloaded"]
    monkeypatch.setenv("MONOCLE_REUSE_HF_CACHE", "0")  # a Model Folder is set: only that folder counts
    with pytest.raises(protocol.WorkerError) as err:
        models.resolve(repo, cache_dir=own, online=False)
    assert err.value.code == "model_missing"


@pytest.mark.parametrize(("confident", "shape"), [((0, 3, 7), (480, 640)), ((), (480, 640)),
                                                  (tuple(range(10)), (480, 640)), (tuple(range(10)), (150, 200)),
                                                  ((1, 4, 6, 9), (768, 1024))])
def test_instance_post_processing_of_the_confident_queries_only_is_the_reference(confident, shape, built, photo):
    folder = built("mask2former-swin-tiny-coco-instance")
    model, processor = _reference(folder)
    with torch.no_grad():
        out = model(**processor(images=photo, return_tensors="pt"))
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(out.class_queries_logits.shape, generator=gen)  # no class near 0.5: none passes
    for q in confident:  # a clear class for these queries; some masks may still score under the threshold
        logits[0, q, (7 * q) % 80] = 9.0
    out.class_queries_logits = logits
    out.masks_queries_logits = out.masks_queries_logits.float() * 8.0
    result = processor.post_process_instance_segmentation(out, threshold=0.5, target_sizes=[shape],
                                                          return_binary_maps=True)[0]
    ref = sorted(((s["score"], s["label_id"], result["segmentation"][i].numpy() > 0.5)
                  for i, s in enumerate(result["segments_info"])), key=lambda r: -r[0])
    pruned = seg.confident_queries(out, 0.5)
    assert pruned.class_queries_logits.shape[1] == max(1, len(confident))
    got = sorted(((s["score"], s["label_id"], seg.full_mask(s))
                  for s in seg.reference_segments(processor, out, shape, 0.5, panoptic=False)), key=lambda r: -r[0])
    assert len(got) == len(ref) and (len(ref) > 0) == bool(confident)
    for (gs, gl, gm), (rs, rl, rm) in zip(got, ref):
        assert gl == rl and abs(gs - rs) <= SCORE_ATOL and np.array_equal(gm, rm)


def test_instance_segments_keep_the_reference_order_below_half_threshold(built, photo):
    """Below 0.5 a query can pass with two classes and no query is pruned: the same segments, in the same
    order, as transformers' post-processing (the masks stay on the model's grid until asked for)."""
    folder = built("mask2former-swin-tiny-coco-instance")
    model, processor = _reference(folder)
    with torch.no_grad():
        out = model(**processor(images=photo, return_tensors="pt"))
    shape = photo.shape[:2]
    result = processor.post_process_instance_segmentation(out, threshold=THRESHOLD, target_sizes=[shape],
                                                          return_binary_maps=True)[0]
    got = seg.reference_segments(processor, out, shape, THRESHOLD, panoptic=False)
    assert len(got) == len(result["segments_info"]) > 1
    for i, (s, r) in enumerate(zip(got, result["segments_info"])):
        assert s["mask"].shape == (384, 384) and s["label_id"] == r["label_id"] and s["score"] == r["score"]
        assert np.array_equal(seg.full_mask(s), result["segmentation"][i].numpy() > 0.5)


# bfloat16 autocast (--precision bfloat16, off by default): a deliberate numeric difference, held to the bounds
# measured on these random-weight fixtures (and on the full-size ones: docs/learned-models.md). Random weights
# are chaotic: a close call between two classes or queries can go the other way, so only the most confident
# object is held to its float32 self.
BF16_DEPTH_MAX = 0.12  # largest depth difference, as a share of the float32 map's largest value
BF16_DEPTH_MEAN = 0.05  # mean depth difference, as a share of the float32 map's mean
BF16_IOU = 0.95  # the most confident object's mask, bfloat16 against float32


def _bf16_or_skip():
    runtime = importlib.import_module(MODULE + ".inference.engines.hf_runtime")
    if not runtime.native_bf16():
        pytest.skip("this CPU has no native bfloat16 (AMX or AVX-512 BF16)")
    hf.RUNTIME.models.clear()  # models an earlier test put through half precision (and so to float32 for good)


def test_bfloat16_depth_is_within_its_stated_tolerance(built, photo):
    _bf16_or_skip()
    folder = built("depth-anything-v2-small")
    full = hf.TransformersEngine(depth_model=str(folder), device="cpu", online=False, precision="full")
    fast = hf.TransformersEngine(depth_model=str(folder), device="cpu", online=False, precision="bfloat16")
    ref = full.depth(photo, [], _quiet).values
    assert full.runtime()["dtype"] == "float32"
    got = fast.depth(photo, [], _quiet).values
    assert fast.runtime()["dtype"] == "bfloat16-autocast" and fast.settings()["precision"] == "bfloat16"
    diff = np.abs(got - ref)
    assert 0 < float(diff.max()) <= BF16_DEPTH_MAX * float(np.abs(ref).max())  # different, and not by much
    assert float(diff.mean()) <= BF16_DEPTH_MEAN * float(np.abs(ref).mean())
    again = full.depth(photo, [], _quiet).values  # the same loaded model, back in float32: the reference again
    assert np.array_equal(again, ref)


def test_bfloat16_segmentation_finds_the_same_objects(built, photo):
    _bf16_or_skip()
    folder = built("mask2former-swin-tiny-coco-instance")
    ref = hf.TransformersEngine(seg_model=str(folder), device="cpu", online=False, threshold=THRESHOLD,
                                precision="full").segment(photo, None, None, "all", _quiet)
    got = hf.TransformersEngine(seg_model=str(folder), device="cpu", online=False, threshold=THRESHOLD,
                                precision="bfloat16").segment(photo, None, None, "all", _quiet)
    assert ref and got and got[0].label == ref[0].label
    assert abs(got[0].score - ref[0].score) <= 0.01
    assert (ref[0].mask & got[0].mask).sum() >= BF16_IOU * (ref[0].mask | got[0].mask).sum()


def test_bfloat16_nan_retries_in_full_precision(built, photo):
    _bf16_or_skip()
    folder = built("depth-anything-v2-small")
    warnings = []

    class Emit:
        def warning(self, code, message):
            warnings.append(code)

    reference = hf.TransformersEngine(depth_model=str(folder), device="cpu", online=False,
                                      precision="full").depth(photo, [], _quiet).values
    engine = hf.TransformersEngine(depth_model=str(folder), device="cpu", online=False, emit=Emit(),
                                   precision="bfloat16")

    def poison(module, args, output):  # what an overflowing bfloat16 pass gives
        if torch.is_autocast_enabled("cpu"):
            output.predicted_depth.fill_(float("inf"))
        return output

    hook = hf.RUNTIME.models["depth"].model.register_forward_hook(poison)
    try:
        got = engine.depth(photo, [], _quiet).values
    finally:
        hook.remove()
    assert warnings == ["half_precision_unstable"]
    assert engine.runtime()["dtype"] == "float32"
    assert np.array_equal(got, reference)  # the float32 weights were never touched: the reference exactly


def test_depth_beside_segmentation_is_collected_or_waited_for(built, photo):
    """On the CPU with two threads the depth pass runs beside segmentation: its map is the sequential one,
    and when segmentation fails the request waits for it and leaves nothing running."""
    import threading

    depth = str(built("depth-anything-v2-small"))
    sequential = hf.TransformersEngine(depth_model=depth, device="cpu", online=False, overlap=False)
    sequential.prepare(False, True, _quiet)
    ref = sequential.depth(photo, [], _quiet).values
    with torch_threads(2):
        engine = hf.TransformersEngine(depth_model=depth, seg_model=str(built("mask2former-swin-tiny-coco-instance")),
                                       device="cpu", online=False, threshold=THRESHOLD)
        engine.prepare(True, True, _quiet)
        found = engine.segment(photo, None, None, "all", _quiet)
        assert engine.overlapped and hf.RUNTIME.pending is not None
        got = engine.depth(photo, found, _quiet).values
        assert hf.RUNTIME.pending is None and torch.get_num_threads() == 2
        assert float(np.abs(got - ref).max()) <= DEPTH_RTOL * float(np.abs(ref).max())

        failing = hf.TransformersEngine(depth_model=depth, prompt="cup", device="cpu", online=False,
                                        prompt_model=str(built("clipseg-rd64-refined", prompt_bias=-30.0)))
        failing.prepare(True, True, _quiet)
        with pytest.raises(protocol.WorkerError):
            failing.segment(photo, None, None, "all", _quiet)
        assert failing.overlapped and hf.RUNTIME.pending is None
        assert not any(t.name == "monocle-depth" for t in threading.enumerate())
        assert torch.get_num_threads() == 2


def torch_threads(count):
    return importlib.import_module(MODULE + ".inference.engines.hf_overlap").torch_threads(count)
