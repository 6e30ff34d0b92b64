"""`make demo`: reconstruct a real photo (scikit-image's `coffee`, CC0) offline.

Writes out/coffee.glb and out/coffee.blend through Monocle's command line.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import monocle  # noqa: E402


def main() -> int:
    import skimage.data

    sample = Path(skimage.data.__file__).parent / "coffee.png"
    photos = ROOT / "out" / "samples"
    photos.mkdir(parents=True, exist_ok=True)
    shutil.copy(sample, photos / "coffee.png")
    code = monocle.main(
        [
            "reconstruct", str(photos / "coffee.png"), "-o", str(ROOT / "out"), "--format", "glb,blend",
            "--overwrite", "--report", str(ROOT / "out" / "report.json"),
        ]
    )
    if code == 0:
        print(f"Wrote {ROOT / 'out' / 'coffee.glb'} and {ROOT / 'out' / 'coffee.blend'}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
