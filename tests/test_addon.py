"""Registration of the installed extension: explicit, reversible, repeatable."""

from __future__ import annotations

import addon_utils
import bpy
from conftest import MODULE


def _registered() -> dict[str, bool]:
    return {
        "operator": hasattr(bpy.types, "MONOCLE_OT_reconstruct"),
        "panel": hasattr(bpy.types, "MONOCLE_PT_main"),
        "scene_prop": "monocle" in bpy.types.Scene.bl_rna.properties,
        "wm_prop": "monocle_status" in bpy.types.WindowManager.bl_rna.properties,
        "op_callable": "reconstruct" in dir(bpy.ops.monocle),
    }


def test_enable_disable_enable_leaves_nothing_stale():
    assert all(_registered().values())
    handlers_before = {name: len(getattr(bpy.app.handlers, name)) for name in dir(bpy.app.handlers)
                       if isinstance(getattr(bpy.app.handlers, name), list)}
    try:
        addon_utils.disable(MODULE, default_set=True)
        state = _registered()
        assert not any(v for k, v in state.items() if k != "op_callable"), state
        assert MODULE not in bpy.context.preferences.addons
    finally:
        addon_utils.enable(MODULE, default_set=True)
    assert all(_registered().values())
    handlers_after = {name: len(getattr(bpy.app.handlers, name)) for name in handlers_before}
    assert handlers_after == handlers_before
    # the re-enabled copy works: settings exist on a new scene and the operator polls
    assert bpy.context.scene.monocle.detail == 20_000


def test_preferences_defaults(monocle):
    prefs = bpy.context.preferences.addons[MODULE].preferences
    assert prefs.python_path == ""
    import sys
    mod = __import__(MODULE + ".prefs", fromlist=["interpreter"])
    assert mod.interpreter() == sys.executable
    root = mod.cache_root()
    assert root.is_dir()
    user = bpy.utils.extension_path_user(MODULE, create=False)
    assert str(root).startswith(user)
