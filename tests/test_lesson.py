"""The classroom's lesson: three models stepped together, reproducibly, on a worker thread."""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest

from ganmm import data
from ganmm.errors import ConfigError, DataError
from ganmm.lesson import LESSON_MODELS, Lesson, LessonConfig, LessonRunner, explain, lesson_points

SMALL = LessonConfig(n_clusters=2, seed=3, hidden=32, grid=12, n_samples=10, max_iter=5)


@pytest.fixture(scope="module")
def moons():
    ds = data.load_builtin("moons")
    keep = np.random.default_rng(0).choice(ds.n_samples, 300, replace=False)
    return lesson_points(ds.X[keep]), ds.y[keep]


def stepped(points, labels, config, n):
    lesson = Lesson(points, labels, config)
    for _ in range(n + 1):  # iteration 0, then n EM iterations
        assert lesson.step()
    return lesson


def test_same_seed_gives_the_same_assignments_after_three_steps(moons):
    X, y = moons
    a, b = stepped(X, y, SMALL, 3), stepped(X, y, SMALL, 3)
    assert a.n_frames == b.n_frames == 4
    for name in LESSON_MODELS:
        for fa, fb in zip(a.frames(name), b.frames(name)):
            np.testing.assert_array_equal(fa.assignments, fb.assignments)
            if fa.regions is not None:
                np.testing.assert_array_equal(fa.regions, fb.regions)
    # and the seed matters: another seed trains other GANs
    c = stepped(X, y, LessonConfig(**{**SMALL.__dict__, "seed": 4}), 3)
    assert any(not np.array_equal(a.frame(m, 3).assignments, c.frame(m, 3).assignments)
               for m in ("ganmm", "ganmm-em"))


def test_frames_hold_each_models_picture_and_true_counts(moons):
    X, y = moons
    lesson = stepped(X, y, SMALL, 2)
    for name in LESSON_MODELS:
        frames = lesson.frames(name)
        assert [f.iteration for f in frames] == [0, 1, 2]
        for before, frame in zip(frames, frames[1:]):
            assert frame.moved == int(np.count_nonzero(frame.assignments != before.assignments))
            assert frame.changed == pytest.approx(frame.moved / len(X))
            assert frame.sizes.sum() == len(X)
            assert np.array_equal(frame.sizes, np.bincount(frame.assignments, minlength=2))
            assert set(frame.metrics) >= {"ari", "nmi"}
    gmm, gan, hard = (lesson.frame(m, 2) for m in LESSON_MODELS)
    assert gmm.means.shape == (2, 2) and gmm.covariances.shape == (2, 2, 2) and gmm.regions is None
    for frame in (gan, hard):
        assert frame.samples.shape == (2, 10, 2)
        assert frame.regions.shape == (12, 12) and set(np.unique(frame.regions)) <= {0, 1}
    assert gan.extras["sigma"] == int(0.2 * 300 / 2 * 0.7)  # sigma_2 of the schedule
    assert 0.0 <= gan.extras["classifier_acc"] <= 1.0
    assert np.isfinite(gmm.extras["log_likelihood"])


def test_regions_are_the_argmax_of_the_models_posterior_over_the_grid(moons):
    X, y = moons
    lesson = stepped(X, y, SMALL, 1)
    grid = np.array([[x, y_] for y_ in lesson.ys for x in lesson.xs], dtype=np.float32)
    for name in ("ganmm", "ganmm-em"):
        model = lesson._streams[name].model
        expected = model.predict_proba(grid).argmax(1).reshape(12, 12)
        np.testing.assert_array_equal(lesson.frame(name, 1).regions, expected)


def test_explanations_quote_the_iterations_numbers(moons):
    X, y = moons
    lesson = stepped(X, y, SMALL, 2)
    gmm, gan, hard = (lesson.frame(m, 2) for m in LESSON_MODELS)
    text = explain(gan, SMALL, lesson.frame("ganmm", 1))
    assert f"σ_t = {gan.extras['sigma']}" in text
    assert f"{gan.extras['classifier_acc']:.0%}" in text
    assert " / ".join(f"{s:,}" for s in gan.sizes) in text
    moved = "no point moved" if gan.moved == 0 else f"{gan.moved:,} point{'s' * (gan.moved != 1)} moved"
    assert moved in text
    one = dataclasses.replace(gan, moved=1, changed=0.001)
    assert "**1 point moved** (0.1%)" in explain(one, SMALL, lesson.frame("ganmm", 1))
    text = explain(gmm, SMALL, lesson.frame("gmm", 1))
    assert f"{gmm.extras['log_likelihood']:.4f}" in text and "M-step" in text
    assert "critic" in explain(hard, SMALL, lesson.frame("ganmm-em", 1))
    assert "Start." in explain(lesson.frame("ganmm", 0), SMALL)
    # sigma_t reaching 0 is said in words
    zero = type(gan)(**{**gan.__dict__, "extras": {**gan.extras, "sigma": 0}})
    assert "plain EM" in explain(zero, SMALL)


def test_the_lesson_ends_at_its_cap(moons):
    X, y = moons
    lesson = Lesson(X[:60], y[:60], LessonConfig(**{**SMALL.__dict__, "max_iter": 2}))
    assert [lesson.step() for _ in range(4)] == [True, True, True, False]
    assert lesson.finished and lesson.n_frames == 3


def test_bad_points_and_settings_are_refused_clearly():
    with pytest.raises(DataError, match="2-D points"):
        lesson_points(np.zeros((10, 3)))
    with pytest.raises(DataError, match="NaN"):
        lesson_points(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(DataError, match="cannot make 5 clusters"):
        Lesson(np.zeros((3, 2)), config=LessonConfig(n_clusters=5))
    with pytest.raises(ConfigError, match="init"):
        Lesson(np.zeros((30, 2)), config=LessonConfig(init="spectral"))
    with pytest.raises(ConfigError, match="at least 2 clusters"):  # one part borrows from no other
        Lesson(np.zeros((30, 2)), config=LessonConfig(n_clusters=1))
    scaled = lesson_points(np.array([[0.0, 10.0], [2.0, 30.0], [4.0, 20.0]]))
    np.testing.assert_allclose(scaled.mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(scaled.std(0), 1, atol=1e-6)


class _SlowLesson:
    """A stand-in lesson whose steps take a known time (or fail), for the runner."""

    def __init__(self, seconds=0.05, fail_at=None, cap=100):
        self.n_frames, self.finished, self.seconds = 0, False, seconds
        self.fail_at, self.cap = fail_at, cap
        self.threads: set[str] = set()
        self.closed = False

    def close(self):
        self.closed = True

    def step(self):
        self.threads.add(threading.current_thread().name)
        time.sleep(self.seconds)
        if self.fail_at is not None and self.n_frames == self.fail_at:
            raise RuntimeError("out of memory")
        self.n_frames += 1
        self.finished = self.n_frames >= self.cap
        return not self.finished


def test_runner_steps_in_the_background_and_in_order():
    lesson = _SlowLesson(seconds=0.2)
    runner = LessonRunner(lesson)
    start = time.perf_counter()
    runner.step(3)
    assert time.perf_counter() - start < 0.1  # the caller never waits for a step
    assert runner.busy
    assert runner.wait(timeout=10)
    assert lesson.n_frames == 3 and not runner.busy
    assert lesson.threads == {"ganmm-lesson"}
    runner.close()  # a new dataset or a reset: the old lesson lets its threads go
    assert lesson.closed
    runner.step()
    assert not runner.busy and lesson.n_frames == 3


def test_runner_plays_pauses_and_stops_at_the_end():
    lesson = _SlowLesson(seconds=0.01, cap=8)
    runner = LessonRunner(lesson)
    runner.play(0.0)
    deadline = time.monotonic() + 10
    while runner.playing and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lesson.n_frames == 8 and not runner.playing  # stopped at the cap by itself
    runner.step()  # nothing more to do
    assert not runner.busy and lesson.n_frames == 8

    lesson = _SlowLesson(seconds=0.01)
    runner = LessonRunner(lesson)
    runner.play(0.05)
    time.sleep(0.4)
    runner.pause()
    runner.wait(timeout=5)
    done = lesson.n_frames
    assert 2 <= done <= 10  # about one step per 0.05 s
    time.sleep(0.2)
    assert lesson.n_frames == done  # paused: no more steps


def test_runner_pauses_when_no_one_watches_and_reports_a_failing_step():
    lesson = _SlowLesson(seconds=0.01)
    runner = LessonRunner(lesson, idle_pause=0.2)
    runner.play(0.01)
    time.sleep(0.6)
    assert not runner.playing  # nobody called touch(): a closed tab leaves nothing running
    lesson = _SlowLesson(seconds=0.0, fail_at=2)
    runner = LessonRunner(lesson)
    runner.play(0.0)
    runner.wait(timeout=5)
    deadline = time.monotonic() + 5
    while runner.playing and time.monotonic() < deadline:
        time.sleep(0.01)
    assert runner.error == "RuntimeError: out of memory" and not runner.playing
    assert lesson.n_frames == 2  # the frames before the failure stay
    with pytest.raises(ConfigError):
        runner.play(-1)
