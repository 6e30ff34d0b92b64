"""Save Corrections: the corrections made so far, as the headless command's sidecar beside the photo.

Writes ``<photo name>.monocle.json`` (``{"corrections": [...]}``, see ``inference/prompts.py``)
next to the photo, with each stroke mask copied beside it, so ``blender -b -c monocle
reconstruct`` (on this machine or a farm) makes the same objects from the photo alone.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import bpy
from bpy.types import Operator

from .segment_fix import target_collection


def sidecar_for(photo: Path) -> Path:
    from ..batch.inputs import SIDECAR_SUFFIX

    return photo.with_name(photo.name + SIDECAR_SUFFIX)


def write_sidecar(photo: Path, prompts: list[dict]) -> Path:
    """The sidecar of ``photo`` holding ``prompts``; stroke files are copied beside it."""
    path = sidecar_for(photo)
    out = []
    for n, corr in enumerate(prompts):
        corr = dict(corr)
        if corr.get("strokes"):
            name = f"{photo.name}.stroke-{n:02d}.png"
            shutil.copyfile(corr["strokes"], photo.with_name(name))
            corr["strokes"] = name
        out.append(corr)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"corrections": out}, indent=1))
    tmp.replace(path)
    return path


class MONOCLE_OT_segment_save(Operator):
    bl_idname = "monocle.segment_save"
    bl_label = "Save Corrections"
    bl_description = ("Write the corrections made so far next to the photo, so the command line (and a render farm) "
                      "reconstructs it with them")

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if target_collection(context) is None:
            cls.poll_message_set("Reconstruct a photo first")
            return False
        return True

    def execute(self, context: bpy.types.Context) -> set[str]:
        from ..scene.tags import RESULT_FOLDER, RESULT_PHOTO

        coll = target_collection(context)
        photo = Path(str(coll.get(RESULT_PHOTO, "")))
        try:
            prompts = json.loads((Path(coll[RESULT_FOLDER]) / "result.json").read_text()).get("prompts") or []
        except (OSError, ValueError):
            self.report({"ERROR"}, "The inference result behind these objects is gone from the cache; nothing was "
                        "saved.")
            return {"CANCELLED"}
        if not prompts:
            self.report({"WARNING"}, "There is no correction to save yet.")
            return {"CANCELLED"}
        try:
            path = write_sidecar(photo, prompts)
        except OSError as exc:
            self.report({"ERROR"}, f"Cannot write the corrections next to {photo.name} ({exc.strerror or exc}).")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Saved {len(prompts)} correction(s) to {path.name}.")
        return {"FINISHED"}


classes = (MONOCLE_OT_segment_save,)
