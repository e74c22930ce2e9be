"""Widget groups that return plain values: the run settings form, the run picker."""

from __future__ import annotations

from dataclasses import dataclass, field

import streamlit as st

from ..models import DESCRIPTIONS, MODEL_NAMES, default_settings
from ..store import RunRecord
from . import common

MODEL_LABELS = {"ganmm": "GANMM", "ganmm-em": "GANMM-EM", "gmm": "GMM (EM)", "kmeans": "k-means", "dec": "DEC"}


@dataclass(frozen=True)
class RunRequest:
    """What the Train form asks the run manager for."""

    model: str
    preset: str | None
    settings: dict = field(default_factory=dict)
    seed: int = 0
    device: str = "auto"
    name: str | None = None
    space: str = "raw"
    """"raw" features, or "embedded": the autoencoder's codes (ganmm.embedding)"""


def run_settings_ui(n_rows: int, n_classes: int | None, n_features: int, key: str = "train") -> RunRequest:
    """Model, preset, clusters, seed, device, time budget and model settings."""
    model = st.selectbox("Model", MODEL_NAMES, format_func=lambda m: f"{MODEL_LABELS[m]} — {DESCRIPTIONS[m]}",
                         key=f"{key}-model")
    c1, c2, c3 = st.columns(3)
    default_k = min(n_classes or 3, n_rows)
    k = c1.number_input("Clusters K", 1, max(1, min(n_rows, 100)), default_k, key=f"{key}-k")
    seed = c2.number_input("Seed", 0, 2**31 - 1, 0, key=f"{key}-seed")
    preset = None
    if model in ("ganmm", "ganmm-em"):  # first: the preset sets the limits' defaults
        preset = c3.selectbox("Preset", ["default", "paper", "classic"], key=f"{key}-preset",
                              help="default: WGAN-GP with Adam, short EM iterations, a classifier that "
                                   "sees images turned and shifted a little; paper: the reference code's "
                                   "settings; classic: the default before the quality work")
    defaults = default_settings(model, preset)
    c1, c2, c3 = st.columns(3)
    iters = c1.number_input("Iterations (cap)", 1, 100_000, defaults["max_iter"],
                            key=f"{key}-iters-{model}-{preset}")
    budget = c2.number_input("Time budget (s, 0 = none)", 0, 86_400, int(defaults["time_budget"] or 0),
                             key=f"{key}-budget-{model}-{preset}")
    devices = ["auto", "cpu", "cuda"] if _cuda() else ["auto", "cpu"]
    device = c3.selectbox("Device", devices, key=f"{key}-device",
                          help="auto: the GPU when there is one, else the CPU"
                          + ("" if _cuda() else " (no CUDA GPU on this server)"))
    name = st.text_input("Run name (optional)", key=f"{key}-name", max_chars=80)
    if model == "dec":
        space = "raw"
        st.caption("DEC clusters through its own autoencoder: the embedded space's, from the same "
                   "cache (trained first when there is none yet).")
    else:
        space = st.radio("Feature space", ["raw", "embedded"], horizontal=True, key=f"{key}-space",
                         format_func={"raw": "raw features",
                                      "embedded": "embedded: an autoencoder's 10-D codes"}.get,
                         help="The paper's two settings. The autoencoder trains once per dataset and "
                              "seed (about 4.5 minutes for mnist5k on a 2-core CPU) and is cached.")
    # 0 = none: the form's value always wins over the model's (or preset's) own budget
    settings: dict = {"n_clusters": int(k), "max_iter": int(iters), "time_budget": float(budget) or None}
    if model in ("ganmm", "ganmm-em"):
        c1, c2, c3 = st.columns(3)
        init = c1.selectbox("Initial split", ["preset's", "kmeans", "random"], key=f"{key}-init")
        if init != "preset's":
            settings["init"] = init
        if n_features == 784 and space == "raw":
            arch = c2.selectbox("Networks", ["mlp", "conv"], key=f"{key}-arch",
                                help="conv: convolutional generators and critics for 28x28 images")
            settings["arch"] = arch
        settle = c3.checkbox("Stop when settled", value=True, key=f"{key}-settle",
                             help="end the run once the assignments hold still (at most 0.1% of the "
                                  "points move) for the preset's number of iterations in a row; off: "
                                  "run to the iteration cap or the time budget, to keep watching")
        if not settle:
            settings["tol"] = -1.0  # no iteration moves fewer than -1 points: never settled
    elif model == "gmm":
        cov = st.selectbox("Covariance", ["full", "diag", "tied", "spherical"],
                           index=0 if n_features <= 64 or space == "embedded" else 1, key=f"{key}-cov")
        settings["covariance_type"] = cov
    return RunRequest(model, preset, settings, int(seed), device, name or None, space)


@st.cache_resource(show_spinner=False)
def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def run_picker(records: list[RunRecord], key: str, default: str | None = None) -> str | None:
    """A run chosen from the store (most recent first); None when there are none.

    A run's label (status, ARI) moves on while it trains, and the browser keeps
    the labels it was last sent: a page that is not redrawn offers stale ones.
    Streamlit gets the label back, not the run, so a run picked by a stale label
    would not be found and the picker would jump to the default run, which the
    page's buttons would then act on. Labels end with the run id: such a pick is
    mapped back to its run. And Streamlit sends a selectbox's shown value only
    when it is set, so the chosen run is set again on every redraw, which also
    sends its new label ("running" became "done" only in the list, before)."""
    if not records:
        return None
    ids = [r.run_id for r in records]
    labels = {r.run_id: common.run_label(r) for r in records}
    chosen = st.session_state.get(key)
    if isinstance(chosen, str) and chosen not in labels:
        chosen = chosen.rsplit(" · ", 1)[-1]  # a stale label: its run id
    if chosen in labels:
        st.session_state[key] = chosen
        index = 0  # unused (the set value wins); 0 keeps Streamlit from warning about both
    else:
        index = ids.index(default) if default in ids else 0
    return st.selectbox("Run", ids, index=index, format_func=labels.get, key=key)
