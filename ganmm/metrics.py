"""Clustering metrics: purity, ARI, NMI, clustering accuracy, Rand index.

NMI uses the arithmetic mean of the two entropies as its normaliser (the
scikit-learn default); the dashboard says so next to the number.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, rand_score

METRIC_NAMES = ("purity", "ari", "nmi", "acc", "rand")


def contingency(labels: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """Counts table ``C[i, j]`` = points of class ``i`` put in cluster ``j``.

    Rows are the classes ``0..max(labels)``, columns the clusters
    ``0..max(clusters)``: a cluster id that never appears gives a zero column.
    """
    labels = np.asarray(labels, dtype=np.int64)
    clusters = np.asarray(clusters, dtype=np.int64)
    if labels.shape != clusters.shape:
        raise ValueError(f"labels {labels.shape} and clusters {clusters.shape} differ in length")
    if labels.size and (labels.min() < 0 or clusters.min() < 0):
        raise ValueError("labels and cluster ids must be 0 or more; encode them with ganmm.data.encode_labels")
    n_classes = int(labels.max()) + 1 if labels.size else 0
    n_clusters = int(clusters.max()) + 1 if clusters.size else 0
    table = np.zeros((n_classes, n_clusters), dtype=np.int64)
    np.add.at(table, (labels, clusters), 1)
    return table


def purity(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Share of points that carry their cluster's majority label."""
    table = contingency(labels, clusters)
    return float(table.max(axis=0).sum() / max(table.sum(), 1))


def accuracy(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Clustering accuracy: best one-to-one match of clusters to classes
    (Hungarian algorithm); unmatched clusters count as wrong."""
    table = contingency(labels, clusters)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / max(table.sum(), 1))


def all_metrics(labels: np.ndarray, clusters: np.ndarray) -> dict[str, float]:
    """Every metric of :data:`METRIC_NAMES` as plain floats."""
    labels = np.asarray(labels)
    clusters = np.asarray(clusters)
    return {
        "purity": purity(labels, clusters),
        "ari": float(adjusted_rand_score(labels, clusters)),
        "nmi": float(normalized_mutual_info_score(labels, clusters, average_method="arithmetic")),
        "acc": accuracy(labels, clusters),
        "rand": float(rand_score(labels, clusters)),
    }
