"""The template blend: a matched template placed over a reconstruction, pulled onto it where the
camera saw it, with one live slider between the two.

For each reconstructed object whose best template scores above the threshold, a new object is
placed, its matrix the camera's world matrix times the matched pose (so it is upright in its own
axes, origin at the template's base), its mesh in the template's model space. Every match's FFD
lattice is fitted to the object's mask and depth (``templates.fit``); with trusted depth (metric, the
user's map) the accepted matches' poses are first refined on the visible surface and their stretch
handed to the lattice (``templates.fit.refine_matches``). The mesh (``BLEND``, one of ``BLENDS``) is
by default the *body*: the fitted template's own mesh, densified, its seen vertices pulled along the
camera rays onto the reconstruction (``scene.template_body``), so it keeps what no ray's first or
last hit sees (a handle's hole, a cup's inside, legs). Where the fitted template's outline matches
the mask too poorly for trusted depth to be given up (``templates.body.body_fits``), and with
``blend="shell"``, over a reconstruction with a back it is the *ray shell*: the reconstruction's own
mesh, its vertices moved onto the template along the camera rays (``scene.template_shell``); over an
open one a densified copy of the template pulled by a Shrinkwrap. Its modifiers:

0. ``Monocle Lattice``: the fitted lattice as a real Lattice object parented to the template
   (``scene.template_lattice``); the **Fit** slider (``monocle_template_fit``) drives its strength,
   and the artist can reshape the template by editing the lattice's points.
1. ``Monocle Template Weight`` (Vertex Weight Mix): multiplies the per-vertex visibility weights
   of the ``Monocle Visible`` group by ``1 - takeover(weight, trust)`` (``templates.policy``); a
   driver reads ``weight`` from the object's ``monocle_template_weight`` property (a simple
   expression with the depth trust's knee baked in: no Python, works with auto-run off), so moving
   the slider updates the mesh live.
2. The pull onto the reconstruction by the group's weight: ``Monocle Photo Ray`` (geometry nodes:
   the camera ray through each vertex as the lattice left it, onto the reconstruction's first hit)
   on the body, ``Monocle Photo Side`` (vertex for vertex) on the ray shell, ``Monocle Shrinkwrap``
   (nearest surface point) on the template copy. The body's overhang (seen vertices whose ray misses
   the reconstruction or meets it far off: ``Monocle Overhang``, scaled by its own ``Monocle Overhang
   Weight`` mix) goes onto the reconstruction's nearest surface point (``Monocle Photo Outline``).
   With trusted depth, weights up to the knee (the
   default included) keep the reconstruction's surface on the seen side, whatever Fit and the
   lattice do (they reshape the hidden side); above it the template takes over, 1 giving the pure
   (fitted) template. With the classic relief the knee is near 0, so the slider is about the
   template's share of the seen side. The back (weight 0 in the group) always keeps the fitted
   template.
3. ``Monocle Photo Projection`` (UV Project from the photo's camera): the ``Photo`` UV map, so the
   photo material shows the picture on the visible faces; the others keep the template's material.

The matching and the template meshes it places live in ``scene.template_source``.

The reconstruction stays in the collection, hidden: it is what the pull reads. With a relative
depth map it first takes its depth proportions from the placed template (``scene.template_depth``).
The top three matches and their fitted lattices are kept on the object as JSON, so
``swap_template`` cycles them (with a new lattice) without re-matching or re-fitting;
``apply_template`` bakes the modifiers into a plain mesh and removes the lattice.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import bpy
import numpy as np
from mathutils import Matrix

from ..geometry import CameraModel, MeshSettings
from ..templates import library as tlib
from ..templates.blend import visibility_weights
from ..templates.body import body_fits
from ..templates.ffd_fit import LatticeFit
from ..templates.match import Match, MatchResult, Pose
from ..templates.mesh import densify
from ..templates.policy import WEIGHT_DESCRIPTION
from ..templates.retrieve import unfitted
from .backdrop import SCALE_PROP as GROUND_SCALE_PROP
from .material import PHOTO_UV
from .result import BuildError, read_result
from .tags import OBJECT_ID, RESULT_FOCAL, RESULT_FOLDER, collection_camera
from .template_body import OUTLINE_MODIFIER, RAY_MODIFIER, body_arrays, ray_target
from .template_depth import SCALE_PROP as DEPTH_SCALE_PROP
from .template_depth import applied_scale
from .template_depth import depth_from_template as set_template_depth
from .template_lattice import FIT_PROP, FITS_PROP, remove_lattice, set_lattice, set_profile, stored_fits
from .template_library import template_library
from .template_modifiers import MIX_MODIFIER as MIX_MODIFIER
from .template_modifiers import (
    OVERHANG_GROUP,
    PROJECT_MODIFIER,
    TRUST_PROP,
    VISIBLE_GROUP,
    WEIGHT_PROP,
    WRAP_MODIFIER,
    add_modifiers,
    write_weights,
)
from .template_modifiers import OVERHANG_MIX_MODIFIER as OVERHANG_MIX_MODIFIER
from .template_modifiers import WEIGHT_LEVELS as WEIGHT_LEVELS
from .template_modifiers import weight_expression as weight_expression
from .template_shell import SNAP_MODIFIER, has_back, shell_mesh, snap_target
from .template_source import TemplateMesh, load_template_mesh, match_result
from .tracker import Created, remove_object

log = logging.getLogger(__name__)

MATCHES_PROP = "monocle_template_matches"
INDEX_PROP = "monocle_template_index"
CAMERA_PROP = "monocle_template_camera"
CATEGORY_PROP = "monocle_category"
REFUSED_PROP = "monocle_template_refused"  # on a reconstruction no template was placed on: why, and the nearest
DEFAULT_WEIGHT = 0.5
BLENDS = ("body", "shell")  # the template's own mesh pulled onto the photo; the reconstruction resampled on it
BLEND = "body"


@dataclass
class TemplateReport:
    """What the template step did for one reconstructed object."""

    source: bpy.types.Object  # the reconstruction
    result: MatchResult
    object: bpy.types.Object | None = None  # the blended template (None: no template good enough)
    seconds: float = 0.0
    fits: list[LatticeFit] = field(default_factory=list)  # one per match, same order
    depth_trust: float = 1.0
    depth_scale: float = 1.0  # relief factor divided out of the reconstruction (``scene.template_depth``)

    def to_json(self) -> dict[str, Any]:
        data = self.result.to_json()
        data["object"] = self.object.name if self.object is not None else None
        data["reconstruction"] = self.source.name
        data["seconds"] = round(self.seconds, 3)
        data["depth_trust"] = self.depth_trust
        data["depth_from_template"] = round(self.depth_scale, 4)
        for match, fit in zip(data["matches"], self.fits):
            match["fit"] = {k: v for k, v in fit.to_json().items() if k not in ("lattice", "profile")}
            match["fit"]["profile"] = fit.profile is not None  # the field itself is stored on the object
        if self.fits:
            data["lattice"] = self.fits[0].lattice.to_json()
        return data


def _camera_json(camera: CameraModel) -> str:
    return json.dumps({"width": camera.width, "height": camera.height, "focal_mm": camera.focal_mm,
                       "sensor_mm": camera.sensor_mm})


def _camera_from_json(text: str) -> CameraModel:
    d = json.loads(text)
    return CameraModel(int(d["width"]), int(d["height"]), float(d["focal_mm"]), float(d["sensor_mm"]))


def _build_mesh(tm: TemplateMesh, match: Match, fit: LatticeFit, camera: CameraModel,
                photo_material: bpy.types.Material | None, trust: float = 0.0,
                source: bpy.types.Object | None = None, camera_obj: bpy.types.Object | None = None,
                kind: str = "copy") -> tuple[bpy.types.Mesh, np.ndarray, np.ndarray | None]:
    """The blend's mesh with its materials (photo material on the faces the camera sees) and a
    ``Photo`` UV map; returns it with the per-vertex pull weights of the fitted shape and, for the
    body, its overhang weights (``templates.body.body_pulls``).

    ``kind`` (``_blend_kind``): ``body``, the densified template weighted by where its rays meet the
    reconstruction ``source`` seen through ``camera_obj`` (``scene.template_body``); ``shell``, the
    fitted template resampled on the reconstruction's rays (``scene.template_shell``); ``copy``, the
    densified template weighted by its visibility."""
    from .ingest import mesh_from_arrays

    if kind == "shell" and source is not None and camera_obj is not None:
        return (*shell_mesh(f"{tm.name} Template", source, camera_obj, tm.mesh, match, fit, camera, photo_material,
                            tm.materials, tm.material_index, trust), None)

    dense, parents = densify(tm.mesh)
    overhang = None
    if kind == "body" and source is not None and camera_obj is not None:
        weights, overhang = body_arrays(source, camera_obj, dense, match, fit, camera, trust)
    else:
        weights = visibility_weights(fit.deform(dense.vertices), dense.triangles(), match.pose, camera, trust)
    mesh = mesh_from_arrays(f"{tm.name} Template", dense.vertices, dense.face_sizes, dense.loops)
    mesh.uv_layers.new(name=PHOTO_UV)
    for mat in tm.materials or [None]:
        mesh.materials.append(mat)
    mat_index = tm.material_index[parents].astype(np.int32) if tm.material_index.size else np.zeros(
        dense.num_faces, np.int32)
    if photo_material is not None:
        photo_slot = len(mesh.materials)
        mesh.materials.append(photo_material)
        face_of_loop = np.repeat(np.arange(dense.num_faces), dense.face_sizes)
        face_weight = np.bincount(face_of_loop, weights[dense.loops], dense.num_faces) / dense.face_sizes
        mat_index = np.where(face_weight >= 0.5, photo_slot, mat_index).astype(np.int32)
    mesh.polygons.foreach_set("material_index", mat_index)
    mesh.update()
    return mesh, weights, overhang


def _blend_kind(blend: str, source: bpy.types.Object | None, fit: LatticeFit, trust: float) -> str:
    """The mesh and pull a blend ``blend`` (one of ``BLENDS``) gets over ``source``: ``body`` where
    the fitted template's outline fits the mask well enough (``templates.body.body_fits``); ``shell``
    over a reconstruction with a back; ``copy`` (the template pulled by a Shrinkwrap) otherwise."""
    if blend == "body" and (body_fits(fit.iou, trust) or not has_back(source)):
        return "body"
    return "shell" if has_back(source) else "copy"


def _set_pose(obj: bpy.types.Object, camera_obj: bpy.types.Object, match: Match) -> None:
    obj.matrix_world = camera_obj.matrix_world @ Matrix(match.pose.matrix().tolist())


def rest_fit(template: tlib.Template) -> LatticeFit:
    """The unfitted lattice of a template (Fit does nothing): for matches placed without a fit."""
    return unfitted(template)


def _lattice_name(match: Match) -> str:
    return f"{match.template} Lattice"


def place_template(
    source: bpy.types.Object, camera_obj: bpy.types.Object, result: MatchResult, camera: CameraModel, *,
    library: tlib.TemplateLibrary, weight: float = DEFAULT_WEIGHT, index: int = 0, created: Created | None = None,
    hide_source: bool = True, fits: list[LatticeFit] | None = None, trust: float = 1.0, blend: str = BLEND,
) -> bpy.types.Object:
    """Place match ``index`` of ``result`` over the reconstruction ``source`` and set up the blend
    ``blend`` (one of ``BLENDS``), shaped by its fitted lattice (``fits``: one per match; None:
    unfitted lattices); ``trust`` is the depth's (``templates.fit.depth_trust``): how much of the seen
    side the slider leaves to the photo."""
    created = created or Created()
    if fits is None or len(fits) != len(result.matches):
        fits = [rest_fit(library.get(m.template, m.source)) for m in result.matches]
    # built from what is stored (poses and lattices rounded), as Swap Template rebuilds it: a vertex whose
    # ray grazes the reconstruction's edge turns with the rounding, and a swap away and back moved 857 of a
    # can's 33,794 vertices by up to 3 % of its size
    stored_matches = json.dumps(result.to_json())
    stored = json.dumps([f.to_json() for f in fits])
    result = MatchResult.from_json(json.loads(stored_matches))
    fits = [LatticeFit.from_json(d) for d in json.loads(stored)]
    match = result.matches[index]
    tm = load_template_mesh(library.get(match.template, match.source))
    photo = source.active_material
    kind = _blend_kind(blend, source, fits[index], trust)
    mesh, weights, overhang = _build_mesh(tm, match, fits[index], camera, photo, trust, source, camera_obj, kind)
    created.add("meshes", mesh)
    obj = created.add("objects", bpy.data.objects.new(f"{source.name} Template", mesh))
    for coll in source.users_collection:
        coll.objects.link(obj)
    _set_pose(obj, camera_obj, match)
    write_weights(obj, weights)
    if overhang is not None:
        write_weights(obj, overhang, OVERHANG_GROUP)
    obj[CATEGORY_PROP] = match.category
    obj[MATCHES_PROP] = stored_matches
    obj[INDEX_PROP] = int(index)
    obj[CAMERA_PROP] = _camera_json(camera)
    obj[WEIGHT_PROP] = float(np.clip(weight, 0.0, 1.0))
    obj[TRUST_PROP] = float(trust)
    ui = obj.id_properties_ui(WEIGHT_PROP)
    ui.update(min=0.0, max=1.0, soft_min=0.0, soft_max=1.0, subtype="FACTOR", default=DEFAULT_WEIGHT,
              description=WEIGHT_DESCRIPTION)
    add_modifiers(obj, source, camera_obj, camera, kind)
    obj[FITS_PROP] = stored
    created.add("objects", set_lattice(obj, fits[index].lattice, _lattice_name(match)))
    set_profile(obj, fits[index].profile if kind != "shell" else None)
    if hide_source:
        source.hide_render = True
        try:
            source.hide_set(True)
        except RuntimeError:  # not in the current view layer
            pass
    return obj


def blend_from_result(
    result_path: str | Path, settings: MeshSettings, objects: list[bpy.types.Object],
    camera_obj: bpy.types.Object, *, weight: float = DEFAULT_WEIGHT, focal_mm: float | None = None,
    context: bpy.types.Context | None = None, library: tlib.TemplateLibrary | None = None,
    threshold: float | None = None, depth_from_template: bool = True, blend: str = BLEND,
) -> list[TemplateReport]:
    """Match the objects of a build (``BuildReport.objects`` and ``.camera``, same order as the
    result's instances) and blend a template over every one whose best match passes the threshold.

    With ``depth_from_template`` and a relative depth map, each placed template's fitted relief
    scale also sets its reconstruction's depth (``scene.template_depth``). Objects without a good
    template are left as they are. On failure everything this call made
    is removed and ``BuildError`` is raised (the reconstruction itself is untouched).
    """
    t0 = time.perf_counter()
    lib = library if library is not None else template_library(context)
    matched = match_result(result_path, settings, focal_mm=focal_mm, library=lib, context=context,
                           threshold=threshold)
    if len(matched.results) != len(objects):
        raise BuildError("template_failed", "The build and the worker result list different objects.")
    fit_seconds = [sum(f.seconds for f in fits) for fits in matched.fits]
    seconds = (time.perf_counter() - t0 - sum(fit_seconds)) / max(len(objects), 1)
    created = Created()
    reports = []
    with created.all_or_nothing("template_failed", "Placing a template failed ({})."):
        for source, res, fits, fit_s, centre in zip(objects, matched.results, matched.fits, fit_seconds,
                                                    matched.centres):
            t = time.perf_counter()
            obj = None
            scale = 1.0
            res, centre = _on_ground(source, res, centre)
            if res.accepted and depth_from_template and matched.relative:
                scale = set_template_depth(source, camera_obj, res.matches[0].depth_scale, centre)
            if res.accepted:
                obj = place_template(source, camera_obj, res, matched.camera, library=lib, weight=weight,
                                     created=created, fits=fits, trust=matched.depth_trust, blend=blend)
            note_refusal(source, None if res.accepted else res)
            reports.append(TemplateReport(source, res, obj, seconds + fit_s + time.perf_counter() - t, fits,
                                          matched.depth_trust, scale))
    return reports


def place_category(
    obj: bpy.types.Object, category: str, settings: MeshSettings, *, weight: float | None = None,
    context: bpy.types.Context | None = None, library: tlib.TemplateLibrary | None = None,
    depth_from_template: bool = True, blend: str = BLEND,
) -> TemplateReport:
    """The artist's pick: the best template of ``category`` matched, fitted and placed over the
    reconstruction ``obj`` whatever it scores (where retrieval placed none, or one of another category),
    as ``blend_from_result`` places one; the category's next best are Swap Template's. ``obj`` may be
    the template blend over it, which the new one then replaces, keeping its weight (``weight``: a new
    template's, where there was none; default ``DEFAULT_WEIGHT``); with ``depth_from_template`` a
    relative map's reconstruction takes its depth from it, as there. Reads the inference result the
    reconstruction was built from; raises ``BuildError`` (one plain sentence) and changes nothing when
    it cannot."""
    t0 = time.perf_counter()
    context = context or bpy.context
    source, collection, result_path, index, camera_obj = _built_from(obj)
    sub = (library if library is not None else template_library(context)).of_category(category)
    if sub is None:
        raise BuildError("no_template", f"The template library has no template of the category {category!r}.")
    current = template_over(source)
    if current is not None:
        weight = float(current[WEIGHT_PROP])
    elif weight is None:
        weight = DEFAULT_WEIGHT
    focal = collection.get(RESULT_FOCAL)
    matched = match_result(result_path, settings, focal_mm=float(focal) if focal is not None else None,
                           library=sub, context=context, threshold=-1.0, only={index})
    res, fits = matched.results[index], matched.fits[index]
    if not res.accepted:
        raise BuildError("template_failed", f"No {category} template could be fitted to {source.name!r}.")
    res, centre = _on_ground(source, res, matched.centres[index])
    created = Created()
    before = applied_scale(source)
    try:
        with created.all_or_nothing("template_failed", "Placing a template failed ({})."):
            scale = 1.0
            if matched.relative and depth_from_template:
                scale = set_template_depth(source, camera_obj, res.matches[0].depth_scale, centre)
            elif before != 1.0:  # the depth another template gave it goes with that template
                scale = set_template_depth(source, camera_obj, 1.0)
            placed = place_template(source, camera_obj, res, matched.camera, library=sub, weight=weight,
                                    created=created, fits=fits, trust=matched.depth_trust, blend=blend)
    except BuildError:
        if applied_scale(source) != before:  # the reconstruction's depth as it was
            set_template_depth(source, camera_obj, before)
        raise
    note_refusal(source, None)
    if current is not None:  # the new one stands: the template it replaces goes, with its lattice
        remove_lattice(current)
        remove_object(current)
    return TemplateReport(source, res, placed, time.perf_counter() - t0, fits, matched.depth_trust, scale)


def _built_from(obj: bpy.types.Object) -> tuple[bpy.types.Object, bpy.types.Collection, Path, int, bpy.types.Object]:
    """(the reconstruction, its collection, the result folder it was built from, its index among the
    result's objects, the collection's camera) of a reconstruction or of the template blend over one;
    ``BuildError`` naming what is missing."""
    source = reconstruction_of(obj) if is_template(obj) else obj
    if source is None:
        raise BuildError("not_reconstruction", f"The reconstruction under {obj.name!r} is gone; reconstruct the "
                         "photo again to place another template.")
    if not is_reconstruction(source):
        raise BuildError("not_reconstruction", f"{obj.name!r} is not an object Monocle reconstructed.")
    collection = next(c for c in source.users_collection if RESULT_FOLDER in c)
    result_path = Path(str(collection[RESULT_FOLDER]))
    try:
        index = [rec.id for rec in read_result(result_path).instances].index(int(source[OBJECT_ID]))
    except (OSError, ValueError, KeyError, BuildError):
        raise BuildError("result_gone", f"The inference result {source.name!r} was built from is gone from the "
                         "cache; reconstruct the photo again to place a template on it.") from None
    camera_obj = collection_camera(collection)
    if camera_obj is None:
        raise BuildError("camera_missing", f"The collection {collection.name!r} has lost its camera; reconstruct "
                         "again to place a template.")
    return source, collection, result_path, index, camera_obj


def _on_ground(source: bpy.types.Object, res: MatchResult, centre: float) -> tuple[MatchResult, float]:
    """The matches (made from the depth map) moved as Stand on Ground moved ``source``: scaled about
    the camera by its ground scale, so the template stands where the object now stands."""
    g = float(source.get(GROUND_SCALE_PROP, 1.0))
    if g == 1.0:
        return res, centre
    moved = [replace(m, pose=Pose(m.pose.rotation, g * m.pose.translation, g * m.pose.scale)) for m in res.matches]
    return replace(res, matches=moved), g * centre


# --------------------------------------------------------------------------- after placement

def is_template(obj: bpy.types.Object | None) -> bool:
    """Whether ``obj`` is a live template blend (it has matches and its pull onto the reconstruction)."""
    return obj is not None and MATCHES_PROP in obj and any(
        obj.modifiers.get(name) is not None for name in (WRAP_MODIFIER, SNAP_MODIFIER, RAY_MODIFIER))


def note_refusal(source: bpy.types.Object, result: MatchResult | None) -> None:
    """Keep on the reconstruction ``source`` what retrieval found where it placed no template (``result``;
    None: a template was placed), for the panel and Place Template's first suggestion."""
    if result is None or not result.matches:
        if REFUSED_PROP in source:
            del source[REFUSED_PROP]
        return
    seen: dict[str, float] = {}
    for m in result.matches:  # the nearest categories, best first
        seen.setdefault(m.category, round(float(m.score), 3))
    source[REFUSED_PROP] = json.dumps({"ambiguous": bool(result.ambiguous), "threshold": round(result.threshold, 3),
                                       "nearest": [[c, s] for c, s in seen.items()]})


def refusal(source: bpy.types.Object) -> dict[str, Any] | None:
    """What ``note_refusal`` kept (None: nothing)."""
    try:
        data = json.loads(str(source[REFUSED_PROP])) if REFUSED_PROP in source else None
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("nearest") else None


def is_reconstruction(obj: bpy.types.Object | None) -> bool:
    """Whether ``obj`` is an object Monocle reconstructed (a template can be placed over it)."""
    return obj is not None and obj.type == "MESH" and OBJECT_ID in obj and any(
        RESULT_FOLDER in c for c in obj.users_collection)


def template_over(source: bpy.types.Object) -> bpy.types.Object | None:
    """The template blend pulled onto the reconstruction ``source`` (None: there is none)."""
    for coll in source.users_collection:
        for o in coll.objects:
            if o is not source and is_template(o) and reconstruction_of(o) == source:
                return o
    return None


def reconstruction_of(obj: bpy.types.Object) -> bpy.types.Object | None:
    """The reconstruction a template blend is pulled onto."""
    wrap = obj.modifiers.get(WRAP_MODIFIER)
    if wrap is not None:
        return wrap.target
    ray = obj.modifiers.get(RAY_MODIFIER)
    if ray is not None:
        return ray_target(ray)
    snap = obj.modifiers.get(SNAP_MODIFIER)
    return snap_target(snap) if snap is not None else None


def template_matches(obj: bpy.types.Object) -> MatchResult:
    return MatchResult.from_json(json.loads(obj[MATCHES_PROP]))


def swap_template(obj: bpy.types.Object, step: int = 1, context: bpy.types.Context | None = None,
                  library: tlib.TemplateLibrary | None = None) -> Match:
    """Show the next of the stored matches (cycling) with its own fitted lattice (a new Lattice
    object), keeping the sliders and modifiers; returns it."""
    if not is_template(obj):
        raise BuildError("not_template", f"{obj.name!r} is not a template blend.")
    result = template_matches(obj)
    if not result.matches:
        raise BuildError("not_template", f"{obj.name!r} has no stored matches.")
    index = (int(obj.get(INDEX_PROP, 0)) + step) % len(result.matches)
    match = result.matches[index]
    lib = library if library is not None else template_library(context)
    camera = _camera_from_json(obj[CAMERA_PROP])
    source = reconstruction_of(obj)
    kind = "body" if obj.modifiers.get(RAY_MODIFIER) else "shell" if obj.modifiers.get(SNAP_MODIFIER) else "copy"
    photo = source.active_material if source is not None else None
    try:
        template = lib.get(match.template, match.source)
    except KeyError:
        raise BuildError("template_missing", f"The template {match.template!r} is no longer in the library.") from None
    tm = load_template_mesh(template)
    fits = stored_fits(obj)
    fit = fits[index] if index < len(fits) else rest_fit(template)
    proj = obj.modifiers.get(PROJECT_MODIFIER)
    camera_obj = proj.projectors[0].object if proj is not None and proj.projectors[0].object else None
    if camera_obj is not None and source is not None and DEPTH_SCALE_PROP in source:
        set_template_depth(source, camera_obj, match.depth_scale)  # its depth came from the template
    mesh, weights, overhang = _build_mesh(tm, match, fit, camera, photo, float(obj.get(TRUST_PROP, 0.0)), source,
                                          camera_obj, kind if source is not None and camera_obj is not None else "copy")
    old = obj.data
    obj.data = mesh
    if old.users == 0:
        bpy.data.meshes.remove(old)
    if camera_obj is not None:
        _set_pose(obj, camera_obj, match)
    write_weights(obj, weights)
    if obj.modifiers.get(OUTLINE_MODIFIER) is not None:
        # the vertex groups' names live on the mesh: the new one has none, and a Shrinkwrap whose group is
        # missing moves every vertex (a swap there and back left the template 19 % of its size off)
        write_weights(obj, overhang if overhang is not None else np.zeros(len(mesh.vertices)), OVERHANG_GROUP)
    set_lattice(obj, fit.lattice, _lattice_name(match))
    set_profile(obj, fit.profile if kind != "shell" else None)
    obj[INDEX_PROP] = index
    obj[CATEGORY_PROP] = match.category
    return match


def apply_template(obj: bpy.types.Object, context: bpy.types.Context | None = None) -> bpy.types.Mesh:
    """Bake the blend into a plain mesh at the current slider values, lattice included (modifiers,
    drivers, the Lattice object and the stored matches are removed; materials and the Photo UV map
    stay)."""
    if not is_template(obj):
        raise BuildError("not_template", f"{obj.name!r} is not a template blend.")
    context = context or bpy.context
    depsgraph = context.evaluated_depsgraph_get()
    depsgraph.update()
    evaluated = obj.evaluated_get(depsgraph)
    mesh = bpy.data.meshes.new_from_object(evaluated, preserve_all_data_layers=True, depsgraph=depsgraph)
    mesh.name = obj.data.name
    remove_lattice(obj)
    obj.animation_data_clear()
    obj.modifiers.clear()
    old = obj.data
    obj.data = mesh
    if old.users == 0:
        bpy.data.meshes.remove(old)
    for name in (VISIBLE_GROUP, OVERHANG_GROUP):
        group = obj.vertex_groups.get(name)
        if group is not None:
            obj.vertex_groups.remove(group)
    for key in (WEIGHT_PROP, MATCHES_PROP, INDEX_PROP, CAMERA_PROP, FIT_PROP, FITS_PROP):
        if key in obj:
            del obj[key]
    return mesh
