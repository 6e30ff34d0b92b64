"""``build_from_result``: a worker result folder -> collection, camera and textured objects.

Placement (why the objects' axes are the camera's): the geometry layer returns each
object in camera space, and its relief vectors are camera-space directions along the
pixel rays. Every object therefore gets the camera's world rotation, with its origin
moved to the centre of its bounding box: ``object.matrix_world = camera.matrix_world @
Translation(centre)`` and mesh vertices ``= vertices - centre``. A Displace modifier in
``LOCAL`` space with ``RGB_TO_XYZ`` then moves each vertex along its own ray, so the
reconstruction lines up with the photo through the camera at every relief strength.
The camera looks along +Y (Blender's front view) from ``(0, -d, 0)``, where ``d`` is the
mean depth of the objects' centres, so the reconstruction sits around the world origin.
``scene.backdrop`` adds the rest of the photo as one more object built the same way (kept out of
``objects``) and stands the objects on the ground, scaling their meshes about the camera centre.

Failure leaves nothing behind: every check is done before Blender is touched (the per-corner
UV gathers may still be running on their threads then, see ``_prepare``), and every datablock
created afterwards is recorded and removed if a later step fails, a failed gather included. The
function calls no operator, so an operator that calls it is one undo step.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

from ..geometry import CameraModel, MeshData, MeshSettings
from . import backdrop as backdrop_mod
from . import camera as cam_mod
from .build_materials import blender_readable, load_photo, object_materials
from .ingest import add_point_flags, check_edges, check_topology, mesh_from_arrays
from .material import PHOTO_UV, make_photo_material
from .relief import RELIEF_UV, add_relief_modifier, make_relief_image, make_relief_texture, relief_layout
from .result import BuildError, WorkerResult, load_depth, load_mask, read_result
from .tags import OBJECT_ID, tag_result
from .tracker import Created


@dataclass
class BuildReport:
    """What one build made, and how long each part took (seconds)."""

    collection: bpy.types.Collection
    camera: bpy.types.Object
    objects: list[bpy.types.Object]
    vertex_counts: list[int]
    face_counts: list[int]
    timings: dict[str, float] = field(default_factory=dict)
    backdrop: bpy.types.Object | None = None  # the rest of the photo behind the objects (not in ``objects``)
    ground: dict | None = None  # the plane the objects stand on and each one's placement (``scene.backdrop``)


@dataclass
class _Prepared:
    """One object's arrays, ready to hand to Blender."""

    label: str
    data: MeshData
    centre: np.ndarray  # (3,) camera space, the middle of the bounding box
    lower: np.ndarray  # (3,) bounding box
    upper: np.ndarray
    relief_texture: np.ndarray  # (h, w, 4) RGBA, row 0 at the bottom (Blender pixel order)
    corner_uvs: dict[str, np.ndarray | Future]  # UV map name -> (L, 2), or its gather in flight
    edges: np.ndarray | None = None  # (E, 2) when the geometry supplies its edge table
    corner_edges: np.ndarray | None = None  # (L,)


def camera_for_result(result: WorkerResult, focal_mm: float | None = None) -> CameraModel:
    """The photo's camera: ``focal_mm`` if given, else the EXIF 35 mm focal length, else the
    engine's estimate (``focal_px``), else 50 mm (a result's recorded default counts as nothing said)."""
    from ..geometry.camera import camera_from_result

    if focal_mm is not None:
        return camera_from_result(result.width, result.height, None, fallback_focal_mm=float(focal_mm))
    focal_px = None if result.focal_source == "default" else result.focal_px
    return camera_from_result(result.width, result.height, result.focal_35mm, focal_px=focal_px)


def meshes_from_result(
    result: WorkerResult, settings: MeshSettings, camera: CameraModel, keep: dict | None = None,
    only: Sequence[int] | None = None,
) -> tuple[list[tuple[str, MeshData]], dict[str, float]]:
    """Read masks and depth, run the geometry layer; returns [(label, MeshData)] and timings.

    ``keep``, when given, receives the ``masks`` and the scene depth (``zdepth``) the meshes came from.
    ``only``: build just the objects with these ids (a correction's changed objects). A corrected
    result scales its depth over its reference mask, so they line up with the objects not rebuilt."""
    from ..geometry.depth import measured_depth, scene_depth
    from ..geometry.plane import build_object_mesh

    t0 = time.perf_counter()
    records = [rec for rec in result.instances if only is None or rec.id in only]
    masks = [load_mask(rec.mask_path, result.width, result.height) for rec in records]
    depth = load_depth(result)
    reference = masks
    if result.depth_reference is not None:
        reference = [load_mask(path, result.width, result.height) for path in result.depth_reference]
    elif only is not None:
        reference = [load_mask(rec.mask_path, result.width, result.height) for rec in result.instances]
    t_read = time.perf_counter() - t0
    if not result.instances:
        raise BuildError("no_object", "The worker result lists no object; nothing was built.")
    for rec, mask in zip(records, masks):
        if not mask.any():
            raise BuildError(
                "mask_empty", f"The mask of object {rec.id} ({rec.label}, {rec.mask_path.name}) is empty; "
                "nothing was built.")
    t1 = time.perf_counter()
    try:
        zdepth = scene_depth(depth, result.depth_kind, reference, settings, camera)
    except ValueError as exc:
        raise BuildError("depth_invalid", f"The depth map cannot be used ({exc}); nothing was built.") from exc
    if keep is not None:
        keep.update(masks=masks, zdepth=zdepth, measured=measured_depth(depth, result.depth_kind))
    meshes = []
    stages: dict[str, float] = {}
    for rec, mask in zip(records, masks):
        try:
            meshes.append((rec.label, build_object_mesh(mask, zdepth, camera, settings, timings=stages)))
        except ValueError as exc:
            raise BuildError(
                "mesh_failed", f"Could not build a mesh for object {rec.id} ({rec.label}): {exc}; nothing was built."
            ) from exc
    return meshes, {"read": t_read, "geometry": time.perf_counter() - t1,
                    **{f"geometry.{k}": v for k, v in stages.items()}}


def build_from_result(
    result_path: str | Path,
    settings: MeshSettings,
    *,
    context: bpy.types.Context | None = None,
    relief_strength: float = 1.0,
    focal_mm: float | None = None,
    name_prefix: str | None = None,
    image_path: str | Path | None = None,
) -> BuildReport:
    """Build the objects of a worker result into the scene of ``context`` (default: current).

    ``image_path`` is the photo being reconstructed: it textures the objects and names them.
    A cached result holds no path (it serves every file with the same bytes), so callers that
    go through the cache must pass it; without it the path the worker recorded is used.
    ``focal_mm`` overrides the photo's EXIF focal length; ``name_prefix`` replaces the
    photo's name for the collection and camera. Raises ``BuildError`` (a RuntimeError with
    a stable ``code``) and leaves the file as it was on any failure.
    """
    t0 = time.perf_counter()
    result = read_result(result_path, image_path)
    if result.image_path is None:
        raise BuildError("image_missing", "The worker result does not say which photo it is for; nothing was built.")
    camera = camera_for_result(result, focal_mm)
    kept: dict = {}
    meshes, timings = meshes_from_result(result, settings, camera, kept)
    photo = Path(image_path) if image_path else result.image_path
    t1 = time.perf_counter()
    extras = backdrop_mod.plan(result, settings, camera, meshes, kept["masks"], kept["zdepth"], photo, relief_strength,
                               kept["measured"])
    timings["backdrop"] = time.perf_counter() - t1
    name = (name_prefix or photo.stem or "Monocle").encode("utf-8", "replace").decode("utf-8")
    report = build_scene(
        extras.meshes, camera, blender_readable(photo, result.depth_path.parent), settings, context=context,
        relief_strength=relief_strength, name=name, trusted=True,
        mask_paths=[rec.mask_path for rec in result.instances], lines_path=result.lines_path,
        backdrop=(extras.backdrop, extras.backdrop_image) if extras.backdrop is not None else None,
    )
    report.ground = extras.ground
    if extras.ground is not None:  # kept with the file: the plane (camera space) and each object's move
        report.collection["monocle_ground"] = {k: extras.ground[k] for k in ("normal", "offset", "inliers", "rms")}
        for obj, placed in zip(report.objects, extras.ground["objects"]):
            if placed["standing"]:
                obj[backdrop_mod.SCALE_PROP] = placed["scale"]
    report.timings.update(timings)
    tag_result(report.collection, result, photo, focal_mm, report.camera)
    for obj, rec in zip(report.objects, result.instances):
        obj[OBJECT_ID] = rec.id
    report.timings["total"] = time.perf_counter() - t0
    return report


def _prepare(label: str, data: MeshData, trusted: bool, pool: ThreadPoolExecutor | None = None) -> _Prepared:
    """Pure numpy checks and layout, done before any datablock exists.

    With a ``pool`` the per-corner UV gathers (two passes over every corner, ~a tenth of the
    ingest at 1M vertices) run on it while Blender allocates the mesh: a gather is one numpy
    call that releases the GIL, so it overlaps Blender's long calls (which hold it).

    ``trusted`` meshes come straight from ``geometry.plane.build_object_mesh``, whose
    output tests/test_geometry.py holds to the same rules (indices in range, a complete
    edge table, a relief texture that reproduces the relief): their O(corners) checks
    are skipped, which is about a third of the ingest at 1M vertices.
    """
    n = data.num_vertices
    if n == 0 or data.num_faces == 0:
        raise BuildError("mesh_failed", f"The mesh of {label!r} is empty; nothing was built.")
    vertices = np.asarray(data.vertices, dtype=np.float32).reshape(-1, 3)
    loops = np.asarray(data.loops, dtype=np.int32).ravel()
    # optional edge table: lets the ingest skip Blender's edge builder
    edges, corner_edges = getattr(data, "edges", None), getattr(data, "corner_edges", None)
    texture = relief_uvs = None
    if trusted:
        if edges is None or corner_edges is None:
            edges = corner_edges = None
        if data.relief_texture is not None and data.relief_uvs is not None:
            texture = data.relief_texture  # (h, w, 4) in Blender's pixel order
            relief_uvs = np.asarray(data.relief_uvs, dtype=np.float32)
    if not trusted or texture is None:
        try:
            edges, corner_edges = _checked(n, data, loops, edges, corner_edges)
            texture, relief_uvs = relief_layout(data)
        except ValueError as exc:
            raise BuildError("mesh_invalid", f"The mesh of {label!r} is invalid ({exc}); nothing was built.") from exc
    lower, upper = _bounds(vertices)
    photo_uvs = np.asarray(data.uvs, dtype=np.float32)
    if pool is None:
        corner_uvs = {PHOTO_UV: per_corner(photo_uvs, loops), RELIEF_UV: per_corner(relief_uvs, loops)}
    else:
        corner_uvs = {PHOTO_UV: pool.submit(per_corner, photo_uvs, loops),
                      RELIEF_UV: pool.submit(per_corner, relief_uvs, loops)}
    return _Prepared(label, data, 0.5 * (lower + upper), lower, upper, texture, corner_uvs, edges, corner_edges)


def _checked(
    n: int, data: MeshData, loops: np.ndarray, edges: np.ndarray | None, corner_edges: np.ndarray | None,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Check a mesh from any source against what Blender trusts blindly; returns the edge
    table as int32 arrays (or None, None when there is none). Raises ValueError."""
    sizes = np.asarray(data.face_sizes, dtype=np.int32).ravel()
    check_topology(n, sizes, loops)
    if edges is not None and corner_edges is not None:
        edges = np.asarray(edges, dtype=np.int32).reshape(-1, 2)
        corner_edges = np.asarray(corner_edges, dtype=np.int32).ravel()
        check_edges(n, sizes, loops, edges, corner_edges)
    else:
        edges = corner_edges = None
    for name in data.groups:
        if np.asarray(data.groups[name]).shape != (n,):
            raise ValueError(f"selection {name!r} does not have one value per vertex")
    if np.asarray(data.uvs).shape != (n, 2) or np.asarray(data.relief).shape != (n, 3):
        raise ValueError("uvs and relief need one row per vertex")
    return edges, corner_edges


def _bounds(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-axis minimum and maximum (float64) of (N, 3) points, a column at a time: numpy's
    ``min(axis=0)`` on three columns is about 20x slower."""
    lower = np.array([vertices[:, k].min() for k in range(3)], dtype=np.float64)
    upper = np.array([vertices[:, k].max() for k in range(3)], dtype=np.float64)
    return lower, upper


def per_corner(values: np.ndarray, loops: np.ndarray) -> np.ndarray:
    """Per-vertex pairs (N, 2) float32 -> per-corner (L, 2), gathered as one 8-byte word per
    corner (twice as fast as gathering rows of two floats)."""
    words = np.ascontiguousarray(values, dtype=np.float32).view(np.int64).ravel()
    return words[loops].view(np.float32).reshape(-1, 2)


def build_scene(
    meshes: list[tuple[str, MeshData]],
    camera: CameraModel,
    photo_path: str | Path,
    settings: MeshSettings,
    *,
    context: bpy.types.Context | None = None,
    relief_strength: float = 1.0,
    name: str = "Monocle",
    trusted: bool = False,
    mask_paths: Sequence[str | Path | None] | None = None,
    backdrop: tuple[MeshData, Path | None] | None = None,
    lines_path: str | Path | None = None,
) -> BuildReport:
    """Blender half of the build, from camera-space meshes (usable with hand-made ``MeshData``).

    ``trusted``: the meshes come unchanged from the geometry layer, so the index checks
    that protect Blender from malformed arrays are skipped (see ``_prepare``).
    ``mask_paths`` (one per mesh, or None) are the objects' mask images, used as the
    material's alpha when ``settings.outline_alpha`` is on; ``lines_path`` is a drawing's
    line-class map, drawn on clay when ``settings.drawing_material`` asks for it. ``backdrop`` is
    the backdrop's mesh and its texture (None: the photo), built like the objects but kept out of
    ``objects``.
    """
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="monocle-uvs") as pool:
        return _build_scene(meshes, camera, photo_path, settings, context, relief_strength, name, trusted,
                            mask_paths, pool, t0, backdrop, lines_path)


def _build_scene(
    meshes: list[tuple[str, MeshData]], camera: CameraModel, photo_path: str | Path, settings: MeshSettings,
    context: bpy.types.Context | None, relief_strength: float, name: str, trusted: bool,
    mask_paths: Sequence[str | Path | None] | None, pool: ThreadPoolExecutor, t0: float,
    backdrop: tuple[MeshData, Path | None] | None = None,
    lines_path: str | Path | None = None,
) -> BuildReport:
    context = context or bpy.context
    scene = context.scene
    prepared = [_prepare(label, data, trusted, pool) for label, data in meshes]
    if not prepared:
        raise BuildError("no_object", "There is no object to build.")
    t_prepare = time.perf_counter() - t0
    depths = np.array([-p.centre[2] for p in prepared])
    distance = float(depths.mean()) if np.all(depths > 0) else 5.0
    back = _prepare(f"{name} Backdrop", backdrop[0], trusted, pool) if backdrop is not None else None
    far = float(max(-p.lower[2] for p in prepared + ([back] if back is not None else [])))
    cam_matrix = cam_mod.camera_matrix(distance)
    created = Created()
    timings = {"prepare": t_prepare, "mesh": 0.0, "attributes": 0.0, "relief": 0.0}
    with created.all_or_nothing("build_failed", "Building the objects failed ({}); nothing was built."):
        photo = load_photo(Path(photo_path), created)
        collection = created.add("collections", bpy.data.collections.new(name))
        scene.collection.children.link(collection)
        cam_data = created.add("cameras", cam_mod.make_camera_data(f"{name} Camera", camera, photo, 4.0 * far))
        cam_obj = created.add("objects", bpy.data.objects.new(f"{name} Camera", cam_data))
        cam_obj.matrix_world = cam_matrix
        collection.objects.link(cam_obj)
        cam_mod.set_render_size(scene, camera, created.set)
        created.set(scene, "camera", cam_obj)
        materials = object_materials(name, photo, [p.label for p in prepared], settings, mask_paths, created,
                                     lines_path)
        objects = [
            _make_object(p, cam_matrix, material, settings, relief_strength, collection, created, timings)
            for p, material in zip(prepared, materials)
        ]
        back_obj = None
        if back is not None:
            texture = backdrop_mod.load_texture(backdrop[1], photo, created)
            material = created.add("materials", make_photo_material(f"{name} Backdrop", texture))
            back_obj = _make_object(back, cam_matrix, material, settings, relief_strength, collection, created,
                                    timings)
        _select(context, objects)
    ingest = time.perf_counter() - t0
    timings.update({"ingest": ingest, "geometry": 0.0, "total": ingest})
    return BuildReport(
        collection=collection,
        camera=cam_obj,
        objects=objects,
        vertex_counts=[p.data.num_vertices for p in prepared],
        face_counts=[p.data.num_faces for p in prepared],
        timings=timings,
        backdrop=back_obj,
    )


def _make_object(
    p: _Prepared, cam_matrix: Matrix, material: bpy.types.Material, settings: MeshSettings, strength: float,
    collection: bpy.types.Collection, created: Created, timings: dict[str, float],
) -> bpy.types.Object:
    # The relief image first: packing it is one long Blender call, during which the corner UV
    # gathers (``_prepare``) go on in their threads.
    t = time.perf_counter()
    image = created.add("images", make_relief_image(f"{p.label} Relief", p.relief_texture))
    texture = created.add("textures", make_relief_texture(f"{p.label} Relief", image))
    timings["relief"] += time.perf_counter() - t

    t = time.perf_counter()
    data = p.data
    local = np.asarray(data.vertices, dtype=np.float32) - p.centre.astype(np.float32)
    mesh = created.add("meshes", mesh_from_arrays(
        p.label, local, data.face_sizes, data.loops, p.corner_uvs,
        # optional edge table (not in the MeshData contract yet): skips Blender's edge builder
        edges=p.edges, corner_edges=p.corner_edges, check=False,
    ))
    mesh.materials.append(material)
    obj = created.add("objects", bpy.data.objects.new(p.label, mesh))
    obj.matrix_world = cam_matrix @ Matrix.Translation(p.centre.tolist())
    collection.objects.link(obj)
    timings["mesh"] += time.perf_counter() - t

    t = time.perf_counter()
    for name, member in data.groups.items():  # front / back / seam selections
        member = np.asarray(member, dtype=bool)
        if member.any() and not member.all():  # one that holds every vertex or none selects nothing
            add_point_flags(mesh, name, member)
    timings["attributes"] += time.perf_counter() - t

    t = time.perf_counter()
    if obj.name != p.label:  # a name taken in the file: the relief follows the object's own name
        image.name = texture.name = f"{obj.name} Relief"
    add_relief_modifier(obj, texture, strength)
    timings["relief"] += time.perf_counter() - t
    return obj


def _select(context: bpy.types.Context, objects: list[bpy.types.Object]) -> None:
    """Select the new objects and make the first one active, like an importer."""
    view_layer = getattr(context, "view_layer", None)
    if view_layer is None:
        return
    for obj in view_layer.objects.selected:
        obj.select_set(False)
    for obj in objects:
        obj.select_set(True)
    view_layer.objects.active = objects[0]
