"""Fix Segments with the mouse: clicks, boxes and strokes in the camera view, mapped to photo pixels.

The picker only gathers prompts: each finished gesture invokes the matching correction operator
(``segment_add`` ...) with them as properties, which runs the worker without blocking Blender,
is one undo step, and shows in F9 what was picked. A click is a press and release within a few
pixels; a drag is a box (Add, Split) or a stroke (Paint). Merge gathers shift-clicks and merges on the first plain click
(or Enter). Esc or right-click leaves.
"""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty
from bpy.types import Operator

from .segment_fix import target_collection

MODE_ITEMS = (
    ("ADD", "Add", "Click a missed thing, or drag a box around it"),
    ("REMOVE", "Remove", "Click an object to take it away"),
    ("MERGE", "Merge", "Shift-click objects, then click the last one to merge them"),
    ("SPLIT", "Split", "Drag a box around the part of an object to make its own"),
    ("PAINT", "Paint In", "Paint pixels into an object along its outline"),
    ("ERASE", "Paint Out", "Paint pixels out of an object along its outline"),
)
DRAG_PX = 6  # a press and release further apart than this is a drag
BRUSH_PX = 12  # paint brush radius on screen


def frame_rect(corners: list[tuple[float, float]]) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) in region pixels of the camera frame's projected corners."""
    xs = [c[0] for c in corners]
    ys = [c[1] for c in corners]
    return min(xs), min(ys), max(xs), max(ys)


def region_to_photo(x: float, y: float, rect: tuple[float, float, float, float],
                    size: tuple[int, int]) -> tuple[float, float] | None:
    """A region pixel (y up) as photo pixels (y down from the top), or None outside the frame."""
    left, bottom, right, top = rect
    if right <= left or top <= bottom:
        return None
    u = (x - left) / (right - left)
    v = (top - y) / (top - bottom)
    if not (0.0 <= u <= 1.0 and 0.0 <= v <= 1.0):
        return None
    return min(u * size[0], size[0] - 0.5), min(v * size[1], size[1] - 0.5)


def _viewport(area: bpy.types.Area) -> tuple[bpy.types.Region | None, bpy.types.RegionView3D | None]:
    """The 3D area's main region and its view (the picker may be started from the sidebar)."""
    region = next((r for r in area.regions if r.type == "WINDOW"), None)
    return region, getattr(area.spaces.active, "region_3d", None)


def _camera_rect(context: bpy.types.Context, region: bpy.types.Region, rv3d: bpy.types.RegionView3D,
                 cam: bpy.types.Object) -> tuple[float, float, float, float] | None:
    from bpy_extras.view3d_utils import location_3d_to_region_2d

    corners = []
    for co in cam.data.view_frame(scene=context.scene):
        p = location_3d_to_region_2d(region, rv3d, cam.matrix_world @ co)
        if p is None:
            return None
        corners.append((p.x, p.y))
    return frame_rect(corners)


class MONOCLE_OT_segment_pick(Operator):
    bl_idname = "monocle.segment_pick"
    bl_label = "Fix Segments"
    bl_description = "Correct the reconstruction's objects with the mouse in the camera view"

    mode: EnumProperty(name="Mode", items=MODE_ITEMS, default="ADD")

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if context.area is None or context.area.type != "VIEW_3D":
            cls.poll_message_set("Use it in a 3D Viewport")
            return False
        if target_collection(context) is None:
            cls.poll_message_set("Reconstruct a photo first")
            return False
        return True

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        import json
        from pathlib import Path

        from ..scene.tags import RESULT_FOLDER, collection_camera

        coll = target_collection(context)
        cam = collection_camera(coll) if coll is not None else None
        if cam is None:
            self.report({"ERROR"}, "The reconstruction has no camera to pick through.")
            return {"CANCELLED"}
        try:
            image = json.loads((Path(coll[RESULT_FOLDER]) / "result.json").read_text())["image"]
            self._size = (int(image["width"]), int(image["height"]))
        except (OSError, ValueError, KeyError):
            self.report({"ERROR"}, "The inference result behind these objects is gone from the cache; reconstruct "
                        "again to correct it.")
            return {"CANCELLED"}
        self._region, self._rv3d = _viewport(context.area)
        if self._region is None or self._rv3d is None:
            self.report({"ERROR"}, "Use Fix Segments in a 3D Viewport.")
            return {"CANCELLED"}
        context.scene.camera = cam
        self._rv3d.view_perspective = "CAMERA"
        self._cam = cam
        self._press: tuple[float, float] | None = None
        self._trail: list[tuple[float, float]] = []
        self._clicks: list[tuple[float, float]] = []
        context.workspace.status_text_set(f"{self.bl_label} ({self.mode.title()}): "
                                          + dict((m[0], m[2]) for m in MODE_ITEMS)[self.mode] + "; Esc to leave")
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def _photo(self, context: bpy.types.Context, x: float, y: float) -> tuple[float, float] | None:
        rect = _camera_rect(context, self._region, self._rv3d, self._cam)
        return None if rect is None else region_to_photo(x, y, rect, self._size)

    def _mouse(self, event: bpy.types.Event) -> tuple[float, float]:
        """The pointer in the viewport's main region (events come relative to the invoking one)."""
        return float(event.mouse_x - self._region.x), float(event.mouse_y - self._region.y)

    def _finish(self, context: bpy.types.Context, result: set[str]) -> set[str]:
        context.workspace.status_text_set(None)
        return result

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if event.type in {"ESC", "RIGHTMOUSE"} and event.value == "PRESS":
            return self._finish(context, {"CANCELLED"})
        if event.type in {"RET", "NUMPAD_ENTER"} and event.value == "PRESS" and len(self._clicks) >= 2:
            return self._finish(context, self._run(context, points=self._clicks))
        if event.type == "LEFTMOUSE" and event.value == "PRESS":
            x, y = self._mouse(event)
            if not (0 <= x < self._region.width and 0 <= y < self._region.height):
                return {"PASS_THROUGH"}  # the sidebar, a header: not a pick
            self._press = (x, y)
            self._trail = [self._press]
            return {"RUNNING_MODAL"}
        if event.type == "MOUSEMOVE" and self._press is not None:
            self._trail.append(self._mouse(event))
            return {"RUNNING_MODAL"}
        if event.type == "LEFTMOUSE" and event.value == "RELEASE" and self._press is not None:
            return self._gesture(context, event)
        return {"PASS_THROUGH"}

    def _gesture(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        (x0, y0), (x1, y1) = self._press, self._mouse(event)
        self._press = None
        dragged = max(abs(x1 - x0), abs(y1 - y0)) > DRAG_PX
        if self.mode in {"PAINT", "ERASE"}:
            stroke = [p for p in (self._photo(context, x, y) for x, y in self._trail) if p is not None]
            rect = _camera_rect(context, self._region, self._rv3d, self._cam)
            if not stroke or rect is None:
                return {"RUNNING_MODAL"}
            brush = BRUSH_PX * self._size[0] / max(1.0, rect[2] - rect[0])
            return self._finish(context, self._run(context, stroke=stroke, brush=brush, erase=self.mode == "ERASE"))
        a, b = self._photo(context, x0, y0), self._photo(context, x1, y1)
        if a is None or b is None:
            self.report({"WARNING"}, "Click inside the photo's frame.")
            return {"RUNNING_MODAL"}
        if dragged and self.mode in {"ADD", "SPLIT"}:
            box = (min(a[0], b[0]), min(a[1], b[1]), max(a[0], b[0]), max(a[1], b[1]))
            return self._finish(context, self._run(context, box=box))
        if self.mode == "MERGE":
            self._clicks.append(b)
            if event.shift or len(self._clicks) < 2:
                return {"RUNNING_MODAL"}
            return self._finish(context, self._run(context, points=self._clicks))
        if self.mode == "SPLIT":
            self.report({"WARNING"}, "Drag a box around the part to split off.")
            return {"RUNNING_MODAL"}
        return self._finish(context, self._run(context, points=[b]))

    def _run(self, context: bpy.types.Context, points=None, box=None, stroke=None, brush=8.0,
             erase=False) -> set[str]:
        def rows(pts):
            return [{"name": "", "x": float(x), "y": float(y), "positive": True} for x, y in pts]

        props: dict = {"points": rows(points or [])}
        if box is not None:
            props.update(use_box=True, box=tuple(float(v) for v in box))
        if stroke is not None:
            props.update(stroke=rows(stroke), brush=float(brush), erase=bool(erase))
        op = {"ADD": "segment_add", "REMOVE": "segment_remove", "MERGE": "segment_merge", "SPLIT": "segment_split",
              "PAINT": "segment_paint", "ERASE": "segment_paint"}[self.mode]
        try:  # the correction goes on by itself while its worker runs
            done = getattr(bpy.ops.monocle, op)("INVOKE_DEFAULT", True, **props)
        except RuntimeError as exc:  # the correction reported its error already
            self.report({"WARNING"}, str(exc).removeprefix("Error: ").strip())
            return {"CANCELLED"}
        return {"FINISHED"} if done & {"FINISHED", "RUNNING_MODAL"} else {"CANCELLED"}


classes = (MONOCLE_OT_segment_pick,)
