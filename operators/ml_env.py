"""Set up the learned engine's Python: a virtual environment in Monocle's user folder
with torch and transformers, installed by pip in a subprocess with a log file.

Blender's own Python never gets these packages: the new environment only becomes the
inference interpreter Monocle starts for the worker.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bpy
from bpy.types import Operator

from .. import prefs
from .progress import PollingOperator

PACKAGES = ("torch", "transformers")


def env_dir() -> Path:
    return prefs.user_dir() / "ml-env"


def env_python(root: Path) -> Path:
    return root / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def setup_steps(root: Path) -> list[list[str]]:
    """The commands, in order: make the environment, then install the packages into it."""
    py = str(env_python(root))
    return [
        [sys.executable, "-m", "venv", str(root)],
        [py, "-m", "pip", "install", "--upgrade", "pip"],
        [py, "-m", "pip", "install", *PACKAGES],
    ]


class MONOCLE_OT_setup_ml_env(PollingOperator, Operator):
    bl_idname = "monocle.setup_ml_env"
    bl_label = "Set Up Learned Engine"
    bl_description = (
        "Create a Python environment in Monocle's user folder, install torch and transformers into it "
        "(a download of several hundred MB to a few GB) and use it for inference"
    )

    timer_s = 0.2  # pip's steps take minutes
    _proc: subprocess.Popen | None = None

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if not bpy.app.online_access:
            cls.poll_message_set("Turn on Allow Online Access in Preferences > System to download packages")
            return False
        if context.window_manager.monocle_status.running:
            cls.poll_message_set("Monocle is busy")
            return False
        return True

    def _next(self) -> bool:
        """Start the next step; False when there is none."""
        if not self._steps:
            return False
        cmd = self._steps.pop(0)
        self._log.write(f"$ {' '.join(cmd)}\n")
        self._log.flush()
        self._proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return True

    def execute(self, context: bpy.types.Context) -> set[str]:
        self._begin()
        while self._next():
            if self._proc.wait() != 0:
                return self._end(context, ok=False)
        return self._end(context, ok=True)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if bpy.app.background:
            return self.execute(context)
        self._begin()
        self._next()
        return self.start_polling(context, "Installing torch and transformers")

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if event.type == "ESC":
            self._proc.terminate()
            self._proc.wait()
            self._end(context, ok=False)
            return {"CANCELLED"}
        if event.type != "TIMER" or self._proc.poll() is None:
            return {"PASS_THROUGH"}
        if self._proc.returncode != 0:
            return self._end(context, ok=False)
        if self._next():
            return {"RUNNING_MODAL"}
        return self._end(context, ok=True)

    def _begin(self) -> None:
        root = env_dir()
        self._steps = setup_steps(root)
        self._log_path = prefs.user_dir() / "ml-env-setup.log"
        self._log = open(self._log_path, "w", encoding="utf-8")  # noqa: SIM115 - open across timer ticks

    def _end(self, context: bpy.types.Context, ok: bool) -> set[str]:
        self.stop_polling(context)
        self._log.close()
        if not ok:
            self.report({"ERROR"}, f"Setting up the learned engine failed; see {self._log_path}.")
            return {"CANCELLED"}
        prefs.get_prefs(context).python_path = str(env_python(env_dir()))
        self.report({"INFO"}, "The learned engine is ready; press Check to confirm.")
        return {"FINISHED"}


classes = (MONOCLE_OT_setup_ml_env,)
