"""Learned models: the table of models Monocle knows, and how the worker finds one.

A model is either a local folder (``save_pretrained`` layout, for offline studios) or a
Hugging Face model id looked up in Monocle's hub cache and then in the user's own Hugging
Face cache (read only), so models the user already has are not downloaded again. A
missing model is downloaded only when online access is allowed (Blender's *Allow Online
Access*); otherwise it is a ``model_missing`` error that says what to do. The download itself is
``inference.download``'s. This module never imports torch or transformers.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from .protocol import WorkerError

TASKS = ("depth", "segmentation", "prompt")
ENV_CACHE = "MONOCLE_MODEL_CACHE"
ENV_ONLINE = "MONOCLE_ONLINE"
ENV_HF_OFFLINE = "HF_HUB_OFFLINE"
ENV_REUSE_HF = "MONOCLE_REUSE_HF_CACHE"
_YES = ("1", "true", "yes", "on")
_NO = ("0", "false", "no", "off")
WEIGHT_FILES = (
    "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json",
)
ONNX_FILES = (".onnx", ".onnx_data", ".onnx.data")  # an ONNX export and its external weights, if any
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")

# bytes done, bytes total, message
DownloadProgress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class KnownModel:
    """A model the preferences can list before anything is downloaded.

    ``commercial`` is True when the licence allows commercial use, False when it
    forbids it, None when the model card does not say (check before shipping work).
    Sizes are the download of the files the worker fetches (weights + configs).
    """

    id: str
    task: str
    name: str
    licence: str
    commercial: bool | None
    download_mb: float
    parameters_m: float
    default: bool = False
    depth_kind: str | None = None
    note: str = ""


KNOWN_MODELS: tuple[KnownModel, ...] = (
    KnownModel(
        "depth-anything/Depth-Anything-V2-Small-hf", "depth", "Depth Anything V2 Small", "Apache-2.0", True,
        99.2, 24.8, default=True, depth_kind="relative_inverse",
        note="Fast relative depth; the default.",
    ),
    KnownModel(
        "depth-anything/Depth-Anything-V2-Base-hf", "depth", "Depth Anything V2 Base", "CC-BY-NC-4.0", False,
        390.0, 97.5, depth_kind="relative_inverse", note="Finer relative depth; non-commercial licence.",
    ),
    KnownModel(
        "depth-anything/Depth-Anything-V2-Large-hf", "depth", "Depth Anything V2 Large", "CC-BY-NC-4.0", False,
        1340.0, 335.3, depth_kind="relative_inverse", note="Best relative depth, slow on CPU; non-commercial licence.",
    ),
    KnownModel(
        "depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf", "depth", "Depth Anything V2 Metric Indoor Small",
        "not stated on the model card", None, 99.2, 24.8, depth_kind="metric",
        note="Depth in metres for rooms (trained on Hypersim, up to 20 m).",
    ),
    KnownModel(
        "depth-anything/Depth-Anything-V2-Metric-Outdoor-Small-hf", "depth", "Depth Anything V2 Metric Outdoor Small",
        "not stated on the model card", None, 99.2, 24.8, depth_kind="metric",
        note="Depth in metres for streets and landscapes (trained on Virtual KITTI 2, up to 80 m).",
    ),
    KnownModel(
        "Ruicheng/moge-2-vits-normal-onnx", "depth", "MoGe-2 ViT-S (ONNX)", "MIT", True, 140.0, 35.0,
        depth_kind="metric", note="Depth in metres and the camera's focal length, so objects keep their proportions "
        "without EXIF; onnxruntime, no torch (the moge engine, or as the learned engine's depth model).",
    ),
    KnownModel(
        "facebook/mask2former-swin-tiny-coco-instance", "segmentation", "Mask2Former Swin-T COCO instance",
        "MIT (Mask2Former repository; the Hub card says 'other')", True, 190.0, 47.4, default=True,
        note="80 COCO object classes with instance masks; the default.",
    ),
    KnownModel(
        "facebook/mask2former-swin-tiny-coco-panoptic", "segmentation", "Mask2Former Swin-T COCO panoptic",
        "MIT (Mask2Former repository; the Hub card says 'other')", True, 190.0, 47.4,
        note="80 COCO object classes plus 53 background classes (walls, sky...), which Monocle skips.",
    ),
    KnownModel(
        "CIDAS/clipseg-rd64-refined", "prompt", "CLIPSeg RD64 refined", "Apache-2.0", True, 603.0, 150.7,
        default=True, note="Finds what a short text prompt names (\"chair\"); coarse masks.",
    ),
)


MOGE_DEFAULT = "Ruicheng/moge-2-vits-normal-onnx"


def known_models() -> list[KnownModel]:
    return list(KNOWN_MODELS)


def known_model(model_id: str) -> KnownModel | None:
    return next((m for m in KNOWN_MODELS if m.id == model_id), None)


def default_model(task: str) -> str:
    """The default model id for ``task`` (depth, segmentation or prompt)."""
    for m in KNOWN_MODELS:
        if m.task == task and m.default:
            return m.id
    raise KeyError(task)


def hf_hub_cache() -> Path:
    """The user's own Hugging Face hub cache (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub)."""
    explicit = os.environ.get("HF_HUB_CACHE", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("HF_HOME", "").strip() or os.path.join(
        os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def default_cache_dir() -> Path:
    """The hub cache models are read from and downloaded into: $MONOCLE_MODEL_CACHE, else Hugging Face's own."""
    env = os.environ.get(ENV_CACHE, "").strip()
    return Path(env).expanduser() if env else hf_hub_cache()


def shared_caches(cache: Path) -> list[Path]:
    """Caches to read (never write) after ``cache``: the user's Hugging Face cache, unless $MONOCLE_REUSE_HF_CACHE
    is off (Blender turns it off when the preferences name a Model Folder)."""
    if _env_flag(ENV_REUSE_HF) is False:
        return []
    hf = hf_hub_cache()
    try:
        same = hf.resolve() == Path(cache).resolve()
    except OSError:
        same = False
    return [] if same else [hf]


def find_model(repo_id: str, cache: Path, revision: str | None = None) -> ResolvedModel | None:
    """The snapshot of ``repo_id`` in ``cache``, else in the shared caches (see :func:`shared_caches`)."""
    for folder in (Path(cache), *shared_caches(cache)):
        found = find_cached(repo_id, folder, revision)
        if found is not None:
            return found
    return None


def _env_flag(name: str) -> bool | None:
    """True, False or None (unset or not a yes/no word) for a yes/no environment variable."""
    value = os.environ.get(name, "").strip().lower()
    if value in _YES:
        return True
    if value in _NO:
        return False
    return None


def online_access(requested: bool | None = None) -> bool:
    """Whether the worker may reach the model hub: the one place that decides it.

    An environment that says offline ($MONOCLE_ONLINE off, or $HF_HUB_OFFLINE on) always wins, so a
    studio or Blender with online access off can trust that no command goes out; otherwise the
    command's own request counts, and without one $MONOCLE_ONLINE (default: off).
    """
    if _env_flag(ENV_ONLINE) is False or _env_flag(ENV_HF_OFFLINE):
        return False
    if requested is not None:
        return bool(requested)
    return bool(_env_flag(ENV_ONLINE))


def online_from_env() -> bool:
    """Online access when a command gives no flag (see :func:`online_access`)."""
    return online_access(None)


def require_online(what: str) -> None:
    """Refuse, before any connection, a command that needs the network while online access is off."""
    if not online_access(True):
        raise WorkerError(
            "offline",
            f"Cannot {what} because online access is off; turn on Allow Online Access in Blender's Preferences > "
            f"System (outside Blender: set {ENV_ONLINE}=1 and unset {ENV_HF_OFFLINE}).",
        )


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model given by the user actually lives on disk."""

    spec: str  # what the user asked for (id or folder)
    path: Path  # folder to load from
    source: str  # "folder" (local folder), "cache" (hub cache) or "download" (fetched now)
    revision: str | None  # hub commit hash; None for a local folder

    def describe(self) -> dict[str, Any]:
        return {"model": self.spec, "revision": self.revision, "source": self.source, "path": str(self.path)}


def looks_like_path(spec: str) -> bool:
    """A hub id is ``name`` or ``owner/name``; anything else is meant as a folder."""
    return os.path.isabs(spec) or spec.startswith((".", "~")) or "\\" in spec or spec.count("/") > 1


def _has_weights(folder: Path) -> bool:
    return any((folder / name).is_file() for name in WEIGHT_FILES) or any(folder.glob("*.safetensors"))


def onnx_files(folder: Path) -> list[Path]:
    """The ONNX models at the top of ``folder``, sorted by name."""
    return sorted(p for p in Path(folder).glob("*.onnx") if p.is_file())


def is_moge_model(spec: str | None) -> bool:
    """Whether a depth model setting names a MoGe ONNX model (a hub id, an .onnx file or a folder of one)."""
    text = (spec or "").strip()
    if not text:
        return False
    if text.lower().endswith(".onnx") or "moge" in text.lower():
        return True
    folder = Path(text).expanduser()
    return folder.is_dir() and not (folder / "config.json").is_file() and bool(onnx_files(folder))


def repo_folder(cache_dir: Path, repo_id: str) -> Path:
    return cache_dir / ("models--" + repo_id.replace("/", "--"))


def find_cached(repo_id: str, cache_dir: Path, revision: str | None = None) -> ResolvedModel | None:
    """The complete snapshot of ``repo_id`` in the hub cache, or None."""
    repo = repo_folder(cache_dir, repo_id)
    ref = revision or "main"
    if _COMMIT.match(ref):
        commit = ref
    else:
        try:
            commit = (repo / "refs" / ref).read_text().strip()
        except OSError:
            return None
    snap = repo / "snapshots" / commit
    if ((snap / "config.json").is_file() and _has_weights(snap)) or onnx_files(snap):
        return ResolvedModel(repo_id, snap, "cache", commit)
    return None


def _size_text(model_id: str) -> str:
    known = known_model(model_id)
    return f" (about {known.download_mb:.0f} MB)" if known else ""


def resolve(
    spec: str,
    *,
    cache_dir: Path | None = None,
    online: bool = False,
    revision: str | None = None,
    role: str = "model",
    on_progress: DownloadProgress | None = None,
) -> ResolvedModel:
    """Find ``spec`` (a folder or a hub id) on disk, downloading it only when ``online``."""
    spec = spec.strip()
    if not spec:
        raise WorkerError("bad_argument", f"No {role} model was given.")
    folder = Path(spec).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise WorkerError(
                "model_invalid",
                f"The folder {spec!r} is not a model folder (it has no config.json); choose the folder that "
                "save_pretrained wrote or a Hugging Face model id.",
            )
        if not _has_weights(folder):
            raise WorkerError("model_invalid", f"The model folder {spec!r} holds no weights (model.safetensors).")
        return ResolvedModel(spec, folder.resolve(), "folder", None)
    if looks_like_path(spec) or not _HUB_ID.match(spec):
        raise WorkerError(
            "model_missing", f"The {role} model folder {spec!r} does not exist; check the model setting."
        )
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    found = find_model(spec, cache, revision)
    if found is not None:
        return found
    if not online_access(online):
        raise WorkerError(
            "model_missing",
            f"The {role} model {spec} is not downloaded and online access is off: turn on Allow Online Access in "
            f"Blender's Preferences > System to download it{_size_text(spec)}, download it from Monocle's "
            "preferences, or set a local model folder.",
        )
    from .download import download  # the hub client, only when a download is due

    return download(spec, cache, revision=revision, on_progress=on_progress, role=role)


def model_table(cache_dir: Path | None = None) -> list[dict[str, Any]]:
    """The known models with whether each is already in the cache (for the preferences list)."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    rows = []
    for m in KNOWN_MODELS:
        found = find_model(m.id, cache)
        rows.append({**asdict(m), "downloaded": found is not None, "path": str(found.path) if found else None})
    return rows
