"""Cold and warm seconds and peak memory of every advertised learned model, through the real worker.

Each model in ``inference.models.KNOWN_MODELS`` that is on disk (Monocle's model cache or the
user's Hugging Face cache) runs on one photo: cold is one ``python -m inference run`` process from
spawn to exit; warm is the second of two identical requests to one ``serve`` worker (its own
``timings.total``); peak memory is the maximum resident set size of each process. A depth model
runs with a mask given (depth only), a segmentation or prompt model with a depth file given
(segmentation only). MoGe runs in the ``moge`` engine (onnxruntime), the others in the
``transformers`` engine. A model that is not on disk is reported as not measured, with the reason:
nothing here downloads weights.

Usage: ``python bench/bench_learned_models.py [--device cpu] [--image PATH]`` (also run by
``bench/bench_learned.py``). Writes ``bench/results/learned_models.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_learned import IMAGES, RESULTS, check, make_mask, result_of, spawn  # noqa: E402

from inference.models import KNOWN_MODELS, default_cache_dir, find_model, is_moge_model, shared_caches  # noqa: E402

PROMPT = "banana"  # what the prompt model looks for in the bench photo


def model_args(model, photo: Path, out: Path, folder: Path, device: str, mask: Path, depth: Path) -> list[str]:  # noqa: ANN001
    """The worker command line that runs ``model`` (a KnownModel) and nothing else learned."""
    args = ["run", "--image", str(photo), "--out", str(out), "--device", device, "--offline"]
    if model.task == "depth":
        engine = "moge" if is_moge_model(model.id) else "transformers"
        return args + ["--engine", engine, "--depth-model", str(folder), "--mask", str(mask)]
    args += ["--engine", "transformers", "--depth", str(depth), "--depth-kind", "relative-inverse"]
    if model.task == "prompt":
        return args + ["--prompt", PROMPT, "--prompt-model", str(folder)]
    return args + ["--seg-model", str(folder), "--seg-mode", "foreground"]


def measure(model, folder: Path, photo: Path, tmp: Path, device: str) -> dict:  # noqa: ANN001
    import numpy as np
    from PIL import Image

    mask = make_mask(photo, tmp)
    depth = tmp / "flat-depth.npy"
    w, h = Image.open(photo).size
    np.save(depth, np.ones((h, w), np.float32))
    wall, code, events, rss, err = spawn(model_args(model, photo, tmp / "cold", folder, device, mask, depth))
    check(code, events, err)
    cold_timings = result_of(events)["timings"]
    requests = [{"id": str(i), "args": model_args(model, photo, tmp / f"warm-{i}", folder, device, mask, depth)}
                for i in range(2)]
    done: list[dict] = []

    def next_request(event: dict | None) -> dict | None:
        if event is not None:
            done.append(event)
        return requests[len(done)] if len(done) < len(requests) else None

    _, code, events, serve_rss, err = spawn(["serve", "--idle-timeout", "60"], next_request)
    check(code, events, err)
    if any(d["exit_code"] != 0 for d in done):
        raise SystemExit(f"serve request failed for {model.id}: {events[-3:]}\n{err[-2000:]}")
    warm = result_of([e for e in events if e.get("id") == "1"])["timings"]
    return {"measured": True, "cold_s": round(wall, 3),
            "cold_model_load_s": round(cold_timings.get("model_load", 0), 3),
            "warm_s": round(warm["total"], 3), "peak_rss_cold_mb": round(rss, 1),
            "peak_rss_serve_mb": round(serve_rss, 1)}


def per_model(device: str, photo: Path) -> list[dict]:
    """One row per advertised model: measured, or why not."""
    cache = default_cache_dir()
    looked = " and ".join(str(c) for c in (cache, *shared_caches(cache)))
    rows = []
    for model in KNOWN_MODELS:
        row = {"id": model.id, "task": model.task, "name": model.name, "download_mb": model.download_mb,
               "engine": "moge" if is_moge_model(model.id) else "transformers"}
        found = find_model(model.id, cache)
        if found is None:
            row.update(measured=False, why=f"not on disk here (looked in {looked})")
        else:
            with tempfile.TemporaryDirectory(prefix="monocle-bench-model-") as tmp:
                row.update(measure(model, found.path, photo, Path(tmp), device))
        print(f"{model.id}: {row.get('why') or row}", file=sys.stderr)
        rows.append(row)
    return rows


def markdown(rows: list[dict], device: str, photo: Path) -> str:
    lines = [
        f"## Per advertised model (`bench/bench_learned_models.py`, device `{device}`, photo {photo.name})",
        "",
        "| model | task | engine | cold s | warm s | peak MB (cold / serve) |",
        "|---|---|---|---:|---:|---|",
    ]
    for r in rows:
        if r["measured"]:
            lines.append(f"| {r['name']} | {r['task']} | {r['engine']} | {r['cold_s']} | {r['warm_s']} | "
                         f"{r['peak_rss_cold_mb']} / {r['peak_rss_serve_mb']} |")
        else:
            lines.append(f"| {r['name']} | {r['task']} | {r['engine']} | not measured: {r['why']} | | |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda", "mps"))
    parser.add_argument("--image", type=Path, default=None, help="default: the first GrabCut photo")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    photo = args.image or sorted(IMAGES.glob("*.jpg"))[0]
    rows = per_model(args.device, photo)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "learned_models.json").write_text(json.dumps({"device": args.device, "image": photo.name,
                                                              "models": rows}, indent=1))
    text = markdown(rows, args.device, photo)
    (args.out / "learned_models.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
