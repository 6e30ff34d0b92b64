"""Template library and matching (pure numpy + scipy, never imports ``bpy``).

``library`` holds the templates and their view descriptors (``assets/templates_descriptors.npz``
for the bundled ones, made by ``tools/make_templates.py``), ``match.match_instance`` finds the
best templates and poses for one segmented object, ``blend.visibility_weights`` says which of a
posed template's vertices the camera sees. The Blender half is ``scene/template_blend.py``.
"""
