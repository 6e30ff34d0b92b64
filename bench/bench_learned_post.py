"""CPU seconds of Mask2Former's instance post-processing, on all queries and on the confident ones only.

The default segmentation model (Mask2Former Swin-T COCO instance, published full-size config,
random weights) runs once on a GrabCut photo; its class logits are then set so ``--confident``
of its 100 queries name a class clearly (a photo with that many objects) and the rest do not.
transformers' ``post_process_instance_segmentation`` is timed on the whole output (the reference)
and through ``hf_segment.reference_segments`` (the confident queries only), with one torch thread
and process CPU time (best of ``--repeat``), at the photo's size and at 1024 px on the long side.
Both must give the same segments, which the script checks.

Usage: ``python bench/bench_learned_post.py [--confident 5]`` -> ``bench/results/learned_post.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from bench_learned import IMAGES, RESULTS  # noqa: E402

from inference.engines import hf_segment  # noqa: E402


def best_cpu(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--confident", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    import numpy as np
    import torch
    import transformers as tf
    from hf_fixtures import build_from_fixture
    from PIL import Image

    torch.set_num_threads(1)
    photo = sorted(IMAGES.glob("*.jpg"))[0]
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_from_fixture("mask2former-swin-tiny-coco-instance", Path(tmp) / "m2f", full=True)
        processor = tf.AutoImageProcessor.from_pretrained(folder)
        model = tf.Mask2FormerForUniversalSegmentation.from_pretrained(folder).eval()
    with torch.inference_mode():
        out = model(**processor(images=rgb, return_tensors="pt"))
    logits = torch.randn(out.class_queries_logits.shape, generator=torch.Generator().manual_seed(0))
    for q in range(args.confident):
        logits[0, q * 7, q] = 9.0
    out.class_queries_logits = logits
    rows = []
    h, w = rgb.shape[:2]
    for shape in ((h, w), (round(h * 1024 / max(h, w)), round(w * 1024 / max(h, w)))):
        ref_s, ref = best_cpu(lambda: processor.post_process_instance_segmentation(
            out, threshold=0.5, target_sizes=[shape], return_binary_maps=True)[0], args.repeat)
        own_s, own = best_cpu(lambda: hf_segment.reference_segments(processor, out, shape, 0.5, False),
                              args.repeat)
        same = sorted((round(s["score"], 5), s["label_id"]) for s in ref["segments_info"]) == \
            sorted((round(s["score"], 5), s["label_id"]) for s in own)
        if not same:
            raise SystemExit(f"different segments at {shape}")
        rows.append({"shape": list(shape), "segments": len(own), "all_queries_cpu_s": round(ref_s, 3),
                     "confident_only_cpu_s": round(own_s, 3)})
        print(rows[-1], file=sys.stderr)
    report = {"photo": photo.name, "queries": int(logits.shape[1]), "confident": args.confident, "rows": rows}
    lines = [
        "# Mask2Former instance post-processing (`bench/bench_learned_post.py`)",
        "",
        f"{report['queries']} queries, {args.confident} confident; one torch thread, CPU seconds, best of "
        f"{args.repeat}; the same segments both ways (checked).",
        "",
        "| photo size | segments | all queries (reference) s | confident queries only s |",
        "|---|---:|---:|---:|",
        *(f"| {r['shape'][1]}x{r['shape'][0]} | {r['segments']} | {r['all_queries_cpu_s']} | "
          f"{r['confident_only_cpu_s']} |" for r in rows),
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "learned_post.json").write_text(json.dumps(report, indent=1))
    (args.out / "learned_post.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
