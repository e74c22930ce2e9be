"""What every clustering model shares: the Snapshot record and the EM driver.

A model implements two steps, ``_initialize(X)`` (iteration 0: the initial
partition) and ``_iterate()`` (one EM iteration); :meth:`ClusterModel.fit_iter`
turns them into a stream of :class:`Snapshot` records and owns what all models
have in common: the time budget, the iteration cap, convergence, metrics.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from .errors import ConfigError, DataError, GanmmError
from .metrics import all_metrics


@dataclass(frozen=True)
class Snapshot:
    """One EM iteration of one model, as plain numbers and numpy arrays."""

    iteration: int
    """0 is the initial partition; 1, 2, ... are EM iterations"""
    elapsed: float
    """seconds since ``fit_iter`` started"""
    assignments: np.ndarray
    """(N,) int: the cluster of each point"""
    sizes: np.ndarray
    """(K,) int: points per cluster"""
    changed: float
    """fraction of points whose cluster changed since the previous iteration"""
    metrics: dict[str, float]
    """purity, ari, nmi, acc, rand against the labels; empty without labels"""
    losses: dict[str, float]
    """model-specific training losses of this iteration (may be empty)"""
    samples: np.ndarray | None
    """(K, S, d): a few points drawn from each component, in the model's
    (scaled) feature units; None for models that cannot sample"""
    extras: dict[str, Any] = field(default_factory=dict)
    """model-specific values: GMM means/covariances/log-likelihood, GANMM's
    sigma_t and classifier accuracy, ..."""
    converged: bool = False
    """True on the iteration where the convergence test passed"""


def _light(snap: Snapshot) -> Snapshot:
    """``snap`` as ``history_`` keeps it once a newer one exists: assignments in the
    smallest integer type that holds them, no generated samples."""
    a = snap.assignments
    small = np.int16 if a.size == 0 or int(a.max()) < 2 ** 15 else np.int32
    return dataclasses.replace(snap, assignments=a.astype(small), samples=None)


@dataclass(frozen=True)
class StepResult:
    """What a model's step hands back to the driver."""

    assignments: np.ndarray
    losses: dict[str, float] = field(default_factory=dict)
    samples: np.ndarray | None = None
    extras: dict[str, Any] = field(default_factory=dict)


MAX_SEED = 2**32 - 1
"""the largest seed every model takes (numpy's and scikit-learn's limit)"""

_TYPE_WORDS = {"int": "a whole number", "float": "a finite number", "str": "a string", "bool": "True or False"}


def _has_type(value: Any, kind: str) -> bool:
    if kind == "bool":
        return isinstance(value, (bool, np.bool_))
    if isinstance(value, (bool, np.bool_)):  # True is an int to Python, not a count here
        return False
    if kind == "int":
        return isinstance(value, (int, np.integer))
    if kind == "float":
        return isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value)
    return isinstance(value, str)


def check_types(config: Any) -> None:
    """Raise ConfigError unless every setting of ``config`` (a dataclass) whose
    annotation is ``int``, ``float``, ``str`` or ``bool`` (or one of them
    ``| None``) holds a value of that type: ``n_clusters=2.5`` or ``True``, a
    ``seed`` of 1.5 or an ``lr`` of NaN would otherwise fail deep in a fit, or
    not at all (a NaN learning rate trains to NaN)."""
    for f in dataclasses.fields(config):
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        optional = kind.endswith("| None")
        kind = kind.removesuffix("| None").strip()
        value = getattr(config, f.name)
        if kind not in _TYPE_WORDS or (optional and value is None):
            continue
        if not _has_type(value, kind):
            raise ConfigError(f"{f.name} must be {_TYPE_WORDS[kind]}"
                              f"{' (or None)' if optional else ''}, got {value!r}")


class NotFittedError(GanmmError, ValueError, AttributeError):
    """A model was asked to predict before it was fitted."""


def features(X: Any) -> np.ndarray:
    """``X`` as the models take it: a C-contiguous (rows, features) float32
    array of finite numbers. Raises DataError, saying what to change, for
    anything else, and for float64 (or large integer) features that float32
    would flatten: all the models compute in float32, and a feature such as a
    time stamp in seconds (1.7e9, a few seconds apart) would become one
    value."""
    arr = np.asarray(X)
    if arr.dtype.kind == "O":  # e.g. pandas' nullable Float64 columns: numbers in objects
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise DataError("the data hold values that are not numbers (or pandas' missing values, "
                            "pd.NA); convert them to numbers and fill or remove the missing ones") from None
    if arr.dtype.kind not in "biuf":
        raise DataError(f"the data hold {arr.dtype} values, not numbers; convert them to numbers")
    if arr.ndim != 2:
        raise DataError(f"expected a 2-D array of shape (rows, features), got shape {arr.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        X32 = np.ascontiguousarray(arr, dtype=np.float32)
    finite = np.isfinite(X32).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        what = ("values beyond float32's range (about 3.4e38); scale them down"
                if np.isfinite(arr[bad[0]]).all() else "NaN or infinite values; remove or fill them")
        rows = f"{bad.size:,} rows (the first is row {bad[0]}) hold" if bad.size > 1 else f"row {bad[0]} holds"
        raise DataError(f"{rows} {what}")
    if arr.size and (arr.dtype.itemsize > 4 or arr.dtype.kind in "iu" and arr.dtype.itemsize == 4):
        # a variation float64 itself barely resolves (sums of shares: 1 +- 2e-16) is rounding,
        # not data: only a spread above a millionth of float32's resolution counts
        spread = np.ptp(arr, axis=0).astype(np.float64)
        size = np.abs(arr).max(axis=0).astype(np.float64)
        flat = np.flatnonzero((spread > 1e-13 * size) & (np.ptp(X32, axis=0) == 0))
        if flat.size:
            j = int(flat[0])
            raise DataError(
                f"feature {j} (values near {float(arr[0, j]):.7g}) varies only beyond float32's 7 "
                "significant digits, and the models compute in float32; subtract each feature's "
                "mean or standardise the features first (ganmm.data.from_arrays does)")
    return X32


@dataclass(frozen=True)
class BaseConfig:
    """Settings every model has."""

    n_clusters: int = 10
    """number of clusters K"""
    max_iter: int = 50
    """cap on EM iterations (iteration 0, the initial split, not counted)"""
    time_budget: float | None = None
    """stop after the iteration during which this many seconds passed (None: no limit)"""
    tol: float = 0.001
    """convergence: at most this fraction of points change cluster (below 0: never) ..."""
    patience: int = 3
    """... for this many iterations in a row"""
    seed: int = 0
    """seed of every random choice; the same seed on CPU gives the same result"""

    def validate(self) -> None:
        check_types(self)
        if self.n_clusters < 1:
            raise ConfigError(f"n_clusters must be at least 1, got {self.n_clusters}")
        if self.max_iter < 0:
            raise ConfigError(f"max_iter must be 0 or more, got {self.max_iter}")
        if self.time_budget is not None and not (math.isfinite(self.time_budget) and self.time_budget > 0):
            raise ConfigError(f"time_budget must be positive seconds, got {self.time_budget}")
        if self.patience < 1:
            raise ConfigError(f"patience must be at least 1, got {self.patience}")
        if not 0 <= self.seed <= MAX_SEED:  # numpy and scikit-learn take no other seeds
            raise ConfigError(f"seed must lie in 0..{MAX_SEED}, got {self.seed}")


class ClusterModel:
    """Estimator contract shared by every model.

    ``fit(X) -> self``, ``predict(X)``, ``predict_proba(X)``; learned state has a
    trailing underscore: ``labels_``, ``n_iter_``, ``history_`` (the snapshots:
    the last one whole, the earlier ones with compact assignments and without
    their generated samples), ``converged_``.
    """

    config_class: type[BaseConfig] = BaseConfig
    name: str = "model"

    def __init__(self, config: BaseConfig | None = None, **overrides: Any):
        config = config if config is not None else self.config_class()
        try:
            self.config = dataclasses.replace(config, **overrides)
        except TypeError as exc:
            raise ConfigError(f"{type(self).__name__}: {exc}") from None
        self.config.validate()

    # --- what a model implements -------------------------------------------------
    def _initialize(self, X: np.ndarray) -> StepResult:
        raise NotImplementedError

    def _iterate(self, iteration: int) -> StepResult:
        raise NotImplementedError

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(N, K) cluster probabilities of checked rows (float32, the fitted width)."""
        raise NotImplementedError

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(N, K): the probability of each cluster for each row of ``X`` (one-hot
        for models without a soft posterior). The model must have been fitted
        (or be fitting: any iteration done will do) on data of the same width."""
        width = getattr(self, "n_features_in_", None)
        if width is None:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X) "
                                 "(or take an iteration of fit_iter(X)) before predicting")
        X = features(X)
        if X.shape[1] != width:
            raise DataError(f"the rows have {X.shape[1]} features but the model was fitted on "
                            f"{width}; pass rows of the fitted data's space")
        if len(X) == 0:
            return np.zeros((0, self.config.n_clusters), dtype=np.float32)
        return self._predict_proba(X)

    # --- the driver -----------------------------------------------------------------
    def fit_iter(self, X: np.ndarray, y: np.ndarray | None = None) -> Iterator[Snapshot]:
        """Fit, yielding one :class:`Snapshot` per EM iteration (0 = initial split).

        ``y`` is used for the snapshot metrics only, never for training.
        """
        from .data import encode_labels  # the data module reads files (pandas): imported when fitting

        cfg = self.config
        X = features(X)
        self.__dict__.pop("n_features_in_", None)  # a refit predicts once its first step is done
        if len(X) < cfg.n_clusters:
            raise DataError(
                f"the data has {len(X)} rows but {cfg.n_clusters} clusters were asked for; "
                f"choose at most {len(X)} clusters or add rows")
        if y is not None:
            # raw labels (strings, floats, -1, ids in the millions) as codes 0..C-1,
            # checked before any training: the metrics count classes by code
            if len(y) != len(X):
                raise DataError(f"{len(y)} labels for {len(X)} rows; give one label per row")
            y = encode_labels(np.asarray(y))[0]
        start = time.perf_counter()
        # models with long steps check this (via _past_deadline) to cut a step short
        self._deadline = None if cfg.time_budget is None else start + cfg.time_budget
        self.history_: list[Snapshot] = []
        self.converged_ = False
        previous: np.ndarray | None = None
        calm = 0
        for it in range(cfg.max_iter + 1):
            with self._step_scope():
                step = self._initialize(X) if it == 0 else self._iterate(it)
            self.n_features_in_ = X.shape[1]  # set once a model can predict
            a = np.asarray(step.assignments, dtype=np.int64)
            changed = 1.0 if previous is None else float(np.mean(a != previous))
            calm = calm + 1 if (previous is not None and changed <= cfg.tol) else 0
            converged = calm >= cfg.patience
            last = converged or it == cfg.max_iter or self._past_deadline()
            samples = step.samples
            if samples is None and last:
                samples = self._last_samples()  # the final picture always has samples
            elapsed = time.perf_counter() - start
            snap = Snapshot(
                iteration=it, elapsed=elapsed, assignments=a,
                sizes=np.bincount(a, minlength=cfg.n_clusters),
                changed=changed,
                metrics=all_metrics(y, a) if y is not None else {},
                losses=step.losses, samples=samples, extras=step.extras,
                converged=converged,
            )
            self.labels_ = a
            self.n_iter_ = it
            if self.history_:  # earlier snapshots are kept light: a run may make thousands
                self.history_[-1] = _light(self.history_[-1])
            self.history_.append(snap)
            yield snap
            previous = a
            if converged:
                self.converged_ = True
            # a stop asked for while the snapshot was stored ends the run here; a
            # deadline passed meanwhile ends it after the next iteration (whose
            # steps see it and stop early), so the last snapshot is past the budget
            if last or getattr(self, "_stop_requested", False):
                break

    def _step_scope(self) -> contextlib.AbstractContextManager:
        """Context each step runs in (models that change thread-wide settings
        for their steps, and put them back after, override this)."""
        return contextlib.nullcontext()

    def _last_samples(self) -> np.ndarray | None:
        """Samples for the last snapshot of a fit, when its step left them out
        (models that sample only every few iterations override this)."""
        return None

    def request_stop(self) -> None:
        """End the running fit early, or the next one if none runs yet: long steps
        (GANMM's pretraining and M-steps) stop within one GAN step and the
        iteration stream ends after the current snapshot. Safe from another
        thread; a stopped model is not meant to be fitted again."""
        self._stop_requested = True

    def _past_deadline(self) -> bool:
        """True once the time budget is spent or a stop was requested."""
        if getattr(self, "_stop_requested", False):
            return True
        deadline = getattr(self, "_deadline", None)
        return deadline is not None and time.perf_counter() >= deadline

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> "ClusterModel":
        """Run :meth:`fit_iter` to the end; ``y`` only fills the metrics."""
        for _ in self.fit_iter(X, y):
            pass
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The most probable cluster of each row of ``X``."""
        return np.asarray(self.predict_proba(X)).argmax(axis=1)
