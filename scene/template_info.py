"""What the Templates panel says about a placed template: which template and how well it matched,
the categories it could not be told apart from, how well its lattice fits the outline, whether it took
the photo's profile (``templates.profile``), and the depth its reconstruction took from it (issue 20,
part 4: shown beside its toggle)."""

from __future__ import annotations

import math

import bpy

from .template_blend import INDEX_PROP, reconstruction_of, refusal, template_matches
from .template_depth import applied_scale
from .template_lattice import stored_fits


def template_lines(obj: bpy.types.Object) -> list[tuple[str, str]]:
    """(text, icon) lines describing the live template blend ``obj`` (``template_blend.is_template``)."""
    result = template_matches(obj)
    index = int(obj.get(INDEX_PROP, 0))
    if not 0 <= index < len(result.matches):
        return []
    match = result.matches[index]
    lines = [(f"{match.template} ({match.category}), match {match.score:.2f}", "OUTLINER_OB_MESH")]
    if index == 0 and result.ambiguous_with:  # rivals of the best match, whose fitted shapes are the same
        lines.append((f"Looks alike from here: {', '.join(result.ambiguous_with)}", "QUESTION"))
    fits = stored_fits(obj)
    if index < len(fits) and math.isfinite(fits[index].iou):
        lines.append((f"Outline fit {fits[index].iou:.0%}", "MOD_LATTICE"))
    if index < len(fits) and fits[index].profile is not None:
        lines.append(("Profile from the photo, all round (with Fit)", "MOD_SCREW"))
    source = reconstruction_of(obj)
    scale = applied_scale(source) if source is not None else 1.0
    if abs(scale - 1.0) > 1e-3:
        lines.append((f"Depth from template: {1.0 / scale:.2f}x the built relief", "MOD_DISPLACE"))
    return lines


def refusal_lines(source: bpy.types.Object) -> list[tuple[str, str]]:
    """(text, icon) lines on a reconstruction retrieval placed no template on: why not, and the nearest
    categories (what Place Template suggests first)."""
    data = refusal(source)
    if data is None:
        return []
    nearest = data["nearest"]
    first = f"{nearest[0][0]} {nearest[0][1]:.2f}"
    if data.get("ambiguous") and len(nearest) > 1:
        why = f"Too close to call: {first}, {nearest[1][0]} {nearest[1][1]:.2f}"
    else:
        why = f"Nearest: {first}, under the {data['threshold']:.2f} needed"
    return [(why, "QUESTION")]
