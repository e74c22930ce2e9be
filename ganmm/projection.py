"""UMAP pictures of a dataset for the dashboard, fitted in one background worker.

A :class:`Projector` owns a single daemon thread; every call into ``umap``
(fit and transform) runs there, because numba code is not safe to call from
many threads at once. ``umap`` is imported inside that thread only, so
importing this module (and starting the app) stays fast.

* :meth:`Projector.request` never blocks: the first call for a dataset queues
  the fit and answers ``"pending"``; later calls answer the same until the
  state is ``"ready"`` (with the embedding) or ``"failed"`` (with a message).
  2-D data are drawn as they are: ready at once, no umap.
* Embeddings are cached in ``GANMM_HOME/cache/umap/<fingerprint>-<config>.npz``
  (written atomically, read with ``allow_pickle=False``), so a restarted app
  shows them at once.
* :meth:`Projector.transform` places new points (e.g. generated samples) with
  the fitted model. The model itself is never pickled to disk (we never
  unpickle), so after a restart the worker refits it in the background the
  first time ``transform`` is needed; until then ``transform`` answers None.
  The picture keeps the cached embedding meanwhile; with the same config and
  ``random_state`` the refit reproduces it (on the same machine, exactly).
"""

from __future__ import annotations

import hashlib
import os
import queue
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ganmm.errors import GanmmError
from ganmm.paths import ganmm_home

if TYPE_CHECKING:
    from ganmm.data import Dataset

__all__ = ["ProjectionConfig", "ProjectionError", "ProjectionState", "Projector", "get_projector"]

_UMAP_LOCK = threading.Lock()
"""held by a worker while it runs a job, so two projectors never run numba at once"""


class ProjectionError(GanmmError):
    """A projection failed, timed out, or the projector was shut down."""


@dataclass(frozen=True)
class ProjectionConfig:
    """Settings of the UMAP fit; they are part of the disk cache's key."""

    n_neighbors: int = 15
    """neighbours per point (lowered to n - 1, at least 2, for tiny data)"""
    min_dist: float = 0.1
    """how tightly UMAP packs points together in the picture"""
    metric: str = "euclidean"
    """distance between rows, any metric name umap knows"""
    random_state: int = 0
    """seed of the fit: the same seed and data give the same picture"""
    max_fit_rows: int = 20_000
    """beyond this many rows, fit on a seeded subsample and transform the rest"""

    def key(self) -> str:
        """Short stable hash of the settings, used in cache file names."""
        return hashlib.sha256(repr(sorted(asdict(self).items())).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ProjectionState:
    """Where the projection of one dataset stands."""

    status: str
    """"ready" (embedding set), "pending" (fit queued or running) or "failed" (error set)"""
    embedding: np.ndarray | None = None
    """(n, 2) float32 coordinates, one row per dataset row, when ready (read-only)"""
    error: str | None = None
    """what went wrong, when failed"""
    seconds: float | None = None
    """seconds the fit took (also for an embedding loaded from the disk cache)"""
    cached: bool = False
    """True when the embedding came from the disk cache rather than a fit here"""


class _Linear:
    """Stand-in model for data too small for UMAP (< 4 rows): first two PCA axes."""

    def __init__(self, X: np.ndarray) -> None:
        self.mean = X.mean(axis=0)
        _, _, vt = np.linalg.svd(X - self.mean, full_matrices=False)
        self.axes = np.zeros((X.shape[1], 2), dtype=np.float64)
        self.axes[:, : min(2, len(vt))] = vt[:2].T

    def transform(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean) @ self.axes).astype(np.float32)


def _fit_umap(X: np.ndarray, config: ProjectionConfig) -> tuple[Any, np.ndarray]:
    """Fit a model on X (worker thread only) and return it with X's (n, 2) embedding."""
    n = X.shape[0]
    if n < 4:
        model = _Linear(X)
        return model, model.transform(X)
    import umap  # lazily: numba compiles on first use, and only in the worker

    model = umap.UMAP(
        n_neighbors=max(2, min(config.n_neighbors, n - 1)), min_dist=config.min_dist,
        metric=config.metric, random_state=config.random_state, n_jobs=1,
    )
    if n <= config.max_fit_rows:
        return model, np.asarray(model.fit_transform(X), dtype=np.float32)
    rng = np.random.default_rng(config.random_state)
    chosen = np.zeros(n, dtype=bool)
    chosen[rng.choice(n, config.max_fit_rows, replace=False)] = True
    embedding = np.empty((n, 2), dtype=np.float32)
    embedding[chosen] = model.fit_transform(X[chosen])
    embedding[~chosen] = model.transform(X[~chosen])
    return model, embedding


def _cache_path(fingerprint: str, config: ProjectionConfig) -> Path:
    return ganmm_home() / "cache" / "umap" / f"{fingerprint}-{config.key()}.npz"


def _load(path: Path, n: int) -> tuple[np.ndarray, float] | None:
    """The cached (embedding, seconds), or None when missing or unusable."""
    try:
        with np.load(path, allow_pickle=False) as z:
            emb, seconds = np.asarray(z["embedding"], dtype=np.float32), float(z["seconds"])
    except Exception:  # missing, truncated, foreign: refit rather than break the page
        return None
    return (emb, seconds) if emb.shape == (n, 2) and np.isfinite(emb).all() else None


def _save(path: Path, embedding: np.ndarray, seconds: float) -> None:
    """Write the cache file atomically; a failure only costs a refit later."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, embedding=embedding, seconds=np.float64(seconds))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


class Projector:
    """Fits and serves UMAP embeddings; all umap work runs on one daemon thread."""

    def __init__(
        self, config: ProjectionConfig | None = None, *, max_models: int = 4,
        max_transforms: int = 32,
    ) -> None:
        self.config = config or ProjectionConfig()
        self._max_models, self._max_transforms = max_models, max_transforms
        self._cond = threading.Condition()
        self._queue: queue.Queue[tuple[Future, Callable[..., Any], tuple] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._states: dict[str, ProjectionState] = {}
        self._models: OrderedDict[str, Any] = OrderedDict()
        self._refits: dict[str, Future] = {}
        self._refit_errors: dict[str, str] = {}
        self._transforms: OrderedDict[str, np.ndarray] = OrderedDict()
        self._running: dict[str, Future] = {}

    # ----------------------------------------------------------------- public
    def request(self, ds: Dataset, *, retry: bool = False) -> ProjectionState:
        """The dataset's state now, queueing its fit on first sight (never blocks).

        ``retry=True`` queues a new fit when the last one failed.
        """
        if ds.kind == "2d":
            return ProjectionState("ready", ds.X, seconds=0.0)
        key = self._key(ds)
        with self._cond:
            state = self._states.get(key)
            if state is not None and not (retry and state.status == "failed"):
                return state
        path = _cache_path(ds.fingerprint(), self.config)
        loaded = _load(path, ds.n_samples) if state is None else None
        with self._cond:
            if key in self._states and not (retry and self._states[key].status == "failed"):
                return self._states[key]
            if loaded is not None:
                self._states[key] = ProjectionState("ready", _frozen(loaded[0]), seconds=loaded[1],
                                                    cached=True)
            else:
                self._submit(self._fit_job, key, ds.X, path, False)
                self._states[key] = ProjectionState("pending")
            return self._states[key]

    def embedding(self, ds: Dataset, timeout: float | None = None) -> np.ndarray:
        """The (n, 2) embedding, waiting for the fit; ProjectionError on failure or timeout."""
        state = self.request(ds)
        if ds.kind != "2d":
            key = self._key(ds)
            with self._cond:
                self._cond.wait_for(lambda: self._states[key].status != "pending", timeout)
                state = self._states[key]
        if state.status == "pending":
            raise ProjectionError(f"the UMAP picture of {ds.name!r} is not ready after {timeout} s; "
                                  "wait longer or poll request()")
        if state.status == "failed":
            raise ProjectionError(f"the UMAP picture of {ds.name!r} failed: {state.error}")
        assert state.embedding is not None
        return state.embedding

    def transform(self, ds: Dataset, points: np.ndarray, timeout: float = 10.0) -> np.ndarray | None:
        """Place new points (M, d) in the dataset's picture: (M, 2) float32, or None.

        None means "not yet": the fit (or, after a restart, the refit of the
        model) is still running, or the transform took longer than ``timeout``
        seconds; it keeps running and its result is cached, so ask again on the
        next refresh. Raises ProjectionError when the fit failed or the points
        do not have the dataset's features. 2-D points come back unchanged.
        """
        points = np.ascontiguousarray(points, dtype=np.float32)
        if points.ndim != 2 or points.shape[1] != ds.n_features:
            raise ProjectionError(f"points of shape {points.shape} do not have the dataset's "
                                  f"{ds.n_features} features; pass an (M, {ds.n_features}) array")
        if ds.kind == "2d":
            return points
        if len(points) == 0:
            return np.zeros((0, 2), dtype=np.float32)
        state = self.request(ds)
        if state.status == "failed":
            raise ProjectionError(f"the UMAP picture of {ds.name!r} failed: {state.error}")
        key = self._key(ds)
        tkey = key + "-" + hashlib.sha256(f"{points.shape}".encode() + points.data).hexdigest()
        with self._cond:
            if tkey in self._transforms:
                self._transforms.move_to_end(tkey)
                return self._transforms[tkey]
            if state.status == "pending":
                return None
            if key not in self._models:
                if key in self._refit_errors:
                    raise ProjectionError(f"refitting UMAP for {ds.name!r} failed: "
                                          f"{self._refit_errors[key]}")
                if key not in self._refits:
                    self._refits[key] = self._submit(self._fit_job, key, ds.X, None, True)
                return None
            future = self._running.get(tkey)
            if future is None:  # one job per set of points, however many pages ask
                future = self._running[tkey] = self._submit(self._transform_job, key, tkey, points)
        try:
            return future.result(timeout)
        except (FutureTimeout, CancelledError):
            return None
        except Exception as exc:
            raise ProjectionError(f"placing points in the picture of {ds.name!r} failed: "
                                  f"{type(exc).__name__}: {exc}") from exc

    def shutdown(self, timeout: float | None = 5.0) -> None:
        """Stop the worker; queued work is dropped and pending fits become failed."""
        with self._cond:
            self._closed = True
            for key, state in self._states.items():
                if state.status == "pending":
                    self._states[key] = ProjectionState("failed", error="the projector was shut down")
            self._cond.notify_all()
            thread = self._thread
            self._queue.put(None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def closed(self) -> bool:
        """True after :meth:`shutdown`."""
        return self._closed

    # --------------------------------------------------------------- internal
    def _key(self, ds: Dataset) -> str:
        return f"{ds.fingerprint()}-{self.config.key()}"

    def _submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Queue ``fn(*args)`` for the worker (caller holds ``_cond``)."""
        if self._closed:
            raise ProjectionError("the projector was shut down; use get_projector() for a new one")
        future: Future = Future()
        self._queue.put((future, fn, args))
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="ganmm-umap", daemon=True)
            self._thread.start()
        return future

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            future, fn, args = item
            if self._closed:
                future.cancel()
            elif future.set_running_or_notify_cancel():
                try:
                    with _UMAP_LOCK:  # one umap call at a time even across projectors
                        future.set_result(fn(*args))
                except BaseException as exc:  # the worker survives anything a job raises
                    future.set_exception(exc)

    def _fit_job(self, key: str, X: np.ndarray, path: Path | None, refit: bool) -> None:
        start = time.perf_counter()
        try:
            model, emb = _fit_umap(X, self.config)
            emb = _frozen(np.asarray(emb, dtype=np.float32))
            if emb.shape != (X.shape[0], 2) or not np.isfinite(emb).all():
                raise ValueError(f"the embedding has shape {emb.shape} or non-finite values")
        except BaseException as exc:  # whatever happens, the state must leave "pending"
            message = f"{type(exc).__name__}: {exc}"
            with self._cond:
                if refit:
                    self._refit_errors[key] = message
                    self._refits.pop(key, None)
                elif not self._closed:
                    self._states[key] = ProjectionState("failed", error=message)
                self._cond.notify_all()
            return
        seconds = time.perf_counter() - start
        if path is not None:
            _save(path, emb, seconds)  # before "ready", so a reader finds the file
        with self._cond:
            self._models[key] = model
            self._models.move_to_end(key)
            while len(self._models) > self._max_models:
                self._models.popitem(last=False)
            self._refits.pop(key, None)
            if not refit and not self._closed:
                self._states[key] = ProjectionState("ready", emb, seconds=seconds)
            self._cond.notify_all()

    def _transform_job(self, key: str, tkey: str, points: np.ndarray) -> np.ndarray | None:
        with self._cond:
            model = self._models.get(key)
        out = None
        try:
            if model is not None:  # else evicted since it was queued: the next call refits
                out = _frozen(np.asarray(model.transform(points), dtype=np.float32).reshape(-1, 2))
        finally:
            with self._cond:
                self._running.pop(tkey, None)
                if out is not None:
                    self._transforms[tkey] = out
                    while len(self._transforms) > self._max_transforms:
                        self._transforms.popitem(last=False)
        return out


_DEFAULT: Projector | None = None
_DEFAULT_LOCK = threading.Lock()


def get_projector() -> Projector:
    """The process-wide projector (created on first use, again after a shutdown)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None or _DEFAULT.closed:
            _DEFAULT = Projector()
        return _DEFAULT
