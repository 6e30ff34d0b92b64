"""Reconstruct from Image: run the worker (or reuse its cached result) and build the objects.

Interactive invocation is modal: the worker runs as a subprocess, a 0.1 s timer
polls its events, Esc cancels. ``execute`` (scripts, ``blender -b``, redo) blocks.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import bpy
from bpy.types import Operator

from .. import prefs
from ..bridge.worker import WorkerRunError
from ..geometry import MeshSettings
from ..geometry.camera import photo_focal_known
from ..pipeline import Inference, InferenceRequest, apply_templates
from ..props import MonocleMeshSettings, copy_mesh_settings
from .progress import PollingOperator, clear_progress, show_progress

log = logging.getLogger(__name__)



class InputError(Exception):
    """A problem with the user's input that needs no worker to detect."""


def resolve_image_path(settings, scratch_dir: Path) -> str:
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


def inference_request(settings, image: str) -> InferenceRequest:
    return InferenceRequest(
        image=image, engine=settings.engine, objects=settings.objects.lower(), max_size=int(settings.max_size),
        depth_model=settings.depth_model.strip(), seg_model=settings.seg_model.strip(), seg_mode=settings.seg_mode,
        prompt=settings.prompt.strip(),
    )


def mesh_settings(op) -> MeshSettings:
    return MeshSettings(
        detail=int(op.detail),
        distance=float(op.distance),
        depth_range=float(op.depth_range),
        tear_threshold=float(op.tear_threshold),
        back=op.back.lower(),
        thickness=float(op.thickness),
        outline_alpha=bool(op.outline_alpha),
        backdrop=op.backdrop.lower(),
        ground=bool(op.ground),
        drawing_material=op.drawing_material,
    )


class MONOCLE_OT_reconstruct(PollingOperator, Operator, MonocleMeshSettings):
    """Turn the photo into textured 3D objects lined up with a matching camera"""

    bl_idname = "monocle.reconstruct"
    bl_label = "Reconstruct from Image"
    bl_description = "Find the objects in the photo, estimate their depth and build one textured mesh for each"
    bl_options = {"REGISTER", "UNDO"}

    _run: ModalRun | None = None

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
        problem = prefs.engine_problem(settings.engine, context) or prefs.model_problem(settings, context)
        if problem:
            cls.poll_message_set(problem)
            return False
        return True

    # -- shared steps --------------------------------------------------------------------------
    def _start(self, context: bpy.types.Context) -> Inference:
        settings = context.scene.monocle
        image = resolve_image_path(settings, prefs.cache_root(context) / "images")
        return Inference(inference_request(settings, image), context)

    def _fail(self, exc: Exception) -> set[str]:
        if isinstance(exc, WorkerRunError):
            log.error("Monocle worker failed (%s): %s\n%s", exc.code, exc.message, exc.detail)
        self.report({"ERROR"}, str(exc))
        return {"CANCELLED"}

    def _build(self, context: bpy.types.Context, inference: Inference) -> set[str]:
        from ..scene.build import build_from_result

        result_path = inference.result
        focal = None
        if self.focal_mode == "MANUAL" or not photo_focal_known(json.loads(Path(result_path).read_text())):
            focal = self.focal_mm
        try:
            report = build_from_result(
                result_path, mesh_settings(self), context=context, relief_strength=self.relief_strength,
                focal_mm=focal, image_path=inference.request.image,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            log.exception("building the reconstruction failed")
            self.report({"ERROR"}, f"Could not build the objects: {exc}")
            return {"CANCELLED"}
        templates = ""
        if self.use_templates:
            try:
                blended = apply_templates(context, result_path, report, mesh_settings(self), self.template_weight,
                                          focal, self.template_depth)
                templates = f", {sum(1 for t in blended if t.object is not None)} template(s)"
            except RuntimeError as exc:  # the reconstruction stands on its own
                log.warning("template blend failed: %s", exc)
                self.report({"WARNING"}, f"No template was blended: {exc}")
        verts = sum(report.vertex_counts)
        timing = "cached inference" if inference.cached else f"inference {inference.seconds:.1f} s"
        standing = sum(1 for o in (report.ground or {}).get("objects", ()) if o["standing"])
        scene = ", backdrop" if report.backdrop is not None else ""
        scene += f", {standing} on the ground" if standing else ""
        summary = (
            f"{len(report.objects)} object(s){templates}{scene}, {verts / 1000:.0f}k verts; {timing}, "
            f"build {report.timings.get('total', 0.0):.2f} s"
        )
        context.window_manager.monocle_status.summary = summary
        self.report({"INFO"}, summary)
        return {"FINISHED"}

    # -- blocking path (scripts, background, redo) -----------------------------------------------
    def execute(self, context: bpy.types.Context) -> set[str]:
        # From a script, settings not passed to the operator come from the panel's settings;
        # after invoke or on redo (F9) they are all set on the operator itself.
        for name in MonocleMeshSettings.__annotations__:
            if not self.properties.is_property_set(name):
                setattr(self, name, getattr(context.scene.monocle, name))
        try:
            inference = self._start(context)
            inference.wait()
        except (InputError, WorkerRunError) as exc:
            return self._fail(exc)
        return self._build(context, inference)

    # -- interactive path --------------------------------------------------------------------------
    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        copy_mesh_settings(context.scene.monocle, self)
        if bpy.app.background:
            return self.execute(context)
        try:
            inference = self._start(context)
        except (InputError, WorkerRunError) as exc:
            return self._fail(exc)
        if inference.cached:
            return self._build(context, inference)
        self._run = ModalRun(inference, context)
        return self.start_polling(context, "Starting")

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if event.type == "ESC":
            self._stop(context)
            self.report({"WARNING"}, "Reconstruction cancelled.")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        try:
            if not self._run.tick(context):
                return {"RUNNING_MODAL"}
        except WorkerRunError as exc:
            self._stop(context)
            return self._fail(exc)
        self._stop(context)
        return self._build(context, self._run.inference)

    def cancel(self, context: bpy.types.Context) -> None:
        # Blender calls this when the operator is aborted (e.g. the file is closed)
        self._stop(context)

    def _stop(self, context: bpy.types.Context) -> None:
        self.stop_polling(context)
        if self._run is not None:
            self._run.close(context)


class ModalRun:
    """The interactive run's state between timer ticks: progress out, cancel in.

    Kept apart from the operator so it can be driven tick by tick without a window.
    """

    def __init__(self, inference: Inference, context: bpy.types.Context) -> None:
        self.inference = inference
        status = context.window_manager.monocle_status
        status.running, status.stage, status.progress, status.summary = True, "Starting", 0.0, ""
        context.window_manager.progress_begin(0, 100)

    def tick(self, context: bpy.types.Context) -> bool:
        """Apply the worker's events; True once the result is committed (raises WorkerRunError)."""
        assert self.inference.job is not None
        state = self.inference.job.poll()
        show_progress(context, state.message or state.stage, state.fraction)
        context.window_manager.progress_update(int(state.fraction * 100))
        for area in context.screen.areas if context.screen else ():
            if area.type == "VIEW_3D":
                area.tag_redraw()
        if not state.done:
            return False
        self.inference.finish()
        return True

    def close(self, context: bpy.types.Context) -> None:
        """Stop the worker if it still runs (cancel) and clear the progress display."""
        self.inference.cancel()
        context.window_manager.progress_end()
        clear_progress(context)


classes = (MONOCLE_OT_reconstruct,)
