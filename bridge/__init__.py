"""Blender-free glue between Blender and the worker: starting it, reading its
events, caching its results. Importable without ``bpy`` (the CLI and tests use it).
"""
