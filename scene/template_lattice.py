"""The fitted lattice of a placed template as a real Blender Lattice object.

The lattice object is a child of the template object (identity parent inverse, its local matrix
``Lattice.matrix()``), so it moves with the template; its points' deformed positions are the fit's.
A Lattice modifier at the top of the template's stack applies it; the modifier's strength is
driven by the object's ``monocle_template_fit`` property (the **Fit** slider: 0 = the rigid template,
1 = the fitted one, exactly ``rest + s * W @ offsets``), a simple-expression driver as the weight's.
Moving the lattice's points in Edit Mode reshapes the template live, before the Shrinkwrap blend.
"""

from __future__ import annotations

import json

import bpy
import numpy as np
from mathutils import Matrix

from ..templates.ffd import Lattice
from ..templates.ffd_fit import LatticeFit
from ..templates.profile import Profile
from .relief import add_own_driver

FIT_PROP = "monocle_template_fit"
FITS_PROP = "monocle_template_fits"
LATTICE_MODIFIER = "Monocle Lattice"
PROFILE_KEY = "Monocle Profile"  # shape key: the template's profile moved onto the seen one (``templates.profile``)
OWNER_PROP = "monocle_template_of"  # on the lattice object: the template object it shapes
DEFAULT_FIT = 1.0


def lattice_object(obj: bpy.types.Object) -> bpy.types.Object | None:
    """The Lattice object shaping the template ``obj`` (None: none, or it was deleted)."""
    mod = obj.modifiers.get(LATTICE_MODIFIER)
    return mod.object if mod is not None else None


def stored_fits(obj: bpy.types.Object) -> list[LatticeFit]:
    """The fits of the stored matches (same order), as placed."""
    if FITS_PROP not in obj:
        return []
    return [LatticeFit.from_json(d) for d in json.loads(obj[FITS_PROP])]


def _new_lattice_object(obj: bpy.types.Object, lattice: Lattice, name: str) -> bpy.types.Object:
    data = bpy.data.lattices.new(name)
    lat_obj = bpy.data.objects.new(name, data)
    collections = list(obj.users_collection) or [bpy.context.scene.collection]
    for coll in collections:  # linked before the resolution is set, or Blender spaces the rest points wrongly
        coll.objects.link(lat_obj)
    data.points_u, data.points_v, data.points_w = lattice.resolution
    data.interpolation_type_u, data.interpolation_type_v, data.interpolation_type_w = lattice.interpolation
    data.use_outside = False
    data.points.foreach_set("co_deform", lattice.local_points().astype(np.float32).ravel())
    lat_obj.parent = obj
    lat_obj.matrix_parent_inverse = Matrix.Identity(4)
    lat_obj.matrix_basis = Matrix(lattice.matrix().tolist())
    lat_obj.hide_render = True
    lat_obj[OWNER_PROP] = obj.name
    return lat_obj


def remove_lattice(obj: bpy.types.Object) -> None:
    """Delete the template's Lattice object (and its data when nothing else uses it)."""
    lat_obj = lattice_object(obj)
    if lat_obj is None:
        return
    data = lat_obj.data
    bpy.data.objects.remove(lat_obj)
    if data is not None and data.users == 0:
        bpy.data.lattices.remove(data)


def set_lattice(obj: bpy.types.Object, lattice: Lattice, name: str) -> bpy.types.Object:
    """Give the template ``obj`` a new Lattice object (replacing its old one) and the Lattice modifier
    at the top of its stack, strength driven by the Fit slider; returns the Lattice object."""
    remove_lattice(obj)
    lat_obj = _new_lattice_object(obj, lattice, name)
    if FIT_PROP not in obj:
        obj[FIT_PROP] = DEFAULT_FIT
        ui = obj.id_properties_ui(FIT_PROP)
        ui.update(min=0.0, max=1.0, soft_min=0.0, soft_max=1.0, subtype="FACTOR", default=DEFAULT_FIT,
                  description="0: the template's own proportions; 1: the template reshaped to fit the photo")
    mod = obj.modifiers.get(LATTICE_MODIFIER)
    if mod is None:
        mod = obj.modifiers.new(LATTICE_MODIFIER, "LATTICE")
        obj.modifiers.move(len(obj.modifiers) - 1, 0)
        mod.strength = float(obj[FIT_PROP])
        add_own_driver(obj, f'modifiers["{LATTICE_MODIFIER}"].strength', f'["{FIT_PROP}"]', "s")
    mod.object = lat_obj
    return lat_obj


def set_profile(obj: bpy.types.Object, profile: Profile | None) -> None:
    """Give the template ``obj``'s freshly built mesh (no shape keys yet: placing and Swap Template
    build a new one) the shape key ``PROFILE_KEY``: its vertices moved by the fit's ``profile`` onto the
    seen one (model space, before the lattice), its value driven by the Fit slider as the lattice's
    strength is; nothing for a ``profile`` of None. Call after ``set_lattice``."""
    if profile is None:
        return
    mesh = obj.data
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    obj.shape_key_add(name="Basis", from_mix=False)
    key = obj.shape_key_add(name=PROFILE_KEY, from_mix=False)
    key.data.foreach_set("co", profile.apply(co.reshape(-1, 3)).astype(np.float32).ravel())
    key.value = float(obj.get(FIT_PROP, DEFAULT_FIT))
    add_own_driver(obj, f'key_blocks["{PROFILE_KEY}"].value', f'["{FIT_PROP}"]', "s", owner=mesh.shape_keys)
