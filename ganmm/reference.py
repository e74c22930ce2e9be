"""Reference lines for the live view: GMM and k-means fitted on the same data.

The Train page draws a run's metric curves against what a Gaussian mixture and
k-means reach on the same data with the same K and seed. Fitting those takes
seconds to minutes on large data, so the results are cached in
``GANMM_HOME/cache/reference/`` by data fingerprint, K and seed; the page asks
for them from a background thread and draws them once they are there.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .paths import ganmm_home

FULL_COVARIANCE_MAX_FEATURES = 64
"""above this many features the reference GMM uses diagonal covariances (a full
one on 784 pixels takes minutes per EM step and is ill-conditioned)"""


def reference_models(n_features: int) -> dict[str, tuple[str, dict[str, Any]]]:
    """Label -> (model name, settings) of the reference fits for data this wide."""
    cov = "full" if n_features <= FULL_COVARIANCE_MAX_FEATURES else "diag"
    return {f"GMM ({cov})": ("gmm", {"covariance_type": cov, "max_iter": 100}),
            "k-means": ("kmeans", {"max_iter": 100})}


def _cache_path(fingerprint: str, k: int, seed: int) -> Path:
    return ganmm_home() / "cache" / "reference" / f"{fingerprint[:32]}-k{int(k)}-s{int(seed)}.json"


def cached_reference(fingerprint: str, k: int, seed: int) -> dict[str, dict[str, float]] | None:
    """The cached reference metrics, or None when they were never computed."""
    path = _cache_path(fingerprint, k, seed)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def compute_reference(ds: Any, k: int, seed: int = 0) -> dict[str, dict[str, float]]:
    """Fit each reference model on ``ds`` (needs labels) and cache its final metrics:
    ``{label: {"purity": ..., "ari": ..., ...}}``. Cached results come back at once."""
    fingerprint = ds.fingerprint()
    found = cached_reference(fingerprint, k, seed)
    if found is not None:
        return found
    from .models import make_model

    out: dict[str, dict[str, float]] = {}
    for label, (name, settings) in reference_models(ds.n_features).items():
        model = make_model(name, n_clusters=k, seed=seed, **settings).fit(ds.X, ds.y)
        out[label] = dict(model.history_[-1].metrics)
    path = _cache_path(fingerprint, k, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ref-")
    with os.fdopen(fd, "w") as fh:
        json.dump(out, fh)
    os.replace(tmp, path)
    return out
