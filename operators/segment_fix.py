"""What the segment corrections share: their prompt properties and the run-then-rebuild step.

A correction names its prompts as operator properties, in photo pixels (x right, y down) or
normalised to the photo (0..1 from the top-left corner), so it runs from a script, from the
command line and on redo (F9) exactly as from the mouse (``segment_pick`` fills them in).
It edits the Monocle collection of the active object (else the newest one): the worker
corrects that collection's cached result (a warm worker where the preferences keep one),
and only the objects the correction touched are rebuilt. One correction is one undo step.
With the learned engine chosen, clicks and boxes go to the learned promptable segmenter
(``inference/engines/hf_points.py``), GrabCut otherwise and wherever that is not installed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import bpy
from bpy.props import BoolProperty, CollectionProperty, EnumProperty, FloatProperty, FloatVectorProperty, IntProperty
from bpy.types import PropertyGroup

from .. import prefs
from ..bridge.worker import WorkerRunError
from .progress import PollingOperator

log = logging.getLogger(__name__)

UNITS_ITEMS = (
    ("PIXELS", "Pixels", "Coordinates in photo pixels, x right and y down from the top-left corner"),
    ("NORMALIZED", "Normalized", "Coordinates as fractions of the photo's width and height, from the top-left corner"),
)


class MonoclePromptPoint(PropertyGroup):
    """A click: where, and whether it is on the object (positive) or not."""

    x: FloatProperty(name="X", description="Horizontal position in the photo")
    y: FloatProperty(name="Y", description="Vertical position in the photo, from the top")
    positive: BoolProperty(name="On the Object", description="On the object (else: not part of it)", default=True)


def target_collection(context: bpy.types.Context) -> bpy.types.Collection | None:
    """The Monocle collection of the active object, else the scene's newest one."""
    from ..scene.tags import RESULT_FOLDER, result_collections

    obj = context.active_object
    if obj is not None:
        for coll in obj.users_collection:
            if RESULT_FOLDER in coll:
                return coll
    found = result_collections(context.scene)
    return found[-1] if found else None


class SegmentFix(PollingOperator):
    """Mixin of the correction operators: ``action`` and ``correction()`` are theirs."""

    bl_options = {"REGISTER", "UNDO"}
    action = ""
    _pending = None  # (collection, inference) while the worker runs

    units: EnumProperty(name="Units", items=UNITS_ITEMS, default="PIXELS")
    points: CollectionProperty(type=MonoclePromptPoint, name="Points")
    target: IntProperty(name="Object Id", description="The object's id in the result (-1: the one under the "
                        "first point)", default=-1, min=-1)

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if getattr(context.scene, "monocle", None) is None:
            return False
        if context.window_manager.monocle_status.running:
            cls.poll_message_set("A reconstruction is running")
            return False
        if target_collection(context) is None:
            cls.poll_message_set("Reconstruct a photo first")
            return False
        return True

    # -- prompts in photo pixels --------------------------------------------------------------------
    def _scale(self, size: tuple[int, int]) -> tuple[float, float]:
        return (float(size[0]), float(size[1])) if self.units == "NORMALIZED" else (1.0, 1.0)

    def pixel_points(self, size: tuple[int, int]) -> list[list[float]]:
        sx, sy = self._scale(size)
        return [[p.x * sx, p.y * sy, 1 if p.positive else -1] for p in self.points]

    def pixel_box(self, size: tuple[int, int]) -> list[float]:
        sx, sy = self._scale(size)
        x0, y0, x1, y1 = self.box  # type: ignore[attr-defined]
        return [min(x0, x1) * sx, min(y0, y1) * sy, max(x0, x1) * sx, max(y0, y1) * sy]

    def stroke_file(self, size: tuple[int, int], folder: Path) -> str | None:
        """The stroke (``self.stroke``, ``self.brush``, ``self.erase``) drawn into a stroke mask file."""
        import cv2
        import numpy as np

        stroke = getattr(self, "stroke", None)
        if stroke is None or len(stroke) == 0:
            return None
        sx, sy = self._scale(size)
        radius = float(self.brush) * (max(size) if self.units == "NORMALIZED" else 1.0)  # type: ignore[attr-defined]
        pts = np.array([[p.x * sx, p.y * sy] for p in stroke], dtype=np.float64)
        value = 128 if getattr(self, "erase", False) else 255
        image = np.zeros((size[1], size[0]), np.uint8)
        thickness = max(1, int(round(2 * radius)))
        cv2.polylines(image, [np.round(pts).astype(np.int32).reshape(-1, 1, 2)], False, value, thickness)
        for x, y in pts:
            cv2.circle(image, (int(round(x)), int(round(y))), max(1, int(round(radius))), value, -1)
        ok, png = cv2.imencode(".png", image)
        if not ok:
            raise WorkerRunError("internal", "Could not write the stroke mask.")
        data = png.tobytes()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"stroke-{hashlib.sha256(data).hexdigest()[:16]}.png"
        if not path.is_file():
            path.write_bytes(data)
        return str(path)

    def correction(self, size: tuple[int, int], folder: Path) -> dict[str, Any]:
        """The correction for the worker: the action and the clicks in photo pixels, with the box
        (``BoxProps``) when it is used and the stroke mask (``StrokeProps``) when one is drawn."""
        corr: dict[str, Any] = {"action": self.action, "points": self.pixel_points(size)}
        if getattr(self, "use_box", False):
            corr["boxes"] = [self.pixel_box(size)]
        strokes = self.stroke_file(size, folder)
        if strokes:
            corr["strokes"] = strokes
        return corr

    # -- run the worker, rebuild what changed --------------------------------------------------------
    def _start(self, context: bpy.types.Context) -> tuple[bpy.types.Collection, Any] | None:
        """The collection and its correction's inference (a cache hit, or a worker started); None
        after reporting why not."""
        from ..pipeline import Inference, RefineRequest
        from ..scene.tags import RESULT_FOLDER, RESULT_PHOTO

        collection = target_collection(context)
        if collection is None:
            self.report({"ERROR"}, "There is no Monocle reconstruction to correct.")
            return None
        base = Path(collection[RESULT_FOLDER])
        photo = str(collection.get(RESULT_PHOTO, ""))
        try:
            data = json.loads((base / "result.json").read_text())
            size = (int(data["image"]["width"]), int(data["image"]["height"]))
        except (OSError, ValueError, KeyError, TypeError):
            self.report({"ERROR"}, "The inference result behind these objects is gone from the cache; reconstruct "
                        "the photo again to correct it.")
            return None
        if not Path(photo).is_file():
            self.report({"ERROR"}, f"The photo {photo!r} is no longer there; reconstruct again to correct it.")
            return None
        try:
            corr = self.correction(size, prefs.cache_root(context) / "strokes")
            if self.target >= 0:
                corr["targets"] = [int(self.target)]
            # the learned engine's users get the learned segmenter (GrabCut where it is not installed)
            segmenter = "learned" if context.scene.monocle.engine == "transformers" else "grabcut"
            request = RefineRequest(image=photo, base=str(base), correction=json.dumps(corr, sort_keys=True),
                                    segmenter=segmenter)
            return collection, Inference(request, context)
        except WorkerRunError as exc:
            return self._failed(exc)

    def _failed(self, exc: WorkerRunError) -> None:
        log.info("correction failed (%s): %s", exc.code, exc.message)
        self.report({"ERROR"}, exc.message)
        return None

    def _apply(self, context: bpy.types.Context, collection: bpy.types.Collection, inference: Any) -> set[str]:
        from ..scene.result import BuildError
        from ..scene.segments import apply_correction
        from .reconstruct import mesh_settings

        settings = context.scene.monocle
        try:
            report = apply_correction(collection, inference.result, mesh_settings(settings), context=context,
                                      relief_strength=settings.relief_strength)
        except BuildError as exc:
            self.report({"ERROR"}, exc.message)
            return {"CANCELLED"}
        summary = (f"{self.bl_label}: {len(report.added)} object(s) rebuilt, {len(report.removed)} replaced or "  # type: ignore
                   f"removed ({'cached' if inference.cached else f'worker {inference.seconds:.2f} s'}, build "
                   f"{report.timings.get('total', 0.0):.2f} s)")
        context.window_manager.monocle_status.summary = summary
        self.report({"INFO"}, summary)
        return {"FINISHED"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        """Blocking: scripts, the command line, redo (F9, a cache hit)."""
        started = self._start(context)
        if started is None:
            return {"CANCELLED"}
        try:
            started[1].wait()
        except WorkerRunError as exc:
            self._failed(exc)
            return {"CANCELLED"}
        return self._apply(context, *started)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        """Interactive: the worker runs while Blender stays responsive (Esc cancels)."""
        if bpy.app.background:
            return self.execute(context)
        started = self._start(context)
        if started is None:
            return {"CANCELLED"}
        if started[1].cached:
            return self._apply(context, *started)
        self._pending = started
        return self.start_polling(context, "Correcting")

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        collection, inference = self._pending
        if event.type == "ESC":
            inference.cancel()
            self.stop_polling(context)
            self.report({"WARNING"}, "Correction cancelled.")
            return {"CANCELLED"}
        if event.type != "TIMER" or not inference.done:
            return {"PASS_THROUGH"} if event.type != "TIMER" else {"RUNNING_MODAL"}
        self.stop_polling(context)
        try:
            inference.finish()
        except WorkerRunError as exc:
            self._failed(exc)
            return {"CANCELLED"}
        return self._apply(context, collection, inference)

    def cancel(self, context: bpy.types.Context) -> None:
        if self._pending is not None:
            self._pending[1].cancel()
        self.stop_polling(context)


class BoxProps:
    box: FloatVectorProperty(name="Box", description="X0, Y0, X1, Y1", size=4)
    use_box: BoolProperty(name="Use Box", description="The box marks the object (or the part)")


class StrokeProps:
    stroke: CollectionProperty(type=MonoclePromptPoint, name="Stroke")
    brush: FloatProperty(name="Brush Radius", description="Half the stroke's width (pixels, or a fraction of the "
                         "photo's long side when normalized)", default=8.0, min=0.0)
    erase: BoolProperty(name="Paint Out", description="The stroke takes pixels away from the object")


classes = (MonoclePromptPoint,)
