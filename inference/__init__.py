"""Monocle's out-of-process inference worker.

This package never imports ``bpy``: Blender starts it as ``python -m inference``
with the extension folder on ``PYTHONPATH`` and talks to it only through the
newline-delimited JSON events it prints on stdout (see :mod:`.protocol`).
"""

SCHEMA_VERSION = 1
