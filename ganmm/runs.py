"""The run manager: background runs with explicit statuses, persisted as they go.

:class:`RunManager` starts each run in its own thread, which drives the model's
``fit_iter`` and hands every Snapshot to the :class:`~ganmm.store.RunStore`
before the next iteration begins. The manager alone writes statuses:

    queued -> running -> done | stopped | failed
    running -> paused -> (queued ->) running      pause / resume
    queued | paused -> stopped                     stop before or between iterations
    (any of queued, running, paused) -> interrupted
        the owning process died (found by the next manager or command line to
        open the store), or it shut down while the run was training

At most ``max_concurrent`` runs train at once; the others wait ``queued`` in
the order they were started. A paused run gives its slot up and queues again
when resumed. Pause, resume and stop act between iterations; a stop also cuts
a long GANMM step short (its M-step checks the model's time budget).

One manager per server process and run store: :func:`get_manager`.
"""

from __future__ import annotations

import atexit
import errno
import logging
import dataclasses
import math
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .store import RunRecord, RunStore, package_versions

log = logging.getLogger(__name__)

ModelFactory = Callable[..., Any]
"""``factory(model_name, preset=..., **settings) -> ClusterModel`` (default: make_model)"""
Listener = Callable[[str, Any], None]
"""``listener(run_id, snapshot)``, called after each snapshot is stored"""


@dataclass(eq=False)
class _Job:
    """What the manager knows about one run it owns (the store knows the rest)."""

    run_id: str
    model: Any
    X: Any
    y: Any
    listener: Listener | None
    stop: threading.Event = field(default_factory=threading.Event)
    paused: bool = False
    """pause requested (and not yet resumed)"""
    final: str = "stopped"
    """status a stop ends in: stopped (asked for) or interrupted (shutdown)"""
    paused_seconds: float = 0.0
    exception: BaseException | None = None
    thread: threading.Thread | None = None
    ended: threading.Event = field(default_factory=threading.Event)
    """set when the worker has written the run's final status"""


class RunManager:
    """Starts, pauses, resumes and stops runs in background threads.

    ``model_factory`` builds a model from a name and settings (default:
    :func:`ganmm.models.make_model`); tests pass small fakes. Opening a manager
    marks the store's orphaned runs ``interrupted``.
    """

    def __init__(self, store: RunStore | None = None, max_concurrent: int = 2,
                 model_factory: ModelFactory | None = None):
        if max_concurrent < 1:
            raise ConfigError(f"max_concurrent must be at least 1, got {max_concurrent}")
        self.store = store if store is not None else RunStore()
        self.max_concurrent = max_concurrent
        self._factory = model_factory
        self._cv = threading.Condition()
        self._jobs: dict[str, _Job] = {}
        self._queue: deque[_Job] = deque()  # waiting for a slot, in order
        self._training: set[str] = set()  # holding a slot
        self.store.recover_interrupted()

    # ---- starting a run ----------------------------------------------------------
    def start(self, dataset: Any, model: str, settings: dict | None = None, *, seed: int = 0,
              preset: str | None = None, device: str = "auto", name: str | None = None,
              dataset_source: str | None = None, data_options: dict | None = None,
              listener: Listener | None = None) -> str:
        """Record and queue a run of ``model`` on ``dataset`` (a ``ganmm.data.Dataset``);
        returns its id at once. Bad settings raise here (:class:`ConfigError`) and
        record nothing. ``device``: auto (CUDA when present, else CPU), cpu or cuda.
        ``dataset_source`` (a built-in name or a file path) and ``data_options``
        (``label_column``, ``labels``: what ``ganmm.data.load`` took) let
        :func:`load_run_dataset` load the same data again."""
        settings = {**(settings or {}), "seed": seed}
        built, used_device = self._build(model, preset, settings, device)
        config = {"model": model, "preset": preset, "settings": {**settings, "device": device},
                  "resolved": _config_dict(built),
                  "data": {"source": dataset_source, **(data_options or {})}}
        record = self.store.create_run(dataset=dataset, model=model, config=config, seed=seed,
                                       device=used_device, name=name, dataset_source=dataset_source,
                                       versions=package_versions())
        job = _Job(record.run_id, built, dataset.X, dataset.y, listener)
        job.thread = threading.Thread(target=self._work, args=(job,), daemon=True,
                                      name=f"ganmm-run-{record.run_id}")
        with self._cv:
            self._jobs[job.run_id] = job
            self._queue.append(job)
        job.thread.start()
        return record.run_id

    def _build(self, model: str, preset: str | None, settings: dict, device: str) -> tuple[Any, str]:
        """The model, and the device it will train on (recorded with the run)."""
        if device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device must be auto, cpu or cuda; got {device!r}")
        factory = self._factory
        if factory is None:
            from .models import make_model as factory
        built = factory(model, preset=preset, **{**settings, "device": device})
        wanted = getattr(getattr(built, "config", None), "device", None)
        if wanted is None:
            return built, "cpu"  # the baselines (and fakes) run on the CPU
        resolved = _resolve_device(wanted)
        if resolved != wanted:
            built = factory(model, preset=preset, **{**settings, "device": resolved})
        return built, resolved

    # ---- controls -------------------------------------------------------------
    def set_max_concurrent(self, n: int) -> None:
        """Change how many runs may train at once (queued runs start if there is room)."""
        if n < 1:
            raise ConfigError(f"max_concurrent must be at least 1, got {n}")
        with self._cv:
            self.max_concurrent = n
            self._cv.notify_all()

    def pause(self, run_id: str) -> None:
        """Ask a queued or running run to pause (a running one pauses after its
        current iteration is stored)."""
        job = self._job(run_id)
        with self._cv:
            job.paused = True
            self._cv.notify_all()

    def pause_asked(self, run_id: str) -> bool:
        """True while a pause of this manager's run is asked for and not resumed:
        from the click on, though the run says ``paused`` only after its iteration."""
        with self._cv:
            job = self._jobs.get(run_id)
            return job is not None and job.paused and not job.ended.is_set()

    def resume(self, run_id: str) -> None:
        """Let a paused run go on (it waits queued if every slot is taken)."""
        job = self._job(run_id)
        with self._cv:
            job.paused = False
            self._cv.notify_all()

    def stop(self, run_id: str, wait: bool = True, timeout: float | None = None) -> str:
        """Stop a run: it ends ``stopped`` after its current iteration (cut short
        where the model allows); iterations already stored stay. With ``wait``,
        returns once the run has ended (or ``timeout`` passed). Returns its status."""
        job = self._job(run_id)
        self._request_stop(job, "stopped")
        if wait:
            self.wait(run_id, timeout)
        return self.store.get_run(run_id).status

    def _request_stop(self, job: _Job, final: str) -> None:
        with self._cv:
            if not job.stop.is_set():
                job.final = final
            job.stop.set()
            self._cv.notify_all()
        _cut_short(job.model)

    def wait(self, run_id: str, timeout: float | None = None) -> RunRecord:
        """Block until the run has ended, its final status written (or ``timeout`` seconds
        passed); returns its record."""
        job = self._job(run_id)
        end = None if timeout is None else time.monotonic() + timeout
        # short waits on an Event (not Thread.join, which a Ctrl-C can leave
        # reporting a live thread as ended) keep Ctrl-C responsive
        while not job.ended.is_set():
            left = 0.25 if end is None else min(0.25, end - time.monotonic())
            if left <= 0:
                break
            job.ended.wait(left)
        return self.store.get_run(run_id)

    def exception(self, run_id: str) -> BaseException | None:
        """The exception that failed a run this manager ran, if any."""
        return self._job(run_id).exception

    def active(self) -> list[str]:
        """Ids of this manager's runs whose thread has not ended."""
        with self._cv:
            return [j.run_id for j in self._jobs.values() if not j.ended.is_set()]

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop every run of this manager, marking them ``interrupted`` (the process
        is going away, the user did not ask for it). Waits up to ``timeout`` seconds."""
        with self._cv:
            jobs = list(self._jobs.values())
        for job in jobs:
            self._request_stop(job, "interrupted")
        end = time.monotonic() + timeout
        for job in jobs:
            job.ended.wait(max(0.0, end - time.monotonic()))

    def _job(self, run_id: str) -> _Job:
        with self._cv:
            job = self._jobs.get(run_id)
        if job is None:
            self.store.get_run(run_id)  # RunNotFound for an unknown id
            raise ConfigError(f"run {run_id} is not running in this process; only the process "
                              "that started a run can pause, resume or stop it")
        return job

    # ---- the worker -----------------------------------------------------------
    def _work(self, job: _Job) -> None:
        """Thread body: wait for a slot, drive fit_iter, store each snapshot."""
        stream = None
        try:
            if not self._wait_for_slot(job, shown="queued"):
                return self._finish(job, job.final)
            self.store.set_status(job.run_id, "running")
            stream = job.model.fit_iter(job.X, job.y)
            for snap in stream:
                if job.stop.is_set():
                    break  # an iteration cut short by a stop is not kept
                if job.paused_seconds:
                    snap = dataclasses.replace(snap, elapsed=snap.elapsed - job.paused_seconds)
                self.store.append_iteration(job.run_id, snap)
                if job.listener is not None:
                    self._tell(job, snap)
                if job.paused and not job.stop.is_set():
                    self._pause_here(job)
                if job.stop.is_set():
                    break
            device = getattr(job.model, "device_", None)
            self._finish(job, job.final if job.stop.is_set() else "done",
                         device=None if device is None else str(device))
        except BaseException as exc:  # the model's failure is this run's only
            job.exception = exc
            self._finish(job, "failed", error=failure_message(exc), tb=traceback.format_exc())
        finally:
            if stream is not None:
                stream.close()
            with self._cv:
                self._training.discard(job.run_id)
                if job in self._queue:
                    self._queue.remove(job)
                self._cv.notify_all()
            job.ended.set()

    @staticmethod
    def _tell(job: _Job, snap: Any) -> None:
        """Hand a stored snapshot to the run's listener. A listener that fails (a
        closed pipe under the command line's progress lines) is dropped and logged:
        the run it watches is not its to end."""
        try:
            job.listener(job.run_id, snap)
        except Exception:
            log.exception("run %s: its listener failed and is dropped; the run goes on", job.run_id)
            job.listener = None

    def _finish(self, job: _Job, status: str, *, error: str | None = None,
                tb: str | None = None, device: str | None = None) -> None:
        with self._cv:  # free the slot before the (slow) status write
            self._training.discard(job.run_id)
            self._cv.notify_all()
        try:
            self.store.set_status(job.run_id, status, error=error, traceback=tb, device=device)
        except Exception as exc:  # e.g. the disk is full: the next start marks it interrupted
            job.exception = job.exception or exc
            log.error("run %s: could not record its final status %s (%s)", job.run_id, status, exc)

    def _wait_for_slot(self, job: _Job, shown: str) -> bool:
        """Block until the job may train (True) or is stopped (False), writing
        ``queued`` / ``paused`` as its state changes while it waits."""
        while True:
            with self._cv:
                while True:
                    if job.stop.is_set():
                        if job in self._queue:
                            self._queue.remove(job)
                        return False
                    if not job.paused and self._first_ready() is job \
                            and len(self._training) < self.max_concurrent:
                        self._queue.remove(job)
                        self._training.add(job.run_id)
                        return True
                    want = "paused" if job.paused else "queued"
                    if want != shown:
                        break  # write the new status outside the lock
                    self._cv.wait()
            self.store.set_status(job.run_id, want)
            shown = want

    def _first_ready(self) -> _Job | None:
        return next((j for j in self._queue if not j.paused and not j.stop.is_set()), None)

    def _pause_here(self, job: _Job) -> None:
        """Between iterations: give the slot up, wait paused, come back."""
        with self._cv:
            self._training.discard(job.run_id)
            self._queue.append(job)
            self._cv.notify_all()
        self.store.set_status(job.run_id, "paused")
        began = time.perf_counter()
        if self._wait_for_slot(job, shown="paused"):
            self.store.set_status(job.run_id, "running")
        idle = time.perf_counter() - began
        job.paused_seconds += idle
        _extend_budget(job.model, idle)


# --------------------------------------------------------------------------- #
# Failures, said plainly
# --------------------------------------------------------------------------- #

_KEPT = "the iterations stored before are kept"


def failure_message(exc: BaseException) -> str:
    """One line for a failed run: what happened and what to do about it."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"the disk is full ({exc.strerror}) while writing this run to the run store; "
                f"free some space or point GANMM_HOME at a larger disk; {_KEPT}")
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        where = f" {exc.filename}" if exc.filename else ""
        return (f"the run store cannot be written ({exc.strerror}{where}); check that GANMM_HOME "
                f"is writable; {_KEPT}")
    lowered = str(exc).lower()
    if type(exc).__name__ == "OutOfMemoryError" or "cuda out of memory" in lowered \
            or ("out of memory" in lowered and "cuda" in lowered):
        return (f"the GPU ran out of memory ({exc}). Reduce what one step holds: fewer clusters K, "
                "a smaller batch_size, narrower networks (hidden, channels), or fewer rows; "
                f"or train on the CPU (device cpu); {_KEPT}")
    if isinstance(exc, MemoryError) or "can't allocate memory" in lowered \
            or "defaultcpuallocator" in lowered:
        return (f"the machine ran out of memory ({text}); use fewer rows or features, fewer "
                f"clusters, a smaller batch_size or narrower networks, or let other runs finish; {_KEPT}")
    if "cuda error" in lowered or "cudnn" in lowered or type(exc).__name__ == "AcceleratorError":
        return (f"a GPU error stopped this run ({exc}); try again, or train on the CPU "
                f"(device cpu); {_KEPT}")
    return text


# --------------------------------------------------------------------------- #
# Model hooks
# --------------------------------------------------------------------------- #

def _cut_short(model: Any) -> None:
    """End a model's current step early (ClusterModel.request_stop), even when the
    stop comes before its fit has begun."""
    if hasattr(model, "request_stop"):
        model.request_stop()


def _extend_budget(model: Any, seconds: float) -> None:
    """Give back to a model's time budget the seconds it spent paused."""
    deadline = getattr(model, "_deadline", None)
    if deadline is not None and math.isfinite(deadline):
        model._deadline = deadline + seconds


def _resolve_device(name: str) -> str:
    """auto -> cuda when a CUDA GPU is present, else cpu."""
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _config_dict(model: Any) -> dict:
    config = getattr(model, "config", None)
    if config is not None and dataclasses.is_dataclass(config):
        return dataclasses.asdict(config)
    return {}


def load_run_dataset(record: RunRecord) -> Any:
    """The data a run trained on, loaded again from its recorded source (a built-in
    name or a file path) and checked against the run's fingerprint."""
    from . import data
    from .errors import DataError

    spec = record.config.get("data") or {}
    source = spec.get("source") or record.dataset_source
    if not source:
        raise DataError(f"run {record.run_id} does not record where its data came from")
    ds = data.load(source, label_column=spec.get("label_column"), labels_path=spec.get("labels"))
    if spec.get("space") == "embedded":  # the autoencoder's codes, from its cache
        from .embedding import embedded_dataset

        ds = embedded_dataset(ds, seed=int(spec.get("space_seed", record.seed or 0)))
    if ds.fingerprint() != record.fingerprint:
        raise DataError(f"the data at {source} has changed since run {record.run_id} trained on it; "
                        "its stored iterations are still readable, but views that need the data "
                        "itself cannot be drawn")
    return ds


# --------------------------------------------------------------------------- #
# One manager per process
# --------------------------------------------------------------------------- #

_MANAGERS: dict[str, RunManager] = {}
_MANAGERS_LOCK = threading.Lock()


def get_manager(max_concurrent: int = 2) -> RunManager:
    """The process-wide manager of the store in ``GANMM_HOME`` (created on first
    call; ``max_concurrent`` applies then). Shared by every browser session of a
    server; at interpreter exit it marks its unfinished runs ``interrupted``."""
    from .paths import ganmm_home

    key = str(ganmm_home())
    with _MANAGERS_LOCK:
        manager = _MANAGERS.get(key)
        if manager is None:
            manager = _MANAGERS[key] = RunManager(RunStore(key), max_concurrent=max_concurrent)
            atexit.register(manager.shutdown)
        return manager
