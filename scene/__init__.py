"""Scene building: turn a worker result folder into the objects an artist keeps.

This is the Blender half of the pipeline (it imports ``bpy``): a collection named
after the photo, a camera that matches it, and one textured mesh per object whose
relief lives in a Displace modifier the artist can change live.
See ``scene.build.build_from_result`` for the entry point.
"""

from __future__ import annotations
