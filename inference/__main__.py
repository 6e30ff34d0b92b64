"""Command line of the worker: ``python -m inference engines|run``.

stdout carries only JSON events (one per line); logs and tracebacks go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback

from .protocol import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_OK, Emitter, WorkerError


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that reports bad usage as a protocol error instead of free text on stdout."""

    emitter: Emitter | None = None

    def error(self, message: str) -> None:  # type: ignore[override]
        (self.emitter or Emitter()).error("bad_argument", f"Invalid command line: {message}.")
        self.print_usage(sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="python -m inference", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("engines", help="list engines and whether their dependencies are importable")
    run = sub.add_parser("run", help="segment an image and estimate its depth")
    run.add_argument("--image", required=True)
    run.add_argument("--out", required=True, help="result folder (created)")
    run.add_argument("--engine", default="classic")
    run.add_argument("--objects", choices=("all", "largest"), default="all")
    run.add_argument("--box", default=None, help="optional hint X0,Y0,X1,Y1 in input pixels")
    run.add_argument("--max-size", type=int, default=1024, help="long side used for processing")
    run.add_argument("--mask", default=None, help="use this mask or label map instead of segmentation")
    run.add_argument("--depth", default=None, help="use this depth map instead of estimating one")
    run.add_argument("--depth-kind", default="relative-inverse", choices=("metric", "relative-inverse"))
    run.add_argument("--relief", type=float, default=0.0, help="classic engine: fine relief from image detail")
    return parser


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
        if args.command == "engines":
            from .engines import list_engines

            real_stdout.write(json.dumps({"event": "engines", "engines": list_engines()}) + "\n")
            real_stdout.flush()
            return EXIT_OK
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
            depth_kind=args.depth_kind,
            engine_options={"relief": args.relief} if args.engine == "classic" else {},
        )
        path = run(opts, emit)
        emit.result(str(path))
        return EXIT_OK
    except WorkerError as exc:
        logging.getLogger("inference").info("error %s: %s", exc.code, exc.message)
        emit.error(exc.code, exc.message)
        return exc.exit_code
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
    finally:
        sys.stdout = real_stdout


if __name__ == "__main__":
    raise SystemExit(main())
