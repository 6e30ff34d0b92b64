"""Speed and memory of the learned (``transformers``) engine, through the real worker.

The released weights cannot be downloaded here, so the script builds the real
architectures of the default models from their configs with random weights: Depth
Anything V2 Small (24.8M parameters, DINOv2 ViT-S/14 + DPT head) and Mask2Former Swin-T
COCO instance (47.4M). The compute per image is the same as with the released weights;
only the masks and depth values are meaningless. The segmentation classifier is biased
towards "person" so the model always returns an object and the classic fallback never
runs inside the timings.

Measured, on the GrabCut photos (``--max-size`` 1024; every model at its processor's own input
size, as the engine runs by default: Depth Anything's short side at 518, Mask2Former at 384x384):
- cold: one ``python -m inference run`` process, from spawn to exit (interpreter start,
  torch/transformers imports, model load, first inference, writing), depth only (user
  mask given) and full (segmentation + depth);
- warm: requests to one ``python -m inference serve`` worker after a first warm-up
  request, from the worker's own ``timings`` (depth stage; whole request);
- peak memory: the worker processes' maximum resident set size (``wait4`` rusage).

Other jobs share the reference machine, so each run's share of the CPUs (CPU time / wall
time / CPUs) is recorded, and a clearly disturbed run is measured again (at most twice),
keeping the fastest attempt; the report counts these retries.

Then every advertised model that is on disk, MoGe included, is measured on its own (cold, warm, peak
memory; see ``bench_learned_models.py``); one that is not is reported as not measured.

Usage: ``python bench/bench_learned.py [--device cpu|cuda|mps|auto] [--images 6] [--no-per-model]``
Writes ``bench/results/learned.json`` and ``bench/results/learned.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT.parent / "shared" / "bench-data" / "masks" / "grabcut" / "imgs"
RESULTS = ROOT / "bench" / "results"
GOALS = {"warm_depth_s": 1.0, "warm_full_s": 2.5, "cold_depth_s": 8.0}
RETRIES = 2
WARM_SHARE_OK = 0.9  # torch keeps every core busy during a warm request
COLD_SHARE_OK = 0.55  # the imports of a cold run use one core of two
sys.path.insert(0, str(ROOT / "tests"))


def build_models(folder: Path) -> dict[str, Path]:
    """The default models at their published configs and processor files, with random weights."""
    from hf_fixtures import build_from_fixture

    return {
        "depth": build_from_fixture("depth-anything-v2-small", folder / "depth-anything-v2-small", full=True),
        "seg": build_from_fixture("mask2former-swin-tiny-coco-instance", folder / "mask2former-swin-tiny",
                                  full=True, favour="person"),
    }


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def spawn(args: list[str], next_request: Callable[[dict | None], dict | None] | None = None
          ) -> tuple[float, int, list[dict], float, str]:
    """Run the worker once: (wall seconds, exit code, events, the child's own peak RSS in MB, stderr).

    With ``next_request`` the worker is ``serve``: it is asked for the first request, then for the
    next one after each ``done`` event (which gets the worker's CPU time so far as ``cpu_total_s``);
    stdin closes when it returns None (closing earlier would cancel requests, as when Blender quits).
    """
    t = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "inference", *args], cwd=ROOT, env=worker_env(), text=True,
        stdin=subprocess.PIPE if next_request is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    err_lines: list[str] = []
    reader = threading.Thread(target=lambda: err_lines.extend(proc.stderr), daemon=True)
    reader.start()
    peak = {"kb": 0}
    watcher = threading.Thread(target=_watch_peak, args=(proc, peak), daemon=True)
    watcher.start()
    events = []

    def send(request: dict | None) -> None:
        if request is None:
            proc.stdin.close()
        else:
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()

    if next_request is not None:
        send(next_request(None))
    for line in proc.stdout:
        if not line.strip():
            continue
        event = json.loads(line)
        events.append(event)
        if next_request is not None and event["event"] == "done":
            event["cpu_total_s"] = process_cpu(proc.pid)
            send(next_request(event))
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t
    reader.join(timeout=5)
    watcher.join(timeout=5)
    events.append({"event": "rusage", "cpu_s": usage.ru_utime + usage.ru_stime})
    # the kernel's ru_maxrss of a child also counts this process's memory at the fork, so the child's own
    # high-water mark (VmHWM, read while it runs) is the number where /proc has it
    rss_kb = peak["kb"] or usage.ru_maxrss
    return wall, proc.returncode, events, rss_kb / 1024.0, "".join(err_lines)


def _watch_peak(proc: subprocess.Popen, peak: dict[str, int]) -> None:
    """Keep the child's own peak resident memory (kB, /proc/PID/status VmHWM) in ``peak`` until it exits."""
    status = Path(f"/proc/{proc.pid}/status")  # never poll() here: the caller reaps the child with wait4
    while True:
        try:
            text = status.read_text()
        except OSError:
            return
        if "\nState:\tZ" in text or "\nState:\tX" in text:
            return
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                peak["kb"] = max(peak["kb"], int(line.split()[1]))
        time.sleep(0.02)


def process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a running process (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def machine_share(cpu_s: float | None, wall_s: float) -> float | None:
    """Share of the machine's CPUs a process got: near 1 when nothing else ran (torch uses every core)."""
    if cpu_s is None or wall_s <= 0:
        return None
    return round(cpu_s / (wall_s * (os.cpu_count() or 1)), 2)


def aspect(image: Path) -> float:
    from PIL import Image

    w, h = Image.open(image).size
    return max(w, h) / min(w, h)


def make_mask(image: Path, folder: Path) -> Path:
    """A centred rectangle mask of the photo's size, so a run does depth only."""
    import numpy as np
    from PIL import Image

    w, h = Image.open(image).size
    mask = np.zeros((h, w), np.uint8)
    mask[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 255
    path = folder / f"{image.stem}-mask.png"
    Image.fromarray(mask).save(path)
    return path


def long_side_518(image: Path) -> int:
    """``--depth-size`` that puts the depth input's long side at 518 (the option scales the short side)."""
    return round(518 / aspect(image))


def run_args(image: Path, out: Path, models: dict[str, Path], device: str, mask: Path | None,
             depth_size: int | None = 0) -> list[str]:
    """The worker command line; ``depth_size`` 0 or None: the processor's own input size."""
    args = ["run", "--engine", "transformers", "--image", str(image), "--out", str(out), "--device", device,
            "--depth-model", str(models["depth"]), "--seg-model", str(models["seg"]), "--offline",
            "--depth-size", str(depth_size or 0)]
    return args + (["--mask", str(mask)] if mask else [])


def result_of(events: list[dict]) -> dict:
    path = next(e["path"] for e in events if e["event"] == "result")
    return json.loads(Path(path).read_text())


def check(code: int, events: list[dict], err: str) -> None:
    if code != 0:
        raise SystemExit(f"worker failed ({code}): {events[-1:]}\n{err[-2000:]}")


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda", "mps"))
    parser.add_argument("--images", type=int, default=6, help="photos per warm series")
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-per-model", dest="per_model", action="store_false",
                        help="skip the advertised models' own measurements")
    args = parser.parse_args()

    photos = sorted(IMAGES.glob("*.jpg"))[: max(1, args.images)]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="monocle-bench-learned-") as tmp:
        tmp_path = Path(tmp)
        t = time.perf_counter()
        models = build_models(tmp_path / "models")
        print(f"built random-weight models in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        masks = {p: make_mask(p, tmp_path) for p in photos}

        # Other jobs share this machine: a run that got clearly less than the whole machine is run again
        # (at most RETRIES more times) and the least disturbed attempt is kept; the retries are counted.
        cold: dict[str, list[dict]] = {"depth": [], "full": []}
        retries = {"cold": 0, "warm": 0}
        for i in range(args.cold_runs):
            photo = photos[i % len(photos)]
            for kind in ("depth", "full"):
                attempts = []
                for attempt in range(1 + RETRIES):
                    out = tmp_path / f"cold-{kind}-{i}-{attempt}"
                    mask = masks[photo] if kind == "depth" else None
                    wall, code, events, rss, err = spawn(run_args(photo, out, models, args.device, mask))
                    check(code, events, err)
                    r = result_of(events)
                    cpu = events[-1]["cpu_s"]
                    attempts.append({
                        "image": photo.name, "wall_s": round(wall, 3), "peak_rss_mb": round(rss, 1),
                        "timings": r["timings"], "device": r["engine"]["runtime"]["device"], "cpu_s": round(cpu, 3),
                        "share": machine_share(cpu, wall),
                    })
                    print(f"cold {kind} {photo.name}: {wall:.2f} s, {rss:.0f} MB, machine share "
                          f"{machine_share(cpu, wall)}", file=sys.stderr)
                    if (attempts[-1]["share"] or 1.0) >= COLD_SHARE_OK:
                        break
                retries["cold"] += len(attempts) - 1
                cold[kind].append(min(attempts, key=lambda a: a["wall_s"]))  # the same work: fastest = least disturbed

        # warm: one serve worker; request 0 warms up (imports, loads, first inference), the rest are measured
        series = [("warmup", photos[0], None, None)]
        series += [("depth", p, masks[p], None) for p in photos]
        series += [("full", p, None, None) for p in photos]
        # the faster option: --depth-size puts the long side at 518 (fewer tokens), for comparison
        series += [("depth_long_side_518", p, masks[p], long_side_518(p)) for p in photos[:3]]
        plan = [{"id": f"{i}", "args": run_args(photo, tmp_path / f"warm-{i}", models, args.device, mask, size)}
                for i, (_, photo, mask, size) in enumerate(series)]
        attempts_of: dict[str, list[dict]] = {}
        state = {"cpu": 0.0, "queue": list(plan), "current": None}

        def next_request(done: dict | None) -> dict | None:
            if done is not None:
                cpu = None if done.get("cpu_total_s") is None else done["cpu_total_s"] - state["cpu"]
                state["cpu"] = done.get("cpu_total_s") or state["cpu"]
                base = done["id"].split("~")[0]
                tries = attempts_of.setdefault(base, [])
                tries.append({**done, "share": machine_share(cpu, done["seconds"]), "cpu_s": cpu})
                kind = series[int(base)][0]
                if (kind != "warmup" and done["exit_code"] == 0 and (tries[-1]["share"] or 1.0) < WARM_SHARE_OK
                        and len(tries) <= RETRIES):
                    retries["warm"] += 1
                    request = next(r for r in plan if r["id"] == base)
                    return {"id": f"{base}~{len(tries)}", "args": request["args"]}
            return state["queue"].pop(0) if state["queue"] else None

        wall, code, events, serve_rss, err = spawn(["serve", "--idle-timeout", "60"], next_request)
        check(code, events, err)
        warm: dict[str, list[dict]] = {}
        loads = []
        for i, (kind, photo, _, size) in enumerate(series):
            tries = attempts_of[str(i)]
            loads.append(sum(t["loaded"] for t in tries))
            best = min(tries, key=lambda t: t["seconds"])
            mine = [e for e in events if e.get("id") == best["id"]]
            if best.get("exit_code") != 0:
                raise SystemExit(f"serve request failed: {mine[-2:]}\n{err[-2000:]}")
            r = result_of(mine)
            warm.setdefault(kind, []).append({
                "image": photo.name, "timings": r["timings"], "depth_input": r["depth"]["extra"]["input_size"],
                "segmentation": r["engine"]["runtime"]["segmentation"], "attempts": len(tries),
                "cpu_s": None if best["cpu_s"] is None else round(best["cpu_s"], 3), "share": best["share"],
            })
        fallbacks = sum(1 for e in events if e.get("code") == "segmentation_fallback")

    load_after = os.getloadavg()
    import torch

    summary = {
        "cold_depth_s": median([c["wall_s"] for c in cold["depth"]]),
        "cold_full_s": median([c["wall_s"] for c in cold["full"]]),
        "warm_depth_s": median([w["timings"]["depth"] for w in warm["depth"]]),
        "warm_depth_best_s": round(min(w["timings"]["depth"] for w in warm["depth"]), 3),
        "warm_full_best_s": round(min(w["timings"]["total"] for w in warm["full"]), 3),
        "cold_depth_best_s": round(min(c["wall_s"] for c in cold["depth"]), 3),
        "warm_depth_request_s": median([w["timings"]["total"] for w in warm["depth"]]),
        "warm_segment_s": median([w["timings"]["segment"] for w in warm["full"]]),
        "warm_full_s": median([w["timings"]["total"] for w in warm["full"]]),
        "warm_depth_long_side_518_s": median([w["timings"]["depth"] for w in warm["depth_long_side_518"]]),
        "cold_share": median([c["share"] for c in cold["depth"] + cold["full"]]),
        "warm_share": median([w["share"] for k in ("depth", "full") for w in warm[k] if w["share"] is not None] or [0]),
        "cold_imports_s": median([c["timings"]["imports"] for c in cold["depth"]]),
        "cold_model_load_depth_s": median([c["timings"]["model_load"] for c in cold["depth"]]),
        "peak_rss_cold_depth_mb": max(c["peak_rss_mb"] for c in cold["depth"]),
        "peak_rss_cold_full_mb": max(c["peak_rss_mb"] for c in cold["full"]),
        "peak_rss_serve_mb": round(serve_rss, 1),
    }
    report = {
        "note": "random weights, real architectures (Depth Anything V2 Small 24.8M, Mask2Former Swin-T 47.4M): "
                "same compute as the released models, meaningless outputs",
        "device": args.device,
        "device_used": cold["depth"][0]["device"],
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                    "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in load_after]},
        "images": [p.name for p in photos],
        "summary": summary,
        "goals": {k: {"goal_s": v, "measured_s": summary[k], "met": summary[k] <= v} for k, v in GOALS.items()},
        "serve_model_loads_per_request": loads,
        "retries_of_disturbed_runs": retries,
        "segmentation_fallbacks": fallbacks,
        "cold": cold,
        "warm": warm,
    }
    text = markdown(report)
    if args.per_model:
        from bench_learned_models import markdown as models_markdown
        from bench_learned_models import per_model

        report["models"] = per_model(args.device, photos[0])
        text += "\n" + models_markdown(report["models"], args.device, photos[0])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "learned.json").write_text(json.dumps(report, indent=1))
    (args.out / "learned.md").write_text(text)
    print(text)


def markdown(r: dict) -> str:
    s, m = r["summary"], r["machine"]

    def goal(key: str) -> str:
        g = r["goals"][key]
        return f"{g['goal_s']} s ({'met' if g['met'] else 'missed'})"

    lines = [
        "# Learned engine speed (`bench/bench_learned.py`)",
        "",
        f"Device `{r['device_used']}` ({m['cpus']} CPUs, torch {m['torch']}, {m['torch_threads']} threads); "
        f"1-minute load average {m['load_before'][0]} before, {m['load_after'][0]} after (other jobs share this "
        "machine: best-of columns are the least disturbed runs). "
        "Random weights in the real architectures (" + r["note"].split("(")[1].split(")")[0] + "): same compute as "
        "the released models. Photos: " + ", ".join(r["images"]) + "; median over them.",
        "",
        "| measure | median s | best s | goal |",
        "|---|---:|---:|---|",
        f"| cold depth: process start, imports, load, first image, exit | {s['cold_depth_s']} | "
        f"{s['cold_depth_best_s']} | {goal('cold_depth_s')} |",
        f"| cold full (segmentation + depth) | {s['cold_full_s']} | | |",
        f"| - of which imports (torch + transformers) | {s['cold_imports_s']} | | |",
        f"| - of which depth model load | {s['cold_model_load_depth_s']} | | |",
        f"| warm depth (518 px short side, the default) | {s['warm_depth_s']} | {s['warm_depth_best_s']} | "
        f"{goal('warm_depth_s')} |",
        f"| warm depth-only request (read, depth, write) | {s['warm_depth_request_s']} | | |",
        f"| warm segmentation (384x384, the default) | {s['warm_segment_s']} | | |",
        f"| warm full request (segmentation + depth) | {s['warm_full_s']} | {s['warm_full_best_s']} | "
        f"{goal('warm_full_s')} |",
        f"| warm depth with `--depth-size` at 518 px long side (faster option) | {s['warm_depth_long_side_518_s']} "
        "| | |",
        "",
        f"Share of the machine's {m['cpus']} CPUs the worker used (CPU time / wall time / CPUs): warm requests "
        f"{s['warm_share']} (about 1.0 when nothing else runs), cold runs {s['cold_share']} (about 0.6 at best: "
        "the imports run on one core).",
        "",
        "| peak worker memory | MB |",
        "|---|---:|",
        f"| cold depth run | {s['peak_rss_cold_depth_mb']} |",
        f"| cold full run | {s['peak_rss_cold_full_mb']} |",
        f"| serve worker, both models, all requests | {s['peak_rss_serve_mb']} |",
        "",
        f"Serve worker model loads per request: {r['serve_model_loads_per_request']} "
        f"(segmentation fallbacks: {r['segmentation_fallbacks']}). Disturbed runs measured again: "
        f"{r['retries_of_disturbed_runs']['cold']} cold, {r['retries_of_disturbed_runs']['warm']} warm.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
