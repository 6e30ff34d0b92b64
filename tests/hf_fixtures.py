"""Random-weight Hugging Face models built from configs, saved the way users get them.

No hub access here, so tests (and the learned-engine benchmark) build the models:
``tiny`` sizes for tests (a few hundred kB), and the real architectures of the default
models (Depth Anything V2 Small, Mask2Former Swin-T) for timing, with the same compute
as the released weights. A few biases are set so the outcome is known in advance
(a class that always wins, a prompt mask that covers or misses everything): random
weights otherwise give garbage, and tests must not depend on garbage.
"""

from __future__ import annotations

import shutil
from pathlib import Path

COCO_THINGS = (
    "person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant stop_sign "
    "parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe backpack umbrella handbag tie "
    "suitcase frisbee skis snowboard sports_ball kite baseball_bat baseball_glove skateboard surfboard "
    "tennis_racket bottle wine_glass cup fork knife spoon bowl banana apple sandwich orange broccoli carrot "
    "hot_dog pizza donut cake chair couch potted_plant bed dining_table toilet tv laptop mouse remote keyboard "
    "cell_phone microwave oven toaster sink refrigerator book clock vase scissors teddy_bear hair_drier toothbrush"
).split()
COCO_THINGS = tuple(name.replace("_", " ") for name in COCO_THINGS)
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def build_depth_anything(folder: Path, size: str = "tiny", metric: bool = False, seed: int = 0) -> Path:
    """A Depth Anything V2 model (DINOv2 backbone + DPT head) and its processor in ``folder``."""
    import torch
    import transformers as tf

    torch.manual_seed(seed)
    if size == "small":  # the released Depth-Anything-V2-Small-hf architecture: 24.8M parameters
        backbone = tf.Dinov2Config(hidden_size=384, num_attention_heads=6, num_hidden_layers=12, image_size=518,
                                  patch_size=14, out_indices=[3, 6, 9, 12], reshape_hidden_states=False)
        head = dict(fusion_hidden_size=64, head_hidden_size=32, neck_hidden_sizes=[48, 96, 192, 384],
                    reassemble_hidden_size=384)
    else:
        backbone = tf.Dinov2Config(hidden_size=32, num_attention_heads=2, num_hidden_layers=4, intermediate_size=64,
                                  image_size=518, patch_size=14, out_indices=[1, 2, 3, 4], reshape_hidden_states=False)
        head = dict(fusion_hidden_size=16, head_hidden_size=8, neck_hidden_sizes=[8, 16, 32, 32],
                    reassemble_hidden_size=32)
    extra = dict(depth_estimation_type="metric", max_depth=20) if metric else dict(depth_estimation_type="relative")
    config = tf.DepthAnythingConfig(backbone_config=backbone, patch_size=14, reassemble_factors=[4, 2, 1, 0.5],
                                   **head, **extra)
    model = tf.DepthAnythingForDepthEstimation(config).eval()
    if size != "small":
        with torch.no_grad():  # random init is ~0 after the ReLUs: lift it so depth is positive and varies
            for p in model.neck.parameters():
                p.mul_(2.0)
            for p in model.head.parameters():
                p.mul_(4.0)
            model.head.conv3.weight.mul_(50.0)
            model.head.conv3.bias.fill_(4.0 if not metric else 0.0)
    model.save_pretrained(folder)
    processor = tf.DPTImageProcessor(size={"height": 518, "width": 518}, keep_aspect_ratio=True, ensure_multiple_of=14,
                                     resample=3, do_pad=False, image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD)
    processor.save_pretrained(folder)
    return folder


def build_mask2former(
    folder: Path, size: str = "tiny", labels: tuple[str, ...] = COCO_THINGS, favour: str | None = None, seed: int = 0
) -> Path:
    """A Mask2Former (Swin backbone) instance model with ``labels`` and its processor in ``folder``.

    ``favour``: a label every query predicts with near certainty, or ``"nothing"`` for the
    no-object class; None keeps the random classifier.
    """
    import torch
    import transformers as tf

    torch.manual_seed(seed)
    id2label = dict(enumerate(labels))
    common = dict(num_labels=len(labels), id2label=id2label, label2id={v: k for k, v in id2label.items()})
    if size == "swin-tiny":  # the facebook/mask2former-swin-tiny-coco-instance architecture: 47.4M parameters
        swin = tf.SwinConfig(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=7,
                            out_features=["stage1", "stage2", "stage3", "stage4"])
        config = tf.Mask2FormerConfig(backbone_config=swin, **common)
    else:
        swin = tf.SwinConfig(embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=7,
                            out_features=["stage1", "stage2", "stage3", "stage4"])
        config = tf.Mask2FormerConfig(backbone_config=swin, hidden_dim=32, mask_feature_size=32, feature_size=32,
                                     encoder_layers=1, decoder_layers=2, dim_feedforward=64, num_queries=10,
                                     num_attention_heads=2, encoder_feedforward_dim=64, **common)
    model = tf.Mask2FormerForUniversalSegmentation(config).eval()
    if favour is not None:
        target = len(labels) if favour == "nothing" else labels.index(favour)
        with torch.no_grad():
            model.class_predictor.weight.zero_()
            model.class_predictor.bias.fill_(-10.0)
            model.class_predictor.bias[target] = 10.0
            # sharper mask logits, so a mask's mean probability (part of its score) is well above 0.5
            embedder = next(m for name, m in model.named_modules() if name.endswith("mask_embedder"))
            for p in list(embedder.children())[-1].parameters():
                p.mul_(20.0)
    model.save_pretrained(folder)
    tf.Mask2FormerImageProcessor(size={"shortest_edge": 384, "longest_edge": 1333}, size_divisor=32,
                                num_labels=len(labels), ignore_index=255, image_mean=IMAGENET_MEAN,
                                image_std=IMAGENET_STD).save_pretrained(folder)
    return folder


def build_clipseg(folder: Path, bias: float = 5.0, seed: int = 0) -> Path:
    """A tiny CLIPSeg model, tokenizer and processor; the mask logit everywhere is about ``bias``."""
    import torch
    import transformers as tf

    torch.manual_seed(seed)
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab: dict[str, int] = {}
    for token in ["<|startoftext|>", "<|endoftext|>", *letters, *(x + "</w>" for x in letters)]:
        vocab[token] = len(vocab)
    tokenizer = tf.CLIPTokenizer(vocab=vocab, merges=[])
    config = tf.CLIPSegConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77, bos_token_id=0, eos_token_id=1,
                         pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2,
                           image_size=224, patch_size=16),
        projection_dim=16, reduce_dim=16, extract_layers=[0, 1, 2], decoder_num_attention_heads=2,
        decoder_intermediate_size=32,
    )
    model = tf.CLIPSegForImageSegmentation(config).eval()
    last = [m for m in model.decoder.modules() if isinstance(m, torch.nn.ConvTranspose2d)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(bias)
    model.save_pretrained(folder)
    image_processor = tf.ViTImageProcessor(size={"height": 352, "width": 352}, image_mean=IMAGENET_MEAN,
                                          image_std=IMAGENET_STD, resample=2)
    tf.CLIPSegProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def install_in_hub_cache(cache_dir: Path, repo_id: str, folder: Path, commit: str = "0123456789abcdef" * 2 + "01234567"
                         ) -> Path:
    """Lay ``folder`` out as the Hugging Face hub cache holds a downloaded ``repo_id`` (refs/main -> snapshot)."""
    repo = cache_dir / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    shutil.copytree(folder, snapshot, dirs_exist_ok=True)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


HF_CONFIGS = Path(__file__).parent / "data" / "hf_configs"


def _merge(base: dict, tiny: dict) -> dict:
    """``base`` with ``tiny``'s values written over it, nested dicts merged key by key."""
    out = dict(base)
    for key, value in tiny.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def fixture_info(name: str) -> dict:
    """``fixture.json`` of ``tests/data/hf_configs/<name>``: hub id, task, sources, scaled-down values."""
    import json

    return json.loads((HF_CONFIGS / name / "fixture.json").read_text())


def build_from_fixture(name: str, folder: Path, seed: int = 0, prompt_bias: float = -6.0, full: bool = False,
                       favour: str | None = None) -> Path:
    """A random-weight model made from a published config (scaled down as its fixture says) in ``folder``.

    The processor files are the published ones, copied unchanged, so the engine and the
    reference path read the same values a user's download holds. ``full`` keeps the published
    architecture at its own size (the released model's compute, for timing); ``favour``: a
    segmentation class every query predicts, so a timed run never falls back to the classic cut-out.
    """
    import json

    import torch
    import transformers as tf

    src = HF_CONFIGS / name
    info = fixture_info(name)
    values = json.loads((src / "config.json").read_text())
    if not full:
        values = _merge(values, info.get("tiny", {}))
    model_type = values.pop("model_type")
    torch.manual_seed(seed)
    config = tf.AutoConfig.for_model(model_type, **values)
    model = getattr(tf, values["architectures"][0])(config).eval()
    _liven(model, info["task"], prompt_bias)
    if favour is not None:
        with torch.no_grad():
            model.class_predictor.bias.fill_(-10.0)
            model.class_predictor.bias[int(config.label2id[favour])] = 10.0
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    shutil.copy(src / "preprocessor_config.json", folder / "preprocessor_config.json")
    if info["task"] == "prompt":
        letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
        vocab: dict[str, int] = {}
        for token in ["<|startoftext|>", "<|endoftext|>", *letters, *(x + "</w>" for x in letters)]:
            vocab[token] = len(vocab)
        tf.CLIPTokenizer(vocab=vocab, merges=[]).save_pretrained(folder)
    return folder


def _liven(model, task: str, prompt_bias: float) -> None:
    """Random weights with outputs worth comparing: varied depth, confident classes, sharp masks."""
    import torch

    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        if task == "depth":  # random init is ~0 after the head's ReLUs: spread it so depth varies
            for p in model.parameters():
                if p.ndim > 1:
                    p.normal_(0.0, 2.0 / max(1, p[0].numel()) ** 0.5, generator=gen)
        elif task == "segmentation":
            model.class_predictor.weight.normal_(0.0, 1.0, generator=gen)
            model.class_predictor.bias.normal_(0.0, 6.0, generator=gen)
            for i, name in model.config.id2label.items():  # fewer background winners: objects to compare
                if name.endswith(("-merged", "-other", "-stuff")) or i >= len(COCO_THINGS):
                    model.class_predictor.bias[int(i)] -= 7.0
            embedder = next(m for n, m in model.named_modules() if n.endswith("mask_embedder"))
            for p in list(embedder.children())[-1].parameters():
                p.mul_(20.0)
        elif task == "prompt":  # a map of patch-sized blobs (not pixel noise) with a clear, unsaturated maximum
            ups = [m for m in model.decoder.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
            for up in ups:
                up.weight.copy_(up.weight.mean((2, 3), keepdim=True).expand_as(up.weight))
            ups[-1].weight.mul_(0.6)
            ups[-1].bias.fill_(prompt_bias)
