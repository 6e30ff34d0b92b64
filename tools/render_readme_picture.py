"""Render the README's picture of a real result: docs/images/result.png (``make picture``).

Reconstructs the demo's sample photo (scikit-image's ``coffee``, CC0) offline through the
installed extension, as ``make demo`` does, then renders the objects with CPU Cycles
from a camera turned about the objects away from the photo's camera, so the relief and the
closed back show. The picture is the input photo and that render side by side.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import monocle  # noqa: E402
import numpy as np  # noqa: E402

if TYPE_CHECKING:  # bpy is imported only once the extension's profile is chosen
    import bpy

PANEL_W, PANEL_H = 600, 400  # each half of the picture; the sample photo is 600x400
BACKDROP = (0.16, 0.17, 0.19)  # sRGB, behind the render
AMBIENT = (0.3, 0.3, 0.32)  # the world's light (linear)


def reconstruct(photo: Path, out: Path) -> Path:
    """The real pipeline: the headless command on one photo, saved as a .blend."""
    code = monocle.main(["reconstruct", str(photo), "-o", str(out), "--format", "blend", "--overwrite"])
    if code != 0:
        raise SystemExit(f"reconstruction failed (exit {code})")
    return out / f"{photo.stem}.blend"


def _world_vertices(ob: bpy.types.Object) -> np.ndarray:
    """An evaluated object's vertices (modifiers applied: the relief shows) in world space."""
    mesh = ob.data
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    m = np.array(ob.matrix_world, np.float64)
    return co.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3]


def turned_camera(scene: bpy.types.Scene, photo_cam: bpy.types.Object, meshes: list[bpy.types.Object],
                  angle_deg: float) -> bpy.types.Object:
    """A copy of the photo's camera turned by ``angle_deg`` about the objects' vertical axis, framing them all."""
    import bpy
    from mathutils import Matrix, Vector

    depsgraph = bpy.context.evaluated_depsgraph_get()
    points = np.concatenate([_world_vertices(ob.evaluated_get(depsgraph)) for ob in meshes])
    centre = Vector(((points.min(0) + points.max(0)) / 2).tolist())
    up = photo_cam.matrix_world.to_3x3() @ Vector((0.0, 1.0, 0.0))
    turn = Matrix.Translation(centre) @ Matrix.Rotation(math.radians(angle_deg), 4, up) @ Matrix.Translation(-centre)
    cam = bpy.data.objects.new("Picture Camera", photo_cam.data.copy())
    scene.collection.objects.link(cam)
    cam.matrix_world = turn @ photo_cam.matrix_world
    cam.data.shift_x = cam.data.shift_y = 0.0
    cam.data.show_background_images = False
    forward = (centre - cam.matrix_world.translation).normalized()
    cam.rotation_euler = forward.to_track_quat("-Z", "Y").to_euler()
    bpy.context.view_layer.update()
    location, _scale = cam.camera_fit_coords(depsgraph, points[:: max(1, len(points) // 20000)].ravel().tolist())
    cam.location = centre + (Vector(location) - centre) * 1.12  # a margin round the objects
    scene.camera = cam
    return cam


def light(scene: bpy.types.Scene, cam: bpy.types.Object) -> None:
    """A soft grey world and a sun from above and to one side of the turned camera, so the relief shades."""
    import bpy
    from mathutils import Euler

    world = bpy.data.worlds.new("Picture World")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (*AMBIENT, 1.0)
    world.node_tree.nodes["Background"].inputs["Strength"].default_value = 1.0
    scene.world = world
    sun = bpy.data.objects.new("Picture Sun", bpy.data.lights.new("Picture Sun", "SUN"))
    sun.data.energy = 3.0
    sun.data.angle = math.radians(10)
    scene.collection.objects.link(sun)
    aside = Euler((math.radians(30), math.radians(-55), 0.0)).to_matrix()  # up and to the side, in camera axes
    sun.rotation_euler = (cam.matrix_world.to_3x3() @ aside).to_euler()


def render(blend: Path, target: Path, angle_deg: float, samples: int) -> None:
    import bpy

    bpy.ops.wm.open_mainfile(filepath=str(blend), load_ui=False)
    scene = bpy.context.scene
    meshes = [ob for ob in scene.objects if ob.type == "MESH" and not ob.hide_render]
    photo_cams = [ob for ob in scene.objects if ob.type == "CAMERA"]
    if not meshes or not photo_cams:
        raise SystemExit(f"{blend} holds no reconstructed objects or camera")
    cam = turned_camera(scene, photo_cams[0], meshes, angle_deg)
    light(scene, cam)
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = True
    scene.render.threads_mode = "FIXED"
    scene.render.threads = 2
    scene.render.film_transparent = True  # composed over the sheet's backdrop
    scene.view_settings.view_transform = "Standard"
    scene.render.resolution_x, scene.render.resolution_y = PANEL_W, PANEL_H
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    scene.render.filepath = str(target)
    bpy.ops.render.render(write_still=True)


def compose(photo: Path, render_png: Path, target: Path, angle_deg: float) -> None:
    """Photo left, render right, a caption on each; a 256-colour palette keeps the PNG small."""
    from PIL import Image

    gap = 8
    backdrop = tuple(round(c * 255) for c in BACKDROP)
    sheet = Image.new("RGB", (2 * PANEL_W + gap, PANEL_H), backdrop)
    left = Image.open(photo).convert("RGB")
    left.thumbnail((PANEL_W, PANEL_H), Image.LANCZOS)
    sheet.paste(left, ((PANEL_W - left.width) // 2, (PANEL_H - left.height) // 2))
    objects = Image.open(render_png).convert("RGBA")
    sheet.paste(objects, (PANEL_W + gap, 0), objects)
    caption_and_save(sheet, [(0, "input photo"), (PANEL_W + gap, f"Monocle's objects, camera turned {angle_deg:g}°")],
                     target)


def caption_and_save(sheet: Any, captions: list[tuple[int, str]], target: Path) -> None:
    """Write each caption at the foot of its panel (left edge x), then save ``sheet`` as a PNG with a
    256-colour palette (keeps the picture small)."""
    from PIL import Image, ImageDraw, ImageFont

    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=18)
    for x, text in captions:
        draw.text((x + 12, sheet.height - 30), text, fill=(255, 255, 255), font=font, stroke_width=2,
                  stroke_fill=(0, 0, 0))
    target.parent.mkdir(parents=True, exist_ok=True)
    palette = sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    sheet.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG).save(target, optimize=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "result.png")
    parser.add_argument("--angle", type=float, default=40.0, help="degrees the camera turns from the photo's")
    parser.add_argument("--samples", type=int, default=16, help="Cycles samples (denoised)")
    args = parser.parse_args()
    import skimage.data

    sample = Path(skimage.data.__file__).parent / "coffee.png"
    with tempfile.TemporaryDirectory(prefix="monocle-picture-") as tmp:
        photo = Path(tmp) / "photos" / "coffee.png"
        photo.parent.mkdir()
        shutil.copy(sample, photo)
        blend = reconstruct(photo, Path(tmp) / "out")
        render(blend, Path(tmp) / "render.png", args.angle, args.samples)
        compose(photo, Path(tmp) / "render.png", args.out, args.angle)
    print(f"Wrote {args.out} ({args.out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
