"""``blender -b -c monocle reconstruct ...``: the same reconstruction as the button,
over files, folders and globs, with exports and a JSON report.

The handler is registered with ``bpy.utils.register_cli_command`` while the
extension is enabled; ``scripts/monocle.py`` calls :func:`main` through the
``bpy`` module with the same arguments and exit code. The batch itself lives in
:mod:`.batch`; this module parses and validates the command line.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import bpy

from .batch import files
from .batch.inputs import InputError, collect, parse_shard, shard
from .batch.run import Batch, BatchOptions, cpu_and_memory_jobs
from .geometry.settings import RELIEF_STRENGTH, Back, Backdrop, DrawingMaterial, MeshSettings
from .inference import options
from .inference.learned_env import DEVICES
from .inference.options import DepthKind, EngineName, Objects, SegMode

FORMATS = ("glb", "obj", "fbx", "usd", "blend")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# command-line option -> the panel's property whose limits it shares
RANGED = {
    "detail": "detail", "depth_strength": "relief_strength", "distance": "distance", "depth_range": "depth_range",
    "thickness": "thickness", "tear_threshold": "tear_threshold", "template_weight": "template_weight",
    "focal_mm": "focal_mm", "max_size": "max_size",
}


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="blender -b -c monocle", description="Reconstruct 3D objects from photos with Monocle.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    rec = sub.add_parser("reconstruct", help="reconstruct images, folders or glob patterns into 3D files",
                         description="Reconstruct each input photo into OUTDIR: a folder's photos keep their "
                                     "sub-folders there, a single file becomes OUTDIR/<name>.<format>. A photo with a "
                                     "corrections file beside it (cat.png.monocle.json or cat.monocle.json: "
                                     "{\"corrections\": [{\"action\": \"add\", \"points\": [[X, Y, 1]]}, ...]}, "
                                     "as Save Corrections writes it) is segmented with those corrections applied.")
    rec.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (searched recursively), globs")
    rec.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="folder for the results")
    rec.add_argument("--format", default="glb", help="glb, obj, fbx, usd or blend; several with commas (glb,blend)")
    rec.add_argument("--engine", default=options.ENGINE.value, choices=options.values(EngineName),
                     help="auto (drawing for line art, else classic), classic, drawing, transformers or moge")
    rec.add_argument("--objects", choices=options.values(Objects), default=Objects.ALL.value)
    rec.add_argument("--detail", type=int, default=MeshSettings.detail, help="target vertices per object")
    rec.add_argument("--back", choices=options.values(Back), default=MeshSettings.back)
    rec.add_argument("--thickness", type=float, default=MeshSettings.thickness, help="solidify thickness")
    rec.add_argument("--outline-alpha", action="store_true",
                     help="the photo material takes its alpha from each object's mask (soft outline)")
    rec.add_argument("--backdrop", choices=options.values(Backdrop), default=MeshSettings.backdrop,
                     help="the rest of the photo as one mesh behind the objects: flat (plane) or displaced (relief)")
    rec.add_argument("--no-ground", dest="ground", action="store_false",
                     help="leave the objects where the depth puts them instead of standing them on the ground found")
    rec.add_argument("--drawing-material", choices=options.values(DrawingMaterial),
                     default=MeshSettings.drawing_material, help="how a drawing's objects are shaded")
    rec.add_argument("--depth-strength", type=float, default=RELIEF_STRENGTH, help="strength of the depth relief")
    rec.add_argument("--distance", type=float, default=MeshSettings.distance)
    rec.add_argument("--depth-range", type=float, default=MeshSettings.depth_range)
    rec.add_argument("--tear-threshold", type=float, default=MeshSettings.tear_threshold)
    rec.add_argument("--focal-mm", type=float, default=None, metavar="MM",
                     help="the camera's focal length in mm on a 36 mm sensor, for every input; it wins over the "
                     "photo's EXIF and the depth model's estimate (without it: EXIF, else the model's estimate, "
                     "else 50 mm)")
    rec.add_argument("--max-size", type=int, default=options.MAX_SIZE, help="long side the photo is analysed at")
    rec.add_argument("--mask", default=None, help="mask or label map to use instead of segmentation")
    rec.add_argument("--depth", default=None, help="depth map to use instead of estimating one")
    rec.add_argument("--depth-kind", type=options.argument(DepthKind), default=DepthKind.RELATIVE_INVERSE,
                     help="metric or relative_inverse (larger is nearer)")
    rec.add_argument("--depth-model", default="", help="transformers engine: depth model id or local folder")
    rec.add_argument("--seg-model", default="", help="transformers engine: segmentation model id or local folder")
    rec.add_argument("--seg-mode", choices=options.values(SegMode), default=SegMode.LABELS.value)
    rec.add_argument("--prompt", default="", help="transformers engine: only objects these words name")
    rec.add_argument("--template-weight", type=float, default=None, metavar="W",
                     help="blend a matching library template at this weight (0 = reconstruction, 1 = template)")
    rec.add_argument("--template-category", default=None, metavar="NAME",
                     help="what every object is (a folder of one kind: chair, mug, ...): the best template of "
                          "this library category is placed on each, whatever it scores (weight: --template-weight, "
                          "default 0.5)")
    rec.add_argument("--report", default=None, metavar="FILE", help="write a JSON report here")
    rec.add_argument("--jobs", type=int, default=1,
                     help="inputs whose inference runs in parallel (capped by this machine's cores and memory)")
    rec.add_argument("--shard", default=None, metavar="K/N",
                     help="run only the K-th of N slices of the sorted inputs (farm array jobs: 1/8 ... 8/8)")
    rec.add_argument("--cache-max-mb", type=int, default=None, metavar="MB",
                     help="size cap of the inference cache, least recently used results go first (0: no cap; "
                     "default: the preference)")
    rec.add_argument("--overwrite", action="store_true", help="redo inputs whose output already exists")
    rec.add_argument("--cold-worker", action="store_true",
                     help="start a fresh worker per input instead of reusing warm ones (slower; isolates inputs)")
    env = sub.add_parser("setup-env", help="set up the learned engine's Python environment (needs --online-mode)",
                         description="Make the learned engine's environment (pinned torch, transformers and what the "
                                     "worker imports) and make it Monocle's inference Python.")
    env.add_argument("dir", nargs="?", default=None, metavar="DIR", help="default: ml-env in Monocle's user folder")
    env.add_argument("--device", choices=DEVICES, default="auto")
    return parser


def _limits(prop: str) -> tuple[float, float]:
    """The hard limits of the panel's property ``prop``: one source for the panel and the command line."""
    from .props import MonocleSettings

    rna = MonocleSettings.bl_rna.properties[prop]
    return float(rna.hard_min), float(rna.hard_max)


def validate_numbers(args: argparse.Namespace) -> None:
    """Every number finite and within the panel's limits, else a UsageError naming the option."""
    for option, prop in RANGED.items():
        value = getattr(args, option)
        if value is None:
            continue
        lo, hi = _limits(prop)
        flag = "--" + option.replace("_", "-")
        if not math.isfinite(value):
            raise UsageError(f"{flag} must be a finite number, not {value}")
        if prop == "focal_mm" and value <= 0:
            raise UsageError(f"{flag} must be positive")
        if not lo <= value <= hi:
            shown = [int(v) if float(v).is_integer() else v for v in (lo, hi)]
            raise UsageError(f"{flag} must be between {shown[0]} and {shown[1]}; got {value}")
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.cache_max_mb is not None and args.cache_max_mb < 0:
        raise UsageError("--cache-max-mb must be 0 (no cap) or a positive number of megabytes")


def _absolute(path: str | None) -> str | None:
    return os.path.abspath(path) if path else None


def options_from_args(args: argparse.Namespace) -> tuple[BatchOptions, list]:
    """Validate the parsed command line; returns the batch options and this run's inputs."""
    formats = _formats(args.format)
    validate_numbers(args)
    k_n = _shard_of(args.shard)
    category = _template_category(args.template_category)
    for flag, value in (("--mask", args.mask), ("--depth", args.depth)):
        if value and not os.path.isfile(value):
            raise UsageError(f"{flag} {value!r} is not a file")
    outdir = _output_folder(args.output)
    report = _report_file(args.report)
    sources = _sources(args.inputs)
    total = len(sources)
    if k_n is not None:
        sources = shard(sources, *k_n)
    jobs = args.jobs
    cap, why = cpu_and_memory_jobs(args.engine)
    if jobs > cap:
        print(f"monocle: --jobs {jobs} capped to {cap} ({why})", file=sys.stderr)
        jobs = cap
    settings = MeshSettings(
        detail=args.detail, distance=args.distance, depth_range=args.depth_range,
        tear_threshold=args.tear_threshold, back=args.back, thickness=args.thickness,
        outline_alpha=args.outline_alpha, backdrop=args.backdrop, ground=args.ground,
        drawing_material=args.drawing_material,
    )
    request = dict(
        engine=args.engine, objects=args.objects, max_size=args.max_size, mask_file=_absolute(args.mask),
        depth_file=_absolute(args.depth), depth_kind=str(args.depth_kind), depth_model=args.depth_model,
        seg_model=args.seg_model, seg_mode=args.seg_mode, prompt=args.prompt,
    )
    batch = BatchOptions(
        outdir=outdir, formats=formats, settings=settings, request=request, depth_strength=args.depth_strength,
        focal_mm=args.focal_mm, report=report, jobs=jobs, template_category=category,
        template_weight=args.template_weight if args.template_weight is not None or category is None else 0.5,
        overwrite=args.overwrite, cold_worker=args.cold_worker, shard=k_n, total_inputs=total,
        cache_max_mb=args.cache_max_mb,
    )
    return batch, sources


def _template_category(name: str | None) -> str | None:
    """``--template-category``: a category of the template library (bundled and the user's), else a UsageError
    listing them."""
    if name is None:
        return None
    from .scene.template_library import template_library

    known = template_library().categories
    found = [c for c in known if c.lower() == name.strip().lower()]
    if not found:
        raise UsageError(f"--template-category {name!r} is not a category of the template library; choose from "
                         f"{', '.join(known)}")
    return found[0]


def _formats(text: str) -> list[str]:
    """The ``--format`` list, deduplicated in order; refused when empty or naming an unknown format."""
    formats = list(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise UsageError(f"unknown format {','.join(bad) or text!r}; choose from {', '.join(FORMATS)}")
    return formats


def _shard_of(text: str | None) -> tuple[int, int] | None:
    """``--shard K/N`` as (K, N), or None without it."""
    if not text:
        return None
    try:
        return parse_shard(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _output_folder(path: str) -> Path:
    """The output folder, absolute, created and checked writable."""
    outdir = Path(os.path.abspath(path))
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        files.check_writable_file(outdir / ".monocle-write-test")
    except (OSError, files.OutputError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise UsageError(f"cannot write to the output folder {str(outdir)!r} ({reason})") from None
    return outdir


def _report_file(path: str | None) -> Path | None:
    """The ``--report`` file, absolute and checked writable, or None without it."""
    if not path:
        return None
    report = Path(os.path.abspath(path))
    try:
        files.check_writable_file(report)
    except files.OutputError as exc:
        raise UsageError(str(exc)) from None
    return report


def _sources(inputs: list[str]) -> list:
    """The input images the arguments name (files and folders); refused when there is none."""
    try:
        sources = collect(inputs)
    except InputError as exc:
        raise UsageError(str(exc)) from None
    if not sources:
        raise UsageError("no input images found")
    return sources


def main(argv: list[str]) -> int:
    """Entry point shared by ``blender -c monocle`` and ``scripts/monocle.py``; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "setup-env":
            from .operators.ml_env import run_headless

            return run_headless(args.dir, args.device, echo=lambda line: print(line, file=sys.stderr, flush=True))
        batch, sources = options_from_args(args)
        if batch.shard and not sources:
            print(f"monocle: shard {args.shard} of {batch.total_inputs} inputs is empty", file=sys.stderr)
        return Batch(sources, batch).run()
    except UsageError as exc:
        print(f"monocle: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    finally:
        from .bridge.warm import POOL

        POOL.shutdown_all()  # Blender exits after the command; its workers go with it


_handle = None


def register() -> None:
    global _handle
    _handle = bpy.utils.register_cli_command("monocle", main)


def unregister() -> None:
    global _handle
    if _handle is not None:
        bpy.utils.unregister_cli_command(_handle)
        _handle = None
