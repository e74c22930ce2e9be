"""The estimator contract from Python: what every model does with odd input,
before it trains, and with predict before or after a fit."""

import numpy as np
import pytest

from ganmm.base import NotFittedError
from ganmm.errors import ConfigError, DataError
from ganmm.models import make_model

TINY_GANS = dict(hidden=8, z_dim=4, batch_size=8, n_critic=1, n_pretrain=2, n_epoch=1, classifier_steps=2,
                 classifier_warmup=2, classifier_batch=8, device="cpu")
MODELS = {"gmm": {}, "kmeans": {}, "ganmm": TINY_GANS, "ganmm-em": TINY_GANS}


def model(name, **kw):
    return make_model(name, **{"n_clusters": 2, "max_iter": 2, **MODELS[name], **kw})


@pytest.fixture(scope="module")
def two_blobs():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (60, 2)), rng.normal(8, 1, (60, 2))])
    return X, np.repeat([0, 1], 60)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_is_refused_before_any_training(two_blobs, name, bad):
    X = two_blobs[0].copy()
    X[7, 1] = bad
    m = model(name)
    with pytest.raises(DataError, match="row 7 holds NaN or infinite values"):
        next(m.fit_iter(X))
    assert not hasattr(m, "history_")  # nothing ran: the GANs were not pretrained on NaN


def test_values_beyond_float32_and_features_float32_flattens_are_refused(two_blobs):
    X, y = two_blobs
    with pytest.raises(DataError, match="beyond float32's range"):
        model("kmeans").fit(X * 1e39)
    # time stamps in seconds, two groups 20 s apart: float32 keeps 7 digits, all one value
    stamps = np.column_stack([1.7e9 + 20.0 * y + np.random.default_rng(1).normal(0, 1, len(y)), X[:, 1]])
    assert len(np.unique(stamps[:, 0].astype(np.float32))) == 1
    with pytest.raises(DataError, match="feature 0 .* varies only beyond float32's 7 significant digits"):
        model("kmeans").fit(stamps)
    centred = stamps - stamps.mean(axis=0)  # what the message asks for: then the groups are found
    assert model("kmeans").fit(centred, y).history_[-1].metrics["ari"] == 1.0
    with pytest.raises(DataError, match="not numbers"):
        model("kmeans").fit(X.astype(str))
    # numbers held as objects (pandas' nullable Float64 columns) are numbers
    assert model("kmeans").fit(X.astype(object), y).history_[-1].metrics["ari"] == 1.0
    # a column float64 only just resolves (shares that sum to 1, +- 2e-16) is rounding, not data
    ones = 1.0 + np.random.default_rng(2).choice([-2.2e-16, 0.0, 2.2e-16], len(y))
    assert model("kmeans").fit(np.column_stack([X, ones]), y).history_[-1].metrics["ari"] == 1.0


@pytest.mark.parametrize("raw", [
    np.repeat([0.2, 0.7], 60),  # floats: cast to int, both were class 0
    np.repeat(["b", "a"], 60),  # strings
    np.repeat([-1, 10**9], 60),  # a "noise" label and a large id (a table of 1e9 rows)
])
def test_raw_labels_score_as_their_codes(two_blobs, raw):
    X, y = two_blobs
    want = model("kmeans").fit(X, y).history_[-1].metrics
    got = model("kmeans").fit(X, raw).history_[-1].metrics
    assert got == want and got["ari"] == 1.0 and got["acc"] == 1.0


def test_bad_labels_are_refused_before_any_training(two_blobs):
    X, _ = two_blobs
    m = model("ganmm")
    with pytest.raises(DataError, match="missing"):
        next(m.fit_iter(X, np.r_[np.full(119, 1.0), np.nan]))
    assert not hasattr(m, "history_")


@pytest.mark.parametrize("name", MODELS)
def test_predict_needs_a_fit_and_rows_of_its_width(two_blobs, name):
    X, _ = two_blobs
    m = model(name)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        m.predict(X)
    stream = m.fit_iter(X)
    next(stream)  # iteration 0 done: the model can already predict, as the live views do
    assert m.predict_proba(X[:5]).shape == (5, 2)
    m.fit(X)
    with pytest.raises(DataError, match="have 3 features but the model was fitted on 2"):
        m.predict(np.zeros((4, 3)))
    with pytest.raises(DataError, match="NaN"):
        m.predict(np.full((1, 2), np.nan))
    assert m.predict_proba(np.zeros((0, 2))).shape == (0, 2)
    np.testing.assert_allclose(m.predict_proba(X).sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name,setting,message", [
    ("kmeans", dict(n_clusters=2.5), "n_clusters must be a whole number"),
    ("kmeans", dict(n_clusters=True), "n_clusters must be a whole number"),
    ("gmm", dict(seed=1.5), "seed must be a whole number"),
    ("gmm", dict(tol=float("nan")), "tol must be a finite number"),
    ("gmm", dict(reg_covar=-1.0), "reg_covar and n_snapshot_samples must be 0 or more"),
    ("gmm", dict(covariance_type=3), "covariance_type must be a string"),
    ("kmeans", dict(n_init=0), "n_init must be at least 1"),
    ("ganmm", dict(lr=-1e-4), "lr must be positive"),
    ("ganmm", dict(lr_classifier=0.0), "lr_classifier must be positive"),
    ("ganmm", dict(sigma0=float("nan")), "sigma0 must be a finite number"),
    ("ganmm", dict(min_prior=2.0), r"min_prior must lie in \[0, 1\]"),
    ("ganmm", dict(feature_noise=float("inf")), "feature_noise must be a finite number"),
    ("ganmm", dict(n_snapshot_samples=-1), "n_snapshot_samples must be 0 or more"),
    ("ganmm", dict(augment_scale=1.0), "augment_scale must be below 1"),
    ("ganmm", dict(time_budget=float("inf")), "time_budget must be a finite number"),
])
def test_settings_of_the_wrong_type_or_range_are_refused_when_made(name, setting, message):
    with pytest.raises(ConfigError, match=message):
        make_model(name, **setting)


def test_settings_that_are_right_still_pass():
    make_model("ganmm", time_budget=None, sigma_decay=None, posterior_average=None, lr=1, tol=-1)
    make_model("kmeans", n_clusters=np.int64(3), seed=np.uint32(7))
