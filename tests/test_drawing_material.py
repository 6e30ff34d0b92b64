"""A drawing's objects shaded as clay with the drawing's lines (the default) or with the drawing as a
photo texture: a real worker run on a synthetic ID sheet, a real build, a Cycles render."""

from __future__ import annotations

import importlib

import bpy
import cv2
import numpy as np
import pytest
from conftest import run_worker
from drawing_sheets import draw_sheet

OUTLINE, INTERNAL = 1, 2


@pytest.fixture(scope="module")
def drawing_result(ext_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("drawing_material")
    sheet = draw_sheet(100)
    cv2.imwrite(str(root / "sheet.png"), sheet.rgb[..., ::-1])
    code, _, err = run_worker(ext_dir, "run", "--image", str(root / "sheet.png"), "--out", str(root / "result"),
                              "--engine", "drawing")
    assert code == 0, err
    return root / "result", sheet


def _build(monocle, result, material: str):
    geometry = importlib.import_module(monocle.__name__ + ".geometry")
    build = importlib.import_module(monocle.__name__ + ".scene.build")
    settings = geometry.MeshSettings(detail=6_000, back="open", drawing_material=material)
    return build.build_from_result(result, settings)


def _render(scene: bpy.types.Scene, path) -> np.ndarray:
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 8
    scene.cycles.use_denoising = False
    scene.render.film_transparent = False
    scene.render.resolution_percentage = 100
    scene.view_settings.view_transform = "Standard"
    world = scene.world or bpy.data.worlds.new("World")
    scene.world = world
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (1.0, 1.0, 1.0, 1.0)
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0


def test_clay_with_lines_is_the_default_and_shows_the_lines(monocle, drawing_result, tmp_path):
    result, sheet = drawing_result
    material_mod = importlib.import_module(monocle.__name__ + ".scene.material")
    geometry = importlib.import_module(monocle.__name__ + ".geometry")
    assert geometry.MeshSettings().drawing_material == "clay_lines"
    report = _build(monocle, result, geometry.MeshSettings().drawing_material)
    assert len(report.objects) == 2
    (mat,) = {o.data.materials[0] for o in report.objects}
    nodes = mat.node_tree.nodes
    lines = nodes[material_mod.LINES_NODE]
    assert lines.image.packed_file is not None and lines.image.colorspace_settings.is_data
    bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
    assert bsdf.inputs["Base Color"].links[0].from_node.type == "MIX"
    assert not any(n.type == "TEX_IMAGE" and n.image.filepath.endswith("sheet.png") for n in nodes)

    # the render through the built camera is the drawing's lines, dark, on light clay
    scene = bpy.context.scene
    shade = _render(scene, tmp_path / "clay.png")  # at the drawing's size: its 2 px internal lines stay lines
    classes = cv2.imread(str(result / "lines.png"), cv2.IMREAD_GRAYSCALE)
    classes = cv2.resize(classes, (shade.shape[1], shade.shape[0]), interpolation=cv2.INTER_NEAREST)
    objects = np.zeros(classes.shape, np.uint8)
    for s in sheet.silhouettes:
        objects |= cv2.resize(s.astype(np.uint8), (shade.shape[1], shade.shape[0]), interpolation=cv2.INTER_NEAREST)
    inside = cv2.erode(objects, np.ones((7, 7), np.uint8)).astype(bool)
    ink = (classes == INTERNAL) | (classes == OUTLINE)
    on_lines = inside & ink
    away = inside & (cv2.distanceTransform((~ink).astype(np.uint8), cv2.DIST_L2, 3) > 4)
    assert on_lines.sum() > 50 and away.sum() > 2000
    clay, line = float(np.median(shade[away])), float(np.median(shade[on_lines]))
    assert clay > 0.35, clay  # light clay
    assert line < 0.6 * clay, (line, clay)


def test_photo_texture_on_request(monocle, drawing_result):
    result, _ = drawing_result
    report = _build(monocle, result, "photo")
    mat = report.objects[0].data.materials[0]
    textures = [n for n in mat.node_tree.nodes if n.type == "TEX_IMAGE"]
    assert [t.image.filepath.endswith("sheet.png") for t in textures] == [True]


def test_command_line_builds_a_drawing_as_clay_or_photo(monocle, drawing_result, tmp_path):
    """``monocle reconstruct`` on a drawing: one object per drawn object, clay with lines unless
    ``--drawing-material photo`` asks for the drawing as texture."""
    cli = importlib.import_module(monocle.__name__ + ".cli")
    material_mod = importlib.import_module(monocle.__name__ + ".scene.material")
    _, sheet = drawing_result
    image = tmp_path / "sheet.png"
    cv2.imwrite(str(image), sheet.rgb[..., ::-1])
    for material, out in (("default", tmp_path / "clay"), ("photo", tmp_path / "photo")):
        extra = [] if material == "default" else ["--drawing-material", material]
        args = ["reconstruct", str(image), "-o", str(out), "--detail", "2000", "--format", "blend", *extra]
        assert cli.main(args) == 0
        bpy.ops.wm.open_mainfile(filepath=str(out / "sheet.blend"))
        meshes = [o for o in bpy.data.objects if o.type == "MESH"]
        assert len(meshes) == 2
        nodes = meshes[0].active_material.node_tree.nodes
        assert (material_mod.LINES_NODE in nodes) == (material == "default")


def test_one_source_for_the_setting(monocle):
    """The scene setting, the operator (F9) and the command line offer the same choices, same default."""
    geometry = importlib.import_module(monocle.__name__ + ".geometry")
    cli = importlib.import_module(monocle.__name__ + ".cli")
    ids = [m[0] for m in geometry.DRAWING_MATERIALS]
    default = geometry.MeshSettings().drawing_material
    for rna in (bpy.context.scene.monocle.bl_rna, bpy.ops.monocle.reconstruct.get_rna_type()):
        prop = rna.properties["drawing_material"]
        assert [i.identifier for i in prop.enum_items] == ids and prop.default == default
    action = next(a for a in cli.build_parser()._subparsers._group_actions[0].choices["reconstruct"]._actions
                  if a.dest == "drawing_material")
    assert list(action.choices) == ids and action.default == default
