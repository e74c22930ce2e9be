"""GANMM and GANMM-EM: the estimator contract, the snapshots, seeds, small parts."""

import numpy as np
import pytest
import torch

from ganmm import mixture
from ganmm.errors import ConfigError, DataError
from ganmm.mixture import GANMM, GANMMEM, GANMMConfig

TINY = dict(hidden=16, z_dim=4, batch_size=16, n_critic=1, n_pretrain=5, n_epoch=3,
            classifier_steps=5, classifier_batch=16, n_snapshot_samples=4, device="cpu", samples_every=1)


def tiny(cls=GANMM, preset="default", **kw):
    return cls(GANMMConfig.from_preset(preset), **{**TINY, **kw})


@pytest.mark.parametrize("cls,preset", [(GANMM, "default"), (GANMM, "paper"), (GANMMEM, "default")])
def test_snapshots_follow_the_contract(two_blobs, cls, preset):
    X, y = two_blobs
    model = tiny(cls, preset, n_clusters=2, max_iter=3, tol=-1)
    snaps = list(model.fit_iter(X, y))
    assert [s.iteration for s in snaps] == [0, 1, 2, 3]
    for s in snaps:
        assert s.assignments.shape == (60,) and s.sizes.sum() == 60
        if s.iteration in (0, 3):  # the first and the last always carry samples
            assert s.samples.shape == (2, 4, 2) and np.isfinite(s.samples).all()
        assert all(np.isfinite(v) for v in s.losses.values())
        assert set(s.metrics) == {"purity", "ari", "nmi", "acc", "rand"}
        assert 0.0 <= s.changed <= 1.0
    assert snaps[0].changed == 1.0
    elapsed = [s.elapsed for s in snaps]
    assert elapsed == sorted(elapsed)
    np.testing.assert_array_equal(model.labels_, snaps[-1].assignments)
    assert model.n_iter_ == 3
    # history_ keeps every iteration; the earlier ones light (a run can make thousands)
    assert [h.iteration for h in model.history_] == [0, 1, 2, 3]
    for h, s in zip(model.history_, snaps):
        np.testing.assert_array_equal(h.assignments, s.assignments)
        assert h.metrics == s.metrics
    assert model.history_[0].samples is None and model.history_[0].assignments.dtype == np.int16
    assert model.history_[-1].samples is not None
    proba = model.predict_proba(X)
    assert proba.shape == (60, 2)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(model.predict(X), proba.argmax(1))


@pytest.mark.parametrize("stop", ["max_iter", "time_budget", "converged"])
def test_samples_come_every_few_iterations_and_with_the_last(two_blobs, stop):
    X, _ = two_blobs
    settings = {"max_iter": dict(max_iter=7, tol=-1), "time_budget": dict(max_iter=10_000, tol=-1, time_budget=4.0, classifier_warmup=5),
                "converged": dict(max_iter=10_000, tol=1.0, patience=5)}[stop]
    snaps = list(tiny(n_clusters=2, samples_every=3, **settings).fit_iter(X))
    has = [s.samples is not None for s in snaps]
    assert has[-1] and has[0]
    assert has[:-1] == [s.iteration % 3 == 0 for s in snaps[:-1]]
    assert len(snaps) > 3


def test_classifier_e_step_metrics_and_extras(two_blobs):
    X, y = two_blobs
    snaps = list(tiny(n_clusters=2, max_iter=2, tol=-1, sigma0=0.5, sigma_decay=0.7).fit_iter(X, y))
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
    model = tiny(n_clusters=2, max_iter=10_000, tol=-1, time_budget=1.0)
    snaps = list(model.fit_iter(X))
    assert len(snaps) < 10_000
    assert snaps[-1].elapsed >= 1.0  # ran to the budget ...
    assert len(snaps) == 1 or snaps[-2].elapsed < 1.0  # ... and stopped at the first iteration past it


def test_a_long_pretraining_is_cut_by_the_time_budget(two_blobs):
    X, _ = two_blobs
    model = tiny(n_clusters=2, max_iter=5, n_pretrain=1_000_000, time_budget=1.0)
    snaps = list(model.fit_iter(X))
    assert len(snaps) == 1 and snaps[0].elapsed < 10


def test_convergence_needs_patience_calm_iterations_in_a_row(two_blobs):
    X, _ = two_blobs
    tol, patience = 0.05, 2
    model = tiny(n_clusters=2, max_iter=200, tol=tol, patience=patience)
    snaps = list(model.fit_iter(X))
    assert snaps[-1].converged and model.converged_ and len(snaps) < 200
    calm = [s.changed <= tol for s in snaps]
    assert all(calm[-patience:])
    # no earlier run of `patience` calm iterations: it stopped at the first one
    assert not any(all(calm[i:i + patience]) for i in range(1, len(calm) - patience))


def test_topk_batches_come_from_the_part_and_its_borrowed_points(two_blobs):
    import torch

    X, _ = two_blobs
    model = tiny(n_clusters=3, max_iter=1, tol=-1, sigma0=0.3, init="random")
    model.fit(X)
    for _ in range(5):
        idx = model._real_batch()  # (K, B)
        for k in range(3):
            allowed = set(torch.nonzero(model._a == k).flatten().tolist())
            allowed |= set(model._extra[k, :int(model._n_extra[k])].tolist())
            assert set(idx[k].tolist()) <= allowed


def test_proportional_batches_mix_own_and_other_points(two_blobs):
    import torch

    X, y = two_blobs
    model = tiny(preset="paper", n_clusters=2, max_iter=1, tol=-1, batch_size=50)
    model.fit(X)
    model._set_assignments(torch.from_numpy(y))  # two parts of 30
    model._borrow(0)
    model._em_steps = 600  # 40 own points of 50
    idx = model._real_batch()
    for k in range(2):
        own = (model._a[idx[k]] == k).tolist()
        assert all(own[:40]) and not any(own[40:])


def test_closed_form_critic_step_is_autograds_step(two_blobs):
    """The critic update with its gradients by hand moves the critics where the
    update through autograd (double backward for the penalty) moves them."""
    X, _ = two_blobs
    models = []
    for closed in (True, False):
        model = tiny(n_clusters=2, seed=3, n_pretrain=0)
        model.closed_form_gradients = closed
        model._initialize(X)
        models.append(model)
    batches = []
    for m in models:  # the same draws from the same seed
        with torch.no_grad():
            batches.append((m._X[m._real_batch()], m._generate(m.config.batch_size)))
    for a, b in zip(*batches):
        assert torch.equal(a, b)
    before = [p.detach().clone() for p in models[0].D_.parameters()]
    out = [m._critic_step(m.D_, m._opt_d, *batch) for m, batch in zip(models, batches)]
    for a, b in zip(*out):  # the loss and the Wasserstein estimate
        torch.testing.assert_close(a, b)
    moved = []
    for p, q, p0 in zip(models[0].D_.parameters(), models[1].D_.parameters(), before):
        torch.testing.assert_close(p, q)
        moved.append(not torch.equal(p, p0))
    assert all(moved[:-1]) and not moved[-1]  # all but the last bias, whose gradient is 0 either way


def test_generator_step_computes_no_critic_gradient(two_blobs):
    """The generator update needs d loss / d generator weights only: the critics'
    weight gradients are left alone, and the generators' are autograd's."""
    X, _ = two_blobs
    model = tiny(n_clusters=2, n_pretrain=0)
    model._initialize(X)
    for p in model.D_.parameters():
        p.grad = None
    state = model._g.get_state()
    params = list(model.G_.parameters())
    loss = -model.D_(model._generate(model.config.batch_size)).mean(1).sum()
    expected = torch.autograd.grad(loss, params)
    model._g.set_state(state)
    before = [p.detach().clone() for p in params]
    model._opt_g.step = lambda: None  # keep the weights, to compare the gradients
    model._generator_step(model.G_, model.D_, model._opt_g)
    assert all(p.grad is None for p in model.D_.parameters())
    for p, g, b in zip(params, expected, before):
        torch.testing.assert_close(p.grad, g)
        assert torch.equal(p, b)


def test_ganmm_em_never_borrows(two_blobs):
    X, _ = two_blobs
    for preset in ("default", "paper"):
        model = tiny(GANMMEM, preset, n_clusters=2, max_iter=2, tol=-1)
        model.fit(X)
        assert model._own_per_batch() == model.config.batch_size
        assert all(int(n) == 0 for n, c in zip(model._n_extra, model._counts) if c >= model.config.batch_size)


def test_ganmm_em_critics_are_compared_on_one_scale(two_blobs):
    """A critic whose scores all sit higher (a WGAN critic has no scale of its own)
    must not take every point: the E-step ranks each critic's scores against its
    own scores of the whole data set."""
    X, _ = two_blobs
    model = tiny(GANMMEM, n_clusters=2, max_iter=2, tol=-1).fit(X)
    model._calibrate()  # on the critics as they are now
    before = model.predict_proba(X)
    assert np.bincount(before.argmax(1), minlength=2).min() > 0
    with torch.no_grad():
        model.D_.layers[-1].bias[0] += 100.0  # critic 0 now outscores critic 1 everywhere
        model.D_.layers[-1].weight[1] *= 3.0  # and critic 1 speaks louder
    model._calibrate()
    after = model.predict_proba(X)
    np.testing.assert_allclose(after, before, atol=1e-4)


def test_paper_preset_on_fewer_points_than_a_batch():
    X = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    snaps = list(tiny(preset="paper", n_clusters=2, max_iter=2, tol=-1, batch_size=50).fit_iter(X))
    assert all(np.isfinite(s.samples).all() for s in snaps)


def test_bad_settings_are_named():
    with pytest.raises(ConfigError, match="loss must be one of"):
        GANMM(loss="hinge")
    with pytest.raises(ConfigError, match="unknown preset"):
        GANMMConfig.from_preset("fastest")
    with pytest.raises(ConfigError, match="n_clusters"):
        GANMM(n_clusters=0)
    with pytest.raises(ConfigError, match="unexpected keyword"):
        GANMM(n_clusterz=3)
    with pytest.raises(ConfigError, match="time_budget"):
        GANMM(time_budget=float("nan"))
    with pytest.raises(ConfigError, match="0..50"):
        GANMM(own_final=60)
    with pytest.raises(ConfigError, match="sigma_decay"):
        GANMM(sigma_decay=1.5)
    with pytest.raises(ConfigError, match="posterior_average"):
        GANMM(posterior_average=1.0)
    with pytest.raises(ConfigError, match="feature_noise"):
        GANMM(feature_noise=-0.1)


def test_borrowing_fades_slowly_on_images_and_fast_on_other_data(two_blobs):
    # the default's automatic sigma_t decay: 0.99 where the classifier sees moved
    # images, 0.7 on other data (where long borrowing empties clusters on 2-D sets)
    images = np.random.default_rng(0).random((40, 64)).astype(np.float32)  # 8x8 in [0, 1]
    X, _ = two_blobs
    cases = [(images, {}, 0.99), (X, {}, 0.7), (images, dict(classifier_augment="none"), 0.7),
             (X, dict(sigma_decay=0.9), 0.9)]
    for data, over, decay in cases:
        model = tiny(n_clusters=2, max_iter=3, tol=-1, **over)
        sigmas = [s.extras["sigma"] for s in model.fit_iter(data)][1:]
        assert model.sigma_decay_ == decay
        assert sigmas == [int(np.floor(0.2 * len(data) / 2 * decay ** t)) for t in range(3)]
    assert GANMMConfig.from_preset("classic").sigma_decay == 0.7
    assert (GANMMConfig().patience, GANMMConfig.from_preset("classic").patience) == (20, 3)


def test_classifier_sees_noisy_points_on_feature_data_only(two_blobs):
    """auto: moved images for images, Gaussian noise (0.2 of each feature's spread)
    for data of 3 or more features, the points as they are in the plane."""
    rng = np.random.default_rng(0)
    images = rng.random((40, 64)).astype(np.float32)
    codes = (rng.normal(size=(60, 4)) * [1.0, 5.0, 0.1, 0.0]).astype(np.float32)
    X, _ = two_blobs
    for data, over, kind, average in [(images, {}, "affine", 0.0), (codes, {}, "noise", 0.9), (X, {}, "none", 0.0),
                                      (codes, dict(classifier_augment="none"), "none", 0.0),
                                      (X, dict(classifier_augment="noise", posterior_average=0.5), "noise", 0.5)]:
        model = tiny(n_clusters=2, max_iter=1, tol=-1, **over).fit(data)
        assert (model.classifier_augment_, model.posterior_average_) == (kind, average)
    model = tiny(n_clusters=2, max_iter=1, tol=-1).fit(codes)
    zeros = torch.zeros(20000, 4)
    spread = model._classifier_view(zeros).std(0).numpy()
    np.testing.assert_allclose(spread, 0.2 * codes.std(0), rtol=0.05, atol=1e-6)
    assert (tiny(n_clusters=2, max_iter=1, tol=-1).fit(X)._classifier_view(zeros[:, :2]) == 0).all()


def test_points_are_assigned_by_the_running_average_of_the_posterior():
    """hbar_t = a * hbar_(t-1) + (1 - a) * h_t assigns the points; h_1 alone at first."""
    X = np.random.default_rng(0).normal(size=(80, 3)).astype(np.float32)
    model = tiny(n_clusters=2, max_iter=4, tol=-1, posterior_average=0.6)
    seen = []
    posterior = model._posterior

    def recording(x, *args, **kwargs):
        out = posterior(x, *args, **kwargs)
        seen.append(out.clone())
        return out

    model._posterior = recording
    snaps = list(model.fit_iter(X))
    average = seen[0]
    torch.testing.assert_close(seen[0].argmax(1).numpy(), snaps[1].assignments)
    for h, snap in zip(seen[1:], snaps[2:]):
        average = 0.6 * average + 0.4 * h
        np.testing.assert_array_equal(average.argmax(1).numpy(), snap.assignments)
    torch.testing.assert_close(model._post, average)
    assert not torch.allclose(average, seen[-1])  # the average is not just the last h


def test_too_few_rows_is_a_data_error():
    with pytest.raises(DataError, match="choose at most 3 clusters"):
        list(tiny(n_clusters=5).fit_iter(np.zeros((3, 2), np.float32)))


def test_paper_preset_matches_the_reference_settings():
    assert GANMMConfig().preset == "default"  # the field, not shadowed by the constructor
    cfg = GANMMConfig.from_preset("paper")
    assert (cfg.loss, cfg.clip, cfg.optimizer, cfg.lr, cfg.lr_classifier) == ("clip", 0.01, "rmsprop", 5e-5, 5e-5)
    assert (cfg.batch_size, cfg.n_critic, cfg.n_pretrain, cfg.init) == (50, 5, 500, "random")
    model = GANMM(cfg)
    for steps, own in ((0, 25), (499, 25), (500, 40), (1999, 45), (2000, 48)):
        model._em_steps = steps
        assert model._own_per_batch() == own


def test_convolutional_family_on_28x28_images():
    X = np.random.default_rng(0).random((40, 784)).astype(np.float32)
    model = tiny(n_clusters=2, max_iter=1, tol=-1, arch="conv", channels=2)
    snaps = list(model.fit_iter(X))
    assert snaps[-1].samples.shape == (2, 4, 784)
    assert snaps[-1].samples.min() >= 0 and snaps[-1].samples.max() <= 1  # sigmoid images
    with pytest.raises(ConfigError, match="28x28"):
        tiny(n_clusters=2, arch="conv").fit(np.zeros((10, 5), np.float32))


def test_the_default_preset_never_reads_the_labels():
    """Training, the initial split and stopping see X only: shuffled labels, or none,
    give the same assignments at every iteration (the metrics differ, as they should)."""
    from ganmm import data

    ds = data.load("digits")
    X, y = ds.X[:240], ds.y[:240]
    shuffled = np.random.default_rng(1).permutation(y)
    runs = []
    for labels in (y, shuffled, None):
        model = GANMM(GANMMConfig.from_preset("default"), n_clusters=10, max_iter=4, time_budget=None,
                      tol=0.05, patience=2, n_pretrain=5, device="cpu", seed=3)
        runs.append(list(model.fit_iter(X, labels)))
    assert model._side == 8  # the images were moved for the classifier: the whole default path ran
    assert [len(r) for r in runs] == [len(runs[0])] * 3  # same stopping point
    for a, b, c in zip(*runs):
        np.testing.assert_array_equal(a.assignments, b.assignments)
        np.testing.assert_array_equal(a.assignments, c.assignments)
    assert runs[0][-1].metrics["ari"] != runs[1][-1].metrics["ari"] and runs[2][-1].metrics == {}


def _denormals_survive() -> bool:
    import torch
    return (torch.tensor([1e-39]) * 1.0).item() != 0.0 and np.float32(1e-39) * np.float32(1.0) != 0.0


def test_a_cpu_fit_flushes_denormals_only_while_it_steps(two_blobs, monkeypatch):
    # the steps run with denormals flushed to zero (many times faster on x86), but the
    # thread that drives the fit gets IEEE floats back between steps and after it
    X, _ = two_blobs
    seen = []
    train = GANMM._train_gans

    def spy(self, n_steps):
        seen.append(_denormals_survive())
        return train(self, n_steps)

    monkeypatch.setattr(GANMM, "_train_gans", spy)
    assert _denormals_survive()
    for _ in tiny(n_clusters=2, max_iter=2, tol=-1).fit_iter(X):
        assert _denormals_survive()
    assert seen and not any(seen)
    assert _denormals_survive()
