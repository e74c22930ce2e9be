"""The Classroom page's pieces: the session's lesson, its controls and its view.

The lesson (``ganmm.lesson``) steps on its own worker thread; the view is a
fragment that polls it, so nothing here waits for a step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from .. import plots
from ..lesson import LESSON_MODELS, MODEL_TITLES, Lesson, LessonConfig, LessonRunner, explain, lesson_points
from ..projection import get_projector
from . import common

TWO_D_SETS = ("moons", "circles", "spirals", "blobs", "aniso", "varied")
"""the built-in 2-D sets, in the order the page offers them"""
PROJECTED_SETS = ("digits", "mnist5k")
"""image sets the lesson runs on through their 2-D UMAP picture"""
POLL_SECONDS = 0.5
"""how often the view looks for a new step while one is computed or the lesson plays"""
SPEEDS = {"slow (3 s)": 3.0, "normal (1.5 s)": 1.5, "fast (as fast as it computes)": 0.0}
"""play speed: seconds between steps"""
DEFAULT_SPEED = "normal (1.5 s)"


@dataclass(frozen=True)
class LessonKey:
    """What a lesson is made of: changing any of it starts a new lesson."""

    dataset: str
    n_clusters: int
    seed: int
    init: str


def dataset_label(name: str) -> str:
    return f"{name} (UMAP view)" if name in PROJECTED_SETS else name


@dataclass(frozen=True)
class LessonData:
    """The points a lesson runs on, or why there are none yet."""

    status: str
    """"ready", "pending" (a UMAP picture is being computed) or "failed" """
    X: np.ndarray | None = None
    """(N, 2) standardised points, when ready"""
    y: np.ndarray | None = None
    """(N,) labels, when the set has them"""
    message: str = ""


def lesson_data(name: str) -> LessonData:
    """The set's 2-D points: as they are, or its UMAP picture (computed once, on
    the projector's thread, and cached on disk)."""
    ds = common.load_dataset(name)
    if ds.kind == "2d":
        return LessonData("ready", lesson_points(ds.X), ds.y)
    state = get_projector().request(ds)
    if state.status == "ready":
        return LessonData("ready", lesson_points(state.embedding), ds.y)
    if state.status == "failed":
        return LessonData("failed", message=f"The UMAP picture of {name} could not be computed: {state.error}")
    return LessonData("pending", message=(
        f"Computing the 2-D UMAP picture of {name} ({ds.n_samples:,} points), once: on a 2-core "
        "CPU about 20 s for digits and a minute for mnist5k when it is the server's first "
        "(UMAP compiles itself first), 5 s for digits after that. It is kept on disk for next time."))


def wait_for_picture(name: str) -> None:
    """Say that the picture is being computed; redraw the page once it is ready."""
    @st.fragment(run_every=1.0)
    def poll() -> None:
        found = lesson_data(name)
        if found.status != "pending":
            st.rerun()
        st.info(found.message)

    poll()


def runner_for(key: LessonKey, X: np.ndarray, y: np.ndarray | None) -> LessonRunner:
    """The session's runner for ``key``: the same one on every rerun, a new one
    (the old one closed) when the key changes or after a reset."""
    current = st.session_state.get("classroom-runner")
    if current is not None and st.session_state.get("classroom-key") == key:
        return current
    if current is not None:
        current.close()
    common.leave_a_core_for_the_pages()
    cfg = LessonConfig(n_clusters=key.n_clusters, seed=key.seed, init=key.init)
    runner = LessonRunner(Lesson(X, y, cfg))
    runner.step()  # iteration 0: the initial split and the GANs' pretraining
    st.session_state["classroom-runner"], st.session_state["classroom-key"] = runner, key
    _forget_view()
    return runner


def reset() -> None:
    """Forget the session's lesson: the next run starts it again from iteration 0."""
    current = st.session_state.pop("classroom-runner", None)
    if current is not None:
        current.close()
    st.session_state.pop("classroom-key", None)
    _forget_view()


def _forget_view() -> None:
    for key in ("cls-iter", "classroom-latest", "classroom-follow"):
        st.session_state.pop(key, None)


def view(runner: LessonRunner, *, teacher: bool) -> None:
    """Controls, status and panels. While a step is on its way only a small
    status fragment reruns (every POLL_SECONDS); when the step lands it redraws
    the page once, so the pictures are built once per step, not once per poll."""
    runner.touch()
    lesson = runner.lesson
    _controls(runner, teacher)
    if runner.error:
        st.error(f"The lesson stopped: {runner.error}")
    n = lesson.n_frames
    active = runner.busy or runner.playing
    st.fragment(_status, run_every=POLL_SECONDS if active else None)(runner, n, active)
    if n == 0:
        return
    shown = _iteration_slider(n)
    st.metric("Iteration", shown, label_visibility="collapsed" if teacher else "visible")
    _pictures(lesson, shown, teacher)
    _curves(lesson, shown, teacher)


def _status(runner: LessonRunner, drawn: int, polling: bool) -> None:
    """One line on where the lesson stands; redraws the page when a new frame
    has landed, or when the lesson stopped moving (so the timer stops)."""
    runner.touch()
    lesson = runner.lesson
    n = lesson.n_frames
    if n != drawn or (polling and not (runner.busy or runner.playing)):
        st.rerun()
    if n == 0:
        if runner.error is None:
            st.info("Preparing iteration 0: the initial split, and each GAN pretrained on its part "
                    "(a few seconds) ...")
        return
    parts = [f"{n - 1} iteration{'' if n == 2 else 's'} computed"]
    if runner.busy:
        parts.append("computing the next step ...")
    elif runner.playing:
        parts.append("playing")
    elif lesson.finished:
        parts.append(f"the lesson ends here (at most {lesson.config.max_iter} iterations)")
    if lesson.last_step_seconds is not None and n > 1:
        parts.append(f"last step {lesson.last_step_seconds:.2f} s")
    st.caption(" · ".join(parts))


def _controls(runner: LessonRunner, teacher: bool) -> None:
    cols = st.columns([1, 1, 2, 1] if not teacher else [1, 1, 1, 3])
    finished = runner.lesson.finished or runner.error is not None
    if cols[0].button("Step", type="primary", disabled=finished or runner.playing, key="cls-step",
                      help="Advance all three models by one EM iteration"):
        st.session_state["classroom-follow"] = True  # show the new step when it lands
        runner.step()
        st.rerun()  # the whole page, so that the view polls until the step lands
    if runner.playing:
        if cols[1].button("Pause", key="cls-pause"):
            runner.pause()
            st.rerun()
    elif cols[1].button("Play", disabled=finished, key="cls-play", help="Step again and again"):
        st.session_state["classroom-follow"] = True
        runner.play(SPEEDS[st.session_state.get("classroom-speed", DEFAULT_SPEED)])
        st.rerun()
    if teacher:
        if cols[2].button("Leave teacher mode", key="cls-leave"):
            st.session_state["classroom-teacher"] = False
            st.rerun()
        return
    speed = cols[2].select_slider("Speed", options=list(SPEEDS), key="cls-speed",
                                  value=st.session_state.get("classroom-speed", DEFAULT_SPEED))
    st.session_state["classroom-speed"] = speed  # kept while teacher mode hides the slider
    runner.set_delay(SPEEDS[speed])
    if cols[3].button("Reset", key="cls-reset", help="Start again from iteration 0 (same seed, same steps)"):
        reset()
        st.rerun()


def _iteration_slider(n: int) -> int:
    """The iteration shown: the latest, or an earlier one picked on the slider
    (it stays there while new steps arrive, until moved back to the end or a
    Step / Play asks to follow again)."""
    latest = n - 1
    if latest == 0:
        return 0
    before = st.session_state.get("classroom-latest")
    current = st.session_state.get("cls-iter")
    follow = st.session_state.pop("classroom-follow", False) or current is None \
        or before is None or current >= before
    if follow:
        st.session_state["cls-iter"] = latest
    st.session_state["classroom-latest"] = latest
    return int(st.slider("Go back to iteration", 0, latest, key="cls-iter"))


def _pictures(lesson: Lesson, shown: int, teacher: bool) -> None:
    k = lesson.config.n_clusters
    cols = st.columns(len(LESSON_MODELS))
    for col, name in zip(cols, LESSON_MODELS):
        frame = lesson.frame(name, shown)
        previous = lesson.frame(name, shown - 1) if shown > 0 else None
        fig = plots.lesson_picture(
            lesson.X, frame.assignments, k, xs=lesson.xs, ys=lesson.ys, regions=frame.regions,
            means=frame.means, covariances=frame.covariances, samples=frame.samples,
            title=MODEL_TITLES[name], height=560 if teacher else 400, contrast=teacher)
        col.plotly_chart(fig, width="stretch", key=f"cls-pic-{name}",
                         config={"displayModeBar": False})
        metrics = frame.metrics
        score = f" · ARI **{metrics['ari']:.3f}**, NMI **{metrics['nmi']:.3f}**" if metrics else ""
        col.markdown(f"<div class='cls-explain'>\n\n{explain(frame, lesson.config, previous)}{score}\n\n</div>",
                     unsafe_allow_html=True)


def _curves(lesson: Lesson, shown: int, teacher: bool) -> None:
    frames = {name: lesson.frames(name) for name in LESSON_MODELS}
    colors = {MODEL_TITLES[m]: plots.MODEL_COLORS[m] for m in LESSON_MODELS}
    height = 380 if teacher else 300

    def series(pick) -> dict:
        return {MODEL_TITLES[m]: ([f.iteration for f in fs[1:]], [pick(f) for f in fs[1:]])
                for m, fs in frames.items()}

    left, right = st.columns(2)
    left.plotly_chart(plots.lesson_curves(
        series(lambda f: f.changed), "Points that changed cluster per iteration",
        "fraction changed", colors=colors, percent=True, marker=shown, height=height, contrast=teacher),
        width="stretch", key="cls-changed")
    gan = frames["ganmm"]
    right.plotly_chart(plots.lesson_curves(
        {"σ_t (GANMM)": ([f.iteration for f in gan[1:]], [f.extras.get("sigma", 0) for f in gan[1:]])},
        "σ_t: points each part borrows", "points", colors={"σ_t (GANMM)": plots.MODEL_COLORS["ganmm"]},
        marker=shown, height=height, contrast=teacher), width="stretch", key="cls-sigma")
    if lesson.y is None:
        return
    left, right = st.columns(2)
    for col, metric, label in ((left, "ari", "ARI"), (right, "nmi", "NMI")):
        col.plotly_chart(plots.lesson_curves(
            {MODEL_TITLES[m]: ([f.iteration for f in fs], [f.metrics.get(metric) for f in fs])
             for m, fs in frames.items()},
            f"{label} against the labels", label, colors=colors, marker=shown, height=height,
            contrast=teacher), width="stretch", key=f"cls-{metric}")


TEACHER_CSS = """
<style>
section[data-testid="stSidebar"], div[data-testid="stSidebarCollapsedControl"],
header[data-testid="stHeader"] { display: none; }
.block-container { padding-top: 1rem; max-width: 100%; }
.cls-explain, .cls-explain p { font-size: 1.3rem; line-height: 1.5; color: #000; }
</style>
"""
"""teacher mode: no sidebar or header, wide, large explanation text"""
