"""The stepped Gaussian mixture and k-means against scikit-learn."""

import numpy as np
import pytest
from sklearn.cluster import KMeans as SkKMeans
from sklearn.datasets import make_blobs
from sklearn.mixture import GaussianMixture

from ganmm.baselines import GMM, KMeans


@pytest.fixture
def blobs():
    X, y = make_blobs(300, centers=3, cluster_std=1.0, random_state=3)
    return X.astype(np.float32), y


@pytest.mark.parametrize("cov", ["full", "diag", "tied", "spherical"])
def test_stepped_gmm_equals_scikit_learn_em(blobs, cov):
    X, y = blobs
    steps = 6
    ours = GMM(n_clusters=3, covariance_type=cov, max_iter=steps - 1, tol=-1, seed=0)
    snaps = list(ours.fit_iter(X, y))
    assert len(snaps) == steps
    ref = GaussianMixture(3, covariance_type=cov, reg_covar=1e-4, max_iter=steps, tol=0,
                          random_state=0, init_params="kmeans").fit(X)
    np.testing.assert_allclose(ours.gmm_.means_, ref.means_, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(snaps[-1].assignments, ref.predict(X))
    # EM never lowers the likelihood
    ll = [s.extras["log_likelihood"] for s in snaps]
    assert all(b >= a - 1e-6 for a, b in zip(ll, ll[1:]))
    assert snaps[-1].samples.shape == (3, 16, 2)
    assert snaps[-1].extras["covariances"].shape == (3, 2, 2)


def test_kmeans_matches_scikit_learn_quality(blobs):
    X, y = blobs
    ours = KMeans(n_clusters=3, seed=0).fit(X, y)
    ref = SkKMeans(3, n_init=10, random_state=0).fit(X)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-3)
    assert ours.history_[-1].metrics["ari"] == pytest.approx(1.0, abs=0.02)
    assert ours.converged_
    # inertia never rises along Lloyd's steps
    inertia = [s.extras["inertia"] for s in ours.history_]
    assert all(b <= a + 1e-6 for a, b in zip(inertia, inertia[1:]))


def test_kmeans_empty_clusters_take_distinct_far_points():
    from ganmm.baselines import _lloyd_assign, _lloyd_update

    X = np.array([[i, i] for i in range(12)], dtype=np.float64)
    centers = np.array([[1, 1], [100, 100], [-100, -100]], dtype=np.float64)  # two centers own nothing
    a, _ = _lloyd_assign(X, centers)
    assert np.bincount(a, minlength=3).tolist() == [12, 0, 0]
    new = _lloyd_update(X, a, centers)
    a2, _ = _lloyd_assign(X, new)
    assert (np.bincount(a2, minlength=3) > 0).all()  # every cluster has points again
    assert len({tuple(c) for c in new[1:]}) == 2


def test_kmeans_update_gives_each_cluster_the_mean_of_its_points():
    from ganmm.baselines import _lloyd_assign, _lloyd_update

    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 7))
    centers = X[rng.choice(500, 6, replace=False)]
    a, inertia = _lloyd_assign(X, centers)
    assert _lloyd_assign(X, centers, (X * X).sum(1))[1] == pytest.approx(inertia)  # with kept norms: the same
    assert inertia == pytest.approx(((X - centers[a]) ** 2).sum())
    new = _lloyd_update(X, a, centers)
    for j in range(6):
        assert np.allclose(new[j], X[a == j].mean(0))


def test_kmeans_with_zero_iterations_still_gives_a_partition(blobs):
    X, y = blobs
    model = KMeans(n_clusters=3, seed=0, max_iter=0).fit(X, y)
    assert len(model.history_) == 1 and model.history_[0].metrics["ari"] > 0.9
