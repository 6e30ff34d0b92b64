"""Command line of the worker: ``python -m inference engines|run|load|models|download|serve``.

stdout carries only JSON events (one per line); logs and tracebacks go to stderr.
``serve`` keeps one process (and its loaded models) for many requests: see :mod:`.serve`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import options
from .options import DepthKind, Objects, SegMode
from .protocol import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_OK, Emitter, WorkerError


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that reports bad usage as a protocol error instead of free text on stdout."""

    emitter: Emitter | None = None

    def error(self, message: str) -> None:  # type: ignore[override]
        (self.emitter or Emitter()).error("bad_argument", f"Invalid command line: {message}.")
        self.print_usage(sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def _add_learned_args(parser: argparse.ArgumentParser) -> None:
    """Options of the ``transformers`` engine (ignored by the classic engine)."""
    g = parser.add_argument_group("transformers and moge engines")
    g.add_argument("--depth-model", default=None, help="depth-estimation model: Hugging Face id or local folder "
                   "(a MoGe-2 ONNX export, its folder or .onnx file, gives metric depth and the focal length)")
    g.add_argument(
        "--seg-model", default=None, help="segmentation model: Hugging Face id, local folder, or 'classic'"
    )
    g.add_argument("--seg-mode", choices=options.values(SegMode), default=SegMode.LABELS.value,
                   help="labels: objects with class names; foreground: any object, class ignored")
    g.add_argument("--prompt", default=None, help="segment what this text names (text-promptable model)")
    g.add_argument("--prompt-model", default=None, help="text-promptable segmentation model id or folder")
    g.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default=None,
                   help="default: $MONOCLE_DEVICE, else auto (CUDA, then MPS, then CPU)")
    g.add_argument("--online", dest="online", action="store_true", default=None,
                   help="allow downloading missing models (default: $MONOCLE_ONLINE, else off)")
    g.add_argument("--offline", dest="online", action="store_false", help="never download; local files only")
    g.add_argument("--cache-dir", default=None,
                   help="Hugging Face hub cache folder (default: $MONOCLE_MODEL_CACHE, else HF_HUB_CACHE/HF_HOME)")
    g.add_argument("--threshold", type=float, default=0.5, help="minimum score of a segmented object")
    g.add_argument("--depth-size", type=int, default=0,
                   help="faster, less detailed depth: the depth model's input size scaled so its larger side is "
                        "this (default 0: the model's own size, as its reference implementation uses)")
    g.add_argument("--seg-size", type=int, default=0,
                   help="the segmentation model's input with its long side at this size, aspect kept (default 0: "
                        "the model's own size, as its reference implementation uses)")
    g.add_argument("--precision", choices=("auto", "bfloat16", "full"), default=None,
                   help="auto: half precision on CUDA, float32 elsewhere; bfloat16: also bfloat16 autocast on CPUs "
                        "that compute it natively (AMX, AVX-512 BF16), faster with a small numeric difference; "
                        "full: float32 everywhere (default: $MONOCLE_PRECISION, else auto)")
    g.add_argument("--no-overlap", dest="overlap", action="store_false",
                   help="on the CPU, run the depth model after the segmentation model at all of torch's threads "
                        "(default: side by side, each at half of them, which takes less time)")
    g.add_argument("--moge-tokens", type=int, default=0,
                   help="MoGe's number of ViT tokens: fewer is faster and coarser (default 0: 3600, as MoGe's own "
                        "inference uses)")


def _learned_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "depth_model": args.depth_model,
        "seg_model": args.seg_model,
        "seg_mode": args.seg_mode,
        "prompt": args.prompt,
        "prompt_model": args.prompt_model,
        "device": args.device,
        "online": args.online,
        "cache_dir": args.cache_dir,
        "threshold": args.threshold,
        "depth_size": args.depth_size,
        "seg_size": args.seg_size,
        "moge_tokens": args.moge_tokens,
        "precision": args.precision,
        "overlap": args.overlap,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="python -m inference", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("engines", help="list engines and whether their dependencies are importable")
    run = sub.add_parser("run", help="segment an image and estimate its depth")
    run.add_argument("--image", required=True)
    run.add_argument("--out", required=True, help="result folder (created)")
    run.add_argument("--engine", default=options.WORKER_ENGINE.value,
                     help="classic, drawing (line art), transformers, moge (metric depth), or auto (drawing for "
                          "line art, else classic)")
    run.add_argument("--objects", choices=options.values(Objects), default=Objects.ALL.value)
    run.add_argument("--box", default=None, help="optional hint X0,Y0,X1,Y1 in input pixels")
    run.add_argument("--max-size", type=int, default=options.MAX_SIZE, help="long side used for processing")
    run.add_argument("--mask", default=None, help="use this mask or label map instead of segmentation")
    run.add_argument("--depth", default=None, help="use this depth map instead of estimating one")
    run.add_argument("--depth-kind", type=options.argument(DepthKind), default=DepthKind.RELATIVE_INVERSE,
                     help="metric or relative_inverse (larger is nearer)")
    run.add_argument("--relief", type=float, default=0.0, help="classic engine: fine relief from image detail")
    run.add_argument("--corrections", default=None,
                     help="JSON file of corrections applied after segmentation (see `refine`), e.g. a sidecar")
    _add_learned_args(run)
    refine = sub.add_parser("refine", help="correct an earlier result: add, remove, merge, split or paint objects")
    refine.add_argument("--base", required=True, help="the earlier result's folder")
    refine.add_argument("--out", required=True, help="result folder (created; may be --base)")
    refine.add_argument("--image", default=None, help="the photo (needed by add, split and paint)")
    refine.add_argument("--action", required=True, choices=("add", "remove", "merge", "split", "paint"))
    refine.add_argument("--point", action="append", default=[], metavar="X,Y,SIGN",
                        help="a click in input pixels; SIGN + (on the object) or - (not on it); repeatable")
    refine.add_argument("--box", action="append", default=[], metavar="X0,Y0,X1,Y1",
                        help="a box in input pixels; repeatable")
    refine.add_argument("--strokes", default=None,
                        help="stroke mask image: white paints the object in, grey paints it out, black is untouched")
    refine.add_argument("--target", action="append", type=int, default=[], help="an object id; repeatable")
    refine.add_argument("--segmenter", choices=("grabcut", "learned"), default="grabcut",
                        help="learned: a SAM-family model for clicks and boxes (GrabCut when it is not available)")
    refine.add_argument("--segmenter-model", default=None,
                        help="the learned segmenter: Hugging Face id or folder (default nielsr/slimsam-50-uniform)")
    refine.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default=None)
    refine.add_argument("--online", dest="online", action="store_true", default=None,
                        help="allow downloading the learned segmenter (default: $MONOCLE_ONLINE, else off)")
    refine.add_argument("--cache-dir", default=None, help="Hugging Face hub cache folder")
    load = sub.add_parser("load", help="load the transformers engine's models now (warms a serve worker)")
    _add_learned_args(load)
    models = sub.add_parser("models", help="list the known models, their licences and whether they are downloaded")
    models.add_argument("--cache-dir", default=None)
    download = sub.add_parser("download", help="download a model into the cache, with progress events")
    download.add_argument("--model", required=True, help="Hugging Face model id")
    download.add_argument("--revision", default=None)
    download.add_argument("--cache-dir", default=None)
    serve = sub.add_parser("serve", help="warm worker: one JSON request per line on stdin")
    serve.add_argument("--idle-timeout", type=float, default=600.0,
                       help="exit after this many seconds without a request (0: never)")
    from .setup_env import add_arguments as add_setup_arguments

    add_setup_arguments(sub.add_parser("setup-env", help="make the learned engine's Python environment (pinned "
                                       "torch, transformers and the worker's packages), with progress events"))
    return parser


def _engines(args: argparse.Namespace, emit: Emitter) -> int:
    from .engines import list_engines

    emit.emit("engines", engines=list_engines())
    return EXIT_OK


def _setup_env(args: argparse.Namespace, emit: Emitter) -> int:
    from .setup_env import main as setup_env

    return setup_env(args, emit)


def _models(args: argparse.Namespace, emit: Emitter) -> int:
    from .models import default_cache_dir, model_table

    cache = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    emit.emit("models", cache_dir=str(cache), models=model_table(cache))
    return EXIT_OK


def _download(args: argparse.Namespace, emit: Emitter) -> int:
    from .download import emit_download_progress
    from .models import default_cache_dir, onnx_files, require_online, resolve

    require_online(f"download {args.model}")
    cache = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    found = resolve(args.model, cache_dir=cache, online=True, revision=args.revision,
                    on_progress=emit_download_progress(emit, args.model))
    main_file = found.path / "config.json"
    if not main_file.is_file() and onnx_files(found.path):  # an ONNX export (MoGe) has no config
        main_file = onnx_files(found.path)[0]
    emit.emit("result", path=str(main_file), model=args.model, revision=found.revision,
              folder=str(found.path), source=found.source)
    return EXIT_OK


def _load(args: argparse.Namespace, emit: Emitter) -> int:
    import time

    from .engines import create_engine

    t = time.perf_counter()
    engine = create_engine("transformers", {**_learned_options(args), "emit": emit})
    engine.prepare(True, True, emit.progress)
    emit.emit("loaded", seconds=round(time.perf_counter() - t, 4), timings=engine.timings(), runtime=engine.runtime())
    return EXIT_OK


def _refine(args: argparse.Namespace, emit: Emitter) -> int:
    from .prompts import Correction, parse_point
    from .prompts import parse_box as parse_prompt_box
    from .refine import refine

    corr = Correction(args.action, [parse_point(p) for p in args.point],
                      [parse_prompt_box(b) for b in args.box], args.strokes, list(args.target))
    learned = None
    if args.segmenter == "learned":
        from .models import online_access

        learned = {"model": args.segmenter_model, "device": args.device, "cache_dir": args.cache_dir,
                   "online": online_access(args.online)}
    emit.result(str(refine(args.base, args.out, [corr], args.image, emit, learned)))
    return EXIT_OK


def _run_engine_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options ``run`` hands to the chosen engine."""
    if args.engine in ("classic", "auto"):
        return {"relief": args.relief}
    if args.engine in ("transformers", "moge"):
        return _learned_options(args)
    return {}


def _run(args: argparse.Namespace, emit: Emitter) -> int:
    from .run import RunOptions, parse_box, run

    opts = RunOptions(
        image=args.image,
        out=args.out,
        engine=args.engine,
        objects=args.objects,
        box=parse_box(args.box),
        max_size=args.max_size,
        mask=args.mask,
        depth=args.depth,
        depth_kind=DepthKind(args.depth_kind),
        engine_options=_run_engine_options(args),
    )
    corrections = None
    if args.corrections:
        from .prompts import read_corrections

        corrections = read_corrections(args.corrections)  # refused before the long run
    path = run(opts, emit)
    if corrections:
        from .refine import refine

        path = refine(args.out, args.out, corrections, args.image, emit)
    emit.result(str(path))
    return EXIT_OK


_COMMANDS: dict[str, Callable[[argparse.Namespace, Emitter], int]] = {
    "engines": _engines, "setup-env": _setup_env, "models": _models, "download": _download, "load": _load,
    "refine": _refine, "run": _run,
}


def execute(args: argparse.Namespace, emit: Emitter) -> int:
    """Run one parsed command (not ``serve``), reporting every failure as an error event; returns the exit code."""
    try:
        return _COMMANDS.get(args.command, _run)(args, emit)
    except WorkerError as exc:
        logging.getLogger("inference").info("error %s: %s", exc.code, exc.message)
        emit.error(exc.code, exc.message)
        return exc.exit_code
    except ImportError as exc:  # a package the engine needs is not installed in this interpreter
        traceback.print_exc()
        name = getattr(exc, "name", None) or str(exc)
        emit.error("dependencies_missing",
                   f"The inference interpreter is missing the Python package {name!r}; see Monocle's preferences.")
        return EXIT_INTERNAL
    except MemoryError:
        traceback.print_exc()
        emit.error("out_of_memory", "The worker ran out of memory; try a smaller --max-size.")
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        emit.error("cancelled", "The reconstruction was cancelled.")
        return EXIT_INTERNAL
    except Exception as exc:  # the last line of defence: report, never print a traceback on stdout
        traceback.print_exc()
        emit.error(
            "internal",
            f"The worker failed unexpectedly ({type(exc).__name__}); see the system console for details.",
        )
        return EXIT_INTERNAL


def _execute_argv(argv: list[str], emit: Emitter) -> int:
    """One serve request: parse its command line (usage errors go to ``emit``) and execute it."""
    _ArgumentParser.emitter = emit
    return execute(build_parser().parse_args(argv), emit)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="monocle-worker %(levelname)s: %(message)s")
    # A stray print() from a library must never corrupt the protocol: keep the real stdout for
    # events and point sys.stdout at stderr.
    emit = Emitter(sys.stdout)
    real_stdout = sys.stdout
    sys.stdout = sys.stderr
    try:
        _ArgumentParser.emitter = emit
        args = build_parser().parse_args(argv)
        if args.command == "serve":
            from .serve import serve

            return serve(sys.stdin, real_stdout, _execute_argv, idle_timeout=args.idle_timeout)
        return execute(args, emit)
    finally:
        sys.stdout = real_stdout


if __name__ == "__main__":
    exit_code = main()
    if "torch" in sys.modules:
        # torch's interpreter teardown takes 1-2 s on a small CPU, and Blender waits for the exit:
        # every event and file is written by now, so leave at once
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(exit_code)
    raise SystemExit(exit_code)
