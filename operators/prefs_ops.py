"""Preference actions: check the inference interpreter, clear the cache."""

from __future__ import annotations

import json
import subprocess

import bpy
from bpy.types import Operator

from .. import prefs
from ..bridge.cache import ResultCache, human_size
from ..bridge.worker import worker_command, worker_env


class MONOCLE_OT_check_interpreter(Operator):
    bl_idname = "monocle.check_interpreter"
    bl_label = "Check Inference Python"
    bl_description = "Run the inference interpreter once and list which engines work with it"

    def execute(self, context: bpy.types.Context) -> set[str]:
        p = prefs.get_prefs(context)
        extra = prefs.wheel_site_packages() if prefs.uses_blender_python(context) else []
        cmd = worker_command(prefs.interpreter(context), ["engines"])
        try:
            proc = subprocess.run(cmd, env=worker_env(extra), capture_output=True, text=True, timeout=120)
            engines = json.loads(proc.stdout.strip().splitlines()[-1])["engines"]
        except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, IndexError) as exc:
            p.engines_report = f"The interpreter {cmd[0]} could not run Monocle's worker."
            print(f"Monocle: interpreter check failed: {exc}")
            self.report({"ERROR"}, p.engines_report)
            return {"CANCELLED"}
        prefs.ENGINE_STATUS[prefs.interpreter(context)] = {e["name"]: e for e in engines}
        lines = []
        for e in engines:
            versions = ", ".join(f"{k} {v}" for k, v in e["versions"].items())
            devices = "/".join(e["devices"]) or "-"
            lines.append(f"{e['name']}: {'OK' if e['available'] else 'unavailable'} [{devices}] {versions}")
            if not e["available"]:
                lines.append(f"    {e['message']}")
        p.engines_report = "\n".join(lines)
        self.report({"INFO"}, "; ".join(line for line in lines if not line.startswith(" ")))
        return {"FINISHED"}


class MONOCLE_OT_clear_cache(Operator):
    bl_idname = "monocle.clear_cache"
    bl_label = "Clear Monocle Cache"
    bl_description = "Delete cached inference results; the next reconstruction runs the models again"

    def execute(self, context: bpy.types.Context) -> set[str]:
        cache = ResultCache(prefs.cache_root(context))
        size = cache.size_bytes()
        cache.clear()
        self.report({"INFO"}, f"Freed {human_size(size)} of cached results.")
        return {"FINISHED"}


class MONOCLE_OT_stop_workers(Operator):
    bl_idname = "monocle.stop_workers"
    bl_label = "Stop Warm Worker"
    bl_description = "Stop the warm inference worker now and free its memory; the next reconstruction starts a new one"

    def execute(self, context: bpy.types.Context) -> set[str]:
        from ..bridge.warm import POOL

        stopped = POOL.shutdown_all()
        self.report({"INFO"}, f"Stopped {stopped} warm worker(s).")
        return {"FINISHED"}


classes = (MONOCLE_OT_check_interpreter, MONOCLE_OT_clear_cache, MONOCLE_OT_stop_workers)
