"""Progress of Monocle's long operators (reconstruct, model download, learned-engine setup).

Each one starts a background job (a worker process, a download, pip) and returns
``RUNNING_MODAL``; a window timer then polls the job, so Blender stays responsive and Esc
cancels. Stage and fraction show in the sidebar (``WindowManager.monocle_status``) and in
the status bar.
"""

from __future__ import annotations

import bpy


def show_progress(context: bpy.types.Context, stage: str, fraction: float) -> None:
    """Show ``stage`` at ``fraction`` (0..1) in the sidebar and the status bar."""
    status = context.window_manager.monocle_status
    status.stage, status.progress = stage, fraction
    if context.workspace:
        context.workspace.status_text_set(f"Monocle: {stage} ({fraction:.0%}), Esc to cancel")


def clear_progress(context: bpy.types.Context) -> None:
    """Give the status bar back and mark Monocle idle."""
    if context.workspace:
        context.workspace.status_text_set(None)
    context.window_manager.monocle_status.running = False


class PollingOperator:
    """Mixin for an operator whose ``modal`` polls a background job on a window timer."""

    timer_s = 0.1
    _timer = None

    def start_polling(self, context: bpy.types.Context, stage: str) -> set[str]:
        """Mark Monocle busy at ``stage`` and start the timer; returns what ``invoke`` returns."""
        wm = context.window_manager
        wm.monocle_status.running, wm.monocle_status.stage = True, stage
        self._timer = wm.event_timer_add(self.timer_s, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def stop_polling(self, context: bpy.types.Context) -> None:
        """Remove the timer (once) and clear the progress display."""
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
        clear_progress(context)
