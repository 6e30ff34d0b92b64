"""Downloading a learned model from the Hugging Face Hub into Monocle's hub cache, with byte
progress as protocol events (``inference.models.resolve`` calls it when online access allows).
huggingface_hub is imported only when a download starts."""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .models import ONNX_FILES, DownloadProgress, ResolvedModel, find_cached, repo_folder, require_online
from .protocol import WorkerError

log = logging.getLogger(__name__)


def select_files(files: list[tuple[str, int | None]]) -> list[tuple[str, int]]:
    """The files of a hub repo the worker needs: top-level configs, tokenizers and one weight format."""
    top = [(name, int(size or 0)) for name, size in files if "/" not in name]
    configs = [
        (n, s) for n, s in top
        if n.endswith((".json", ".txt", ".model")) and not n.startswith(("README", ".")) and "index" not in n
    ]
    safetensors = [(n, s) for n, s in top if n.endswith(".safetensors") or n == "model.safetensors.index.json"]
    bins = [(n, s) for n, s in top if re.fullmatch(r"pytorch_model(-\d+-of-\d+)?\.bin(\.index\.json)?", n)]
    onnx = [(n, s) for n, s in top if n.endswith(ONNX_FILES)]
    weights = safetensors or bins or onnx
    return sorted(set(configs + weights))


def download(
    repo_id: str,
    cache_dir: Path,
    *,
    revision: str | None = None,
    on_progress: DownloadProgress | None = None,
    role: str = "model",
) -> ResolvedModel:
    """Fetch ``repo_id`` into the hub cache with byte progress; returns the snapshot."""
    require_online(f"download the {role} model {repo_id}")
    hub = _hub()
    cache_dir.mkdir(parents=True, exist_ok=True)
    ref = revision or "main"
    try:
        files = _files_to_fetch(hub, repo_id, ref)
        _fetch_files(hub, repo_id, ref, files, cache_dir, on_progress)
    except WorkerError:
        raise
    except hub.not_found as exc:
        raise WorkerError(
            "model_missing",
            f"The {role} model {repo_id} cannot be downloaded from the Hugging Face Hub ({type(exc).__name__}); "
            "check the model id.",
        ) from None
    except Exception as exc:  # network errors come from several libraries (httpx, requests, hf_xet)
        log.exception("download of %s failed", repo_id)
        raise WorkerError(
            "download_failed",
            f"Could not download the {role} model {repo_id} ({type(exc).__name__}); check the internet connection "
            "and try again, or set a local model folder.",
        ) from None
    found = find_cached(repo_id, cache_dir, ref)
    if found is None:
        raise WorkerError("download_failed", f"The download of {repo_id} is incomplete; try again.")
    return ResolvedModel(repo_id, found.path, "download", found.revision)


@dataclass(frozen=True)
class _Hub:
    """The parts of huggingface_hub a download uses, imported on demand."""

    api: Any  # the HfApi class
    fetch: Callable[..., str]
    not_found: tuple[type[Exception], ...]  # the hub's "no such model, revision or access"


def _hub() -> _Hub:
    """huggingface_hub's API, with its tqdm bars off (progress goes out as protocol events)."""
    try:
        from huggingface_hub import HfApi, hf_hub_download
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError
    except ImportError:
        raise WorkerError(
            "engine_unavailable", "Downloading models needs the Python package huggingface_hub (part of transformers)."
        ) from None
    try:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()  # progress goes out as protocol events, not as tqdm bars on stderr
    except ImportError:
        pass
    return _Hub(HfApi, hf_hub_download, (RepositoryNotFoundError, GatedRepoError, RevisionNotFoundError))


def _files_to_fetch(hub: _Hub, repo_id: str, ref: str) -> list[tuple[str, int]]:
    """The files of ``repo_id`` the worker needs, with their sizes; refused when it has no loadable weights."""
    info = hub.api().model_info(repo_id, revision=ref, files_metadata=True)
    files = select_files([(s.rfilename, s.size) for s in (info.siblings or [])])
    if not any(name.endswith((".safetensors", ".bin", ".onnx")) for name, _ in files):
        raise WorkerError("model_invalid", f"{repo_id} has no weights Monocle can load (safetensors, PyTorch or "
                          "ONNX).")
    return files


def _fetch_files(hub: _Hub, repo_id: str, ref: str, files: list[tuple[str, int]], cache_dir: Path,
                 on_progress: DownloadProgress | None) -> None:
    """Download ``files`` one by one; a watcher thread reports the bytes so far (the partial blobs
    included) every half second, and each finished file reports at once."""
    total = sum(size for _, size in files)
    blobs = repo_folder(cache_dir, repo_id) / "blobs"
    done_bytes = 0
    stop = threading.Event()
    current = {"name": ""}

    def report() -> None:
        partial = sum(p.stat().st_size for p in blobs.glob("*.incomplete")) if blobs.is_dir() else 0
        if on_progress:
            on_progress(min(total, done_bytes + partial), total, f"Downloading {repo_id}: {current['name']}")

    def poll() -> None:
        while not stop.wait(0.5):
            try:
                report()
            except OSError:
                pass

    watcher = threading.Thread(target=poll, name="monocle-download-progress", daemon=True)
    watcher.start()
    try:
        for name, size in files:
            current["name"] = name
            hub.fetch(repo_id, name, revision=ref, cache_dir=str(cache_dir))
            done_bytes += size
            report()
    finally:
        stop.set()
        watcher.join(timeout=2)


def emit_download_progress(emit: Any, model: str) -> DownloadProgress:
    """A progress callback that sends ``progress`` events with ``bytes`` and ``total`` (throttled)."""
    last = {"t": 0.0, "bytes": -1}

    def progress(done: int, total: int, message: str) -> None:
        now = time.monotonic()
        if done == last["bytes"] or (now - last["t"] < 0.25 and done < total):
            return
        last.update(t=now, bytes=done)
        emit.emit(
            "progress", stage="download", fraction=round(done / total, 4) if total else 0.0, message=message,
            model=model, bytes=int(done), total=int(total),
        )

    return progress
