"""Warm workers: ``python -m inference serve`` processes kept between reconstructions.

Starting a worker costs its imports (OpenCV, scikit-image: about a second; torch and
transformers: several) and, for the learned engine, loading the models. A warm worker pays
that once; later requests reuse the loaded models. Blender's side (this module, no ``bpy``)
keeps a small pool:

- a worker is reused only by requests with the same interpreter, paths and environment
  (device, model cache, online access); a request with other settings starts its own and the
  stale one is shut down;
- a busy worker is never shared: a batch with ``--jobs 2`` gets two workers;
- a worker that died (killed, crashed, idle timeout) is dropped and replaced on the next
  request, and one close to its idle timeout is retired rather than raced;
- Esc sends ``cancel``; a worker that does not stop the request within the grace time is
  killed, so cancelling never takes longer than with a one-shot worker;
- the worker reads requests from a pipe whose only writer is Blender: when Blender quits or
  crashes the pipe closes and the worker exits on its own; :func:`shutdown_all` also runs at
  interpreter exit and when the extension is disabled.
"""

from __future__ import annotations

import atexit
import itertools
import json
import logging
import queue
import subprocess
import threading
import time
from typing import Any

from .worker import (
    CANCEL_GRACE_S,
    EventJob,
    WorkerRunError,
    read_events,
    start_process,
    stop_process,
    worker_command,
    worker_env,
)

log = logging.getLogger(__name__)

DEFAULT_IDLE_TIMEOUT_S = 600.0
RETIRE_MARGIN_S = 5.0  # a worker idle for nearly its timeout may exit while we write to it
STDERR_LINES = 200


class WarmJob(EventJob):
    """One request answered by a :class:`ServeWorker`; the same interface as a one-shot job."""

    def __init__(self, worker: ServeWorker, args: list[str], pool: WarmPool | None = None) -> None:
        super().__init__()
        self.worker = worker
        self.pool = pool
        self.answered = False  # any event of this request arrived
        self.retried = False
        self.request_id = ""  # given by the worker the request is sent to (a retry gets a new one)
        self.args = args
        self.exit_code: int | None = None
        self.done_event: dict[str, Any] = {}
        self.started_at = time.perf_counter()

    @property
    def pid(self) -> int | None:
        return self.worker.pid

    @property
    def stderr(self) -> str:
        return self.worker.stderr

    def _apply(self, event: dict[str, Any]) -> None:
        self.answered = True
        if event.get("event") == "done":
            self.done_event = event
            self.exit_code = int(event.get("exit_code", 1))
        else:
            super()._apply(event)

    def _finish(self) -> None:
        self.worker._release(self)
        if self.exit_code is None and not self.answered and not self.retried and self.pool is not None:
            # The worker died before it saw this request (killed while idle, out of memory, its idle
            # timeout): nothing was done, so run it once more on a fresh worker.
            self.retried = True
            log.info("warm worker %s died before answering; retrying on a new one", self.worker.pid)
            try:
                self.pool._resubmit(self)
                return
            except WorkerRunError as exc:
                self.state.error = exc
        if self.exit_code is None:  # the worker ended without answering: it died under this request
            garbage = self.worker.garbage if not self.state.result_path else []
            self._conclude(self.worker.wait_exit(), garbage)
        else:
            self._conclude(self.exit_code, [])

    def cancel(self) -> None:
        """Stop this request; the worker stays warm if it stops in time, else it is killed."""
        if self.state.done:
            return
        self.worker.send({"id": f"cancel-{self.request_id}", "cancel": self.request_id})
        deadline = time.monotonic() + CANCEL_GRACE_S
        while time.monotonic() < deadline and self.exit_code is None:
            try:
                event = self._events.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                continue
            if event is None:
                break
            self._apply(event)
        if self.exit_code is None:
            self.worker.kill()
        self.worker._release(self)
        self.state.error = WorkerRunError("cancelled", "Reconstruction cancelled.")
        self.state.done = True


class ServeWorker:
    """One ``python -m inference serve`` process: requests in on stdin, events routed by id."""

    _ids = itertools.count(1)

    def __init__(self, key: tuple, cmd: list[str], env: dict[str, str]) -> None:
        self.key = key
        self.cmd = cmd
        self.env = env
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self._jobs: dict[str, WarmJob] = {}
        self._stderr: list[str] = []
        self.garbage: list[str] = []
        self.ready: dict[str, Any] = {}
        self.exit_reason: str | None = None
        self.requests = 0
        self.model_loads = 0
        self.last_used = time.monotonic()
        self.idle_timeout = DEFAULT_IDLE_TIMEOUT_S

    def start(self, idle_timeout: float) -> ServeWorker:
        self.idle_timeout = idle_timeout
        self._proc = start_process([*self.cmd, "--idle-timeout", str(idle_timeout)], self.env, stdin=subprocess.PIPE)
        for target, name in ((self._read_stdout, "out"), (self._read_stderr, "err")):
            threading.Thread(target=target, name=f"monocle-warm-{name}", daemon=True).start()
        log.info("started warm worker pid %s", self._proc.pid)
        return self

    # -- state -------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and self.exit_reason is None

    @property
    def busy(self) -> bool:
        with self._lock:
            return bool(self._jobs)

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def reusable(self, key: tuple) -> bool:
        idle_for = time.monotonic() - self.last_used
        return self.key == key and self.alive and not self.busy and idle_for < self.idle_timeout - RETIRE_MARGIN_S

    def describe(self) -> dict[str, Any]:
        return {"pid": self.pid, "alive": self.alive, "busy": self.busy, "requests": self.requests,
                "model_loads": self.model_loads, "idle_s": round(time.monotonic() - self.last_used, 1)}

    # -- requests ----------------------------------------------------------------------------
    def submit(self, args: list[str], pool: WarmPool | None = None) -> WarmJob:
        return self.attach(WarmJob(self, args, pool))

    def attach(self, job: WarmJob) -> WarmJob:
        """Send ``job``'s request to this worker; its events go to the job from now on."""
        job.worker = self
        job.request_id = str(next(self._ids))
        with self._lock:
            self._jobs[job.request_id] = job
        self.last_used = time.monotonic()
        if not self.send({"id": job.request_id, "args": job.args}):
            with self._lock:  # the worker is gone; end the job unless the reader already did
                gone = self._jobs.pop(job.request_id, None)
            if gone is not None:
                job._events.put(None)
        return job

    def send(self, message: dict[str, Any]) -> bool:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.poll() is not None:
            return False
        try:
            proc.stdin.write(json.dumps(message) + "\n")
            proc.stdin.flush()
        except (OSError, ValueError):  # broken pipe: it died; the reader thread ends its jobs
            return False
        return True

    def _release(self, job: WarmJob) -> None:
        with self._lock:
            self._jobs.pop(job.request_id, None)
        self.last_used = time.monotonic()
        if job.done_event:
            self.requests = int(job.done_event.get("requests", self.requests))
            self.model_loads = int(job.done_event.get("model_loads", self.model_loads))

    def _read_stdout(self) -> None:
        assert self._proc and self._proc.stdout
        for event in read_events(self._proc.stdout, self.garbage):
            request_id = event.get("id")
            if request_id is None:
                if event["event"] == "ready":
                    self.ready = event
                elif event["event"] == "exit":
                    self.exit_reason = str(event.get("reason"))
                else:
                    log.info("warm worker: %s", event)
                continue
            with self._lock:
                job = self._jobs.get(str(request_id))
            if job is None:
                continue  # a late event of a request already given up
            job._events.put(event)
            if event["event"] == "done":
                job._events.put(None)
        with self._lock:  # jobs still waiting when the worker ends get one end marker each
            orphans = list(self._jobs.values())
            self._jobs.clear()
        for job in orphans:
            job._events.put(None)

    def _read_stderr(self) -> None:
        assert self._proc and self._proc.stderr
        for line in self._proc.stderr:
            self._stderr.append(line)
            del self._stderr[:-STDERR_LINES]
            log.debug("warm worker: %s", line.rstrip())

    # -- ending ------------------------------------------------------------------------------
    def wait_exit(self, timeout: float = 5.0) -> int | None:
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self._proc is not None:
            stop_process(self._proc, grace=0.2)

    def shutdown(self, timeout: float = 2.0) -> None:
        """Ask the worker to exit (closing stdin is enough), kill it if it does not."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        self.send({"id": "shutdown", "shutdown": True})
        try:
            if proc.stdin:
                proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


class WarmPool:
    """The warm workers of this Blender session."""

    def __init__(self) -> None:
        self._workers: list[ServeWorker] = []
        self._lock = threading.Lock()

    def submit(
        self,
        args: list[str],
        *,
        interpreter: str = "",
        extra_paths: list[str] | None = None,
        extra_env: dict[str, str] | None = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT_S,
    ) -> WarmJob:
        """Run ``args`` (a one-shot command line) on an idle warm worker, starting one if needed."""
        cmd = worker_command(interpreter, ["serve"])
        env = worker_env(extra_paths, extra_env)
        key = (tuple(cmd), tuple(sorted((k, v) for k, v in env.items() if k.startswith(("MONOCLE_", "PYTHON")))))
        retired: list[ServeWorker] = []
        with self._lock:
            keep = []
            for w in self._workers:
                if not w.alive or (w.key != key and not w.busy):
                    retired.append(w)
                else:
                    keep.append(w)
            self._workers = keep
            worker = next((w for w in self._workers if w.reusable(key)), None)
            if worker is None:
                worker = ServeWorker(key, cmd, env).start(idle_timeout)
                self._workers.append(worker)
            job = worker.submit(args, self)
        for w in retired:
            w.shutdown(timeout=0.5)
        return job

    def _resubmit(self, job: WarmJob) -> None:
        """Move ``job`` from its dead worker to a new one with the same settings."""
        old = job.worker
        with self._lock:
            self._workers = [w for w in self._workers if w is not old]
            worker = ServeWorker(old.key, old.cmd, old.env).start(old.idle_timeout)
            self._workers.append(worker)
        worker.attach(job)

    def workers(self) -> list[ServeWorker]:
        with self._lock:
            return [w for w in self._workers if w.alive]

    def shutdown_all(self, timeout: float = 2.0) -> int:
        """Stop every warm worker; returns how many were running."""
        with self._lock:
            workers, self._workers = self._workers, []
        running = [w for w in workers if w.alive]
        for w in workers:
            w.shutdown(timeout=timeout)
        return len(running)


POOL = WarmPool()
atexit.register(POOL.shutdown_all, 1.0)
