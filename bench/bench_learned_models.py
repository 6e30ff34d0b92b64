"""Cold and warm seconds and peak memory of every advertised learned model, through the real worker.

Each model in ``inference.models.KNOWN_MODELS`` runs on one photo (a 4:3 photo at 1600x1200 by
default, analysed at the worker's default ``--max-size`` of 1024). A model on disk (Monocle's
model cache or the user's Hugging Face cache) runs with its released weights. Otherwise, where
``tests/data/hf_configs`` holds its published ``config.json`` and ``preprocessor_config.json``, the
model is built at that full published size with random weights, saved with ``save_pretrained``
and loaded through the worker's own loading code: the compute and memory are the released
model's (they are set by the architecture and the input size), the outputs are meaningless, so
quality is not measured here. A segmentation model's classifier is biased to one class and the
prompt model's map lifted, so no run falls back to the classic cut-out or finds nothing.

Measured per model: cold is one ``python -m inference run`` process from spawn to exit
(interpreter start, imports, model load, one image, writing); warm is the second of two identical
requests to one ``serve`` worker running one torch thread (its own ``timings``: the whole request and
the model's stage, and the CPU seconds of that request, which are the model's work whatever else
runs on the machine); peak memory is each process's maximum resident set size. A depth model runs with a mask given
(depth only), a segmentation or prompt model with a depth file given (segmentation only). Other
jobs share the reference machine, so each run's share of the CPUs (CPU time / wall time / CPUs)
is recorded with its CPU seconds.

Usage: ``python bench/bench_learned_models.py [--device cpu] [--image PATH] [--only ID_PART]``
(also run by ``bench/bench_learned.py``; ``--only`` measures the models whose id contains the text).
Writes ``bench/results/learned_models.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from bench_learned import IMAGES, RESULTS, check, machine_share, make_mask, result_of, spawn  # noqa: E402

from inference.models import KNOWN_MODELS, default_cache_dir, find_model, is_moge_model, shared_caches  # noqa: E402

INPUT_NOTE = {"segmentation": "384x384 (own processor)", "prompt": "352x352 (own processor)"}
PROMPT = "banana"  # what the prompt model looks for in the bench photo
PHOTO_SIZE = (1600, 1200)
FAVOUR = "person"  # the class a random-weight segmentation model is biased to
WARM_THREADS = 1


def published_fixture(model_id: str) -> str | None:
    """The ``tests/data/hf_configs`` folder holding ``model_id``'s published configs, if any."""
    from hf_fixtures import HF_CONFIGS

    for info in sorted(HF_CONFIGS.glob("*/fixture.json")):
        if json.loads(info.read_text()).get("id") == model_id:
            return info.parent.name
    return None


def build_full_size(model_id: str, folder: Path) -> Path | None:
    """``model_id`` at its published full size with random weights in ``folder`` (None: no published config here)."""
    from hf_fixtures import build_from_fixture, fixture_info

    name = published_fixture(model_id)
    if name is None:
        return None
    task = fixture_info(name)["task"]
    return build_from_fixture(name, folder, full=True, prompt_bias=2.0,
                              favour=FAVOUR if task == "segmentation" else None)


def analysed_size(photo: Path, max_size: int = 1024) -> tuple[int, int]:
    """(w, h) the worker analyses ``photo`` at with its default ``--max-size``."""
    from PIL import Image

    w, h = Image.open(photo).size
    f = min(1.0, max_size / max(w, h))
    return round(w * f), round(h * f)


def make_photo(folder: Path, size: tuple[int, int] = PHOTO_SIZE) -> Path:
    """The first GrabCut photo resampled to ``size`` (4:3 by default): a real photo at a phone-like size."""
    from PIL import Image

    src = sorted(IMAGES.glob("*.jpg"))[0]
    path = folder / f"{src.stem}-{size[0]}x{size[1]}.jpg"
    Image.open(src).convert("RGB").resize(size, Image.Resampling.LANCZOS).save(path, quality=92)
    return path


def gflops(folder: Path, task: str, size: tuple[int, int]) -> float:
    """Matmul, attention and convolution GFLOPs (torch's FlopCounterMode) of one forward pass on a photo
    analysed at ``size`` (w, h), through the model's own processor: the cost no other job can change."""
    import numpy as np
    import torch
    import transformers as tf
    from torch.utils.flop_counter import FlopCounterMode

    rgb = np.zeros((size[1], size[0], 3), np.uint8)
    if task == "prompt":
        inputs = tf.AutoProcessor.from_pretrained(folder)(text=[PROMPT], images=[rgb], return_tensors="pt",
                                                          padding=True)
    else:
        inputs = tf.AutoImageProcessor.from_pretrained(folder)(images=rgb, return_tensors="pt")
    inputs = {k: v for k, v in inputs.items() if k in ("pixel_values", "pixel_mask", "input_ids", "attention_mask")}
    config = tf.AutoConfig.from_pretrained(folder)
    cls = getattr(tf, config.architectures[0])
    try:  # on the meta device nothing is computed
        with torch.device("meta"):
            model = cls(config).eval()
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            model(**{k: v.to("meta") for k, v in inputs.items()})
    except (RuntimeError, NotImplementedError):  # a model whose forward reads values: count a real pass
        model = cls.from_pretrained(folder).eval()
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            model(**inputs)
    return round(counter.get_total_flops() / 1e9, 1)


def model_args(model, photo: Path, out: Path, folder: Path, device: str, mask: Path, depth: Path) -> list[str]:
    """The worker command line that runs ``model`` (a KnownModel) and nothing else learned."""
    args = ["run", "--image", str(photo), "--out", str(out), "--device", device, "--offline"]
    if model.task == "depth":
        engine = "moge" if is_moge_model(model.id) else "transformers"
        return args + ["--engine", engine, "--depth-model", str(folder), "--mask", str(mask)]
    args += ["--engine", "transformers", "--depth", str(depth), "--depth-kind", "relative-inverse"]
    if model.task == "prompt":
        return args + ["--prompt", PROMPT, "--prompt-model", str(folder)]
    return args + ["--seg-model", str(folder)]


def measure(model, folder: Path, photo: Path, tmp: Path, device: str) -> dict:
    import numpy as np
    from PIL import Image

    mask = make_mask(photo, tmp)
    depth = tmp / "flat-depth.npy"
    w, h = Image.open(photo).size
    np.save(depth, np.ones((h, w), np.float32))
    wall, code, events, rss, err = spawn(model_args(model, photo, tmp / "cold", folder, device, mask, depth))
    check(code, events, err)
    cold = result_of(events)
    cold_cpu = events[-1]["cpu_s"]
    requests = [{"id": str(i), "args": model_args(model, photo, tmp / f"warm-{i}", folder, device, mask, depth)}
                for i in range(2)]
    done: list[dict] = []

    def next_request(event: dict | None) -> dict | None:
        if event is not None:
            done.append(event)
        return requests[len(done)] if len(done) < len(requests) else None

    os.environ["MONOCLE_THREADS"] = str(WARM_THREADS)  # one torch thread: its CPU time is the work, not the waits
    try:
        _, code, events, serve_rss, err = spawn(["serve", "--idle-timeout", "60"], next_request)
    finally:
        os.environ.pop("MONOCLE_THREADS", None)
    check(code, events, err)
    if any(d["exit_code"] != 0 for d in done):
        raise SystemExit(f"serve request failed for {model.id}: {events[-3:]}\n{err[-2000:]}")
    warm = result_of([e for e in events if e.get("id") == "1"])
    stage = "depth" if model.task == "depth" else "segment"
    warm_cpu = None
    if done[1].get("cpu_total_s") is not None and done[0].get("cpu_total_s") is not None:
        warm_cpu = done[1]["cpu_total_s"] - done[0]["cpu_total_s"]
    warnings = sorted({e["code"] for e in events if e.get("event") == "warning"})
    row = {
        "measured": True, "cold_s": round(wall, 3), "cold_cpu_s": round(cold_cpu, 3),
        "cold_share": machine_share(cold_cpu, wall),
        "cold_imports_s": round(cold["timings"].get("imports", 0), 3),
        "cold_model_load_s": round(cold["timings"].get("model_load", 0), 3),
        "warm_s": round(warm["timings"]["total"], 3), f"warm_{stage}_s": round(warm["timings"][stage], 3),
        "warm_stage_s": round(warm["timings"][stage], 3),
        "warm_cpu_s": None if warm_cpu is None else round(warm_cpu, 3),
        "warm_share": machine_share(warm_cpu, done[1]["seconds"]), "warm_threads": WARM_THREADS,
        "peak_rss_cold_mb": round(rss, 1), "peak_rss_serve_mb": round(serve_rss, 1),
        "photo_size": [warm["image"]["width"], warm["image"]["height"]],
        "warnings": warnings,
    }
    if model.task == "depth":
        row["model_input"] = warm["depth"].get("extra", {}).get("input_size")
    return row


def per_model(device: str, photo: Path, only: str | None = None) -> list[dict]:
    """One row per advertised model: measured with released or random weights, or why not."""
    cache = default_cache_dir()
    looked = " and ".join(str(c) for c in (cache, *shared_caches(cache)))
    rows = []
    for model in KNOWN_MODELS:
        if only and only.lower() not in model.id.lower():
            continue
        row = {"id": model.id, "task": model.task, "name": model.name, "download_mb": model.download_mb,
               "parameters_m": model.parameters_m, "engine": "moge" if is_moge_model(model.id) else "transformers"}
        found = find_model(model.id, cache)
        with tempfile.TemporaryDirectory(prefix="monocle-bench-model-") as tmp:
            folder = found.path if found is not None else None
            if folder is not None:
                row["weights"] = "released"
            else:
                t = time.perf_counter()
                folder = build_full_size(model.id, Path(tmp) / "model")
                row["weights"] = "random, published full-size config"
                row["build_s"] = round(time.perf_counter() - t, 1)
            if folder is None:
                why = ("MoGe-2's network is not in transformers and its config ships inside the checkpoint"
                       if is_moge_model(model.id) else "no published config in tests/data/hf_configs")
                row.update(measured=False, weights=None,
                           why=f"not on disk here (looked in {looked}), and a full-size random copy cannot be built: "
                               f"{why}")
            else:
                row["size_on_disk_mb"] = round(sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file())
                                               / 1e6, 1)
                row["load_before"] = round(os.getloadavg()[0], 2)
                row.update(measure(model, Path(folder), photo, Path(tmp), device))
                if not is_moge_model(model.id):
                    row["gflops"] = gflops(Path(folder), model.task, analysed_size(photo))
        print(f"{model.id}: {row.get('why') or row}", file=sys.stderr, flush=True)
        rows.append(row)
    return rows


def markdown(rows: list[dict], device: str, photo: Path, size: tuple[int, int] | None = None) -> str:
    shown = f"{photo.name}" + (f", {size[0]}x{size[1]}" if size else "")
    lines = [
        f"## Per advertised model (`bench/bench_learned_models.py`, device `{device}`, photo {shown})",
        "",
        "Weights: `released` where the model is on disk, else **random weights** in the published full-size "
        "architecture (its config.json and preprocessor_config.json as published): speed and memory are the "
        "released model's, which the architecture and input size set; quality is not measured. Cold: one worker "
        "process, spawn to exit, default torch threads. Warm: the second request to a serve worker running one "
        "torch thread (`MONOCLE_THREADS=1`): its CPU seconds are the model's work, little changed by other jobs "
        "(they still slow a thread that shares its core), so compare models by them. CPU share: CPU time / wall "
        "time / CPUs (1.0: the whole machine). "
        "GFLOP: matmul, attention and convolution work of one forward pass (torch's FlopCounterMode), which no "
        "other job can change.",
        "",
        "| model | task | weights | model input | GFLOP per image | cold s (CPU share) | "
        "warm request s, 1 thread (CPU share) | warm request, CPU s of 1 thread | peak MB (cold / serve) |",
        "|---|---|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        if not r["measured"]:
            lines.append(f"| {r['name']} | {r['task']} | | | | not measured: {r['why']} | | | |")
            continue
        given = r.get("model_input")
        shown_input = "x".join(map(str, given)) if given else INPUT_NOTE.get(r["task"], "own size")
        weights = "random" if r["weights"].startswith("random") else r["weights"]
        lines.append(
            f"| {r['name']} | {r['task']} | {weights} | {shown_input} | {r.get('gflops', '')} | "
            f"{r['cold_s']} ({r['cold_share']}) | "
            f"{r['warm_s']} ({r['warm_share']}) | {r.get('warm_cpu_s')} | "
            f"{r['peak_rss_cold_mb']:.0f} / {r['peak_rss_serve_mb']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda", "mps"))
    parser.add_argument("--image", type=Path, default=None, help="default: a GrabCut photo at 1600x1200")
    parser.add_argument("--only", default=None, help="measure only models whose id contains this")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="monocle-bench-photo-") as tmp:
        photo = args.image or make_photo(Path(tmp))
        rows = per_model(args.device, photo, args.only)
        from PIL import Image

        size = Image.open(photo).size
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "learned_models.json").write_text(json.dumps(
        {"device": args.device, "image": photo.name, "image_size": list(size), "cpus": os.cpu_count(),
         "models": rows}, indent=1))
    text = markdown(rows, args.device, photo, size)
    (args.out / "learned_models.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
