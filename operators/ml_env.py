"""Set up the learned engine's Python: Blender's own Python runs ``python -m inference setup-env``
into Monocle's user folder, and its progress events are followed without freezing Blender.

Blender's Python never gets these packages: the new environment only becomes the inference
interpreter Monocle starts for the worker. The button, ``blender -b -c monocle setup-env`` and the
README all run this same command.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import bpy
from bpy.types import Operator

from .. import prefs
from ..bridge.worker import WorkerJob, WorkerRunError, WorkerState, stop_process
from ..inference.setup_env import env_python
from .progress import PollingOperator, show_progress

CLEANUP_GRACE_S = 10.0  # a cancelled set-up stops pip and removes its temporary folder before it exits
OFFLINE_MESSAGE = "Setting up the learned engine downloads packages: turn on Allow Online Access first."


def env_dir() -> Path:
    return prefs.user_dir() / "ml-env"


def setup_args(root: Path, device: str) -> list[str]:
    """The worker command line (run by Blender's own Python, never pip-installing into it)."""
    return ["setup-env", str(root), "--device", device]


class SetupJob(WorkerJob):
    """The set-up worker: keeps its plan and the Check's result; cancelling waits for its clean-up."""

    plan: dict[str, Any] | None = None
    engines: list[dict[str, Any]] | None = None

    def __init__(self, root: Path, device: str) -> None:
        super().__init__(setup_args(root, device), interpreter=sys.executable)
        self.log_path = root.parent / "ml-env-setup.log"

    def _apply(self, event: dict[str, Any]) -> None:
        super()._apply(event)
        if event.get("event") == "plan":
            self.plan = event
        elif event.get("event") == "result":
            self.engines = event.get("engines")

    def cancel(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        stop_process(proc, grace=CLEANUP_GRACE_S)
        self.state.error = WorkerRunError("cancelled", "Set-up cancelled; the previous environment is unchanged.")
        self.state.done = True

    def conclude(self, context: bpy.types.Context | None = None) -> str:
        """Write pip's log; on success make the new environment the inference interpreter. Returns the report."""
        self.log_path.write_text(self.stderr, encoding="utf-8")
        if self.state.error is not None:
            raise WorkerRunError(self.state.error.code, f"{self.state.error.message} Log: {self.log_path}")
        python = str(env_python(Path(self.args[1])))
        prefs.get_prefs(context).python_path = python
        if self.engines:
            prefs.ENGINE_STATUS[python] = {e["name"]: e for e in self.engines}
        learned = next((e for e in self.engines or [] if e["name"] == "transformers"), {})
        return f"The learned engine is set up in {self.args[1]}. {learned.get('message', '')}".strip()


def _start(context: bpy.types.Context) -> SetupJob:
    from ..bridge.warm import POOL

    POOL.shutdown_all()  # the environment being replaced may be the warm worker's interpreter
    return SetupJob(env_dir(), prefs.get_prefs(context).device.lower()).start()


def _download_size(plan: dict[str, Any]) -> str:
    mb = plan["download_mb"]
    return f"{mb / 1000:.1f} GB" if mb >= 1000 else f"{mb} MB"


def _download_note(plan: dict[str, Any]) -> str:
    return f"Setting up the learned engine: about {_download_size(plan)} to download (an estimate)."


def stage_text(message: str | None, plan: dict[str, Any] | None) -> str:
    """The set-up's progress line in the sidebar and status bar, with the download size once it is known."""
    text = message or "Setting up the learned engine"
    return f"{text} (about {_download_size(plan)} in all)" if plan else text


class MONOCLE_OT_setup_ml_env(PollingOperator, Operator):
    bl_idname = "monocle.setup_ml_env"
    bl_label = "Set Up Learned Engine"
    bl_description = (
        "Create a Python environment in Monocle's user folder with pinned torch, transformers and the worker's "
        "packages (a download of about 300 MB, or 3 GB for an NVIDIA GPU) and use it for inference"
    )

    timer_s = 0.2  # pip's steps take minutes
    _job: SetupJob | None = None

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if not bpy.app.online_access:
            cls.poll_message_set("Turn on Allow Online Access in Preferences > System to download packages")
            return False
        if context.window_manager.monocle_status.running:
            cls.poll_message_set("Monocle is busy")
            return False
        return True

    def execute(self, context: bpy.types.Context) -> set[str]:
        if not bpy.app.online_access:
            self.report({"ERROR"}, OFFLINE_MESSAGE)
            return {"CANCELLED"}
        try:
            job = _start(context)
        except WorkerRunError as exc:
            self.report({"ERROR"}, exc.message)
            return {"CANCELLED"}
        try:
            job.wait()
        except WorkerRunError:
            pass  # reported by _end, with the log
        return self._end(context, job)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if bpy.app.background:
            return self.execute(context)
        try:
            self._job = _start(context)
        except WorkerRunError as exc:
            self.report({"ERROR"}, exc.message)
            return {"CANCELLED"}
        self._noted = False
        return self.start_polling(context, "Setting up the learned engine")

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if event.type == "ESC":
            self._job.cancel()
            self.stop_polling(context)
            return self._end(context, self._job)
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        state = self._job.poll()
        if self._job.plan and not self._noted:
            self.report({"INFO"}, _download_note(self._job.plan))
            self._noted = True
        show_progress(context, stage_text(state.message, self._job.plan), state.fraction)
        if not state.done:
            return {"RUNNING_MODAL"}
        self.stop_polling(context)
        return self._end(context, self._job)

    def _end(self, context: bpy.types.Context, job: SetupJob) -> set[str]:
        try:
            self.report({"INFO"}, job.conclude(context))
        except WorkerRunError as exc:
            self.report({"WARNING"} if exc.code == "cancelled" else {"ERROR"}, exc.message)
            return {"CANCELLED"}
        return {"FINISHED"}


def run_headless(root: str | None, device: str, echo: Callable[[str], None] = print) -> int:
    """``blender -b -c monocle setup-env [DIR]``: the same set-up, progress as lines; saves the preference."""
    if not bpy.app.online_access:
        echo("monocle: " + OFFLINE_MESSAGE[:-1] + " (run Blender with --online-mode).")
        return 1
    job = SetupJob(Path(root).absolute() if root else env_dir(), device)
    last = [""]

    def line(state: WorkerState) -> None:
        if state.message != last[0]:
            echo(f"monocle: [{state.fraction:4.0%}] {state.message}")
            last[0] = state.message

    try:
        job.start().wait(on_event=line)
    except WorkerRunError:
        pass
    try:
        echo("monocle: " + job.conclude())
    except WorkerRunError as exc:
        echo(f"monocle: error: {exc.message}")
        return 1
    bpy.ops.wm.save_userpref()
    return 0


classes = (MONOCLE_OT_setup_ml_env,)
