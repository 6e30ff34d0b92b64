"""Run Monocle's command line through the ``bpy`` module (no Blender executable needed).

    .venv/bin/python scripts/monocle.py reconstruct photos/ -o out --format glb

Same arguments and exit code as ``blender -b -c monocle ...``: it enables the
extension in a private Blender profile (``MONOCLE_PROFILE``, default
``.cache/profile`` in this repository), installing it the way the tests do when
the profile does not yet hold a build of the current sources (tracked files only),
then calls the handler the extension registers. Runs may share a profile.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import blender_env  # noqa: E402


def main(argv: list[str]) -> int:
    blender_env.use_profile(os.environ.get("MONOCLE_PROFILE") or ROOT / ".cache" / "profile")
    import io
    from contextlib import redirect_stdout

    # Blender's install chatter belongs on stderr; stdout stays the command's own
    with redirect_stdout(io.StringIO()) as chatter:
        module = blender_env.install_extension()
    sys.stderr.write(chatter.getvalue())
    cli = __import__(module.__name__ + ".cli", fromlist=["main"])
    return cli.main(argv)


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip bpy's atexit teardown, which can take seconds and print noise
