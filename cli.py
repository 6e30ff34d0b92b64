"""``blender -b -c monocle reconstruct ...``: the same reconstruction as the button,
over files, folders and globs, with exports and a JSON report.

The handler is registered with ``bpy.utils.register_cli_command`` while the
extension is enabled; ``scripts/monocle.py`` calls :func:`main` through the
``bpy`` module with the same arguments and exit code.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bpy

from .bridge.worker import WorkerRunError
from .geometry import MeshSettings
from .pipeline import Inference, InferenceRequest

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".exr", ".ppm", ".pgm"}
FORMATS = ("glb", "obj", "fbx", "usd", "blend")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
POLL_S = 0.05
TMP_PREFIX = ".monocle-tmp-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def remove_stale_temp(outdir: Path) -> None:
    """Delete temp folders left by killed runs (their process is gone); other live runs keep theirs."""
    for d in outdir.glob(TMP_PREFIX + "*"):
        pid = d.name[len(TMP_PREFIX):].split("-", 1)[0]
        if d.is_dir() and pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)


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
                         description="Reconstruct each input photo into OUTDIR/<name>.<format>.")
    rec.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (searched recursively), globs")
    rec.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="folder for the results")
    rec.add_argument("--format", default="glb", help="glb, obj, fbx, usd or blend; several with commas (glb,blend)")
    rec.add_argument("--engine", default="classic", help="inference engine (see `python -m inference engines`)")
    rec.add_argument("--objects", choices=("all", "largest"), default="all")
    rec.add_argument("--detail", type=int, default=MeshSettings.detail, help="target vertices per object")
    rec.add_argument("--back", choices=("open", "solidify", "closed"), default=MeshSettings.back)
    rec.add_argument("--thickness", type=float, default=MeshSettings.thickness, help="solidify thickness")
    rec.add_argument("--outline-alpha", action="store_true",
                     help="the photo material takes its alpha from each object's mask (soft outline)")
    rec.add_argument("--depth-strength", type=float, default=1.0, help="strength of the depth relief")
    rec.add_argument("--distance", type=float, default=MeshSettings.distance)
    rec.add_argument("--depth-range", type=float, default=MeshSettings.depth_range)
    rec.add_argument("--tear-threshold", type=float, default=MeshSettings.tear_threshold)
    rec.add_argument("--focal-mm", type=float, default=None, help="focal length (36 mm sensor) when the photo has none")
    rec.add_argument("--max-size", type=int, default=1024, help="long side the photo is analysed at")
    rec.add_argument("--mask", default=None, help="mask or label map to use instead of segmentation")
    rec.add_argument("--depth", default=None, help="depth map to use instead of estimating one")
    rec.add_argument("--depth-kind", choices=("metric", "relative-inverse"), default="relative-inverse")
    rec.add_argument("--depth-model", default="", help="transformers engine: depth model id or local folder")
    rec.add_argument("--seg-model", default="", help="transformers engine: segmentation model id or local folder")
    rec.add_argument("--seg-mode", choices=("labels", "foreground"), default="labels")
    rec.add_argument("--prompt", default="", help="transformers engine: only objects these words name")
    rec.add_argument("--template-weight", type=float, default=None, metavar="W",
                     help="blend a matching library template at this weight (0 = reconstruction, 1 = template)")
    rec.add_argument("--report", default=None, metavar="FILE", help="write a JSON report here")
    rec.add_argument("--jobs", type=int, default=1, help="inputs whose inference runs in parallel")
    rec.add_argument("--cache-max-mb", type=int, default=None, metavar="MB",
                     help="size cap of the inference cache, least recently used results go first (0: no cap; "
                     "default: the preference)")
    rec.add_argument("--overwrite", action="store_true", help="redo inputs whose output already exists")
    rec.add_argument("--cold-worker", action="store_true",
                     help="start a fresh worker per input instead of reusing warm ones (slower; isolates inputs)")
    return parser


def collect_inputs(patterns: list[str]) -> list[Path]:
    """Image files named directly, found under folders, or matched by globs; sorted, unique."""
    found: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            found += [p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        elif path.exists():
            found.append(path)  # named explicitly: even a bad file is tried and reported
        else:
            matches = sorted(glob.glob(pattern, recursive=True))
            if matches:
                found += [Path(m) for m in matches if Path(m).is_file() and Path(m).suffix.lower() in IMAGE_SUFFIXES]
            else:
                found.append(path)  # reported as missing
    seen: set[Path] = set()
    unique = []
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def output_stems(inputs: list[Path]) -> list[str]:
    """One output name per input: the file stem, made unique when two inputs share one."""
    stems: list[str] = []
    used: dict[str, int] = {}
    for p in inputs:
        stem = p.stem
        n = used.get(stem, 0)
        used[stem] = n + 1
        stems.append(stem if n == 0 else f"{stem}-{n + 1}")
    return stems


@dataclass
class Item:
    index: int
    path: Path
    stem: str
    outputs: dict[str, Path]
    status: str = "pending"
    code: str | None = None
    message: str | None = None
    objects: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    inference: Inference | None = None
    started: float = 0.0

    def record(self) -> dict[str, Any]:
        return {
            "input": str(self.path),
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "outputs": {k: str(v) for k, v in self.outputs.items()},
            "objects": self.objects,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


def _export(fmt: str, target: Path) -> None:
    """Export the current file's scene to ``target`` (a final-name path inside a temp folder)."""
    if fmt == "glb":
        bpy.ops.export_scene.gltf(filepath=str(target), export_format="GLB", export_apply=True,
                                  export_cameras=True, export_image_format="AUTO")
    elif fmt == "obj":
        bpy.ops.wm.obj_export(filepath=str(target), apply_modifiers=True, export_materials=True, path_mode="COPY")
    elif fmt == "fbx":
        bpy.ops.export_scene.fbx(filepath=str(target), use_mesh_modifiers=True, path_mode="COPY",
                                 embed_textures=True)
    elif fmt == "usd":
        bpy.ops.wm.usd_export(filepath=str(target), export_textures=True, relative_paths=True)
    elif fmt == "blend":
        bpy.ops.file.pack_all()
        bpy.ops.wm.save_as_mainfile(filepath=str(target), copy=True, compress=True)
    else:  # pragma: no cover - argparse validated it
        raise ValueError(fmt)
    if not target.is_file():
        raise RuntimeError(f"the {fmt} exporter wrote nothing")


def _publish(tmp_dir: Path, final: Path) -> None:
    """Move an export's side files, then its main file last, atomically, into place."""
    main_name = final.name
    for f in sorted(tmp_dir.rglob("*")):
        if f.is_file() and f.name != main_name:
            dest = final.parent / f.relative_to(tmp_dir)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(f, dest)
    os.replace(tmp_dir / main_name, final)


class Batch:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.formats = [f.strip().lower() for f in args.format.split(",") if f.strip()]
        bad = [f for f in self.formats if f not in FORMATS]
        if bad or not self.formats:
            raise UsageError(f"unknown format {','.join(bad) or args.format!r}; choose from {', '.join(FORMATS)}")
        if args.jobs < 1:
            raise UsageError("--jobs must be at least 1")
        if args.template_weight is not None and not 0.0 <= args.template_weight <= 1.0:
            raise UsageError("--template-weight must be between 0 and 1")
        self.outdir = Path(args.output)
        try:
            self.outdir.mkdir(parents=True, exist_ok=True)
            probe = self.outdir / f".monocle-write-test-{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise UsageError(f"cannot write to the output folder {str(self.outdir)!r} ({exc.strerror})") from None
        inputs = collect_inputs(args.inputs)
        if not inputs:
            raise UsageError("no input images found")
        self.items = [
            Item(i, p, stem, {f: self.outdir / f"{stem}.{f}" for f in self.formats})
            for i, (p, stem) in enumerate(zip(inputs, output_stems(inputs)))
        ]
        self.settings = MeshSettings(
            detail=args.detail, distance=args.distance, depth_range=args.depth_range,
            tear_threshold=args.tear_threshold, back=args.back, thickness=args.thickness,
            outline_alpha=args.outline_alpha,
        )

    def request(self, item: Item) -> InferenceRequest:
        a = self.args
        return InferenceRequest(
            image=str(item.path), engine=a.engine, objects=a.objects, max_size=a.max_size,
            mask_file=a.mask, depth_file=a.depth, depth_kind=a.depth_kind, depth_model=a.depth_model,
            seg_model=a.seg_model, seg_mode=a.seg_mode, prompt=a.prompt,
        )

    def run(self) -> int:
        t0 = time.perf_counter()
        remove_stale_temp(self.outdir)
        todo: list[Item] = []
        for item in self.items:
            if not self.args.overwrite and all(p.is_file() for p in item.outputs.values()):
                item.status = "skipped"
                self._line(item, "skipped (output exists)")
            else:
                todo.append(item)
        running: list[Item] = []
        queue = list(todo)
        while queue or running:
            while queue and len(running) < self.args.jobs:
                item = queue.pop(0)
                item.started = time.perf_counter()
                try:
                    item.inference = Inference(self.request(item), warm=not self.args.cold_worker,
                                               cache_max_mb=self.args.cache_max_mb)
                except WorkerRunError as exc:
                    self._fail(item, exc.code, exc.message)
                    continue
                running.append(item)
            finished = [it for it in running if it.inference is not None and it.inference.done]
            if not finished:
                time.sleep(POLL_S)
                continue
            # build in input order among the finished ones, so logs read naturally
            for item in sorted(finished, key=lambda it: it.index):
                running.remove(item)
                self._complete(item)
        totals = {s: sum(1 for it in self.items if it.status == s) for s in ("ok", "failed", "skipped")}
        totals["seconds"] = round(time.perf_counter() - t0, 3)
        print(f"monocle: {totals['ok']} ok, {totals['failed']} failed, {totals['skipped']} skipped "
              f"in {totals['seconds']:.1f} s", file=sys.stderr)
        if self.args.report:
            report = {"schema": 1, "items": [it.record() for it in self.items], "totals": totals}
            tmp = Path(self.args.report).with_suffix(".tmp")
            tmp.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(report, indent=1))
            os.replace(tmp, self.args.report)
        return EXIT_FAILED if totals["failed"] else EXIT_OK

    def _complete(self, item: Item) -> None:
        assert item.inference is not None
        try:
            result = item.inference.finish()
        except WorkerRunError as exc:
            self._fail(item, exc.code, exc.message)
            return
        item.timings["inference"] = 0.0 if item.inference.cached else item.inference.seconds
        try:
            self._build_and_export(item, result)
        except Exception as exc:  # one bad input must not stop the batch
            log.exception("building %s failed", item.path)
            self._fail(item, getattr(exc, "code", "build_failed"), str(exc).strip() or type(exc).__name__)
            return
        item.status = "ok"
        item.timings["total"] = time.perf_counter() - item.started
        verts = sum(o["vertices"] for o in item.objects)
        self._line(item, f"ok {len(item.objects)} objects {verts / 1000:.0f}k verts {item.timings['total']:.1f}s")

    def _build_and_export(self, item: Item, result: Path) -> None:
        from .scene.build import build_from_result

        bpy.ops.wm.read_homefile(use_empty=True, app_template="")
        focal = self.args.focal_mm
        report = build_from_result(result, self.settings, context=bpy.context,
                                   relief_strength=self.args.depth_strength, focal_mm=focal, image_path=item.path)
        item.timings["build"] = report.timings.get("total", 0.0)
        item.objects = [
            {"name": obj.name, "label": obj.get("monocle_label", obj.name.split(".")[0]), "vertices": v, "faces": f}
            for obj, v, f in zip(report.objects, report.vertex_counts, report.face_counts)
        ]
        if self.args.template_weight is not None:
            from .operators.reconstruct import apply_templates

            t = time.perf_counter()
            blended = apply_templates(bpy.context, result, report, self.settings, self.args.template_weight, focal)
            for record, tmpl in zip(item.objects, blended):
                record["template"] = tmpl.to_json()
            item.timings["template"] = time.perf_counter() - t
        t = time.perf_counter()
        for fmt, final in item.outputs.items():
            tmp_dir = self.outdir / f"{TMP_PREFIX}{os.getpid()}-{item.stem}-{fmt}-{uuid.uuid4().hex[:8]}"
            tmp_dir.mkdir()
            try:
                _export(fmt, tmp_dir / final.name)
                _publish(tmp_dir, final)
            finally:
                shutil.rmtree(tmp_dir, ignore_errors=True)
        item.timings["export"] = time.perf_counter() - t

    def _fail(self, item: Item, code: str, message: str) -> None:
        item.status, item.code, item.message = "failed", code, message
        if item.started:
            item.timings["total"] = time.perf_counter() - item.started
        self._line(item, f"failed [{code}] {message}")

    def _line(self, item: Item, text: str) -> None:
        print(f"[{item.index + 1}/{len(self.items)}] {item.path.name} {text}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    """Entry point shared by ``blender -c monocle`` and ``scripts/monocle.py``; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return Batch(args).run()
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
