"""The headless batch: inference for several photos at once, then one build and export at a time.

Each input is independent: a failure is reported and the next input goes on. Ctrl-C
(SIGINT) or a farm's SIGTERM stops starting new inputs, cancels running inference,
finishes nothing half-way, writes the report of what is done and exits 128 + signal.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import bpy

from ..bridge.worker import WorkerRunError
from ..geometry import MeshSettings
from ..pipeline import Inference, InferenceRequest
from . import files
from .inputs import SIDE_FILE_FORMATS, TEXTURE_DIR_SUFFIX, Source, display, sidecar

log = logging.getLogger(__name__)

POLL_S = 0.05
EXIT_OK, EXIT_FAILED = 0, 1


@dataclass
class Item:
    index: int
    source: Source
    outputs: dict[str, Path]
    status: str = "pending"
    code: str | None = None
    message: str | None = None
    objects: list[dict[str, Any]] = field(default_factory=list)
    ground: dict[str, Any] | None = None  # the plane the objects stand on (scene.backdrop)
    timings: dict[str, float] = field(default_factory=dict)
    inference: Inference | None = None
    started: float = 0.0

    @property
    def path(self) -> Path:
        return self.source.path

    def record(self) -> dict[str, Any]:
        return {
            "input": display(self.path),
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "outputs": {k: display(v) for k, v in self.outputs.items()} if self.status in ("ok", "skipped") else {},
            "objects": self.objects,
            "ground": self.ground,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


@dataclass
class BatchOptions:
    """What a headless run does, already validated (paths absolute)."""

    outdir: Path
    formats: list[str]
    settings: MeshSettings
    request: dict[str, Any]  # InferenceRequest fields other than the image
    depth_strength: float = 1.0
    focal_mm: float | None = None
    template_weight: float | None = None
    template_category: str | None = None  # every object gets this category's best template, whatever it scores
    report: Path | None = None
    jobs: int = 1
    overwrite: bool = False
    cold_worker: bool = False
    shard: tuple[int, int] | None = None
    total_inputs: int = 0  # before sharding
    cache_max_mb: int | None = None  # None: the preference


def export_file(fmt: str, target: Path) -> None:
    """Export the current file's scene to ``target`` (a final-name path inside a temp folder)."""
    if fmt == "glb":
        bpy.ops.export_scene.gltf(filepath=str(target), export_format="GLB", export_apply=True,
                                  export_cameras=True, export_image_format="AUTO")
    elif fmt == "obj":
        bpy.ops.wm.obj_export(filepath=str(target), apply_modifiers=True, export_materials=True,
                              path_mode="RELATIVE")
    elif fmt == "fbx":
        bpy.ops.export_scene.fbx(filepath=str(target), use_mesh_modifiers=True, path_mode="COPY",
                                 embed_textures=True)
    elif fmt == "usd":
        bpy.ops.wm.usd_export(filepath=str(target), export_textures_mode="KEEP", relative_paths=True)
    elif fmt == "blend":
        bpy.ops.file.pack_all()
        bpy.ops.wm.save_as_mainfile(filepath=str(target), copy=True, compress=True)
    else:  # pragma: no cover - the command line validated it
        raise ValueError(fmt)
    if not target.is_file():
        raise files.OutputError("export_failed", f"The {fmt} exporter wrote nothing.")


def _material_images() -> list[bpy.types.Image]:
    images: dict[int, bpy.types.Image] = {}
    for obj in bpy.context.scene.objects:
        for slot in getattr(obj, "material_slots", ()):
            tree = slot.material.node_tree if slot.material and slot.material.node_tree else None
            for node in tree.nodes if tree else ():
                if node.type == "TEX_IMAGE" and node.image is not None:
                    images[node.image.as_pointer()] = node.image
    return list(images.values())


@contextmanager
def textures_in(folder: Path) -> Iterator[None]:
    """While exporting, the materials' images are files in ``folder`` (the output's own texture folder).

    OBJ and USD reference their textures by path: they get copies named for this output,
    so no user file is overwritten and two outputs never share (or swap) a texture.
    """
    changed: list[tuple[bpy.types.Image, str]] = []
    used: set[str] = set()
    try:
        for image in _material_images():
            src = Path(bpy.path.abspath(image.filepath_raw)) if image.filepath_raw else None
            name = bpy.path.clean_name(Path(image.filepath_raw).stem if src else image.name)
            suffix = src.suffix.lower() if src and src.suffix else ".png"
            n, dest_name = 1, f"{name}{suffix}"
            while dest_name.casefold() in used:
                n += 1
                dest_name = f"{name}-{n}{suffix}"
            used.add(dest_name.casefold())
            folder.mkdir(exist_ok=True)
            dest = folder / dest_name
            if image.packed_file is not None:
                dest.write_bytes(image.packed_file.data)
            elif src is not None and src.is_file():
                shutil.copyfile(src, dest)
            else:
                continue
            changed.append((image, image.filepath_raw))
            image.filepath_raw = str(dest)
        yield
    finally:
        for image, old in changed:
            image.filepath_raw = old


class Batch:
    def __init__(self, sources: list[Source], options: BatchOptions) -> None:
        self.options = options
        self.items = [
            Item(i, src, {f: src.output(options.outdir, f) for f in options.formats}) for i, src in enumerate(sources)
        ]
        self.stop_signal: int | None = None
        self._previous_handlers: dict[int, Any] = {}

    # -- signals -------------------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.stop_signal is not None:
            raise KeyboardInterrupt  # asked twice: stop the current step too
        self.stop_signal = signum
        print(f"monocle: stopping after the current step ({signal.Signals(signum).name}); "
              "press Ctrl-C again to stop at once", file=sys.stderr, flush=True)

    def _install_signals(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous_handlers[sig] = signal.signal(sig, self._on_signal)
            except ValueError:  # not the main thread: leave signals alone
                pass

    def _restore_signals(self) -> None:
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)
        self._previous_handlers.clear()

    # -- the run -------------------------------------------------------------------------------
    def run(self) -> int:
        t0 = time.perf_counter()
        for folder in sorted({p.parent for it in self.items for p in it.outputs.values()}):
            files.remove_stale_temp(folder)
        self._install_signals()
        try:
            self._loop()
        except KeyboardInterrupt:
            self.stop_signal = self.stop_signal or signal.SIGINT
        finally:
            self._restore_signals()
            for item in self.items:
                if item.inference is not None and item.status == "pending":
                    item.inference.cancel()
                if item.status == "pending":
                    item.status = "cancelled" if item.started else "not_run"
        totals: dict[str, Any] = {s: sum(1 for it in self.items if it.status == s)
                                  for s in ("ok", "failed", "skipped", "cancelled", "not_run")}
        totals["seconds"] = round(time.perf_counter() - t0, 3)
        stopped = f", stopped by {signal.Signals(self.stop_signal).name}" if self.stop_signal else ""
        print(f"monocle: {totals['ok']} ok, {totals['failed']} failed, {totals['skipped']} skipped "
              f"in {totals['seconds']:.1f} s{stopped}", file=sys.stderr, flush=True)
        if self.options.report:
            self._write_report(totals)
        if self.stop_signal:
            return 128 + int(self.stop_signal)
        return EXIT_FAILED if totals["failed"] else EXIT_OK

    def _write_report(self, totals: dict[str, Any]) -> None:
        o = self.options
        report = {"schema": 2, "shard": list(o.shard) if o.shard else None, "inputs_total": o.total_inputs,
                  "items": [it.record() for it in self.items], "totals": totals}
        assert o.report is not None
        files.write_atomic(o.report, json.dumps(report, indent=1).encode("utf-8"))

    def _loop(self) -> None:
        queue: list[Item] = []
        for item in self.items:
            if not self.options.overwrite and all(p.is_file() for p in item.outputs.values()):
                item.status = "skipped"
                self._line(item, "skipped (output exists)")
            else:
                queue.append(item)
        running: list[Item] = []
        while (queue or running) and self.stop_signal is None:
            while queue and len(running) < self.options.jobs and self.stop_signal is None:
                item = queue.pop(0)
                item.started = time.perf_counter()
                try:
                    item.inference = Inference(self._request(item), warm=not self.options.cold_worker,
                                               cache_max_mb=self.options.cache_max_mb)
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
                if self.stop_signal is not None:
                    break

    def _request(self, item: Item) -> InferenceRequest:
        found = sidecar(item.path)
        return InferenceRequest(image=str(item.path), **self.options.request,
                                corrections_file=str(found) if found else None)

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
            log.info("building %s failed", display(item.path), exc_info=True)
            if files.is_disk_full(exc):
                err = files.disk_full_error(self.options.outdir)
                self._fail(item, err.code, str(err))
            else:
                self._fail(item, getattr(exc, "code", "build_failed"), str(exc).strip() or type(exc).__name__)
            return
        item.status = "ok"
        item.timings["total"] = time.perf_counter() - item.started
        verts = sum(o["vertices"] for o in item.objects)
        self._line(item, f"ok {len(item.objects)} objects {verts / 1000:.0f}k verts {item.timings['total']:.1f}s")

    def _build_and_export(self, item: Item, result: Path) -> None:
        from ..scene.build import build_from_result

        o = self.options
        bpy.ops.wm.read_homefile(use_empty=True, app_template="")
        report = build_from_result(result, o.settings, context=bpy.context, relief_strength=o.depth_strength,
                                   focal_mm=o.focal_mm, image_path=item.path, name_prefix=item.source.rel.name)
        item.timings["build"] = report.timings.get("total", 0.0)
        item.ground = report.ground
        item.objects = [
            {"name": obj.name, "label": obj.get("monocle_label", obj.name.split(".")[0]), "vertices": v, "faces": f}
            for obj, v, f in zip(report.objects, report.vertex_counts, report.face_counts)
        ]
        if o.template_weight is not None:
            from ..scene.template_blend import blend_from_result

            t = time.perf_counter()
            library = threshold = None
            if o.template_category:
                from ..scene.template_library import template_library

                library = template_library(bpy.context).of_category(o.template_category)
                threshold = -1.0 if library is not None else None  # the command line checked it is there
            blended = blend_from_result(result, o.settings, report.objects, report.camera, weight=o.template_weight,
                                        focal_mm=o.focal_mm, context=bpy.context, library=library, threshold=threshold)
            for record, tmpl in zip(item.objects, blended):
                record["template"] = tmpl.to_json()
            item.timings["template"] = time.perf_counter() - t
        t = time.perf_counter()
        written: list[Path] = []
        try:
            for fmt, final in item.outputs.items():
                files.make_dirs(o.outdir, final.parent)
                tmp_dir = files.make_temp_dir(final.parent)
                try:
                    target = tmp_dir / final.name
                    if fmt in SIDE_FILE_FORMATS:
                        with textures_in(tmp_dir / f"{item.source.rel.name}{TEXTURE_DIR_SUFFIX}"):
                            export_file(fmt, target)
                    else:
                        export_file(fmt, target)
                    written += files.publish(tmp_dir, o.outdir, final)
                finally:
                    shutil.rmtree(tmp_dir, ignore_errors=True)
        except BaseException:
            files.remove_files(written)  # a failed input leaves no output behind
            raise
        item.timings["export"] = time.perf_counter() - t

    def _fail(self, item: Item, code: str, message: str) -> None:
        item.status, item.code, item.message = "failed", code, message
        if item.started:
            item.timings["total"] = time.perf_counter() - item.started
        self._line(item, f"failed [{code}] {message}")

    def _line(self, item: Item, text: str) -> None:
        line = f"[{item.index + 1}/{len(self.items)}] {display(item.source.rel)}{item.path.suffix} {text}"
        print(line.encode("utf-8", "replace").decode("utf-8"), file=sys.stderr, flush=True)


def cpu_and_memory_jobs(engine: str) -> tuple[int, str]:
    """How many inference workers this machine can run at once, and why."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    per_worker_gb = 2.5 if engine == "transformers" else 0.6
    free_gb = _available_memory_gb()
    by_memory = max(1, int(free_gb / per_worker_gb)) if free_gb is not None else cores
    jobs = max(1, min(cores, by_memory))
    memory = f", {free_gb:.0f} GB free at ~{per_worker_gb} GB a worker" if free_gb is not None else ""
    return jobs, f"{cores} cores{memory}"


def _available_memory_gb() -> float | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    try:  # macOS / BSD: total memory is the best cheap bound
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError, AttributeError):
        return None
