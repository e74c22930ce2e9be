"""The model registry: one name per model, as the command line and pages use it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    from .base import ClusterModel

MODEL_NAMES = ("ganmm", "ganmm-em", "gmm", "kmeans", "dec")
"""every model, by the name the command line and the pages use"""

DESCRIPTIONS = {
    "ganmm": "mixture of GANs fitted by epsilon-EM (classifier E-step)",
    "ganmm-em": "mixture of GANs fitted by hard EM (critic E-step): the paper's ablation",
    "gmm": "Gaussian mixture fitted by EM",
    "kmeans": "k-means (Lloyd, k-means++ seeding)",
    "dec": "deep embedded clustering: an autoencoder, then self-training on its codes",
}


def make_model(name: str, *, preset: str | None = None, **settings: Any) -> ClusterModel:
    """A model by name with settings (``n_clusters``, ``seed``, ``max_iter``, ...).

    ``preset`` applies to the GAN mixtures only. Settings a model does not
    have raise :class:`ConfigError` naming them.
    """
    if name not in ("ganmm", "ganmm-em", "dec") and "device" in settings:
        from .mixture import check_device

        check_device(settings.pop("device"))  # the baselines run on the CPU (scikit-learn)
    return model_class(name)(base_config(name, preset), **settings)


def base_config(name: str, preset: str | None = None) -> Any:
    """The settings a model starts from before a run's own: its preset's for the
    GAN mixtures (default: "default"), the model's defaults for the others."""
    cls = model_class(name)
    if name in ("ganmm", "ganmm-em"):
        return cls.config_class.from_preset(preset or "default")
    if preset not in (None, "default"):
        raise ConfigError(f"presets are for ganmm and ganmm-em; {name} has none")
    return cls.config_class()


def default_settings(name: str, preset: str | None = None) -> dict[str, Any]:
    """The iteration cap and time budget a model (under ``preset``, for the GAN
    mixtures) runs with when none is given."""
    cfg = base_config(name, preset)
    return {"max_iter": cfg.max_iter, "time_budget": cfg.time_budget}


def model_class(name: str) -> type:
    """The class behind a model name (imported on first use: torch is slow to load)."""
    if name not in MODEL_NAMES:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    if name in ("ganmm", "ganmm-em"):
        from .mixture import GANMM, GANMMEM
        return GANMM if name == "ganmm" else GANMMEM
    if name == "dec":
        from .dec import DEC
        return DEC
    from .baselines import GMM, KMeans
    return GMM if name == "gmm" else KMeans
