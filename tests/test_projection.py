"""UMAP projection: one worker thread, disk cache, transform of new points.

Data stay small (300 rows in 10-D): the first UMAP fit of the process pays
numba's compilation (~15 s); later fits of this size take well under a second.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from scipy.spatial.distance import pdist
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

import ganmm.projection as proj
from ganmm.data import from_arrays, load_builtin
from ganmm.errors import GanmmError
from ganmm.projection import (
    ProjectionConfig, ProjectionError, Projector, get_projector,
)

WAIT = 180.0  # generous: the first fit compiles numba code on a busy machine


def blobs(n_per: int = 100, d: int = 10, seed: int = 0, name: str = "blobs"):
    """Three far-apart Gaussian blobs in d dimensions, labels 0..2."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, d)) * 10
    y = np.repeat(np.arange(3), n_per)
    X = centers[y] + rng.normal(size=(3 * n_per, d))
    return from_arrays(X.astype(np.float32), y, name=name, kind="tabular")


def knn_accuracy(emb: np.ndarray, y: np.ndarray) -> float:
    return float(cross_val_score(KNeighborsClassifier(5), emb, y, cv=5).mean())


class FakeModel:
    """Cheap stand-in for a fitted UMAP: the first two features."""

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X[:, :2], dtype=np.float32)


def fake_fit(X, config):
    return FakeModel(), np.asarray(X[:, :2], dtype=np.float32)


@pytest.fixture
def projector():
    p = Projector()
    yield p
    p.shutdown()


@pytest.fixture
def ds():
    return blobs()


def cache_files(home):
    folder = home / "cache" / "umap"
    return sorted(folder.glob("*.npz")) if folder.exists() else []


def test_import_does_not_load_umap():
    code = "import sys, ganmm.projection; print('umap' in sys.modules, 'numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_2d_data_is_drawn_as_is_without_umap(projector, monkeypatch):
    monkeypatch.setattr(proj, "_fit_umap", lambda *a: pytest.fail("2-D data must not be fitted"))
    moons = load_builtin("moons")
    state = projector.request(moons)
    assert state.status == "ready" and state.embedding is moons.X
    assert projector.embedding(moons) is moons.X
    pts = moons.X[:7] + 1
    np.testing.assert_array_equal(projector.transform(moons, pts), pts)
    assert projector._thread is None  # no worker was even started


def test_fit_becomes_ready_and_separates_blobs(projector, ds, ganmm_home):
    first = projector.request(ds)
    assert first.status == "pending" and first.embedding is None
    emb = projector.embedding(ds, timeout=WAIT)
    assert emb.shape == (ds.n_samples, 2) and emb.dtype == np.float32
    assert np.isfinite(emb).all()
    assert knn_accuracy(emb, ds.y) > 0.9
    state = projector.request(ds)
    assert state.status == "ready" and state.embedding is emb and not state.cached
    assert state.seconds is not None and state.seconds > 0
    assert len(cache_files(ganmm_home)) == 1


def test_new_projector_reads_the_disk_cache_without_refitting(ds, ganmm_home, monkeypatch):
    p1 = Projector()
    emb = p1.embedding(ds, timeout=WAIT)
    p1.shutdown()
    [path] = cache_files(ganmm_home)
    assert path.name.startswith(ds.fingerprint())
    monkeypatch.setattr(proj, "_fit_umap", lambda *a: pytest.fail("must not refit"))
    p2 = Projector()
    try:
        state = p2.request(blobs())  # an equal dataset, a new object
        assert state.status == "ready" and state.cached
        with np.load(path, allow_pickle=False) as z:
            np.testing.assert_array_equal(state.embedding, z["embedding"])
        np.testing.assert_array_equal(state.embedding, emb)
        assert p2._thread is None
    finally:
        p2.shutdown()


def test_changed_data_or_config_does_not_reuse_the_cache(projector, ds, ganmm_home, monkeypatch):
    calls = []
    monkeypatch.setattr(proj, "_fit_umap", lambda X, c: calls.append(c) or fake_fit(X, c))
    projector.embedding(ds, timeout=WAIT)
    X = ds.X.copy()
    X[0, 0] += 1.0
    changed = from_arrays(X, ds.y, name="blobs", kind="tabular")
    assert changed.fingerprint() != ds.fingerprint()
    p2 = Projector()
    p3 = Projector(ProjectionConfig(n_neighbors=10))
    try:
        assert p2.request(changed).status == "pending"
        p2.embedding(changed, timeout=WAIT)
        assert p3.request(ds).status == "pending"
        p3.embedding(ds, timeout=WAIT)
    finally:
        p2.shutdown()
        p3.shutdown()
    assert len(calls) == 3 and calls[2].n_neighbors == 10
    assert len(cache_files(ganmm_home)) == 3


def test_transform_places_training_rows_near_their_own_coordinates(projector, ds):
    emb = projector.embedding(ds, timeout=WAIT)
    rows = np.arange(0, ds.n_samples, 30)
    placed = projector.transform(ds, ds.X[rows], timeout=WAIT)
    assert placed is not None and placed.shape == (len(rows), 2)
    moved = np.linalg.norm(placed - emb[rows], axis=1)
    assert (moved < np.median(pdist(emb))).all()
    assert projector.transform(ds, ds.X[rows], timeout=WAIT) is placed  # cached
    with pytest.raises(ProjectionError, match="features"):
        projector.transform(ds, ds.X[:3, :4])
    assert projector.transform(ds, ds.X[:0]).shape == (0, 2)


def test_transform_is_none_until_the_fit_is_done(projector, ds, monkeypatch):
    release = threading.Event()

    def slow_fit(X, config):
        release.wait(30)
        return fake_fit(X, config)

    monkeypatch.setattr(proj, "_fit_umap", slow_fit)
    assert projector.request(ds).status == "pending"
    assert projector.transform(ds, ds.X[:5]) is None
    assert projector.request(ds).status == "pending"
    with pytest.raises(ProjectionError, match="not ready"):
        projector.embedding(ds, timeout=0.2)
    release.set()
    projector.embedding(ds, timeout=WAIT)
    np.testing.assert_array_equal(projector.transform(ds, ds.X[:5], timeout=WAIT), ds.X[:5, :2])


def test_after_a_restart_transform_refits_the_model_in_the_background(ds, ganmm_home):
    p1 = Projector()
    emb = p1.embedding(ds, timeout=WAIT)
    p1.shutdown()
    p2 = Projector()
    try:
        state = p2.request(ds)
        assert state.status == "ready" and state.cached
        rows = np.arange(0, ds.n_samples, 50)
        assert p2.transform(ds, ds.X[rows]) is None  # the model is being refitted
        deadline = time.monotonic() + WAIT
        placed = None
        while placed is None and time.monotonic() < deadline:
            time.sleep(0.2)
            placed = p2.transform(ds, ds.X[rows], timeout=WAIT)
        assert placed is not None
        assert (np.linalg.norm(placed - emb[rows], axis=1) < np.median(pdist(emb))).all()
        assert p2.request(ds).embedding is state.embedding  # the picture does not jump
    finally:
        p2.shutdown()


def test_calls_from_many_threads_run_on_the_one_worker(projector, ds, monkeypatch):
    real_fit, fit_threads, transform_threads = proj._fit_umap, [], []

    class Recording:
        def __init__(self, model):
            self.model = model

        def transform(self, X):
            transform_threads.append(threading.current_thread().name)
            return self.model.transform(X)

    def recording_fit(X, config):
        fit_threads.append(threading.current_thread().name)
        model, emb = real_fit(X, config)
        return Recording(model), emb

    monkeypatch.setattr(proj, "_fit_umap", recording_fit)
    results, errors = {}, []

    def page(i: int) -> None:
        try:
            emb = projector.embedding(ds, timeout=WAIT)
            placed = projector.transform(ds, ds.X[i * 5:(i + 1) * 5], timeout=WAIT)
            results[i] = (emb, placed)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=page, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert not errors and len(results) == 6
    assert len(fit_threads) == 1 and set(fit_threads + transform_threads) == {"ganmm-umap"}
    assert len(transform_threads) == 6
    embs = [e for e, _ in results.values()]
    assert all(e is embs[0] for e in embs)
    assert all(p is not None and p.shape == (5, 2) for _, p in results.values())


def test_a_failing_fit_is_reported_and_the_worker_goes_on(projector, ds, monkeypatch):
    def broken(X, config):
        raise RuntimeError("boom: numba fell over")

    monkeypatch.setattr(proj, "_fit_umap", broken)
    with pytest.raises(ProjectionError, match="boom"):
        projector.embedding(ds, timeout=WAIT)
    state = projector.request(ds)
    assert state.status == "failed" and "boom" in state.error and state.embedding is None
    with pytest.raises(ProjectionError, match="boom"):
        projector.transform(ds, ds.X[:3])
    assert issubclass(ProjectionError, GanmmError)
    monkeypatch.setattr(proj, "_fit_umap", fake_fit)
    other = blobs(seed=1, name="other")
    assert projector.embedding(other, timeout=WAIT).shape == (other.n_samples, 2)
    assert projector.request(ds).status == "failed"  # failures stick ...
    assert projector.request(ds, retry=True).status == "pending"  # ... until retried
    assert projector.embedding(ds, timeout=WAIT).shape == (ds.n_samples, 2)


def test_tiny_datasets_get_a_picture(projector):
    rng = np.random.default_rng(0)
    for n in (3, 5):
        tiny = from_arrays(rng.normal(size=(n, 10)).astype(np.float32), name=f"tiny{n}",
                           kind="tabular")
        emb = projector.embedding(tiny, timeout=WAIT)
        assert emb.shape == (n, 2) and np.isfinite(emb).all()
        assert len(np.unique(emb.round(4), axis=0)) > 1


def test_large_data_fit_on_a_subsample_and_transform_the_rest(ds):
    p = Projector(ProjectionConfig(max_fit_rows=120))
    try:
        emb = p.embedding(ds, timeout=WAIT)
    finally:
        p.shutdown()
    assert emb.shape == (ds.n_samples, 2) and np.isfinite(emb).all()
    assert knn_accuracy(emb, ds.y) > 0.9


@pytest.mark.parametrize("junk", [b"not an npz file", b"PK\x03\x04truncated zip"])
def test_unusable_cache_file_is_refitted(projector, ds, ganmm_home, monkeypatch, junk):
    monkeypatch.setattr(proj, "_fit_umap", fake_fit)
    path = proj._cache_path(ds.fingerprint(), projector.config)
    path.parent.mkdir(parents=True)
    path.write_bytes(junk)
    assert projector.request(ds).status == "pending"
    projector.embedding(ds, timeout=WAIT)
    with np.load(path, allow_pickle=False) as z:
        np.testing.assert_array_equal(z["embedding"], ds.X[:, :2])
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


def test_get_projector_is_one_per_process():
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(get_projector())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(p is seen[0] for p in seen)
    seen[0].shutdown()
    assert seen[0].closed and get_projector() is not seen[0]
    get_projector().shutdown()
    with pytest.raises(ProjectionError, match="shut down"):
        seen[0].request(blobs())
