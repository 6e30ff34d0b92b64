"""The steps the button and the command line share: describe an inference,
find it in the cache or start the worker for it, build the objects."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import bpy

from . import prefs
from .bridge.cache import ResultCache, cache_key, file_digest
from .bridge.warm import POOL
from .bridge.worker import EventJob, WorkerJob, WorkerRunError
from .geometry import MeshSettings
from .geometry.preload import preload
from .inference import options
from .inference.models import is_moge_model


@dataclass(frozen=True)
class InferenceRequest:
    """Everything that changes the worker's output, and so the cache key."""

    image: str
    engine: str = options.ENGINE.value
    objects: str = options.Objects.ALL.value
    max_size: int = options.MAX_SIZE
    mask_file: str | None = None
    depth_file: str | None = None
    depth_kind: str = options.DepthKind.RELATIVE_INVERSE.value
    # transformers engine ("" = the engine's default model)
    depth_model: str = ""
    seg_model: str = ""
    seg_mode: str = options.SegMode.LABELS.value
    prompt: str = ""
    corrections_file: str | None = None  # a sidecar of segment corrections, applied after the run

    def key(self) -> str:
        fields = asdict(self)
        image = fields.pop("image")
        if self.corrections_file:  # the stroke masks a sidecar names are inputs too
            fields.update(_stroke_files(self.corrections_file))
        try:
            return cache_key(image, fields)
        except OSError as exc:
            raise WorkerRunError("image_unreadable", f"Cannot read {Path(image).name} ({exc.strerror}).") from None

    def worker_args(self, out: Path) -> list[str]:
        args = [
            "run", "--image", self.image, "--out", str(out), "--engine", self.engine,
            "--objects", self.objects, "--max-size", str(self.max_size),
        ]
        if self.mask_file:
            args += ["--mask", self.mask_file]
        if self.depth_file:
            args += ["--depth", self.depth_file, "--depth-kind", self.depth_kind]
        # MoGe takes a MoGe model only, else it runs its own
        if self.engine == options.EngineName.MOGE and is_moge_model(self.depth_model):
            args += ["--depth-model", self.depth_model]
        if self.corrections_file:
            args += ["--corrections", self.corrections_file]
        if self.engine == options.EngineName.TRANSFORMERS:
            if self.depth_model:
                args += ["--depth-model", self.depth_model]
            if self.seg_model:
                args += ["--seg-model", self.seg_model]
            args += ["--seg-mode", self.seg_mode]
            if self.prompt:
                args += ["--prompt", self.prompt]
        return args


def _stroke_files(sidecar: str) -> dict[str, str]:
    """``{"strokes_N_file": path}`` for the stroke masks a corrections file names (none when it is
    unreadable: the worker reports that)."""
    import json

    try:
        data = json.loads(Path(sidecar).read_text(encoding="utf-8"))
        items = data.get("corrections") if isinstance(data, dict) else data
        names = [c.get("strokes") for c in items if isinstance(c, dict)]
    except (OSError, ValueError, TypeError, AttributeError):
        return {}
    paths = [Path(sidecar).parent / n for n in names if isinstance(n, str) and n]
    return {f"strokes_{k}_file": str(p) for k, p in enumerate(paths) if p.is_file()}


@dataclass(frozen=True)
class RefineRequest:
    """One correction of an earlier result (``base``, its folder): the worker's ``refine``.

    ``correction`` is the correction's JSON form (:func:`inference.prompts.Correction.to_json`)."""

    image: str
    base: str
    correction: str
    segmenter: str = "grabcut"  # or "learned": a SAM-family model, GrabCut where it is not available

    def key(self) -> str:
        import json

        corr = json.loads(self.correction)
        fields = {"base": file_digest(Path(self.base) / "result.json"), "correction": self.correction,
                  "strokes_file": corr.get("strokes"), "segmenter": self.segmenter}
        try:
            return cache_key(self.image, fields)
        except OSError as exc:
            raise WorkerRunError("result_unreadable", f"Cannot read the earlier result or the photo ({exc.strerror}); "
                                 "reconstruct again.") from None

    def worker_args(self, out: Path) -> list[str]:
        import json

        corr = json.loads(self.correction)
        args = ["refine", "--base", self.base, "--out", str(out), "--image", self.image, "--action", corr["action"]]
        for x, y, sign in corr.get("points") or []:
            args += ["--point", f"{x},{y},{'+' if sign > 0 else '-'}"]
        for box in corr.get("boxes") or []:
            args += ["--box", ",".join(str(v) for v in box)]
        if corr.get("strokes"):
            args += ["--strokes", corr["strokes"]]
        for t in corr.get("targets") or []:
            args += ["--target", str(t)]
        if self.segmenter != "grabcut":
            args += ["--segmenter", self.segmenter]
        return args


class Inference:
    """One request: a cache hit, or a worker whose result is committed to the cache on success."""

    def __init__(
        self, request: InferenceRequest | RefineRequest, context: bpy.types.Context | None = None,
        warm: bool | None = None, cache_max_mb: int | None = None,
    ) -> None:
        """``warm``: run on a warm worker; ``cache_max_mb``: the cache's size cap, 0 for none
        (None for either: as the preferences say).

        The result folder says nothing about the photo's path: build it with
        ``image_path=request.image``."""
        self.request = request
        self.warm = prefs.get_prefs(context).keep_worker_warm if warm is None else warm
        cap = prefs.cache_max_bytes(context) if cache_max_mb is None else max(0, cache_max_mb) * 1024 * 1024
        self.cache = ResultCache(prefs.cache_root(context), max_bytes=cap)
        self.key = request.key()
        self.job: EventJob | None = None
        self.scratch: Path | None = None
        self.result: Path | None = self.cache.lookup(self.key)
        self.cached = self.result is not None
        self.started = time.perf_counter()
        self.seconds = 0.0
        if self.result is None:
            self._start(context)

    def _start(self, context: bpy.types.Context | None) -> None:
        preload()  # the build's imports load while the worker runs
        self.scratch = self.cache.scratch()
        extra = prefs.wheel_site_packages() if prefs.uses_blender_python(context) else []
        args = self.request.worker_args(self.scratch)
        options = {"interpreter": prefs.interpreter(context), "extra_paths": extra,
                   "extra_env": prefs.worker_environment(context)}
        try:
            if self.warm:
                idle = 60.0 * prefs.get_prefs(context).worker_idle_minutes
                self.job = POOL.submit(args, idle_timeout=idle, **options)
            else:
                self.job = WorkerJob(args, **options).start()
        except WorkerRunError:
            self.discard()
            raise

    @property
    def done(self) -> bool:
        return self.result is not None or self.job is None or self.job.poll().done

    def finish(self) -> Path:
        """After ``done``: the committed result.json, or raise WorkerRunError (scratch removed)."""
        if self.result is not None:
            return self.result
        assert self.job is not None and self.scratch is not None
        state = self.job.poll()
        if state.error is not None:
            self.discard()
            raise state.error
        try:
            self.result = self.cache.commit(self.key, self.scratch)
        except OSError as exc:
            self.discard()
            raise WorkerRunError(
                "cache_unwritable", f"Cannot store the result in the cache folder ({exc.strerror or exc})."
            ) from None
        except WorkerRunError:
            self.discard()
            raise
        self.scratch = None
        self.seconds = time.perf_counter() - self.started
        return self.result

    def wait(self) -> Path:
        if self.job is not None and self.result is None:
            try:
                self.job.wait()
            except WorkerRunError:
                pass  # finish() raises it after cleaning up
        return self.finish()

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
        self.discard()

    def discard(self) -> None:
        ResultCache.discard(self.scratch)
        self.scratch = None


def apply_templates(context, result_path, report, settings: MeshSettings, weight: float,
                    focal_mm: float | None, depth_from_template: bool = True) -> list:
    """Blend library templates over a fresh build (shared by the button and the command line)."""
    from .scene.template_blend import blend_from_result

    return blend_from_result(result_path, settings, report.objects, report.camera, weight=weight,
                             focal_mm=focal_mm, context=context, depth_from_template=depth_from_template)
