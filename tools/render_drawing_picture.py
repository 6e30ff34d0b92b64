"""Render the README's picture of a drawing's result: docs/images/drawing.png.

A Freestyle drawing of a bundled template in the industrial-design line language
(``drawing_render.py``) goes through the real headless command twice, once with each drawing
material (Clay with Lines, the default, and Photo Texture); both results are rendered with CPU
Cycles from a camera turned about the objects, as ``render_readme_picture.py`` renders the photo's.
The picture is the drawing and the two renders side by side.

    .venv/bin/python tools/render_drawing_picture.py [--template Microwave] [--samples 16]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tools"), str(ROOT / "scripts")]

import blender_env  # noqa: E402
import render_readme_picture as readme  # noqa: E402

MATERIALS = (("clay_lines", "Clay with Lines (default)"), ("photo", "Photo Texture"))


def draw(template: str, view: tuple[float, float], target: Path) -> None:
    """The template's Freestyle drawing on white paper, written as a PNG."""
    import cv2
    import drawing_render as dr

    scene = dr.setup_scene(readme.PANEL_W, readme.PANEL_H)
    found = dr.template_objects(ROOT / "assets" / "templates.blend", [template])
    if not found:
        raise SystemExit(f"no template named {template!r} in assets/templates.blend")
    ob = found[0]
    scene.collection.objects.link(ob)
    ob.location = (0.0, 0.0, 0.0)
    dr.aim(scene, ob, *view)
    rgb, _ = dr.render_drawing(scene)
    cv2.imwrite(str(target), rgb[..., ::-1])


def reconstruct(drawing: Path, out: Path, material: str) -> Path:
    """The headless command on the drawing (``--engine auto`` picks the drawing engine)."""
    code = readme.monocle.main(["reconstruct", str(drawing), "-o", str(out), "--format", "blend", "--overwrite",
                                "--drawing-material", material])
    if code != 0:
        raise SystemExit(f"reconstruction failed (exit {code})")
    return out / f"{drawing.stem}.blend"


def compose(drawing: Path, renders: list[Path], captions: list[str], target: Path) -> None:
    """The drawing, then each render, a caption on each; a 256-colour palette keeps the PNG small."""
    from PIL import Image

    gap, w, h = 8, readme.PANEL_W, readme.PANEL_H
    sheet = Image.new("RGB", (len(captions) * (w + gap) - gap, h), tuple(round(c * 255) for c in readme.BACKDROP))
    sheet.paste(Image.open(drawing).convert("RGB"), (0, 0))
    for i, path in enumerate(renders, start=1):
        objects = Image.open(path).convert("RGBA")
        sheet.paste(objects, (i * (w + gap), 0), objects)
    readme.caption_and_save(sheet, [(i * (w + gap), text) for i, text in enumerate(captions)], target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "drawing.png")
    parser.add_argument("--template", default="Microwave", help="the bundled template drawn")
    parser.add_argument("--angle", type=float, default=20.0, help="degrees the camera turns from the drawing's")
    parser.add_argument("--samples", type=int, default=16, help="Cycles samples (denoised)")
    args = parser.parse_args()
    blender_env.use_profile(os.environ.get("MONOCLE_PROFILE") or ROOT / ".cache" / "profile")
    with tempfile.TemporaryDirectory(prefix="monocle-drawing-picture-") as tmp:
        drawing = Path(tmp) / "drawings" / "drawing.png"
        drawing.parent.mkdir()
        draw(args.template, (-35.0, 20.0), drawing)
        renders = []
        for material, _ in MATERIALS:
            blend = reconstruct(drawing, Path(tmp) / material, material)
            renders.append(Path(tmp) / f"{material}.png")
            readme.render(blend, renders[-1], args.angle, args.samples)
        captions = ["input drawing"] + [f"{name}, camera turned {args.angle:g}°" for _, name in MATERIALS]
        compose(drawing, renders, captions, args.out)
    print(f"Wrote {args.out} ({args.out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
