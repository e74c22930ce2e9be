"""GANMM and GANMM-EM: the estimator contract, the snapshots, seeds, small parts."""

import numpy as np
import pytest

from ganmm import mixture
from ganmm.errors import ConfigError, DataError
from ganmm.mixture import GANMM, GANMMEM, GANMMConfig

TINY = dict(hidden=16, z_dim=4, batch_size=16, n_critic=1, n_pretrain=5, n_epoch=3,
            classifier_steps=5, classifier_batch=16, n_snapshot_samples=4, device="cpu")


def tiny(cls=GANMM, preset="default", **kw):
    return cls(GANMMConfig.preset(preset), **{**TINY, **kw})


@pytest.mark.parametrize("cls,preset", [(GANMM, "default"), (GANMM, "paper"), (GANMMEM, "default")])
def test_snapshots_follow_the_contract(two_blobs, cls, preset):
    X, y = two_blobs
    model = tiny(cls, preset, n_clusters=2, max_iter=3, tol=-1)
    snaps = list(model.fit_iter(X, y))
    assert [s.iteration for s in snaps] == [0, 1, 2, 3]
    for s in snaps:
        assert s.assignments.shape == (60,) and s.sizes.sum() == 60
        assert s.samples.shape == (2, 4, 2) and np.isfinite(s.samples).all()
        assert all(np.isfinite(v) for v in s.losses.values())
        assert set(s.metrics) == {"purity", "ari", "nmi", "acc", "rand"}
        assert 0.0 <= s.changed <= 1.0
    assert snaps[0].changed == 1.0
    elapsed = [s.elapsed for s in snaps]
    assert elapsed == sorted(elapsed)
    np.testing.assert_array_equal(model.labels_, snaps[-1].assignments)
    assert model.n_iter_ == 3
    proba = model.predict_proba(X)
    assert proba.shape == (60, 2)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(model.predict(X), proba.argmax(1))


def test_classifier_e_step_metrics_and_extras(two_blobs):
    X, y = two_blobs
    snaps = list(tiny(n_clusters=2, max_iter=2, tol=-1, sigma0=0.5).fit_iter(X, y))
    assert snaps[1].extras["sigma"] == 15  # 0.5 * 60/2
    assert snaps[2].extras["sigma"] == 10  # shrinks by sigma_decay 0.7
    assert 0.0 <= snaps[1].extras["classifier_acc"] <= 1.0
    assert "classifier" in snaps[1].losses


def test_sigma_schedule_reaches_zero(two_blobs):
    X, _ = two_blobs
    model = tiny(n_clusters=2, max_iter=12, tol=-1, sigma0=0.2, sigma_decay=0.5)
    sigmas = [s.extras["sigma"] for s in model.fit_iter(X)][1:]
    assert sigmas[0] == 6 and sigmas == sorted(sigmas, reverse=True) and sigmas[-1] == 0


def test_same_seed_same_result_and_other_seed_differs(two_blobs):
    X, _ = two_blobs
    runs = [list(tiny(n_clusters=3, max_iter=2, tol=-1, seed=s, init="random").fit_iter(X)) for s in (1, 1, 2)]
    for a, b in zip(runs[0], runs[1]):
        np.testing.assert_array_equal(a.assignments, b.assignments)
        np.testing.assert_array_equal(a.samples, b.samples)
    assert not np.array_equal(runs[0][-1].samples, runs[2][-1].samples)


def test_labels_never_change_training(two_blobs):
    X, y = two_blobs
    shuffled = np.random.default_rng(0).permutation(y)
    a = tiny(n_clusters=2, max_iter=2, tol=-1).fit(X, y).labels_
    b = tiny(n_clusters=2, max_iter=2, tol=-1).fit(X, shuffled).labels_
    c = tiny(n_clusters=2, max_iter=2, tol=-1).fit(X).labels_
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("cls,preset", [(GANMM, "default"), (GANMM, "paper"), (GANMMEM, "default")])
def test_empty_and_tiny_parts_never_crash_or_nan(two_blobs, monkeypatch, cls, preset):
    X, _ = two_blobs
    # start with clusters 1 and 3 empty and cluster 2 holding a single point
    start = np.zeros(60, dtype=np.int64)
    start[0] = 2
    monkeypatch.setattr(mixture, "initial_split", lambda *a, **k: start)
    snaps = list(tiny(cls, preset, n_clusters=4, max_iter=3, tol=-1).fit_iter(X))
    for s in snaps:
        assert s.sizes.sum() == 60
        assert np.isfinite(s.samples).all()
        assert all(np.isfinite(v) for v in s.losses.values())


def test_as_many_clusters_as_points():
    X = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    snaps = list(tiny(n_clusters=5, max_iter=2, tol=-1, init="random").fit_iter(X))
    assert snaps[0].sizes.tolist() == [1, 1, 1, 1, 1]
    assert all(np.isfinite(s.samples).all() for s in snaps)


def test_finds_two_separated_blobs_from_a_random_split():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-2, 0.3, (150, 2)), rng.normal(2, 0.3, (150, 2))]).astype(np.float32)
    y = np.repeat([0, 1], 150)
    model = GANMM(n_clusters=2, init="random", hidden=32, n_pretrain=100, n_epoch=20, max_iter=8,
                  device="cpu", seed=0)
    model.fit(X, y)
    assert model.history_[0].metrics["ari"] < 0.1  # the random split knows nothing
    assert max(s.metrics["ari"] for s in model.history_[-3:]) > 0.9


def test_time_budget_stops_the_run(two_blobs):
    X, _ = two_blobs
    model = tiny(n_clusters=2, max_iter=10_000, tol=-1, time_budget=0.3)
    snaps = list(model.fit_iter(X))
    assert len(snaps) < 10_000
    assert snaps[-2].elapsed < 0.3 <= snaps[-1].elapsed


def test_convergence_stops_when_nothing_moves(two_blobs):
    X, _ = two_blobs
    model = tiny(n_clusters=2, max_iter=200, tol=0.5, patience=2)
    snaps = list(model.fit_iter(X))
    assert snaps[-1].converged and model.converged_
    assert len(snaps) < 200


def test_bad_settings_are_named():
    with pytest.raises(ConfigError, match="loss must be one of"):
        GANMM(loss="hinge")
    with pytest.raises(ConfigError, match="unknown preset"):
        GANMMConfig.preset("fastest")
    with pytest.raises(ConfigError, match="n_clusters"):
        GANMM(n_clusters=0)
    with pytest.raises(ConfigError, match="unexpected keyword"):
        GANMM(n_clusterz=3)


def test_too_few_rows_is_a_data_error():
    with pytest.raises(DataError, match="choose at most 3 clusters"):
        list(tiny(n_clusters=5).fit_iter(np.zeros((3, 2), np.float32)))


def test_paper_preset_matches_the_reference_settings():
    cfg = GANMMConfig.preset("paper")
    assert (cfg.loss, cfg.clip, cfg.optimizer, cfg.lr, cfg.lr_classifier) == ("clip", 0.01, "rmsprop", 5e-5, 5e-5)
    assert (cfg.batch_size, cfg.n_critic, cfg.n_pretrain, cfg.init) == (50, 5, 500, "random")
    model = GANMM(cfg)
    for steps, own in ((0, 25), (499, 25), (500, 40), (1999, 45), (2000, 48)):
        model._em_steps = steps
        assert model._own_per_batch() == own
