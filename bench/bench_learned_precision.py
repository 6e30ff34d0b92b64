"""bfloat16 autocast (``--precision bfloat16``) against float32: the difference it makes, and its CPU time.

The default models at their published full size with random weights (``bench_learned.build_models``)
run through the transformers engine on the GrabCut photos, once with ``precision="full"`` and once
with ``"bfloat16"``, in one process with one torch thread (CPU seconds of each model's stage, the
median over the photos). Reported per photo: the depth difference at the photo's resolution (mean,
as a share of the float32 map's mean; largest, as a share of its largest value), the objects' labels
and their mask IoU. Random weights can exaggerate the difference: the released weights cannot be
downloaded on the machine that measures this.

    .venv/bin/python bench/bench_learned_precision.py [--images 5] [--results DIR]

Writes learned_precision.json and .md to ``--results`` (default /tmp/monocle-bench).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from bench_learned import IMAGES, build_models  # noqa: E402


def iou(a, b) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def compare(engines: dict, rgb) -> dict:
    """Both precisions on one photo: their CPU seconds and how far bfloat16 is from float32."""
    import numpy as np

    out: dict = {}
    for name, engine in engines.items():
        engine.segment(rgb, None, None, "all", quiet)  # the first pass of a model in a precision warms it up
        t = time.process_time()
        found = engine.segment(rgb, None, None, "all", quiet)
        seg_s = time.process_time() - t
        t = time.process_time()
        depth = engine.depth(rgb, found, quiet).values
        out[name] = (found, depth, seg_s, time.process_time() - t)
    (ref, ref_depth, *_), (got, got_depth, *_) = out["full"], out["bfloat16"]
    diff = np.abs(got_depth - ref_depth)
    return {
        "cpu_s": {name: {"segment": round(v[2], 3), "depth": round(v[3], 3)} for name, v in out.items()},
        "depth_mean_diff": round(float(diff.mean() / np.abs(ref_depth).mean()), 4),
        "depth_max_diff": round(float(diff.max() / np.abs(ref_depth).max()), 4),
        "labels": [[i.label for i in ref], [i.label for i in got]],
        "mask_iou": [round(max((iou(a.mask, b.mask) for b in got), default=0.0), 4) for a in ref],
    }


def quiet(*_args) -> None:
    pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=5)
    ap.add_argument("--results", type=Path, default=Path(tempfile.gettempdir()) / "monocle-bench")
    args = ap.parse_args()
    import numpy as np
    import torch
    from PIL import Image

    from inference.engines.hf import TransformersEngine
    from inference.engines.hf_runtime import native_bf16

    torch.set_num_threads(1)
    if not native_bf16():
        raise SystemExit("This CPU has no native bfloat16 (AMX or AVX-512 BF16): --precision bfloat16 does nothing.")
    with tempfile.TemporaryDirectory() as tmp:
        models = build_models(Path(tmp))
        engines = {p: TransformersEngine(depth_model=str(models["depth"]), seg_model=str(models["seg"]), device="cpu",
                                         online=False, precision=p, overlap=False) for p in ("full", "bfloat16")}
        rows = {}
        for photo in sorted(IMAGES.glob("*.jpg"))[: args.images]:
            rows[photo.name] = compare(engines, np.asarray(Image.open(photo).convert("RGB")))
            print(photo.name, rows[photo.name], file=sys.stderr)
    median = {p: {s: statistics.median(r["cpu_s"][p][s] for r in rows.values()) for s in ("segment", "depth")}
              for p in ("full", "bfloat16")}
    report = {"load_1min": os.getloadavg()[0], "cpu_s_median": median, "photos": rows}
    lines = [
        "# bfloat16 autocast against float32 (`bench/bench_learned_precision.py`)",
        "",
        "Random-weight Depth Anything V2 Small + Mask2Former Swin-T at full size; one torch thread; "
        f"1-minute load {report['load_1min']:.1f}. CPU s (median): segmentation "
        f"{median['full']['segment']:.2f} -> {median['bfloat16']['segment']:.2f}, depth "
        f"{median['full']['depth']:.2f} -> {median['bfloat16']['depth']:.2f}.",
        "",
        "| photo | depth mean diff (of mean) | depth max diff (of max) | same labels | mask IoU |",
        "|---|---:|---:|---|---|",
        *(f"| {name} | {r['depth_mean_diff']:.2%} | {r['depth_max_diff']:.2%} | {r['labels'][0] == r['labels'][1]} | "
          f"{', '.join(str(v) for v in r['mask_iou'])} |" for name, r in rows.items()),
    ]
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "learned_precision.json").write_text(json.dumps(report, indent=1))
    (args.results / "learned_precision.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
