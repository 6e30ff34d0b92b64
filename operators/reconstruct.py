"""Reconstruct from Image: run the worker (or reuse its cached result) and build the objects.

Interactive invocation is modal: the worker runs as a subprocess, a 0.1 s timer
polls its events, Esc cancels. ``execute`` (scripts, ``blender -b``, redo) blocks.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import bpy
from bpy.types import Operator

from .. import prefs
from ..bridge.cache import ResultCache, cache_key
from ..bridge.worker import WorkerJob, WorkerRunError
from ..geometry import MeshSettings
from ..props import MonocleMeshSettings, copy_mesh_settings

log = logging.getLogger(__name__)

TIMER_S = 0.1


class InputError(Exception):
    """A problem with the user's input that needs no worker to detect."""


def resolve_image_path(settings, scratch_dir: Path) -> str:  # noqa: ANN001 - MonocleSettings
    """Path of the photo on disk; a packed or generated Blender image is saved to ``scratch_dir``."""
    if settings.source == "IMAGE":
        image = settings.image
        if image is None:
            raise InputError("Choose an image to reconstruct.")
        path = bpy.path.abspath(image.filepath, library=image.library) if image.filepath else ""
        if path and Path(path).is_file() and not image.packed_file and not image.is_dirty:
            return path
        scratch_dir.mkdir(parents=True, exist_ok=True)
        out = scratch_dir / (bpy.path.clean_name(image.name) + ".png")
        try:
            image.save(filepath=str(out))
        except RuntimeError as exc:
            raise InputError(f"The image {image.name!r} has no pixels Monocle can read ({exc}).") from None
        return str(out)
    path = bpy.path.abspath(settings.image_path.strip())
    if not settings.image_path.strip():
        raise InputError("Choose a photo to reconstruct.")
    if not Path(path).is_file():
        raise InputError(f"The photo {path!r} does not exist.")
    return path


def inference_settings(settings) -> dict:  # noqa: ANN001 - MonocleSettings
    """Everything that changes the worker's output (and so the cache key)."""
    return {"engine": settings.engine, "objects": settings.objects.lower(), "max_size": int(settings.max_size)}


def worker_args(image: str, out: Path, inference: dict) -> list[str]:
    return [
        "run", "--image", image, "--out", str(out), "--engine", inference["engine"],
        "--objects", inference["objects"], "--max-size", str(inference["max_size"]),
    ]


def mesh_settings(op) -> MeshSettings:  # noqa: ANN001 - any MonocleMeshSettings holder
    return MeshSettings(
        detail=int(op.detail),
        distance=float(op.distance),
        depth_range=float(op.depth_range),
        tear_threshold=float(op.tear_threshold),
        back=op.back.lower(),
        thickness=float(op.thickness),
    )


def start_job(context, image: str, inference: dict) -> tuple[WorkerJob, Path]:  # noqa: ANN001
    cache = ResultCache(prefs.cache_root(context))
    scratch = cache.scratch()
    extra = prefs.wheel_site_packages() if prefs.uses_blender_python(context) else []
    job = WorkerJob(
        worker_args(image, scratch, inference),
        interpreter=prefs.interpreter(context),
        extra_paths=extra,
        extra_env={"MONOCLE_DEVICE": prefs.get_prefs(context).device.lower()},
    )
    try:
        job.start()
    except WorkerRunError:
        cache.discard(scratch)
        raise
    return job, scratch


class MONOCLE_OT_reconstruct(Operator, MonocleMeshSettings):
    """Turn the photo into textured 3D objects lined up with a matching camera"""

    bl_idname = "monocle.reconstruct"
    bl_label = "Reconstruct from Image"
    bl_description = "Find the objects in the photo, estimate their depth and build one textured mesh for each"
    bl_options = {"REGISTER", "UNDO"}

    _job: WorkerJob | None = None
    _timer = None

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        settings = getattr(context.scene, "monocle", None)
        if settings is None:
            return False
        if context.window_manager.monocle_status.running:
            cls.poll_message_set("A reconstruction is already running")
            return False
        if settings.source == "FILE" and not settings.image_path.strip():
            cls.poll_message_set("Choose a photo first")
            return False
        if settings.source == "IMAGE" and settings.image is None:
            cls.poll_message_set("Choose an image first")
            return False
        return True

    # -- shared steps --------------------------------------------------------------------------
    def _prepare(self, context: bpy.types.Context) -> tuple[str, dict, str, Path | None]:
        settings = context.scene.monocle
        cache = ResultCache(prefs.cache_root(context))
        image = resolve_image_path(settings, cache.root / "images")
        inference = inference_settings(settings)
        try:
            key = cache_key(image, inference)
        except OSError as exc:
            raise InputError(f"Cannot read the photo {image!r} ({exc.strerror}).") from None
        return image, inference, key, cache.lookup(key)

    def _build(self, context: bpy.types.Context, result_path: Path, t_infer: float, cached: bool) -> set[str]:
        from ..scene.build import build_from_result

        focal = None
        if self.focal_mode == "MANUAL" or not json.loads(Path(result_path).read_text())["camera"].get("focal_35mm"):
            focal = self.focal_mm
        try:
            report = build_from_result(
                result_path, mesh_settings(self), context=context, relief_strength=self.relief_strength,
                focal_mm=focal,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            log.exception("building the reconstruction failed")
            self.report({"ERROR"}, f"Could not build the objects: {exc}")
            return {"CANCELLED"}
        verts = sum(report.vertex_counts)
        timing = "cached" if cached else f"inference {t_infer:.1f} s"
        summary = (
            f"{len(report.objects)} object(s), {verts / 1000:.0f}k verts; {timing}, "
            f"build {report.timings.get('total', 0.0):.2f} s"
        )
        context.window_manager.monocle_status.summary = summary
        self.report({"INFO"}, summary)
        return {"FINISHED"}

    # -- blocking path (scripts, background, redo) -----------------------------------------------
    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            image, inference, key, hit = self._prepare(context)
        except InputError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if hit is not None:
            return self._build(context, hit, 0.0, cached=True)
        t0 = time.perf_counter()
        scratch = None
        cache = ResultCache(prefs.cache_root(context))
        try:
            job, scratch = start_job(context, image, inference)
            job.wait()
            result = cache.commit(key, scratch)
        except WorkerRunError as exc:
            cache.discard(scratch)
            log.error("Monocle worker failed (%s): %s\n%s", exc.code, exc.message, exc.detail)
            self.report({"ERROR"}, exc.message)
            return {"CANCELLED"}
        return self._build(context, result, time.perf_counter() - t0, cached=False)

    # -- interactive path --------------------------------------------------------------------------
    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        copy_mesh_settings(context.scene.monocle, self)
        if bpy.app.background:
            return self.execute(context)
        try:
            image, inference, key, hit = self._prepare(context)
        except InputError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if hit is not None:
            return self._build(context, hit, 0.0, cached=True)
        try:
            self._job, self._scratch = start_job(context, image, inference)
        except WorkerRunError as exc:
            self.report({"ERROR"}, exc.message)
            return {"CANCELLED"}
        self._key = key
        self._t0 = time.perf_counter()
        wm = context.window_manager
        status = wm.monocle_status
        status.running, status.stage, status.progress, status.summary = True, "Starting", 0.0, ""
        self._timer = wm.event_timer_add(TIMER_S, window=context.window)
        wm.progress_begin(0, 100)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if event.type == "ESC":
            self._job.cancel()
            self._cleanup(context)
            self.report({"WARNING"}, "Reconstruction cancelled.")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        state = self._job.poll()
        status = context.window_manager.monocle_status
        status.stage = state.message or state.stage
        status.progress = state.fraction
        context.window_manager.progress_update(int(state.fraction * 100))
        if context.workspace:
            context.workspace.status_text_set(f"Monocle: {status.stage} ({state.fraction:.0%}) - Esc to cancel")
        for area in context.screen.areas if context.screen else ():
            if area.type == "VIEW_3D":
                area.tag_redraw()
        if not state.done:
            return {"RUNNING_MODAL"}
        cache = ResultCache(prefs.cache_root(context))
        if state.error is not None:
            self._cleanup(context)
            log.error("Monocle worker failed (%s): %s\n%s", state.error.code, state.error.message, state.error.detail)
            self.report({"ERROR"}, state.error.message)
            return {"CANCELLED"}
        result = cache.commit(self._key, self._scratch)
        self._scratch = None
        elapsed = time.perf_counter() - self._t0
        self._cleanup(context)
        return self._build(context, result, elapsed, cached=False)

    def cancel(self, context: bpy.types.Context) -> None:
        # Blender calls this when the operator is aborted (e.g. the file is closed)
        if self._job is not None:
            self._job.cancel()
        self._cleanup(context)

    def _cleanup(self, context: bpy.types.Context) -> None:
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()
        if context.workspace:
            context.workspace.status_text_set(None)
        wm.monocle_status.running = False
        ResultCache.discard(getattr(self, "_scratch", None))
        self._scratch = None


classes = (MONOCLE_OT_reconstruct,)
