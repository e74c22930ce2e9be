"""Baselines under the same contract as GANMM: a Gaussian mixture fitted by EM,
stepped one EM iteration per Snapshot, and k-means, stepped one Lloyd
iteration per Snapshot."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.cluster import kmeans_plusplus
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from .base import BaseConfig, ClusterModel, StepResult
from .errors import ConfigError


@dataclass(frozen=True)
class GMMConfig(BaseConfig):
    """Settings of the Gaussian mixture."""

    covariance_type: str = "full"
    """"full", "tied", "diag" or "spherical" (scikit-learn's meaning)"""
    reg_covar: float = 1e-4
    """added to the covariance diagonals: keeps constant pixels from making them singular"""
    init: str = "kmeans"
    """initial responsibilities: "kmeans" or "random" (scikit-learn's init_params)"""
    n_snapshot_samples: int = 16
    """points drawn from each component for the snapshot"""

    def validate(self) -> None:
        super().validate()
        if self.covariance_type not in ("full", "tied", "diag", "spherical"):
            raise ConfigError("covariance_type must be one of full, tied, diag, spherical; "
                              f"got {self.covariance_type!r}")
        if self.init not in ("kmeans", "random"):
            raise ConfigError(f"init must be kmeans or random; got {self.init!r}")
        if self.reg_covar < 0 or self.n_snapshot_samples < 0:
            raise ConfigError("reg_covar and n_snapshot_samples must be 0 or more; got "
                              f"{self.reg_covar}, {self.n_snapshot_samples}")


class GMM(ClusterModel):
    """Gaussian mixture fitted by EM, one E+M step per snapshot.

    Wraps scikit-learn's ``GaussianMixture`` with ``warm_start=True,
    max_iter=1``: each ``fit`` call continues from the previous parameters, so
    the sequence of parameters is exactly EM's. Iteration 0 is the state after
    initialisation and the first EM step, so ``max_iter=N`` makes N+1 EM steps.
    The snapshot's ``log_likelihood`` is the mean log-likelihood per point.
    """

    config_class = GMMConfig
    name = "gmm"
    config: GMMConfig

    def _initialize(self, X: np.ndarray) -> StepResult:
        cfg = self.config
        self._X = X
        self.gmm_ = GaussianMixture(
            cfg.n_clusters, covariance_type=cfg.covariance_type, reg_covar=cfg.reg_covar,
            init_params=cfg.init, max_iter=1, warm_start=True, random_state=cfg.seed, tol=0.0)
        return self._step()

    def _iterate(self, iteration: int) -> StepResult:
        return self._step()

    def _step(self) -> StepResult:
        g = self.gmm_
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            g.fit(self._X)
        a = g.predict(self._X)
        log_likelihood = float(g.score(self._X))
        extras = {"means": g.means_.astype(np.float32), "covariances": self._full_covariances(),
                  "weights": g.weights_.astype(np.float32), "log_likelihood": log_likelihood}
        return StepResult(a, {"neg_log_likelihood": -log_likelihood}, self._samples(), extras)

    def _full_covariances(self) -> np.ndarray:
        """(K, d, d) for every covariance type (for ellipses); diagonal only when d is large."""
        g, k, d = self.gmm_, self.config.n_clusters, self._X.shape[1]
        cov = g.covariances_
        if g.covariance_type == "full":
            return cov.astype(np.float32) if d <= 64 else np.stack([np.diag(c) for c in cov]).astype(np.float32)
        if g.covariance_type == "tied":
            full = np.broadcast_to(cov, (k, d, d))
            return full.astype(np.float32) if d <= 64 else np.stack([np.diag(c) for c in full]).astype(np.float32)
        diag = cov if g.covariance_type == "diag" else np.repeat(cov[:, None], d, axis=1)
        return (np.stack([np.diag(c) for c in diag]) if d <= 64 else diag).astype(np.float32)

    def _samples(self) -> np.ndarray:
        """Draws from each component, (K, S, d)."""
        g, cfg = self.gmm_, self.config
        rng = np.random.default_rng(cfg.seed)
        s, d = cfg.n_snapshot_samples, self._X.shape[1]
        z = rng.standard_normal((cfg.n_clusters, s, d))
        if g.covariance_type == "full":
            chol = np.linalg.cholesky(g.covariances_)
            out = g.means_[:, None, :] + np.einsum("kij,ksj->ksi", chol, z)
        elif g.covariance_type == "tied":
            out = g.means_[:, None, :] + z @ np.linalg.cholesky(g.covariances_).T
        elif g.covariance_type == "diag":
            out = g.means_[:, None, :] + z * np.sqrt(g.covariances_)[:, None, :]
        else:
            out = g.means_[:, None, :] + z * np.sqrt(g.covariances_)[:, None, None]
        return out.astype(np.float32)

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.gmm_.predict_proba(np.asarray(X, dtype=np.float32))


@dataclass(frozen=True)
class KMeansConfig(BaseConfig):
    """Settings of k-means."""

    n_init: int = 10
    """k-means++ seedings tried; the run steps from the one with the lowest final inertia"""
    tol: float = 0.0
    """stop when no point changes cluster (with patience 1)"""
    patience: int = 1
    """iterations without change needed to stop"""
    max_iter: int = 300
    """cap on Lloyd iterations"""

    def validate(self) -> None:
        super().validate()
        if self.n_init < 1:
            raise ConfigError(f"n_init must be at least 1, got {self.n_init}")


def _lloyd_assign(X: np.ndarray, centers: np.ndarray,
                  x2: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Nearest center of every row, and the inertia. ``x2``: the rows' squared
    norms, ``(X * X).sum(1)``, when the caller keeps them (they never change
    during a fit; on mnist5k they were a third of an assignment's time)."""
    x2 = (X * X).sum(1) if x2 is None else x2
    d2 = x2[:, None] - 2 * X @ centers.T + (centers * centers).sum(1)[None, :]
    a = d2.argmin(1)
    return a, float(np.maximum(d2[np.arange(len(X)), a], 0).sum())


def _lloyd_update(X: np.ndarray, a: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """New centers as cluster means; the empty clusters take the points farthest
    from their centers (a different point each), so no cluster stays empty.

    The sums are one product of the sparse (K, N) membership matrix with X:
    ``np.add.at`` took 50 ms per update on mnist5k against 4 ms, and a k-means
    fit there (10 seedings, each run to convergence) about 40 s against 8.5."""
    k, n = len(centers), len(X)
    members = sparse.csr_matrix((np.ones(n, dtype=X.dtype), (a, np.arange(n))), shape=(k, n))
    sums = np.asarray(members @ X)
    counts = np.bincount(a, minlength=k)
    new = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centers)
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        far = np.argsort(-((X - centers[a]) ** 2).sum(1), kind="stable")[:len(empty)]
        new[empty[:len(far)]] = X[far]
    return new


class KMeans(ClusterModel):
    """Lloyd's k-means, one assignment + update per snapshot.

    Seeds with k-means++ (scikit-learn); of ``n_init`` seedings the one whose
    converged inertia is lowest is replayed step by step.
    """

    config_class = KMeansConfig
    name = "kmeans"
    config: KMeansConfig

    def _initialize(self, X: np.ndarray) -> StepResult:
        cfg = self.config
        self._X = X.astype(np.float64)
        self._x2 = (self._X * self._X).sum(1)
        rng = np.random.RandomState(cfg.seed)
        best, best_inertia = None, np.inf
        for _ in range(max(cfg.n_init, 1)):
            seeds, _ = kmeans_plusplus(self._X, cfg.n_clusters, x_squared_norms=self._x2, random_state=rng)
            inertia = self._converged_inertia(seeds)
            if inertia < best_inertia:
                best, best_inertia = seeds, inertia
        self.cluster_centers_ = best
        return self._step()

    def _converged_inertia(self, centers: np.ndarray) -> float:
        a_old, (a, inertia) = None, _lloyd_assign(self._X, centers, self._x2)
        for _ in range(self.config.max_iter):
            if a_old is not None and np.array_equal(a, a_old):
                break
            centers, a_old = _lloyd_update(self._X, a, centers), a
            a, inertia = _lloyd_assign(self._X, centers, self._x2)
        return inertia

    def _iterate(self, iteration: int) -> StepResult:
        return self._step()

    def _step(self) -> StepResult:
        a, inertia = _lloyd_assign(self._X, self.cluster_centers_, self._x2)
        self.cluster_centers_ = _lloyd_update(self._X, a, self.cluster_centers_)
        self.inertia_ = inertia
        samples = self.cluster_centers_[:, None, :].astype(np.float32)  # (K, 1, d): the centers
        return StepResult(a, {"inertia": inertia}, samples,
                          {"centers": self.cluster_centers_.astype(np.float32), "inertia": inertia})

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        """One-hot of the nearest center (k-means has no soft posterior)."""
        a, _ = _lloyd_assign(np.asarray(X, dtype=np.float64), self.cluster_centers_)
        return np.eye(self.config.n_clusters)[a]
