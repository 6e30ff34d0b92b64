"""Registration of the installed extension: explicit, reversible, repeatable."""

from __future__ import annotations

import sys

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


def test_cli_command_registered_while_enabled():
    cli = __import__(MODULE + ".cli", fromlist=["main"])
    handle = cli._handle
    assert handle is not None
    try:
        addon_utils.disable(MODULE, default_set=True)
        assert cli._handle is None
        # the old handle is gone from Blender's registry: unregistering it again is refused
        import pytest

        with pytest.raises(ValueError):
            bpy.utils.unregister_cli_command(handle)
    finally:
        addon_utils.enable(MODULE, default_set=True)
    cli = __import__(MODULE + ".cli", fromlist=["main"])
    assert cli._handle is not None


def test_check_interpreter_lists_engines():
    prefs = bpy.context.preferences.addons[MODULE].preferences
    assert bpy.ops.monocle.check_interpreter() == {"FINISHED"}
    assert "classic: OK [cpu]" in prefs.engines_report
    assert "opencv-python-headless" in prefs.engines_report
    prefs.python_path = "/nonexistent/python3"
    try:
        import pytest

        with pytest.raises(RuntimeError, match="could not run"):
            bpy.ops.monocle.check_interpreter()
    finally:
        prefs.python_path = ""


def test_clear_cache_frees_space(tmp_path):
    mod = __import__(MODULE + ".prefs", fromlist=["cache_root"])
    cache = __import__(MODULE + ".bridge.cache", fromlist=["ResultCache"])
    root = mod.cache_root()
    (root / "results" / "deadbeef").mkdir(parents=True, exist_ok=True)
    (root / "results" / "deadbeef" / "result.json").write_text("{}" * 1000)
    assert cache.ResultCache(root).size_bytes() >= 2000
    assert bpy.ops.monocle.clear_cache() == {"FINISHED"}
    assert cache.ResultCache(root).size_bytes() == 0


def test_ml_environment_setup_needs_online_access():
    assert not bpy.app.online_access
    assert not bpy.ops.monocle.setup_ml_env.poll()
    ml_env = __import__(MODULE + ".operators.ml_env", fromlist=["SetupJob"])
    job = ml_env.SetupJob(ml_env.env_dir(), "auto")
    # a venv in the extension's user folder, made by `python -m inference setup-env` run by Blender's own
    # Python, which itself never gets a package
    assert str(ml_env.env_dir()).startswith(bpy.utils.extension_path_user(MODULE))
    assert job.cmd == [sys.executable, "-m", "inference", "setup-env", str(ml_env.env_dir()), "--device", "auto"]
    assert ml_env.run_headless(None, "cpu", echo=lambda line: None) == 1  # refused: nothing downloaded
