"""The template library: template meshes, what they answer to, and their view descriptors.

Stored as one compressed ``.npz`` (``assets/templates_descriptors.npz`` for the bundled
library, a cache file per user asset library): meshes as triangles in model space (metres,
+Z up, origin at the base centre, front towards -Y), the labels each template answers to,
and per-view coverage and quantised relative depth (see ``templates.descriptors``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from . import descriptors as desc

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
BUNDLED_BLEND = ASSETS_DIR / "templates.blend"
BUNDLED_DESCRIPTORS = ASSETS_DIR / "templates_descriptors.npz"
FORMAT_VERSION = 1

# Labels that say nothing about the kind of object: every template is a candidate.
UNKNOWN_LABELS = frozenset({"", "object", "unknown", "thing", "foreground", "item"})

# Symmetry codes: n >= 1 means n-fold about +Z, 0 any rotation about +Z, -1 any rotation at all.
SYM_REVOLUTION = 0
SYM_SPHERE = -1
# Mirror codes: the model axes whose sign flip maps the mesh onto itself ("x": the left-right
# plane x = 0, "y": the front-back plane y = 0, "xy": both, "": none or unknown).
MIRROR_AXES = ("", "x", "y", "xy")


@dataclass
class Template:
    """One template: a closed triangle mesh in model space and what it answers to."""

    name: str
    category: str
    labels: tuple[str, ...]
    symmetry: int
    vertices: np.ndarray  # (N, 3) float32
    triangles: np.ndarray  # (T, 3) int32
    source: str = ""  # .blend file holding the object ("" = the bundled library)
    object_name: str = ""  # object name in that file
    mirror: str = ""  # mirror planes, one of MIRROR_AXES

    @property
    def size(self) -> float:
        """Diagonal of the bounding box (model units)."""
        v = self.vertices
        return float(np.linalg.norm(v.max(axis=0) - v.min(axis=0)))


def normalise_label(label: str) -> str:
    return re.sub(r"[\s_-]+", " ", str(label).strip().lower())


def parse_labels(text: str) -> tuple[str, ...]:
    """``"cup, mug; wine glass"`` -> ``("cup", "mug", "wine glass")``."""
    return tuple(dict.fromkeys(t for t in (normalise_label(p) for p in re.split(r"[,;|]", text)) if t))


def parse_mirror(text: object) -> str:
    """A mirror code from free text ("X", "yx", None ...); "" when it names no axis."""
    axes = "".join(a for a in "xy" if a in str(text or "").lower())
    return axes if axes in MIRROR_AXES else ""


def answers_to(template: Template, label: str) -> bool:
    """Whether a segmentation ``label`` names this template (whole words: "dining table" finds "table")."""
    lab = normalise_label(label)
    if not lab:
        return False
    for t in (template.category, *template.labels):
        t = normalise_label(t)
        if t and re.search(rf"(^|\s){re.escape(t)}(s|es)?($|\s)", lab):
            return True
    return False


@dataclass
class TemplateLibrary:
    """Templates with their descriptors, ready for matching."""

    templates: list[Template]
    coverage: np.ndarray  # (T, V, G, G) uint8, coverage * 255
    depth: np.ndarray  # (T, V, G, G) uint8, quantised relative depth
    windows: np.ndarray  # (T, V, 4) float32
    angles: np.ndarray = field(default_factory=desc.view_angles)  # (V, 2) azimuth, elevation (degrees)

    def __len__(self) -> int:
        return len(self.templates)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.templates]

    @cached_property
    def silhouettes(self) -> tuple[np.ndarray, np.ndarray]:
        """``(T, V, k*k)`` uint8 silhouettes of every view stretched to fill their box, and ``(T, V)``
        log aspect ratios of the boxes (``descriptors.stretched_silhouettes``): what the coarse
        stage compares first, proportions apart."""
        t, v, g, _ = self.coverage.shape
        sil, aspect = desc.stretched_silhouettes(self.coverage.reshape(t * v, g, g).astype(np.float32) / 255.0)
        return sil.reshape(t, v, -1), aspect.reshape(t, v)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def subset(self, keep: list[int]) -> TemplateLibrary:
        """The library cut down to the templates at indices ``keep`` (their stored descriptors)."""
        return TemplateLibrary([self.templates[i] for i in keep], self.coverage[keep], self.depth[keep],
                               self.windows[keep], self.angles)

    @property
    def categories(self) -> list[str]:
        """The categories its templates belong to, sorted."""
        return sorted({t.category for t in self.templates if t.category})

    def of_category(self, category: str) -> TemplateLibrary | None:
        """The library cut down to the templates of ``category`` (None when it has none)."""
        keep = [i for i, t in enumerate(self.templates) if t.category == category]
        return self.subset(keep) if keep else None

    def get(self, name: str, source: str | None = None) -> Template:
        """The template called ``name`` (from the .blend ``source`` when given; "" = bundled)."""
        for t in self.templates:
            if t.name == name and (source is None or t.source == source):
                return t
        raise KeyError(f"no template {name!r} in the library")

    def candidates(self, label: str | None) -> list[int]:
        """Indices of the templates that answer to ``label``; all of them for unknown labels or no answer."""
        lab = normalise_label(label or "")
        if lab in UNKNOWN_LABELS:
            return list(range(len(self.templates)))
        hits = [i for i, t in enumerate(self.templates) if answers_to(t, lab)]
        return hits or list(range(len(self.templates)))

    @classmethod
    def build(cls, templates: list[Template]) -> TemplateLibrary:
        """Compute the descriptors of ``templates`` (a few tenths of a second per template)."""
        rots = desc.view_rotations()
        cov, dep, win = [], [], []
        for t in templates:
            d = desc.render_views(t.vertices, t.triangles, rots)
            cov.append(np.round(d.coverage * 255).astype(np.uint8))
            dep.append(desc.quantize_depth(d.depth))
            win.append(d.windows.astype(np.float32))
        g = desc.GRID
        empty = (0, len(rots), g, g)
        return cls(
            list(templates),
            np.stack(cov) if cov else np.zeros(empty, np.uint8),
            np.stack(dep) if dep else np.zeros(empty, np.uint8),
            np.stack(win) if win else np.zeros((0, len(rots), 4), np.float32),
        )

    def save(self, path: str | Path) -> None:
        """Write the library as one compressed ``.npz``."""
        meta = [
            {"name": t.name, "category": t.category, "labels": list(t.labels), "symmetry": t.symmetry,
             "source": t.source, "object": t.object_name, "mirror": t.mirror}
            for t in self.templates
        ]
        nv = np.array([len(t.vertices) for t in self.templates], dtype=np.int64)
        nt = np.array([len(t.triangles) for t in self.templates], dtype=np.int64)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(
            tmp,
            format=np.array(FORMAT_VERSION),
            meta=np.array(json.dumps(meta)),
            grid=np.array(desc.GRID),
            angles=self.angles.astype(np.float32),
            vertex_counts=nv,
            triangle_counts=nt,
            vertices=np.concatenate([t.vertices for t in self.templates]).astype(np.float32)
            if self.templates else np.zeros((0, 3), np.float32),
            triangles=np.concatenate([t.triangles for t in self.templates]).astype(np.int32)
            if self.templates else np.zeros((0, 3), np.int32),
            coverage=self.coverage,
            depth=self.depth,
            windows=self.windows.astype(np.float32),
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> TemplateLibrary:
        """Read a library written by ``save``; raises ValueError when it is from another format or grid."""
        with np.load(Path(path), allow_pickle=False) as data:
            if int(data["format"]) != FORMAT_VERSION or int(data["grid"]) != desc.GRID:
                raise ValueError(f"{Path(path).name} was written by another version of Monocle")
            angles = data["angles"].astype(np.float64)
            if angles.shape != desc.view_angles().shape or not np.allclose(angles, desc.view_angles()):
                raise ValueError(f"{Path(path).name} uses other viewpoints")
            meta = json.loads(str(data["meta"]))
            vsplit = np.cumsum(data["vertex_counts"])[:-1]
            tsplit = np.cumsum(data["triangle_counts"])[:-1]
            verts = np.split(data["vertices"], vsplit) if meta else []
            tris = np.split(data["triangles"], tsplit) if meta else []
            templates = [
                Template(m["name"], m["category"], tuple(m["labels"]), int(m["symmetry"]), v, t, m.get("source", ""),
                         m.get("object", m["name"]), parse_mirror(m.get("mirror", "")))
                for m, v, t in zip(meta, verts, tris)
            ]
            return cls(templates, data["coverage"], data["depth"], data["windows"], angles)

    def merged(self, other: TemplateLibrary) -> TemplateLibrary:
        """Both libraries as one (names of ``other`` that clash are kept, ``self`` comes first)."""
        return TemplateLibrary(
            self.templates + other.templates,
            np.concatenate([self.coverage, other.coverage]),
            np.concatenate([self.depth, other.depth]),
            np.concatenate([self.windows, other.windows]),
            self.angles,
        )


_BUNDLED: TemplateLibrary | None = None


def bundled_library() -> TemplateLibrary:
    """The library shipped in ``assets/`` (loaded once per process)."""
    global _BUNDLED
    if _BUNDLED is None:
        _BUNDLED = TemplateLibrary.load(BUNDLED_DESCRIPTORS)
    return _BUNDLED
