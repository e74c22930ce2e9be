"""DEC (Xie, Girshick & Farhadi 2016), the paper's deep clustering baseline.

Iteration 0: the autoencoder (``ganmm.embedding``, cached per data and seed)
encodes the data and k-means on the codes gives the initial centroids. Each EM
iteration then

    q_ij = (1 + |z_i - mu_j|^2 / alpha)^(-(alpha+1)/2), normalised over j
                                         Student's t soft assignment, all points
    p_ij = (q_ij^2 / f_j) / sum_j' (q_ij'^2 / f_j'),  f_j = sum_i q_ij
                                         the sharpened target, over the whole data
    then ``update_interval`` mini-batches of SGD on KL(P || Q) move the encoder
    and the centroids, and each point goes to argmax_j q_ij of the moved model

and the fit stops when at most ``tol`` of the points change cluster between two
target updates (patience 1), as DEC does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .base import BaseConfig, ClusterModel, StepResult
from . import embedding
from .embedding import AutoencoderConfig, embed, encoder_from
from .errors import ConfigError


def soft_assignment(Z, centroids, alpha: float = 1.0):
    """Student's t kernel between codes (N, m) and centroids (K, m), rows normalised.
    Works on numpy arrays and torch tensors alike."""
    d2 = ((Z[:, None, :] - centroids[None, :, :]) ** 2).sum(-1)  # (N, K)
    q = (1.0 + d2 / alpha) ** (-(alpha + 1.0) / 2.0)
    return q / q.sum(1, keepdims=True) if isinstance(q, np.ndarray) else q / q.sum(1, keepdim=True)


def target_distribution(q):
    """DEC's auxiliary target: p_ij = (q_ij^2 / f_j) normalised per row, f_j = sum_i q_ij."""
    weight = q ** 2 / q.sum(0)
    return weight / weight.sum(1, keepdims=True) if isinstance(weight, np.ndarray) \
        else weight / weight.sum(1, keepdim=True)


@dataclass(frozen=True)
class DECConfig(BaseConfig):
    """Settings of DEC."""

    autoencoder: AutoencoderConfig = field(default_factory=lambda: embedding.DEFAULT_CONFIG)
    """the pretrained autoencoder (shared with the embedded space through its cache)"""
    alpha: float = 1.0
    """degrees of freedom of the Student's t kernel"""
    update_interval: int = 20
    """mini-batches between two target updates: one EM iteration"""
    batch_size: int = 256
    lr: float = 0.01
    """SGD learning rate (momentum 0.9), as DEC"""
    n_init: int = 20
    """k-means restarts for the initial centroids"""
    tol: float = 0.001
    patience: int = 1
    max_iter: int = 200
    device: str = "auto"

    def validate(self) -> None:
        super().validate()
        self.autoencoder.validate()
        if not self.alpha > 0 or not self.lr > 0:
            raise ConfigError(f"alpha and lr must be positive; got {self.alpha}, {self.lr}")
        if self.update_interval < 1 or self.batch_size < 1 or self.n_init < 1:
            raise ConfigError("update_interval, batch_size and n_init must be at least 1")
        from .mixture import check_device

        check_device(self.device)


class DEC(ClusterModel):
    """Deep embedded clustering (see the module docstring)."""

    config_class = DECConfig
    name = "dec"
    config: DECConfig

    def _initialize(self, X: np.ndarray) -> StepResult:
        import torch
        from sklearn.cluster import KMeans as SKMeans

        from .mixture import resolve_device

        cfg = self.config
        self.device_ = resolve_device(cfg.device)
        emb = embed(X, seed=cfg.seed, config=cfg.autoencoder, device=cfg.device)
        self.pretrain_seconds_ = emb.seconds
        self.encoder_ = encoder_from(emb.weights, emb.layers).to(self.device_)
        km = SKMeans(cfg.n_clusters, n_init=cfg.n_init, random_state=cfg.seed).fit(emb.Z)
        self.centroids_ = torch.nn.Parameter(torch.as_tensor(km.cluster_centers_, dtype=torch.float32,
                                                             device=self.device_))
        self._opt = torch.optim.SGD([*self.encoder_.parameters(), self.centroids_], lr=cfg.lr, momentum=0.9)
        self._X = torch.from_numpy(X).to(self.device_)
        self._g = torch.Generator().manual_seed(cfg.seed)
        self._cursor, self._order = 0, torch.randperm(len(X), generator=self._g)
        a = km.labels_.astype(np.int64)
        self._q_now = None  # q of the current model, once computed (kept for the next iteration)
        return StepResult(a, {}, None, {"centroids": km.cluster_centers_.astype(np.float32),
                                        "pretrain_seconds": emb.seconds, "ae_cached": emb.cached})

    def _q(self):
        import torch

        with torch.no_grad():
            Z = torch.cat([self.encoder_(self._X[i:i + 4096]) for i in range(0, len(self._X), 4096)])
            return soft_assignment(Z, self.centroids_, self.config.alpha)

    def _iterate(self, iteration: int) -> StepResult:
        import torch

        cfg = self.config
        q = self._q_now if self._q_now is not None else self._q()  # (N, K), all points
        p = target_distribution(q)  # the target, over the whole data set
        n, b = len(self._X), min(cfg.batch_size, len(self._X))
        total, steps = 0.0, 0
        for _ in range(cfg.update_interval):
            if self._past_deadline():
                break
            if self._cursor + b > n:
                self._cursor, self._order = 0, torch.randperm(n, generator=self._g)
            idx = self._order[self._cursor:self._cursor + b].to(self.device_)
            self._cursor += b
            q_batch = soft_assignment(self.encoder_(self._X[idx]), self.centroids_, cfg.alpha)
            loss = torch.nn.functional.kl_div(q_batch.log(), p[idx], reduction="batchmean")
            self._opt.zero_grad(set_to_none=True)
            loss.backward()
            self._opt.step()
            total += float(loss.detach())
            steps += 1
        losses = {"kl": total / max(steps, 1)}
        # the clusters after this interval's training: the first comparison is with
        # the k-means start (DEC's own loop skips its check before any training);
        # this q is also the next iteration's, so it is kept
        self._q_now = self._q()
        a = self._q_now.argmax(1)
        return StepResult(a.cpu().numpy(), losses, None,
                          {"centroids": self.centroids_.detach().cpu().numpy()})

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            Z = self.encoder_(torch.as_tensor(np.asarray(X, dtype=np.float32), device=self.device_))
            return soft_assignment(Z, self.centroids_, self.config.alpha).cpu().numpy()
