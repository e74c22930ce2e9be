"""GANMM (epsilon-EM with a classifier E-step) and GANMM-EM (its hard-EM ablation).

Yu & Zhou, "Mixture of GANs for Clustering", IJCAI 2018. One EM iteration:

    _train_classifier   E-step, part 1: h learns to tell the generators apart
                        on generated samples, generator i drawn with prob |D_i|/|D|
    _posterior          h_i(x) for every point
    assign              argmax_i h_i(x)
    _augment            epsilon-EM: each D_i borrows sigma_t points of D - D_i
                        with the highest h_i(x); sigma_t shrinks to zero
    _train_gans         M-step: every WGAN trains on its (augmented) part

All K GANs are one batched ensemble (``ganmm.nets``); nothing loops over K.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from .base import BaseConfig, ClusterModel, StepResult
from .errors import ConfigError
from .augment import image_side, random_affine
from .nets import (Classifier, MLPCritic, MLPGenerator, build_gans, generator_gradients, kept_tensor,
                   reset_parameters)


@contextlib.contextmanager
def denormals_flushed(device: torch.device):
    """Within this block, on CPU, denormal floats (the tiny gradients and Adam
    moments of a long fit, which x86 CPUs compute many times slower) are
    flushed to zero. The setting is the calling thread's; it is put back to
    the default after, so that other code in the thread (and libraries that
    check for it) still see IEEE floats."""
    on = device.type == "cpu" and torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if on:
            torch.set_flush_denormal(False)


@dataclass(frozen=True)
class GANMMConfig(BaseConfig):
    """Settings of GANMM and GANMM-EM. ``GANMMConfig.from_preset(name)`` gives the presets."""

    preset: str = "default"
    """name of the preset these settings started from (informational)"""
    max_iter: int = 3000
    """cap on EM iterations (an iteration takes a fraction of a second)"""
    time_budget: float | None = 600.0
    """stop after the iteration during which this many seconds passed (None: no limit)"""
    init: str = "kmeans"
    """initial split: "random" (equal random parts, as the paper) or "kmeans" """
    arch: str = "auto"
    """network family: "mlp", "conv" (28x28 images only), or "auto" (mlp)"""
    z_dim: int = 32
    """generator noise size"""
    hidden: int = 128
    """width of the MLP generators, critics and the classifier"""
    channels: int = 16
    """base channel count of the convolutional family"""
    loss: str = "gp"
    """WGAN variant: "gp" (gradient penalty) or "clip" (weight clipping)"""
    clip: float = 0.01
    """critic weight clipping bound (loss="clip")"""
    gp_weight: float = 10.0
    """gradient penalty weight (loss="gp")"""
    optimizer: str = "adam"
    """"adam" (betas 0.5, 0.9) or "rmsprop" for generators, critics and classifier"""
    lr: float = 1e-4
    """learning rate of generators and critics"""
    lr_classifier: float = 1e-3
    """learning rate of the classifier h"""
    batch_size: int = 64
    """real and generated points per GAN per step"""
    n_critic: int = 3
    """critic steps per generator step"""
    n_pretrain: int = 200
    """generator steps per GAN on the initial split, before EM"""
    n_epoch: int = 5
    """generator steps per GAN in each M-step"""
    classifier_steps: int = 10
    """classifier updates per E-step (the classifier is warm-started)"""
    classifier_warmup: int = 200
    """classifier updates in the first E-step, where the classifier starts untrained
    (a few steps there leave it guessing, and its prior-weighted guesses can hand
    every point to the largest cluster)"""
    classifier_batch: int = 64
    """generated points per generator in each classifier update"""
    classifier_augment: str = "auto"
    """what the classifier's generated training points go through: "affine" (a
    random small turn, shift and zoom of each image, ``ganmm.augment``), "noise"
    (Gaussian noise, ``feature_noise``), "none", or "auto": affine for square
    images in [0, 1], noise for other data of 3 or more features (an embedded
    space's codes, tables), none for 2-D points (on the thin shapes of the 2-D
    sets, noise blurred moons; benchmarks/quality.md)"""
    augment_rotation: float = 15.0
    """affine: largest turn, in degrees"""
    augment_shift: float = 0.12
    """affine: largest shift, as a fraction of half the image side (0.12: 1.7 px of 28)"""
    augment_scale: float = 0.1
    """affine: largest zoom in or out (0.1: 0.9x to 1.1x)"""
    classifier_noise: float = 0.1
    """affine: standard deviation of the Gaussian pixel noise added after the move
    (every pixel of a step its own value; on a CPU from a pool of draws renewed a
    tenth per classifier step: ``GANMM._add_pixel_noise``)"""
    feature_noise: float = 0.2
    """noise: standard deviation of the Gaussian noise added to each generated
    point, in units of each feature's standard deviation in the data (on
    mnist5k's embedded codes, seeds 0 and 2, 150 s: purity / ARI / NMI 0.893 /
    0.822 / 0.857 with 0.2, 0.843 / 0.758 / 0.821 without; benchmarks/quality.md)"""
    posterior_average: float | None = None
    """weight ``a`` of the past in the running average of the E-step's posterior,
    ``hbar_t = a * hbar_(t-1) + (1 - a) * h_t``, by which points are assigned and
    borrowed (a stochastic-approximation E-step, as online EM averages its
    statistics: a classifier that takes 10 steps per iteration gives a noisy h_t,
    and points near a boundary would flip with it). 0: h_t itself, as the paper.
    None: 0.9 where the classifier sees noisy points ("noise"), 0 otherwise.
    ``predict_proba`` gives the current classifier's h(x)"""
    augment: str = "topk"
    """epsilon-EM borrowing: "topk" (each D_i borrows the sigma_t points of D - D_i
    with the highest h_i, DESIGN.md) or "proportional" (the reference code: a
    share of each real batch drawn from D - D_i with probability ~ h_i)"""
    sigma0: float = 0.2
    """topk: sigma_1 as a fraction of N/K"""
    sigma_decay: float | None = None
    """topk: sigma_t = sigma0 * N/K * sigma_decay**(t-1), rounded down. None: 0.99
    when the classifier sees moved images (borrowing fades over ~460 iterations on
    mnist5k, K=10), 0.7 otherwise (gone after ~15): on 2-D sets, long borrowing
    lets the generators spread into each other's parts until a cluster empties"""
    own_schedule: tuple[tuple[int, int], ...] = ((500, 25), (1000, 40), (2000, 45))
    """proportional: (GAN steps before which, own points per batch of 50); after
    the last threshold ``own_final``"""
    own_final: int = 48
    """proportional: own points per batch of 50 after the last threshold"""
    min_prior: float = 0.5
    """floor of each generator's share, as a fraction of 1/K, when weighting its
    samples for the classifier: a shrinking cluster keeps a voice (at 0.1, one of
    three GANMM runs on the 2-D spirals emptied a cluster; benchmarks/quality.md)"""
    n_snapshot_samples: int = 16
    """generated samples per generator kept in a snapshot"""
    samples_every: int = 10
    """snapshots carry generated samples on iterations 0, N, 2N, ... and on the last
    one: EM iterations take a fraction of a second, and samples in every one of
    them would fill the run store (the live view shows the latest stored ones)"""
    device: str = "auto"
    """"auto" (CUDA when present, else CPU), "cpu" or "cuda" """
    patience: int = 20
    """converged after this many calm iterations in a row (tol): an EM iteration
    here is short (5 generator and 10 classifier steps), so 20 of them hold about
    the training that 3 iterations of the classic preset did"""

    def validate(self) -> None:
        super().validate()
        choices = {"init": ("random", "kmeans"), "arch": ("auto", "mlp", "conv"),
                   "loss": ("gp", "clip"), "optimizer": ("adam", "rmsprop"),
                   "augment": ("topk", "proportional"), "device": ("auto", "cpu", "cuda"),
                   "classifier_augment": ("auto", "affine", "noise", "none")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}")
        for name in ("batch_size", "n_critic", "z_dim", "hidden", "channels", "classifier_batch",
                     "samples_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("classifier_steps", "classifier_warmup", "n_epoch", "n_pretrain"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be 0 or more, got {getattr(self, name)}")
        if self.posterior_average is not None and not 0.0 <= self.posterior_average < 1.0:
            raise ConfigError("posterior_average must lie in [0, 1) (or be None: automatic); "
                              f"got {self.posterior_average}")
        for name in ("lr", "lr_classifier", "clip"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("gp_weight", "sigma0", "feature_noise", "classifier_noise", "augment_rotation",
                     "augment_shift", "augment_scale", "n_snapshot_samples"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name} must be 0 or more, got {getattr(self, name)}")
        if not self.augment_scale < 1:
            raise ConfigError(f"augment_scale must be below 1 (a zoom of 1 +- it), got {self.augment_scale}")
        if not 0.0 <= self.min_prior <= 1.0:
            raise ConfigError(f"min_prior must lie in [0, 1] (a fraction of 1/K), got {self.min_prior}")
        if self.sigma_decay is not None and not 0.0 < self.sigma_decay <= 1.0:
            raise ConfigError(f"sigma_decay must lie in (0, 1] (or be None: automatic); got {self.sigma_decay}")
        owns = [count for _, count in self.own_schedule] + [self.own_final]
        if any(not 0 <= c <= 50 for c in owns):
            raise ConfigError(f"own points per batch of 50 must lie in 0..50; got {owns}")
        check_device(self.device)

    @staticmethod
    def from_preset(name: str, **overrides) -> "GANMMConfig":
        """The settings of preset ``name`` (see :data:`PRESETS`), with overrides."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return replace(GANMMConfig(), preset=name, **{**PRESETS[name], **overrides})


PRESETS: dict[str, dict] = {
    # WGAN-GP with Adam (lr 1e-4), MLPs of width 128, 3 critic steps, 5 generator
    # steps per M-step, 10 classifier steps per E-step on moved images, sigma_t
    # fading over ~450 iterations (~15 on other data), k-means initial split,
    # converged after 20 calm iterations, each generator's share floored at half the
    # average for the classifier: an EM iteration in about 0.18 s on mnist5k on
    # one 2-core CPU, 0.4-0.5 s on a slower one (benchmarks/quality.md has the tables
    # that chose each setting).
    "default": {},
    # The default preset before the quality work (kept to compare with): width 256,
    # 30 generator steps per M-step, 50 classifier steps on plain generated
    # samples, sigma_t gone after ~15 iterations, 50 iterations, no time budget.
    "classic": dict(hidden=256, n_epoch=30, classifier_steps=50, sigma_decay=0.7, classifier_augment="none",
                    samples_every=1, max_iter=50, time_budget=None, patience=3,
                    min_prior=0.1),
    # The reference implementation (eyounx/GANMM): weight clipping 0.01, RMSProp
    # 5e-5 for G, D and h, batch 50, 5 critic steps, 500 pretraining steps,
    # random initial split, real batches of 25/40/45/48 own points of 50.
    "paper": dict(init="random", loss="clip", clip=0.01, optimizer="rmsprop", lr=5e-5,
                  lr_classifier=5e-5, batch_size=50, n_critic=5, n_pretrain=500,
                  n_epoch=100, classifier_steps=100, classifier_batch=50,
                  augment="proportional", hidden=256, classifier_augment="none", samples_every=1,
                  patience=3, min_prior=0.1),
}


def resolve_device(name: str) -> torch.device:
    """"auto" -> CUDA when present, else CPU; "cuda" without a GPU is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    check_device(name)
    return torch.device(name)


def check_device(name: str) -> None:
    """A ConfigError, saying what to choose, for a device this machine does not have."""
    if name not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu or cuda; got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but no CUDA GPU is available; use 'auto' or 'cpu'")


def initial_split(X: np.ndarray, k: int, how: str, seed: int) -> np.ndarray:
    """Step 1: ``k`` equal random parts, or a k-means partition."""
    rng = np.random.default_rng(seed)
    if how == "kmeans":
        from sklearn.cluster import KMeans
        return KMeans(k, n_init=3, random_state=seed).fit_predict(X).astype(np.int64)
    a = np.arange(len(X)) % k
    return rng.permutation(a).astype(np.int64)


class GANMM(ClusterModel):
    """Mixture of GANs fitted by epsilon-EM (see the module docstring)."""

    config_class = GANMMConfig
    name = "ganmm"
    config: GANMMConfig
    closed_form_gradients = True
    """compute the GAN steps' gradients by hand where the networks are the MLP
    family (``ganmm.nets``: ``MLPCritic.wgan_gp_gradients`` for the critic step,
    ``generator_gradients`` for the generator step); False: autograd, with the
    gradient penalty's double backward (the benchmark measures both)"""
    POOL_RENEWAL = 10
    """the classifier's pixel-noise pool is wholly redrawn every this many steps
    (``_add_pixel_noise``)"""

    # ------------------------------------------------------------------ set-up
    def _step_scope(self) -> contextlib.AbstractContextManager:
        return denormals_flushed(resolve_device(self.config.device))

    def _initialize(self, X: np.ndarray) -> StepResult:
        cfg = self.config
        self.device_ = resolve_device(cfg.device)
        dev = self.device_
        n, d = X.shape
        k = cfg.n_clusters
        self._g = torch.Generator(device=dev).manual_seed(cfg.seed)
        self._g_host = torch.Generator().manual_seed(cfg.seed)  # draws the host acts on (slice offsets)
        self._grid_cache: dict = {}  # the classifier's image moves reuse their grid's memory
        self._buffers: dict[str, torch.Tensor] = {}  # memory the steps keep (``_buffer``)
        self._X = torch.from_numpy(X).to(dev)  # (N, d), on the device once
        images01 = bool(X.min() >= 0.0 and X.max() <= 1.0 and d >= 16)
        self._side = image_side(X) if cfg.classifier_augment in ("auto", "affine") else None
        if cfg.classifier_augment == "affine" and self._side is None:
            raise ConfigError("classifier_augment 'affine' needs square images with values in [0, 1] "
                              f"(the data has {d} features); choose 'auto', 'noise' or 'none'")
        self.classifier_augment_ = cfg.classifier_augment if cfg.classifier_augment != "auto" else (
            "affine" if self._side is not None else "noise" if d >= 3 else "none")
        self._noise_scale = None
        if self.classifier_augment_ == "noise" and cfg.feature_noise > 0:
            self._noise_scale = cfg.feature_noise * self._X.std(0, keepdim=True) if n > 1 else None
        self.sigma_decay_ = cfg.sigma_decay if cfg.sigma_decay is not None else (
            0.99 if self._side is not None else 0.7)
        self.posterior_average_ = cfg.posterior_average if cfg.posterior_average is not None else (
            0.9 if self.classifier_augment_ == "noise" else 0.0)
        self._build_networks(d, images01)
        self._z_fixed = self._noise(k, cfg.n_snapshot_samples)
        self._gan_steps = 0  # generator steps so far
        self._em_steps: int | None = None  # generator steps since EM began (None: pretraining)
        self._sigma = 0
        self._extra = torch.empty(k, 0, dtype=torch.long, device=dev)  # (K, s) borrowed points
        # h(x) before any E-step: uniform, with a seeded jitter so that ties between
        # points (which ones a small part borrows) are broken at random, not by row order
        jitter = 1e-6 * torch.rand(n, k, generator=self._g, device=dev)
        self._post = torch.full((n, k), 1.0 / k, device=dev) + jitter
        a = initial_split(X, k, cfg.init, cfg.seed)
        self._set_assignments(torch.from_numpy(a).to(dev))
        self._borrow(0)
        losses = self._train_gans(cfg.n_pretrain)  # step 2: pretraining
        self._em_steps = 0
        return StepResult(a, losses, self._samples(), {"sigma": 0, "gan_steps": self._gan_steps})

    def _build_networks(self, d: int, images01: bool) -> None:
        """The K generators and critics (one batched ensemble each), the classifier
        and their optimizers, drawn from the seed."""
        cfg = self.config
        arch = cfg.arch if cfg.arch != "auto" else "mlp"
        G, D = build_gans(cfg.n_clusters, d, arch=arch, z_dim=cfg.z_dim, hidden=cfg.hidden,
                          channels=cfg.channels, sigmoid=images01)
        C = Classifier(d, cfg.n_clusters, cfg.hidden)
        cpu_g = torch.Generator().manual_seed(cfg.seed)
        for net in (G, D, C):
            reset_parameters(net, cpu_g)
        self.G_, self.D_, self.C_ = G.to(self.device_), D.to(self.device_), C.to(self.device_)
        self._opt_g = self._optimizer(G.parameters(), cfg.lr)
        self._opt_d = self._optimizer(D.parameters(), cfg.lr)
        self._opt_c = self._optimizer(C.parameters(), cfg.lr_classifier)

    def _optimizer(self, params, lr: float) -> torch.optim.Optimizer:
        """Adam (fused: one kernel for all parameters, about 2x faster steps on a
        CPU than the per-tensor loop) or RMSProp (multi-tensor)."""
        if self.config.optimizer == "rmsprop":
            return torch.optim.RMSprop(params, lr=lr, foreach=True)
        return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.9), fused=True)

    # ------------------------------------------------------------ one EM step
    def _iterate(self, iteration: int) -> StepResult:
        cfg = self.config
        c_loss, c_acc = self._train_classifier(  # E-step (a)
            max(cfg.classifier_warmup, cfg.classifier_steps) if iteration == 1 else None)
        post = self._posterior(self._X)  # (N, K)
        w = self.posterior_average_ if iteration > 1 else 0.0
        self._post = torch.lerp(post, self._post, w) if w > 0 else post  # w * past + (1 - w) * now
        a = self._post.argmax(dim=1)  # E-step (b): assignment
        self._set_assignments(a)
        self._augment(iteration)  # epsilon-EM
        losses = self._train_gans(cfg.n_epoch)  # M-step
        losses["classifier"] = c_loss
        extras = {"sigma": self._sigma, "classifier_acc": c_acc, "gan_steps": self._gan_steps}
        return StepResult(a.cpu().numpy(), losses, self._samples_of(iteration), extras)

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Memory of ``shape`` kept from step to step and from iteration to
        iteration (:func:`ganmm.nets.kept_tensor`), for the steps' big
        intermediates: real and generated batches, the classifier's images and
        pixel noise."""
        return kept_tensor(self._buffers, name, shape, self._X.device, dtype)  # the data's device: cuda:0, not cuda

    def _set_assignments(self, a: torch.Tensor) -> None:
        """Index the parts D_i so that real batches can be drawn with tensor ops."""
        k = self.config.n_clusters
        self._a = a
        self._order = torch.argsort(a, stable=True)  # point ids grouped by cluster
        self._counts = torch.bincount(a, minlength=k)  # (K,)
        self._starts = torch.cumsum(self._counts, 0) - self._counts  # (K,)

    def _priors(self) -> torch.Tensor:
        """|D_i| / |D|, floored at ``min_prior / K`` and renormalised."""
        k = self.config.n_clusters
        p = self._counts.float() / self._counts.sum()
        p = torch.clamp(p, min=self.config.min_prior / k)
        return p / p.sum()

    def _noise(self, k: int, n: int) -> torch.Tensor:
        """Generator inputs: ``n`` draws of z for each of ``k`` generators, (k, n, z_dim)."""
        return torch.randn(k, n, self.config.z_dim, generator=self._g, device=self.device_)

    def _generate(self, n: int, z: torch.Tensor | None = None, *, G: torch.nn.Module | None = None,
                  k: int | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` samples of each of the ``k`` generators of ``G`` (default: all K), (k, n, d);
        ``out``: where to write them (MLP generators, no graph kept)."""
        k = self.config.n_clusters if k is None else k
        G = self.G_ if G is None else G
        z = self._noise(k, n) if z is None else z
        return G(z) if out is None else G(z, out=out)

    def _train_classifier(self, steps: int | None = None) -> tuple[float, float]:
        """``steps`` updates (default ``classifier_steps``) of cross-entropy on
        generated samples; generator i weighted by its prior.

        Drawing every generator equally often and weighting its loss by
        ``K * |D_i|/|D|`` has the same expectation as drawing generator i with
        probability ``|D_i|/|D|``, with less noise.
        """
        cfg = self.config
        k, b = cfg.n_clusters, cfg.classifier_batch
        target = torch.arange(k, device=self.device_).repeat_interleave(b)  # (K*b,)
        weight = self._priors() * k
        total = torch.zeros((), device=self.device_)
        correct = torch.zeros((), device=self.device_)
        steps = cfg.classifier_steps if steps is None else steps
        d = self._X.shape[1]
        gen = self._buffer("generated", (k, b, d)) if isinstance(self.G_, MLPGenerator) else None
        for _ in range(steps):
            with torch.no_grad():
                x = self._classifier_view(self._generate(b, out=gen).reshape(k * b, -1))  # (K*b, d)
            logits = self.C_(x)  # (K*b, K)
            loss = F.cross_entropy(logits, target, weight=weight)
            self._opt_c.zero_grad(set_to_none=True)
            loss.backward()
            self._opt_c.step()
            total += loss.detach()
            correct += (logits.detach().argmax(1) == target).float().mean()
        steps = max(steps, 1)
        return float(total / steps), float(correct / steps)

    def _classifier_view(self, x: torch.Tensor) -> torch.Tensor:
        """Generated points as the classifier sees them in training: images each
        moved at random, plus pixel noise; other data with Gaussian noise, or as
        they are (``classifier_augment``)."""
        cfg = self.config
        if self._noise_scale is not None:
            return x + self._noise_scale * torch.randn(x.shape, generator=self._g, device=x.device)
        if self._side is None:
            return x
        x = random_affine(x, self._side, rotation=cfg.augment_rotation, shift=cfg.augment_shift,
                          scale=cfg.augment_scale, generator=self._g, cache=self._grid_cache)
        if cfg.classifier_noise > 0:  # x is random_affine's output, in memory of its cache: add in place
            self._add_pixel_noise(x.view(-1))
        return x

    def _add_pixel_noise(self, flat: torch.Tensor) -> None:
        """Gaussian noise of standard deviation ``classifier_noise`` added in place
        to every value of ``flat`` (one classifier step's moved images).

        On a CPU it comes from a kept pool of as many normal draws: fresh draws
        for the 500,000 pixels of a step on mnist5k took 3.9 ms of a 13.8 ms
        classifier step on a 2-core AVX2 machine (PyTorch's CPU generator makes
        them one at a time, on one core). So each step redraws a tenth of the
        pool, in turn, and adds the pool to the images starting at a random
        offset, wrapping around: within a step every pixel gets its own
        independent N(0, s^2) value, as with fresh draws; across steps the same
        values come back at other pixels of other images, and after
        ``POOL_RENEWAL`` steps none is left from before. A GPU draws fresh
        values for every step (cheap there)."""
        m = flat.numel()
        if m == 0:
            return
        old = self._buffers.get("pixel_noise")
        pool = self._buffer("pixel_noise", (m,))  # unit normals
        if pool is not old or flat.device.type != "cpu":  # new memory, or a GPU: draw all of it
            start, count = 0, m
        else:
            start, count = self._pool_next, -(-m // self.POOL_RENEWAL)
        pool[start:start + count].normal_(generator=self._g)
        self._pool_next = start + count if start + count < m else 0
        offset = int(torch.randint(m, (1,), generator=self._g_host))  # host-side: no wait on a device
        flat[:m - offset].add_(pool[offset:], alpha=self.config.classifier_noise)
        flat[m - offset:].add_(pool[:offset], alpha=self.config.classifier_noise)

    @torch.no_grad()
    def _posterior(self, X: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
        """h(x) for every row: softmax of the classifier's logits, (N, K)."""
        return torch.cat([F.softmax(self.C_(X[i:i + chunk]), dim=1) for i in range(0, len(X), chunk)])

    def _augment(self, iteration: int) -> None:
        """epsilon-EM: D_i borrows the sigma_t points of D - D_i with the highest h_i(x)."""
        cfg = self.config
        n, k = self._post.shape
        if cfg.augment == "topk":
            self._sigma = int(math.floor(cfg.sigma0 * n / k * self.sigma_decay_ ** (iteration - 1)))
        else:
            self._sigma = 0  # "proportional" borrows inside each real batch
        self._borrow(self._sigma)

    def _borrow(self, sigma: int) -> None:
        """Pick the points each part borrows: ``sigma`` of D - D_i by highest h_i,
        and at least enough to fill a batch, so an empty part never starves."""
        n, k = self._post.shape
        b = self.config.batch_size
        want = torch.clamp(b - self._counts, min=0)  # top-ups for parts smaller than a batch
        if self._mixing_batches():  # other points come in every batch: only empty parts need some
            want = torch.where(self._counts == 0, want, 0)
        want = want.clamp(min=sigma)
        want = torch.clamp(want, max=n - self._counts)  # (K,) borrowed per part
        width = int(want.max())
        if width == 0:
            self._extra, self._n_extra = self._extra[:, :0], want
            return
        score = self._post.T.clone()  # (K, N)
        score[self._a, torch.arange(n, device=self.device_)] = -1.0  # never borrow own points
        self._extra = torch.topk(score, width, dim=1).indices  # (K, width), best first
        self._n_extra = want

    # --------------------------------------------------------------- M-step
    def _own_per_batch(self) -> int:
        """proportional: own points per real batch at the current GAN step."""
        cfg = self.config
        own = cfg.own_final
        for before, count in cfg.own_schedule:
            if self._em_steps < before:
                own = count
                break
        return round(own * cfg.batch_size / 50)

    def _mixing_batches(self) -> bool:
        """proportional, once EM runs: each real batch mixes own and other points."""
        return (self.config.augment == "proportional" and self._em_steps is not None
                and self._own_per_batch() < self.config.batch_size)

    def _real_batch(self) -> torch.Tensor:
        """Indices of a real batch for every critic, (K, B), by tensor ops.

        ``topk``: critic i draws uniformly from D_i and its borrowed points.
        ``proportional`` (once EM runs): ``own`` points from D_i, the rest from
        D - D_i drawn without replacement with probability ~ h_i(x).
        """
        cfg = self.config
        k, b, dev = cfg.n_clusters, cfg.batch_size, self.device_
        counts, last = self._counts, len(self._order) - 1
        u = torch.rand(k, b, generator=self._g, device=dev)
        own = self._own_per_batch() if self._mixing_batches() else b
        if own < b:
            w = self._post.T.clamp_min(1e-12)  # (K, N)
            w[self._a, torch.arange(w.shape[1], device=dev)] = 0.0  # never an own point
            w[w.sum(1) == 0] = 1.0  # a part that holds every point draws from itself
            few = int((w > 0).sum(1).min()) < b - own
            others = torch.multinomial(w, b - own, replacement=few, generator=self._g)  # (K, b-own)
            u = u[:, :own]
        # uniform over own + borrowed: j < count -> own point j, else borrowed j - count
        pool = counts + self._n_extra  # (K,)
        j = torch.minimum((u * pool[:, None]).long(), pool[:, None] - 1)  # (K, own); float32 may round up
        mine = self._order[(self._starts[:, None] + j).clamp(max=last)]
        if self._extra.shape[1]:
            lent = self._extra.gather(1, (j - counts[:, None]).clamp(0, self._extra.shape[1] - 1))
            mine = torch.where(j < counts[:, None], mine, lent)
        return mine if own == b else torch.cat([mine, others], dim=1)

    def _train_gans(self, n_steps: int) -> dict[str, float]:
        """Train all K WGANs together for ``n_steps`` generator steps."""
        cfg = self.config
        sums = torch.zeros(3, device=self.device_)
        done = 0
        k, b = cfg.n_clusters, cfg.batch_size
        d = self._X.shape[1]
        rows = self._buffer("real", (k * b, d), self._X.dtype)  # the real batches
        fakes = self._buffer("fake", (k, b, d)) if isinstance(self.G_, MLPGenerator) else None  # generated ones
        for _ in range(n_steps):
            if self._past_deadline():  # the time budget ends a long M-step early
                break
            # (one draw of real batches and samples for all n_critic updates, sliced,
            # measured 4-7% slower per GAN step: the slices are not contiguous)
            for _ in range(cfg.n_critic):
                real = torch.index_select(self._X, 0, self._real_batch().reshape(-1), out=rows).view(k, b, -1)
                with torch.no_grad():
                    fake = self._generate(cfg.batch_size, out=fakes)  # (K, B, d)
                critic_loss, w_dist = self._critic_step(self.D_, self._opt_d, real, fake)
            gen_loss = self._generator_step(self.G_, self.D_, self._opt_g)
            self._count_gan_step()
            done += 1
            sums += torch.stack([critic_loss, gen_loss, w_dist])
        sums = (sums / max(done, 1) / cfg.n_clusters).tolist()
        return {"critic": sums[0], "generator": sums[1], "wasserstein": sums[2]}

    def _count_gan_step(self) -> None:
        self._gan_steps += 1
        if self._em_steps is not None:
            self._em_steps += 1

    def _critic_step(self, D: torch.nn.Module, opt: torch.optim.Optimizer, real: torch.Tensor,
                     fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One critic update of an ensemble of k critics on ``real`` and generated
        ``fake`` points, each (k, B, d).

        Returns the summed critic loss and Wasserstein estimate (detached)."""
        cfg = self.config
        k, b = real.shape[:2]
        # the interpolates of the gradient penalty: t * real + (1 - t) * fake
        t = torch.rand(k, b, 1, generator=self._g, device=self.device_) if cfg.loss == "gp" else None
        if t is not None and self.closed_form_gradients and isinstance(D, MLPCritic):
            loss, w_dist = D.wgan_gp_gradients(real, fake, t, cfg.gp_weight)
            opt.step()
            return loss, w_dist
        scores = D(torch.cat([real, fake], dim=1))  # (k, 2B): one pass for both halves
        d_real, d_fake = scores[:, :b].mean(1), scores[:, b:].mean(1)  # (k,)
        loss = (d_fake - d_real).sum()
        if t is not None:
            loss = loss + cfg.gp_weight * self._gradient_penalty(D, real, fake, t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if cfg.loss == "clip":
            with torch.no_grad():
                torch._foreach_clamp_min_(list(D.parameters()), -cfg.clip)
                torch._foreach_clamp_max_(list(D.parameters()), cfg.clip)
        return loss.detach(), (d_real - d_fake).detach().sum()

    def _generator_step(self, G: torch.nn.Module, D: torch.nn.Module,
                        opt: torch.optim.Optimizer) -> torch.Tensor:
        """One generator update of an ensemble of k GANs; the summed loss (detached)."""
        k = getattr(G, "k", self.config.n_clusters)
        if self.closed_form_gradients and isinstance(G, MLPGenerator) and isinstance(D, MLPCritic):
            loss = generator_gradients(G, D, self._noise(k, self.config.batch_size))
            opt.step()
            return loss
        loss = -D(self._generate(self.config.batch_size, G=G, k=k)).mean(1).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward(inputs=list(G.parameters()))  # the critics' weight gradients are not needed
        opt.step()
        return loss.detach()

    def _gradient_penalty(self, D: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor,
                          t: torch.Tensor) -> torch.Tensor:
        """sum over critics of E[(||grad D_i(x^)|| - 1)^2] at x^ = t * real + (1 - t) * fake."""
        mix = torch.lerp(fake, real, t).requires_grad_(True)  # (k, B, d): t*real + (1-t)*fake
        (grad,) = torch.autograd.grad(D(mix).sum(), mix, create_graph=True)
        return ((grad.norm(dim=2) - 1) ** 2).mean(1).sum()

    @torch.no_grad()
    def _samples(self) -> np.ndarray:
        return self._generate(0, self._z_fixed).cpu().numpy()  # (K, S, d)

    def _samples_of(self, iteration: int) -> np.ndarray | None:
        """The snapshot's samples: every ``samples_every`` iterations (None between)."""
        return self._samples() if iteration % self.config.samples_every == 0 else None

    def _last_samples(self) -> np.ndarray:
        return self._samples()

    # ------------------------------------------------------------- estimator
    @torch.no_grad()
    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        """h(x): the classifier's posterior over the K clusters."""
        x = torch.as_tensor(np.asarray(X, dtype=np.float32), device=self.device_)
        return self._posterior(x).cpu().numpy()

    @torch.no_grad()
    def sample(self, n: int) -> np.ndarray:
        """``n`` generated points from each generator, (K, n, d)."""
        return self._generate(n).cpu().numpy()


class GANMMEM(GANMM):
    """GANMM-EM, the paper's ablation: hard EM whose E-step is the critics.

    Each point goes to the cluster whose critic scores it highest; then each GAN
    trains on its part. No classifier and no borrowing, so it stalls early.

    A WGAN critic's score has no scale of its own: each critic is only ever asked
    to rank its real part above its fakes, so one critic's scores can sit above
    every other's on all points (then it takes nearly every point and the rest
    starve). Each critic's scores are therefore standardised over the data at the
    E-step (zero mean, unit spread per critic, :meth:`_calibrate`), and a point
    goes to the critic that ranks it highest *relative to the whole data set*.
    """

    name = "ganmm-em"

    def _own_per_batch(self) -> int:
        return self.config.batch_size  # hard EM: a critic sees its own part only

    def _initialize(self, X: np.ndarray) -> StepResult:
        out = super()._initialize(X)
        self._calibrate()
        return out

    def _iterate(self, iteration: int) -> StepResult:
        scores = self._calibrate()  # one pass of the critics: the scale and the E-step
        self._post = F.softmax((scores - self._score_loc) / self._score_scale, dim=1)
        a = self._post.argmax(dim=1)
        self._set_assignments(a)
        self._borrow(0)  # only tops up parts too small for a batch
        losses = self._train_gans(self.config.n_epoch)
        return StepResult(a.cpu().numpy(), losses, self._samples_of(iteration), {"gan_steps": self._gan_steps})

    @torch.no_grad()
    def _scores(self, X: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        """(N, K): every critic's raw score of every point."""
        k = self.config.n_clusters
        return torch.cat([self.D_(X[i:i + chunk].unsqueeze(0).expand(k, -1, -1)).T
                          for i in range(0, len(X), chunk)])

    @torch.no_grad()
    def _calibrate(self) -> torch.Tensor:
        """Each critic's mean and spread of its scores over the training data: the
        E-step's scale until the next one. Returns those scores, (N, K)."""
        scores = self._scores(self._X)
        self._score_loc = scores.mean(0)
        self._score_scale = scores.std(0).clamp_min(1e-8) if len(scores) > 1 else torch.ones_like(self._score_loc)
        return scores

    @torch.no_grad()
    def _posterior(self, X: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        """Softmax over the K critics' standardised scores."""
        return F.softmax((self._scores(X, chunk) - self._score_loc) / self._score_scale, dim=1)
