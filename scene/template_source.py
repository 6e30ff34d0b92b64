"""Where a placed template comes from: the library's matches for every object of a worker result
(retrieval, lattice fits and, with trusted depth, pose refinement) and the template's own polygons and
materials read from its .blend. ``scene.template_blend`` places and blends them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np

from ..geometry import CameraModel, MeshSettings
from ..templates import library as tlib
from ..templates.ffd_fit import LatticeFit
from ..templates.fit import depth_trust, refine_matches
from ..templates.match import MatchResult
from ..templates.mesh import PolyMesh
from ..templates.retrieve import retrieve
from .result import BuildError, load_depth, load_mask, read_result
from .template_library import drop_unused_library, linked_objects, mesh_arrays, template_library

log = logging.getLogger(__name__)


@dataclass
class TemplateMesh:
    """A template's polygons (model space), with materials, ready to place."""

    name: str
    category: str
    mesh: PolyMesh
    material_index: np.ndarray
    materials: list[bpy.types.Material | None] = field(default_factory=list)


# --------------------------------------------------------------------------- matching

@dataclass
class ResultMatches:
    """The templates matched to every object of a worker result (the result's order), with each
    match's fitted lattice, the camera, and the trust the fits gave the depth."""

    results: list[MatchResult]
    fits: list[list[LatticeFit]]
    camera: CameraModel
    depth_trust: float
    relative: bool = False  # the depth map's relief had no scale of its own (fitted by the match)
    centres: list[float] = field(default_factory=list)  # each object's median depth (the relief's centre)


def match_result(
    result_path: str | Path, settings: MeshSettings, *, focal_mm: float | None = None,
    library: tlib.TemplateLibrary | None = None, context: bpy.types.Context | None = None,
    threshold: float | None = None, only: set[int] | None = None,
) -> ResultMatches:
    """Match every object of a worker result against the template library (bundled + user), fitting
    the lattices of the best rigid matches and ranking them after the fit (``templates.retrieve``).

    Reads the masks and depth the same way the build does, so poses are in the build's camera
    space; with relative depth the relief's scale is fitted too, and the lattice fit sees the depth
    rescaled by it, weighted by ``templates.fit.depth_trust``; trusted depth also refines the accepted
    matches' poses on the visible surface (``templates.fit.refine_matches``); ``threshold`` overrides retrieval's
    acceptance threshold (the benchmarks place the best template of a known category whatever it scores).
    ``only``: the indices of the instances to match (the others get no matches).
    """
    from ..geometry.depth import scene_depth
    from .build import camera_for_result

    result = read_result(result_path)
    camera = camera_for_result(result, focal_mm)
    masks = [load_mask(rec.mask_path, result.width, result.height) for rec in result.instances]
    zdepth = scene_depth(load_depth(result), result.depth_kind, masks, settings, camera)
    lib = library if library is not None else template_library(context)
    relative = result.depth_kind != "metric"  # a relative map's relief has no known scale: fit it
    trust = depth_trust(result.depth_kind, result.depth_source)
    found = [retrieve(m, zdepth, camera, lib, rec.label, depth_scale=relative, trust=trust,
                      threshold=threshold) if only is None or i in only else (MatchResult(rec.label), [])
             for i, (rec, m) in enumerate(zip(result.instances, masks))]
    found = [refine_matches(r, f, lib, camera, m, zdepth, trust) if r.accepted else (r, f)
             for (r, f), m in zip(found, masks)]
    centres = [float(np.median(zdepth[m])) if m.any() else 0.0 for m in masks]
    return ResultMatches([r for r, _ in found], [f if r.accepted else [] for r, f in found], camera, trust,
                         relative, centres)


# --------------------------------------------------------------------------- template meshes

def _source_blend(template: tlib.Template) -> Path:
    return Path(template.source) if template.source else tlib.BUNDLED_BLEND


def load_template_mesh(template: tlib.Template) -> TemplateMesh:
    """Read a template's polygons and materials from its .blend (materials are appended once)."""
    blend = _source_blend(template)
    with linked_objects(blend, [template.object_name]) as objects:
        if not objects:
            raise BuildError("template_missing", f"The template {template.name!r} is not in {blend.name}.")
        verts, sizes, loops, mats = mesh_arrays(objects[0])
        names = [slot.material.name if slot.material else None for slot in objects[0].material_slots]
    materials = _append_materials(blend, names)
    mesh = PolyMesh(verts, sizes, loops)
    if not np.allclose(verts.astype(np.float32), template.vertices, atol=1e-5 * max(template.size, 1e-9)):
        log.warning("template %s changed since its descriptors were made", template.name)
    return TemplateMesh(template.name, template.category, mesh, mats, materials)


def _append_materials(blend: Path, names: list[str | None]) -> list[bpy.types.Material | None]:
    """The named materials of ``blend`` in this file: reused if already appended from it."""
    wanted = [n for n in dict.fromkeys(names) if n]
    found: dict[str, bpy.types.Material] = {}
    for mat in bpy.data.materials:
        origin = mat.get("monocle_source")
        if mat.library is None and origin and mat.get("monocle_material") in wanted and Path(origin) == blend:
            found.setdefault(str(mat["monocle_material"]), mat)
    missing = [n for n in wanted if n not in found]
    if missing:
        with bpy.data.libraries.load(str(blend), link=False) as (src, dst):
            present = [n for n in missing if n in src.materials]
            dst.materials = list(present)  # Blender fills the list it is given with the datablocks
        for name, mat in zip(present, dst.materials):
            if mat is not None:
                mat["monocle_source"] = str(blend)
                mat["monocle_material"] = name
                found[name] = mat
        drop_unused_library(blend)
    return [found.get(n) if n else None for n in names]
