"""The embedded feature space: a DEC-style autoencoder, trained once per data and seed.

The paper's second setting clusters an autoencoder's 10-D codes instead of raw
features (Xie et al.'s DEC: d-500-500-2000-10, ReLU, a linear code and a
linear output). Data under 3,000 rows gets a smaller variant, d-256-256-512-10,
which trains in seconds and overfits less.

Training is end-to-end Adam on the mean squared reconstruction error (DEC
pretrains layer by layer with dropout first; end-to-end training reaches a
similar code on a CPU budget). The encoder's weights, the codes of every row
and the training curve are cached in ``GANMM_HOME/cache/ae`` under the data's
fingerprint, the settings and the seed: the same data, settings and seed load
the cache, anything else trains anew. The cache holds plain arrays only
(``allow_pickle=False``).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError, DataError
from .paths import ganmm_home

Progress = Callable[[int, int, float], None]
"""``progress(epoch, epochs, loss)``, called after every epoch of training"""

SMALL_DATA = 3000
"""below this many rows the autoencoder is the small variant"""


@dataclass(frozen=True)
class AutoencoderConfig:
    """Settings of the autoencoder (see the module docstring)."""

    hidden: tuple[int, ...] | None = None
    """encoder layer widths before the code; None: (500, 500, 2000), or
    (256, 256, 512) for data under SMALL_DATA rows"""
    latent: int = 10
    """size of the code: the embedded space's dimension"""
    epochs: int = 300
    """passes over the data (300 with image moves: about 4.5 minutes for mnist5k on
    a 2-core CPU; the codes keep improving to there, see the README's results)"""
    batch_size: int = 256
    lr: float = 1e-3
    """Adam's learning rate"""
    augment: str = "auto"
    """"affine": every training image is first turned, shifted and zoomed a little at
    random (``ganmm.augment``) and the autoencoder reconstructs the moved image, so
    that images of one shape get near codes (Guo et al.'s DEC-DA); "none"; "auto":
    affine for square images in [0, 1], none for other data"""
    rotation: float = 10.0
    """affine: largest turn, in degrees"""
    shift: float = 0.15
    """affine: largest shift, as a fraction of half the image side"""
    scale: float = 0.1
    """affine: largest zoom in or out"""

    def validate(self) -> None:
        if self.latent < 1 or self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("latent, epochs and batch_size must be at least 1; got "
                              f"{self.latent}, {self.epochs}, {self.batch_size}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")
        if self.hidden is not None and (not self.hidden or min(self.hidden) < 1):
            raise ConfigError(f"hidden must list positive layer widths, got {self.hidden}")
        if self.augment not in ("auto", "affine", "none"):
            raise ConfigError(f"augment must be auto, affine or none; got {self.augment!r}")

    def layers(self, n_rows: int, n_features: int) -> tuple[int, ...]:
        """Widths from the input to the code, e.g. (784, 500, 500, 2000, 10)."""
        hidden = self.hidden or ((500, 500, 2000) if n_rows >= SMALL_DATA else (256, 256, 512))
        return (n_features, *hidden, self.latent)

    def key(self) -> str:
        return hashlib.sha256(repr(sorted(asdict(self).items())).encode()).hexdigest()[:12]


DEFAULT_CONFIG = AutoencoderConfig()
"""the settings used when none are given (the embedded space's, and DEC's)"""


def effective_space(model: str, space: str) -> str:
    """The features ``model`` takes in ``space``: DEC always takes the raw features,
    because its encoder *is* the embedded space's autoencoder (the same cached one
    for the same data and seed), fine-tuned by its self-training."""
    return "raw" if model == "dec" else space


@dataclass(frozen=True)
class Embedding:
    """An autoencoder's codes of every row, with how they were made."""

    Z: np.ndarray
    """(N, latent) float32 codes"""
    curve: np.ndarray
    """(epochs,) mean reconstruction error per epoch"""
    seconds: float
    """training time (of the run that filled the cache)"""
    cached: bool
    """True when loaded from the cache"""
    layers: tuple[int, ...]
    weights: dict[str, np.ndarray]
    """the encoder's parameters (``encoder.<i>.weight``/``bias``), for DEC to fine-tune"""


def array_fingerprint(X: np.ndarray) -> str:
    """SHA-256 of an array's shape and float32 bytes."""
    digest = hashlib.sha256(f"X{X.shape}".encode())
    digest.update(np.ascontiguousarray(X, dtype="<f4").data)
    return digest.hexdigest()


def cache_path(fingerprint: str, config: AutoencoderConfig, seed: int) -> Path:
    return ganmm_home() / "cache" / "ae" / f"{fingerprint[:32]}-{config.key()}-seed{int(seed)}.npz"


def build(layers: tuple[int, ...]):
    """(encoder, decoder) as ``nn.Sequential``: ReLU between layers, linear code and output."""
    from torch import nn

    def stack(sizes):
        mods = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            mods.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                mods.append(nn.ReLU())
        return nn.Sequential(*mods)

    return stack(layers), stack(layers[::-1])


def embed(X: np.ndarray, *, seed: int = 0, config: AutoencoderConfig | None = None,
          device: str = "auto", progress: Progress | None = None,
          fingerprint: str | None = None) -> Embedding:
    """The codes of ``X`` (N, d): from the cache, or trained now (and cached)."""
    cfg = config or DEFAULT_CONFIG
    cfg.validate()
    X = np.ascontiguousarray(X, dtype=np.float32)
    if X.ndim != 2 or len(X) < 2:
        raise DataError(f"the autoencoder needs a (rows, features) array with 2 rows or more; got {X.shape}")
    layers = cfg.layers(*X.shape)
    path = cache_path(fingerprint or array_fingerprint(X), cfg, seed)
    found = _load(path, len(X), layers)
    if found is not None:
        return found
    Z, curve, weights, seconds = _train(X, layers, cfg, seed, device, progress)
    _save(path, Z, curve, weights, seconds, layers)
    return Embedding(Z, curve, seconds, False, layers, weights)


def encoder_from(weights: dict[str, np.ndarray], layers: tuple[int, ...]):
    """An encoder ``nn.Sequential`` holding cached weights."""
    import torch

    encoder, _ = build(layers)
    encoder.load_state_dict({k[len("encoder."):]: torch.from_numpy(v) for k, v in weights.items()})
    return encoder


def _train(X, layers, cfg: AutoencoderConfig, seed: int, device: str, progress: Progress | None):
    import torch

    from .augment import image_side, random_affine
    from .mixture import resolve_device
    from .nets import reset_parameters

    dev = resolve_device(device)
    g = torch.Generator().manual_seed(seed)
    g_dev = torch.Generator(device=dev).manual_seed(seed + 1)  # the moves, drawn where the data lives
    encoder, decoder = build(layers)
    for net in (encoder, decoder):
        reset_parameters(net, g)
    encoder, decoder = encoder.to(dev), decoder.to(dev)
    params = [*encoder.parameters(), *decoder.parameters()]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    data = torch.from_numpy(X).to(dev)
    n, b = len(X), min(cfg.batch_size, len(X))
    side = image_side(X) if cfg.augment != "none" else None
    if cfg.augment == "affine" and side is None:
        raise ConfigError("the autoencoder's affine moves need square images with values in [0, 1]; "
                          "choose augment 'auto' or 'none'")
    curve = []
    grid_cache: dict = {}  # the moves' sampling grid, reused from batch to batch
    start = time.perf_counter()
    for epoch in range(cfg.epochs):
        order = torch.randperm(n, generator=g).to(dev)
        total = torch.zeros((), device=dev)
        for i in range(0, n, b):
            x = data[order[i:i + b]]
            if side is not None:
                x = random_affine(x, side, rotation=cfg.rotation, shift=cfg.shift, scale=cfg.scale,
                                  generator=g_dev, cache=grid_cache)
            loss = torch.mean((decoder(encoder(x)) - x) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * len(x)
        curve.append(float(total) / n)
        if progress is not None:
            progress(epoch + 1, cfg.epochs, curve[-1])
    seconds = time.perf_counter() - start
    with torch.no_grad():
        Z = torch.cat([encoder(data[i:i + 4096]) for i in range(0, n, 4096)]).cpu().numpy()
    weights = {f"encoder.{k}": v.detach().cpu().numpy() for k, v in encoder.state_dict().items()}
    return Z.astype(np.float32), np.asarray(curve, dtype=np.float32), weights, seconds


def _load(path: Path, n: int, layers: tuple[int, ...]) -> Embedding | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception:  # no cache yet, or a damaged one (zip, CRC, header errors): train again
        return None
    try:
        Z, curve = arrays.pop("Z"), arrays.pop("curve")
        seconds, saved_layers = float(arrays.pop("seconds")), tuple(int(v) for v in arrays.pop("layers"))
    except KeyError:
        return None
    expected = {f"encoder.{2 * i}.{p}" for i in range(len(layers) - 1) for p in ("weight", "bias")}
    if Z.shape != (n, layers[-1]) or saved_layers != layers or set(arrays) != expected:
        return None
    return Embedding(Z.astype(np.float32), curve, seconds, True, layers, arrays)


def _save(path: Path, Z, curve, weights, seconds: float, layers) -> None:
    """Write the cache atomically (a temporary file, then a rename); a failure to
    write only costs a retrain next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp.npz")
        np.savez(tmp, Z=Z, curve=curve, seconds=np.float64(seconds),
                 layers=np.asarray(layers, dtype=np.int64), **weights)
        os.replace(tmp, path)
    except OSError:
        pass


def embedded_dataset(ds, *, seed: int = 0, config: AutoencoderConfig | None = None,
                     device: str = "auto", progress: Progress | None = None):
    """``ds`` in the embedded space: the codes (standardised per dimension) with
    the same labels, as a tabular Dataset named ``<name>·embedded``."""
    from .data import from_arrays

    emb = embed(ds.X, seed=seed, config=config, device=device, progress=progress)  # DEC's key too
    labels = None if ds.y is None else np.asarray(ds.label_names)[ds.y]
    return from_arrays(emb.Z, labels, name=f"{ds.name}·embedded",
                       feature_names=[f"code {i}" for i in range(emb.Z.shape[1])])
