"""The classroom's lesson: GMM-EM, GANMM and GANMM-EM stepped side by side.

A :class:`Lesson` holds one 2-D point set and the three models, built with the
same K, seed and initial split. ``step()`` advances each model by one EM
iteration and keeps a :class:`Frame` per model per iteration: the assignments,
the numbers the explanation quotes, and the model's own picture (GMM's means
and covariances; each generator's sample cloud; the argmax of the classifier,
or of the critics, over a grid of the plane). Every frame is kept, so a view
can go back to any iteration already computed.

:class:`LessonRunner` does the steps on a worker thread (one step at a time, in
order), so a page that asks for a step or plays the lesson never waits for
one. The same points, config and seed give the same frames every time.

No Streamlit here: the Classroom page (``pages/4_Classroom.py``) draws frames.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ConfigError, DataError

LESSON_MODELS = ("gmm", "ganmm", "ganmm-em")
"""the three models of a lesson, in the order the page shows them"""

MODEL_TITLES = {"gmm": "GMM (EM)", "ganmm": "GANMM (ε-EM)", "ganmm-em": "GANMM-EM (hard EM)"}


@dataclass(frozen=True)
class LessonConfig:
    """What a lesson runs: the same K, seed and initial split for all three models."""

    n_clusters: int = 2
    """number of clusters K"""
    seed: int = 0
    """seed of every model: the same seed shows the same sequence of iterations"""
    init: str = "kmeans"
    """how all three models start: "kmeans" (a k-means split; GMM's comes from
    scikit-learn's own k-means) or "random" (equal random parts for the GANs,
    random responsibilities for GMM)"""
    hidden: int = 128
    """width of the GANs' and the classifier's layers (128 keeps a step of all
    three models under a second on a 2-core CPU and is plenty for 2-D points)"""
    grid: int = 60
    """decision regions are evaluated on a grid x grid lattice over the data"""
    n_samples: int = 150
    """generated points drawn per generator for the sample clouds (fixed noise)"""
    max_iter: int = 200
    """cap on EM iterations; the lesson ends there"""

    def validate(self) -> None:
        if self.n_clusters < 2:  # one cluster has no boundary to move, nothing to borrow
            raise ConfigError(f"a lesson needs at least 2 clusters, got {self.n_clusters}")
        if self.init not in ("kmeans", "random"):
            raise ConfigError(f"init must be kmeans or random; got {self.init!r}")
        for name in ("hidden", "grid", "n_samples", "max_iter"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")


LESSON_GANS = dict(n_epoch=30, classifier_steps=50, sigma_decay=0.7, samples_every=1, time_budget=None)
"""The GAN mixtures' steps in a lesson: longer EM iterations than the default
preset's (30 generator steps each, sigma_t gone after about 15), so that every
click of Step shows a visible move, and sample clouds in every frame."""


@dataclass(frozen=True)
class Frame:
    """One model at one iteration, as the classroom shows it."""

    model: str
    """"gmm", "ganmm" or "ganmm-em" """
    iteration: int
    """0 is the initial split (and the GANs' pretraining); 1, 2, ... EM iterations"""
    assignments: np.ndarray
    """(N,) int16: cluster of each point"""
    sizes: np.ndarray
    """(K,) int: points per cluster"""
    moved: int
    """points whose cluster changed since the previous iteration (all at iteration 0)"""
    changed: float
    """moved / N"""
    metrics: dict[str, float]
    """ARI, NMI, ... against the labels; empty without labels"""
    extras: dict[str, Any]
    """scalars of the step: log_likelihood (GMM); sigma, classifier_acc, gan_steps (GANMM)"""
    seconds: float
    """how long this model's step took"""
    means: np.ndarray | None = None
    """(K, 2) GMM means"""
    covariances: np.ndarray | None = None
    """(K, 2, 2) GMM covariances"""
    samples: np.ndarray | None = None
    """(K, S, 2) each generator's sample cloud (GAN mixtures)"""
    regions: np.ndarray | None = None
    """(grid, grid) int8: argmax of the classifier (GANMM) or critics (GANMM-EM);
    row r is ``Lesson.ys[r]``, column c is ``Lesson.xs[c]``"""


@dataclass
class _Stream:
    model: Any
    stream: Any
    frames: list[Frame] = field(default_factory=list)


def lesson_points(X: np.ndarray) -> np.ndarray:
    """(N, 2) float32 points scaled to zero mean and unit variance per axis
    (a UMAP picture comes in arbitrary units)."""
    P = np.asarray(X, dtype=np.float64)
    if P.ndim != 2 or P.shape[1] != 2:
        raise DataError(f"a lesson needs 2-D points (N, 2); got shape {P.shape}")
    if not np.isfinite(P).all():
        raise DataError("the points hold NaN or infinite values")
    std = P.std(axis=0)
    return ((P - P.mean(axis=0)) / np.where(std > 0, std, 1.0)).astype(np.float32)


class Lesson:
    """Three models on the same 2-D points, stepped together (see the module docstring)."""

    def __init__(self, X: np.ndarray, y: np.ndarray | None = None,
                 config: LessonConfig | None = None) -> None:
        from .models import make_model

        self.config = cfg = config or LessonConfig()
        cfg.validate()
        self.X = np.ascontiguousarray(X, dtype=np.float32)
        if self.X.ndim != 2 or self.X.shape[1] != 2:
            raise DataError(f"a lesson needs 2-D points (N, 2); got shape {self.X.shape}")
        if len(self.X) < cfg.n_clusters:
            raise DataError(f"{len(self.X)} points cannot make {cfg.n_clusters} clusters")
        self.y = None if y is None else np.asarray(y)
        lo, hi = self.X.min(axis=0), self.X.max(axis=0)
        pad = 0.08 * (hi - lo) + 1e-3
        self.xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], cfg.grid, dtype=np.float32)
        self.ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], cfg.grid, dtype=np.float32)
        gx, gy = np.meshgrid(self.xs, self.ys)  # (grid, grid): row = y, column = x
        self._grid = np.column_stack([gx.ravel(), gy.ravel()])  # (grid*grid, 2)
        # never "converged": a model that stops changing keeps stepping (and shows it)
        common = dict(n_clusters=cfg.n_clusters, seed=cfg.seed, max_iter=cfg.max_iter,
                      patience=cfg.max_iter + 1)
        gans = dict(init=cfg.init, hidden=cfg.hidden, n_snapshot_samples=cfg.n_samples, **LESSON_GANS)
        self._streams: dict[str, _Stream] = {}
        for name in LESSON_MODELS:
            model = make_model(name, **common, init=cfg.init) if name == "gmm" \
                else make_model(name, **common, **gans)
            self._streams[name] = _Stream(model, model.fit_iter(self.X, self.y))
        self.finished = False
        self.last_step_seconds: float | None = None
        self._pool = ThreadPoolExecutor(len(LESSON_MODELS), thread_name_prefix="ganmm-lesson-model")

    def close(self) -> None:
        """Let the model threads go (a closed lesson cannot step again)."""
        self.finished = True
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ reading
    @property
    def n_frames(self) -> int:
        """Iterations computed for all three models (frames 0 .. n_frames-1 exist)."""
        return min(len(s.frames) for s in self._streams.values())

    def frames(self, model: str) -> list[Frame]:
        """Every frame of ``model`` computed so far (a copy of the list)."""
        return list(self._streams[model].frames[: self.n_frames])

    def frame(self, model: str, iteration: int) -> Frame:
        return self._streams[model].frames[iteration]

    # ------------------------------------------------------------------ stepping
    def step(self) -> bool:
        """Advance all three models by one iteration; False once the lesson has
        reached ``max_iter`` (nothing is computed then). Not thread-safe: one
        caller at a time (:class:`LessonRunner` sees to that).

        The models share nothing, so they step at the same time on threads of
        their own (torch and scikit-learn release the GIL): a step takes about
        as long as its slowest model, and each model's results are the same as
        when stepped alone."""
        if self.finished:
            return False
        start = time.perf_counter()
        futures = {name: self._pool.submit(self._advance, name) for name in self._streams}
        results = {name: fut.result() for name, fut in futures.items()}  # re-raises a failure
        if any(frame is None for frame in results.values()):
            self.finished = True
            return False
        for name, frame in results.items():
            self._streams[name].frames.append(frame)
        self.last_step_seconds = time.perf_counter() - start
        if self.n_frames > self.config.max_iter:
            self.finished = True
        return True

    def _advance(self, name: str) -> Frame | None:
        s = self._streams[name]
        t = time.perf_counter()
        try:
            snap = next(s.stream)
        except StopIteration:
            return None
        return self._frame(name, s.model, snap, time.perf_counter() - t)

    def _frame(self, name: str, model: Any, snap: Any, seconds: float) -> Frame:
        a = snap.assignments.astype(np.int16)
        previous = self._streams[name].frames[-1].assignments if self._streams[name].frames else None
        moved = len(a) if previous is None else int(np.count_nonzero(a != previous))
        extras = {k: v for k, v in snap.extras.items() if np.isscalar(v)}
        picture: dict[str, Any] = {}
        if name == "gmm":
            picture["means"] = np.asarray(snap.extras["means"], dtype=np.float32)[:, :2]
            picture["covariances"] = np.asarray(snap.extras["covariances"], dtype=np.float32)
        else:
            picture["samples"] = np.asarray(snap.samples, dtype=np.float32)
            seconds_before = time.perf_counter()
            post = model.predict_proba(self._grid)  # (grid*grid, K)
            picture["regions"] = post.argmax(axis=1).astype(np.int8).reshape(len(self.ys), len(self.xs))
            seconds += time.perf_counter() - seconds_before
        return Frame(model=name, iteration=snap.iteration, assignments=a,
                     sizes=np.asarray(snap.sizes), moved=moved, changed=moved / len(a),
                     metrics=dict(snap.metrics), extras=extras, seconds=seconds, **picture)


# ----------------------------------------------------------------- explanations
def _sizes(frame: Frame) -> str:
    return " / ".join(f"{int(s):,}" for s in frame.sizes)


def _moved(frame: Frame) -> str:
    if frame.moved == 0:
        return "**no point moved**"
    return f"**{frame.moved:,} point{'s' if frame.moved != 1 else ''} moved** ({frame.changed:.1%})"


def explain(frame: Frame, config: LessonConfig, previous: Frame | None = None) -> str:
    """What this iteration's E-step and M-step did, with its numbers (markdown)."""
    split = "a k-means split" if config.init == "kmeans" else "a random split into equal parts"
    sizes = f"Cluster sizes: {_sizes(frame)}."
    gmm_start = "a k-means split" if config.init == "kmeans" else "random responsibilities"
    if frame.model == "gmm":
        ll = frame.extras.get("log_likelihood")
        gain = "" if previous is None or ll is None else \
            f" ({ll - previous.extras.get('log_likelihood', ll):+.4f})"
        ll_text = "" if ll is None else f" Log-likelihood per point: **{ll:.4f}**{gain}."
        if frame.iteration == 0:
            return (f"**Start.** The Gaussians start from {gmm_start} and take one EM step: each "
                    f"gets a mean, a covariance and a weight.{ll_text} {sizes}")
        return (f"**E-step.** Each point's responsibility under every Gaussian; by the most "
                f"likely one, {_moved(frame)}. **M-step.** Means, covariances and weights "
                f"are refit from the responsibilities.{ll_text} {sizes}")
    steps = frame.extras.get("gan_steps")
    if frame.iteration == 0:
        return (f"**Start.** {split.capitalize()} gives each GAN its part; every GAN is "
                f"pretrained on it ({steps} generator steps). {sizes}")
    if frame.model == "ganmm":
        acc = frame.extras.get("classifier_acc")
        sigma = int(frame.extras.get("sigma", 0))
        borrow = (f"**ε-EM.** Each part borrows **σ_t = {sigma}** points of the others that h "
                  f"finds most like it, so points near a boundary can change sides."
                  if sigma else "**ε-EM.** σ_t has reached 0: from here on it is plain EM.")
        acc_text = "" if acc is None else f" (accuracy **{acc:.0%}** on generated points)"
        return (f"**E-step.** A classifier h learns to tell the generators apart on their "
                f"own samples{acc_text}; each point goes to argmax h(x): {_moved(frame)}. "
                f"{borrow} **M-step.** Each GAN trains on its part (generator steps so far: "
                f"{steps}). {sizes}")
    stall = " Nothing moves: hard EM with a capable model has stalled." if frame.moved == 0 else ""
    return (f"**E-step.** Each point goes to the critic that scores it highest, each critic's "
            f"scores measured against its scores of all the points (no classifier, "
            f"no borrowing): {_moved(frame)}.{stall} **M-step.** Each GAN trains on its own "
            f"part only (generator steps so far: {steps}). {sizes}")


# ----------------------------------------------------------------------- runner
class LessonRunner:
    """Steps a lesson on a worker thread: ``step()`` and ``play()`` return at once.

    The thread lives only while there is work (pending steps, or playing), and
    playing pauses by itself when no one has looked (``touch()``) for
    ``idle_pause`` seconds, so a closed browser tab leaves nothing running.
    """

    def __init__(self, lesson: Lesson, *, idle_pause: float = 120.0) -> None:
        self.lesson = lesson
        self.idle_pause = idle_pause
        self._cond = threading.Condition()
        self._pending = 0
        self._playing = False
        self._delay = 1.0
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._seen = time.monotonic()
        self.error: str | None = None
        """what went wrong in a step (the lesson stops there), else None"""
        self.traceback: str | None = None

    # ----------------------------------------------------------------- controls
    def step(self, n: int = 1) -> None:
        """Queue ``n`` more steps."""
        with self._cond:
            if self._closed or self.lesson.finished or self.error:
                return
            self._pending += max(int(n), 0)
            self._wake()

    def play(self, delay: float) -> None:
        """Step every ``delay`` seconds (or as fast as steps take, if slower)."""
        if not (delay >= 0):
            raise ConfigError(f"the delay between steps must be 0 or more seconds, got {delay}")
        with self._cond:
            if self._closed or self.lesson.finished or self.error:
                return
            self._playing, self._delay = True, float(delay)
            self._seen = time.monotonic()
            self._wake()

    def set_delay(self, delay: float) -> None:
        with self._cond:
            self._delay = max(float(delay), 0.0)
            self._cond.notify_all()

    def pause(self) -> None:
        """Stop playing after the step in progress; queued steps are dropped."""
        with self._cond:
            self._playing, self._pending = False, 0
            self._cond.notify_all()

    def close(self) -> None:
        """Stop for good (the step in progress finishes) and free the lesson's threads."""
        with self._cond:
            self._closed, self._playing, self._pending = True, False, 0
            self._cond.notify_all()
            busy = self._busy
        if not busy:  # else the worker does it after its step
            self._close_lesson()

    def _close_lesson(self) -> None:
        close = getattr(self.lesson, "close", None)
        if close is not None:
            close()

    def touch(self) -> None:
        """Someone is watching: keep playing."""
        self._seen = time.monotonic()

    # ------------------------------------------------------------------ reading
    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def busy(self) -> bool:
        """True while a step runs or is queued."""
        return self._busy or self._pending > 0

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no step runs or is queued (playing aside); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._busy and self._pending == 0, timeout)

    # ------------------------------------------------------------------ worker
    def _wake(self) -> None:
        self._cond.notify_all()
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, name="ganmm-lesson", daemon=True)
            self._thread.start()

    def _work(self) -> None:
        next_at = time.monotonic()
        while True:
            with self._cond:
                while True:
                    if self._closed or (self._pending == 0 and not self._playing):
                        self._thread = None if self._thread is threading.current_thread() else self._thread
                        self._cond.notify_all()
                        if self._closed:
                            self._close_lesson()
                        return
                    if self._playing and time.monotonic() - self._seen > self.idle_pause:
                        self._playing = False  # nobody watching: pause
                        continue
                    if self._pending > 0:
                        self._pending -= 1
                        break
                    wait = next_at - time.monotonic()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                self._busy = True
            try:
                more = self.lesson.step()
            except Exception as exc:  # shown on the page; the lesson stops here
                more = False
                self.error = f"{type(exc).__name__}: {exc}"
                self.traceback = traceback.format_exc()
            with self._cond:
                self._busy = False
                if not more:
                    self._playing, self._pending = False, 0
                next_at = time.monotonic() + self._delay
                self._cond.notify_all()
