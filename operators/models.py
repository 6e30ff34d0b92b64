"""Download a learned model into the model cache, with progress, without freezing Blender."""

from __future__ import annotations

import bpy
from bpy.props import StringProperty
from bpy.types import Operator

from .. import prefs
from ..bridge.worker import WorkerJob, WorkerRunError
from .progress import PollingOperator, show_progress


class MONOCLE_OT_download_model(PollingOperator, Operator):
    bl_idname = "monocle.download_model"
    bl_label = "Download Model"
    bl_description = "Download this model into Monocle's model folder (needs Allow Online Access)"

    model: StringProperty(name="Model", description="Hugging Face model id", options={"SKIP_SAVE"})

    _job: WorkerJob | None = None

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
        return self.start_polling(context, f"Downloading {self.model}")

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if event.type == "ESC":
            self._job.cancel()
            self.stop_polling(context)
            self.report({"WARNING"}, "Download cancelled.")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        state = self._job.poll()
        show_progress(context, state.message or f"Downloading {self.model}", state.fraction)
        if not state.done:
            return {"RUNNING_MODAL"}
        self.stop_polling(context)
        if state.error is not None:
            self.report({"ERROR"}, state.error.message)
            return {"CANCELLED"}
        self.report({"INFO"}, f"Downloaded {self.model}.")
        return {"FINISHED"}


classes = (MONOCLE_OT_download_model,)
