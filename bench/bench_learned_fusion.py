"""Does fitting a relative depth map to a metric one inside each mask help? Synthetic scenes.

Issue #18 part 3's option: keep the metric model's scale (MoGe-2) and take each object's shape
from the sharper relative map (Depth Anything V2), fitted per mask
(``inference/engines/moge_fusion.py``). No released weights run here, so the two models are
simulated from a known depth map, each with the error its kind is known for:

- metric: the true depth seen at a coarse grid (``--metric-cell`` pixels per cell, bilinear back
  up: a ViT's patch grid, softened by its head) times a global scale error;
- relative: inverse depth up to scale and shift, seen at a finer grid, with a smooth distortion
  across the frame (``--distortion``: the relative model's inverse depth is off by up to this
  share from one side of the photo to the other) and, in the "compressed" case, far objects
  flattened (inverse depth raised to a power below 1, as relative models do to distant things).

Per object, inside its mask: depth RMSE in millimetres, shape RMSE (the same after taking each
map's median off, so a distance error does not count) and the detail kept (correlation of the
map's fine relief with the true one). Three objects with fine relief (ridges of a few mm) on a
tilted floor, 480x640 pixels, focal 500 px, 2-4 m away.

Usage: ``python bench/bench_learned_fusion.py`` -> ``bench/results/learned_fusion.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inference.engines.moge_fusion import fit_relative_inside  # noqa: E402

RESULTS = ROOT / "bench" / "results"
H, W, FOCAL = 480, 640, 500.0


def scene(seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """True depth (metres) of three objects with fine relief on a floor, and their masks."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    depth = 4.5 - 1.5 * yy / H  # a floor tilting towards the camera at the bottom of the frame
    masks = []
    for cx, cy, r, z in ((170, 260, 70, 2.6), (380, 230, 90, 3.1), (540, 300, 60, 2.2)):
        cx, cy = cx + rng.uniform(-10, 10), cy + rng.uniform(-10, 10)
        d2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / r**2
        inside = d2 < 1.0
        radius_m = r * z / FOCAL
        bulge = radius_m * np.sqrt(np.clip(1.0 - d2, 0.0, None))  # a sphere's front
        ridges = 0.004 * np.sin(2 * np.pi * xx / 14.0) * np.sin(2 * np.pi * yy / 18.0)  # 4 mm relief
        depth = np.where(inside, z - bulge + ridges, depth)
        masks.append(inside)
    return depth, masks


def seen_at(values: np.ndarray, cell: int) -> np.ndarray:
    """``values`` averaged over ``cell``-pixel cells and interpolated back (bilinear)."""
    import cv2

    small = cv2.resize(values.astype(np.float32), (W // cell, H // cell), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR).astype(np.float64)


def simulate(depth: np.ndarray, metric_cell: int, relative_cell: int, distortion: float, power: float,
             scale_error: float = 1.03) -> tuple[np.ndarray, np.ndarray]:
    """(metric map, relative inverse map) as the two kinds of model would see ``depth``."""
    metric = seen_at(depth, metric_cell) * scale_error
    xx = np.linspace(-1.0, 1.0, W)[None, :].repeat(H, 0)
    inverse = (1.0 / depth) ** power * (1.0 + distortion / 2 * xx)
    relative = 37.0 * seen_at(inverse, relative_cell) - 3.0  # unknown scale and shift
    return metric, relative


def high_pass(values: np.ndarray) -> np.ndarray:
    import cv2

    return values - cv2.GaussianBlur(values, (0, 0), 6.0)


def scores(est: np.ndarray, true: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    inner = mask.copy()
    import cv2

    inner = cv2.erode(mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)  # edges: both maps blur them
    e, t = est[inner], true[inner]
    shape = (e - np.median(e)) - (t - np.median(t))
    he, ht = high_pass(est)[inner], high_pass(true)[inner]
    detail = float(np.corrcoef(he, ht)[0, 1]) if he.std() > 0 else 0.0
    return {"depth_rmse_mm": float(np.sqrt(np.mean((e - t) ** 2)) * 1000),
            "shape_rmse_mm": float(np.sqrt(np.mean(shape**2)) * 1000), "detail_corr": detail}


CASES = (
    ("sharper relative, no distortion", dict(metric_cell=16, relative_cell=2, distortion=0.0, power=1.0)),
    ("sharper relative, 5 % distortion", dict(metric_cell=16, relative_cell=2, distortion=0.05, power=1.0)),
    ("sharper relative, 20 % distortion", dict(metric_cell=16, relative_cell=2, distortion=0.20, power=1.0)),
    ("sharper relative, far objects compressed", dict(metric_cell=16, relative_cell=2, distortion=0.05, power=0.6)),
    ("metric at 8 px cells, 5 % distortion", dict(metric_cell=8, relative_cell=2, distortion=0.05, power=1.0)),
    ("equally sharp maps, 5 % distortion", dict(metric_cell=4, relative_cell=4, distortion=0.05, power=1.0)),
)


def run(seeds: int) -> dict:
    rows = []
    for name, params in CASES:
        per: dict[str, list[dict[str, float]]] = {"metric": [], "fused": []}
        used = 0
        for seed in range(seeds):
            true, masks = scene(seed)
            metric, relative = simulate(true, **params)
            fused, fits = fit_relative_inside(relative, metric.astype(np.float32), masks)
            used += sum(f.used for f in fits)
            for m in masks:
                per["metric"].append(scores(metric, true, m))
                per["fused"].append(scores(fused.astype(np.float64), true, m))
        mean = {k: {s: round(float(np.mean([r[s] for r in v])), 3) for s in v[0]} for k, v in per.items()}
        rows.append({"case": name, **params, "objects": len(per["metric"]), "fits_used": used, **mean})
        print(name, mean, file=sys.stderr)
    return {"image": [W, H], "focal_px": FOCAL, "seeds": seeds, "cases": rows}


def markdown(r: dict) -> str:
    lines = [
        "# Relative depth fitted to metric depth inside each mask (`bench/bench_learned_fusion.py`)",
        "",
        f"Synthetic scenes ({r['seeds']} seeds x 3 objects with 4 mm ridges, {r['image'][0]}x{r['image'][1]}, "
        "2-4 m): simulated model maps, not real models. Mean over objects, inside each mask less a 3-pixel rim.",
        "",
        "| case | depth RMSE mm (metric / fused) | shape RMSE mm (metric / fused) | detail corr (metric / fused) |",
        "|---|---:|---:|---:|",
    ]
    for c in r["cases"]:
        m, f = c["metric"], c["fused"]
        lines.append(f"| {c['case']} | {m['depth_rmse_mm']} / {f['depth_rmse_mm']} | {m['shape_rmse_mm']} / "
                     f"{f['shape_rmse_mm']} | {m['detail_corr']} / {f['detail_corr']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    report = run(args.seeds)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "learned_fusion.json").write_text(json.dumps(report, indent=1))
    text = markdown(report)
    (args.out / "learned_fusion.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
