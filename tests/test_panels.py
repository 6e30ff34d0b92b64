"""Draw every Monocle panel and the preferences through their real draw() with a
recording layout that checks each property and operator it is asked to show."""

from __future__ import annotations

import bpy
import pytest
from conftest import MODULE


class Recorder:
    """Stands in for bpy.types.UILayout: records calls, fails on unknown properties/operators."""

    def __init__(self, log: list) -> None:
        self.log = log
        self.enabled = True
        self.active = True
        self.scale_y = 1.0
        self.use_property_split = False
        self.use_property_decorate = True
        self.alert = False

    def _child(self, *args, **kwargs) -> Recorder:
        return Recorder(self.log)

    row = column = box = split = column_flow = grid_flow = _child

    def prop(self, data, name: str, **kwargs) -> None:
        if name.startswith('["'):  # a custom property
            assert name[2:-2] in data, f"{data!r} has no custom property {name!r}"
        else:
            assert name in data.bl_rna.properties, f"{type(data).__name__} has no property {name!r}"
        self.log.append(("prop", name))

    def operator(self, idname: str, **kwargs):
        module, name = idname.split(".")
        assert hasattr(getattr(bpy.ops, module), name) and getattr(getattr(bpy.ops, module), name).idname()
        self.log.append(("operator", idname))
        return type("OpProps", (), {})()

    def label(self, **kwargs) -> None:
        self.log.append(("label", kwargs.get("text", "")))

    def separator(self, **kwargs) -> None:
        pass

    def progress(self, **kwargs) -> None:
        self.log.append(("progress", kwargs.get("text", "")))

    def template_ID_preview(self, data, name: str, **kwargs) -> None:  # noqa: N802 - Blender's name
        assert name in data.bl_rna.properties
        self.log.append(("template_ID_preview", name))

    def template_ID(self, data, name: str, **kwargs) -> None:  # noqa: N802 - Blender's name
        assert name in data.bl_rna.properties
        self.log.append(("template_ID", name))


def _draw(cls, data=None) -> list:
    log: list = []
    fake = type("Self", (), {"layout": Recorder(log)})()
    if data is not None:
        for name in data.bl_rna.properties.keys():
            if name != "rna_type":
                setattr(fake, name, getattr(data, name))
        fake.bl_rna = data.bl_rna
    cls.draw(fake, bpy.context)
    return log


def _panels():
    return [cls for name in dir(bpy.types) if name.startswith("MONOCLE_PT_") for cls in [getattr(bpy.types, name)]]


def test_there_are_panels_in_the_sidebar():
    panels = _panels()
    assert len(panels) >= 2
    for cls in panels:
        assert cls.bl_space_type == "VIEW_3D" and cls.bl_region_type == "UI" and cls.bl_category == "Monocle"


@pytest.mark.parametrize("source", ["FILE", "IMAGE"])
@pytest.mark.parametrize("back", ["OPEN", "SOLIDIFY", "CLOSED"])
def test_every_panel_draws(source, back):
    settings = bpy.context.scene.monocle
    settings.source, settings.back = source, back
    for cls in _panels():
        log = _draw(cls)
        assert log, cls.__name__
    main = _draw(bpy.types.MONOCLE_PT_main)
    assert ("operator", "monocle.reconstruct") in main
    assert ("template_ID_preview", "image") in main if source == "IMAGE" else ("prop", "image_path") in main


def test_progress_and_summary_are_drawn():
    status = bpy.context.window_manager.monocle_status
    status.running, status.stage, status.progress = True, "Estimating depth", 0.5
    try:
        assert ("progress", "Estimating depth") in _draw(bpy.types.MONOCLE_PT_main)
    finally:
        status.running = False
    status.summary = "2 object(s), 41k verts"
    assert ("label", "2 object(s), 41k verts") in _draw(bpy.types.MONOCLE_PT_main)


def test_preferences_draw():
    prefs = bpy.context.preferences.addons[MODULE].preferences
    log = _draw(type(prefs), prefs)
    names = {entry[1] for entry in log}
    assert {"python_path", "device", "cache_dir", "model_dir", "monocle.check_interpreter", "monocle.clear_cache",
            "monocle.download_model"} <= names


def test_every_property_has_a_description():
    for group in (bpy.types.Scene.bl_rna.properties["monocle"].fixed_type,):
        for prop in group.properties:
            if prop.identifier != "rna_type":
                assert prop.description, f"{prop.identifier} has no tooltip"
