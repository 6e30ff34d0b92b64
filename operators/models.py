"""Download a learned model into the model cache, with progress, without freezing Blender."""

from __future__ import annotations

import bpy
from bpy.props import StringProperty
from bpy.types import Operator

from .. import prefs
from ..bridge.worker import WorkerJob, WorkerRunError

TIMER_S = 0.1


class MONOCLE_OT_download_model(Operator):
    bl_idname = "monocle.download_model"
    bl_label = "Download Model"
    bl_description = "Download this model into Monocle's model folder (needs Allow Online Access)"

    model: StringProperty(name="Model", description="Hugging Face model id", options={"SKIP_SAVE"})

    _job: WorkerJob | None = None
    _timer = None

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if not bpy.app.online_access:
            cls.poll_message_set("Turn on Allow Online Access in Preferences > System to download models")
            return False
        return True

    def _job_for(self, context: bpy.types.Context) -> WorkerJob:
        args = ["download", "--model", self.model, "--cache-dir", str(prefs.model_cache(context))]
        extra = prefs.wheel_site_packages() if prefs.uses_blender_python(context) else []
        return WorkerJob(args, interpreter=prefs.interpreter(context), extra_paths=extra,
                         extra_env=prefs.worker_environment(context))

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            self._job_for(context).start().wait()
        except WorkerRunError as exc:
            self.report({"ERROR"}, exc.message)
            return {"CANCELLED"}
        self.report({"INFO"}, f"Downloaded {self.model}.")
        return {"FINISHED"}

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if bpy.app.background:
            return self.execute(context)
        try:
            self._job = self._job_for(context).start()
        except WorkerRunError as exc:
            self.report({"ERROR"}, exc.message)
            return {"CANCELLED"}
        wm = context.window_manager
        wm.monocle_status.running, wm.monocle_status.stage = True, f"Downloading {self.model}"
        self._timer = wm.event_timer_add(TIMER_S, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if event.type == "ESC":
            self._job.cancel()
            self._finish(context)
            self.report({"WARNING"}, "Download cancelled.")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        state = self._job.poll()
        status = context.window_manager.monocle_status
        status.progress = state.fraction
        status.stage = state.message or f"Downloading {self.model}"
        if context.workspace:
            context.workspace.status_text_set(f"Monocle: {status.stage} ({state.fraction:.0%}), Esc to cancel")
        if not state.done:
            return {"RUNNING_MODAL"}
        self._finish(context)
        if state.error is not None:
            self.report({"ERROR"}, state.error.message)
            return {"CANCELLED"}
        self.report({"INFO"}, f"Downloaded {self.model}.")
        return {"FINISHED"}

    def _finish(self, context: bpy.types.Context) -> None:
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        if context.workspace:
            context.workspace.status_text_set(None)
        wm.monocle_status.running = False


classes = (MONOCLE_OT_download_model,)
