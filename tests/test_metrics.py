"""Metrics against scikit-learn and against hand-computed cases."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, rand_score
from sklearn.metrics.cluster import contingency_matrix

from ganmm.metrics import accuracy, all_metrics, contingency, purity


def test_hand_computed_case():
    labels = np.array([0, 0, 0, 1, 1, 1])
    clusters = np.array([1, 1, 0, 0, 0, 0])
    # cluster 1 = {0,0} majority 2; cluster 0 = {0,1,1,1} majority 3 -> 5/6
    assert purity(labels, clusters) == pytest.approx(5 / 6)
    # best matching: cluster1->class0 (2), cluster0->class1 (3) -> 5/6
    assert accuracy(labels, clusters) == pytest.approx(5 / 6)
    np.testing.assert_array_equal(contingency(labels, clusters), [[1, 2], [3, 0]])


def test_permuted_cluster_ids_change_nothing():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 300)
    clusters = np.where(rng.random(300) < 0.8, labels, rng.integers(0, 4, 300))
    perm = np.array([2, 0, 3, 1])
    assert all_metrics(labels, clusters) == pytest.approx(all_metrics(labels, perm[clusters]))
    assert all_metrics(labels, clusters)["acc"] == pytest.approx(np.mean(labels == clusters))


def test_cluster_ids_that_never_appear_and_k_unlike_classes():
    labels = np.array([0, 0, 1, 1, 2, 2])
    clusters = np.array([5, 5, 5, 7, 7, 7])  # 2 clusters used out of 8 ids
    table = contingency(labels, clusters)
    assert table.shape == (3, 8) and table.sum() == 6
    assert purity(labels, clusters) == pytest.approx(4 / 6)
    assert accuracy(labels, clusters) == pytest.approx(4 / 6)  # only 2 clusters can match


@pytest.mark.parametrize("seed", range(5))
def test_against_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, 500)
    clusters = rng.integers(0, 7, 500)
    m = all_metrics(labels, clusters)
    assert m["ari"] == pytest.approx(adjusted_rand_score(labels, clusters))
    assert m["nmi"] == pytest.approx(normalized_mutual_info_score(labels, clusters, average_method="arithmetic"))
    assert m["rand"] == pytest.approx(rand_score(labels, clusters))
    cm = contingency_matrix(labels, clusters)
    assert m["purity"] == pytest.approx(cm.max(axis=0).sum() / cm.sum())
    np.testing.assert_array_equal(contingency(labels, clusters), cm)


def test_perfect_and_single_cluster():
    labels = np.array([0, 0, 1, 1])
    assert all_metrics(labels, np.array([1, 1, 0, 0])) == pytest.approx(
        {"purity": 1, "ari": 1, "nmi": 1, "acc": 1, "rand": 1})
    one = all_metrics(labels, np.zeros(4, int))
    assert one["purity"] == pytest.approx(0.5) and one["ari"] == pytest.approx(0.0)


def test_negative_ids_are_refused():
    with pytest.raises(ValueError, match="0 or more"):
        purity(np.array([-1, 0, 1]), np.array([0, 0, 1]))
