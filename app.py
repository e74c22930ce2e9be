"""GANMM Studio home page.

This first release shows the method and the built-in datasets; launching and
watching runs from the browser comes with the dashboard (pages/).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from ganmm import data
from ganmm.models import DESCRIPTIONS

st.set_page_config(page_title="GANMM Studio", layout="wide")


@st.cache_data(show_spinner="Loading the dataset ...")
def _load(name: str) -> data.Dataset:
    return data.load_builtin(name)


def intro_ui() -> None:
    st.title("GANMM Studio")
    st.markdown(
        "A Gaussian mixture clusters data by EM: the E-step gives each point to the "
        "component most likely to have produced it, the M-step refits each Gaussian to its points. "
        "**GANMM** (Yu & Zhou, IJCAI 2018) keeps that loop but replaces every Gaussian by a GAN, "
        "so a cluster can take any shape a generator can draw. "
        "Because such flexible components would never leave their starting split under plain hard EM, "
        "it uses *epsilon-EM*: a classifier trained on generated samples does the E-step, and each "
        "GAN also borrows a shrinking number of the other clusters' most likely points.")
    st.caption("Models: " + "; ".join(f"**{k}**: {v}" for k, v in DESCRIPTIONS.items()))


def dataset_ui() -> str:
    names = [n for n, _ in data.list_builtins()]
    descriptions = dict(data.list_builtins())
    name = st.selectbox("Built-in dataset", names, index=names.index("mnist5k"),
                        format_func=lambda n: f"{n} — {descriptions[n]}")
    return name


def preview(ds: data.Dataset) -> None:
    st.write(f"{ds.n_samples:,} rows x {ds.n_features} features, kind **{ds.kind}**, "
             f"{ds.n_classes or 'no'} classes")
    if ds.kind == "image":
        rng = np.random.default_rng(0)
        pick = rng.choice(ds.n_samples, 16, replace=False)
        tiles = [ds.inverse(ds.X[i]).reshape(ds.image_shape) for i in pick]
        tiles = [(t / max(t.max(), 1e-9) * 255).astype(np.uint8) for t in tiles]
        st.image(tiles, width=64, caption=[ds.label_names[ds.y[i]] for i in pick] if ds.y is not None else None)
    else:
        import pandas as pd
        frame = pd.DataFrame(ds.inverse(ds.X)[:, :2], columns=list(ds.feature_names[:2]))
        if ds.y is not None:
            frame["label"] = [ds.label_names[i] for i in ds.y]
        st.scatter_chart(frame, x=frame.columns[0], y=frame.columns[1],
                         color="label" if ds.y is not None else None)


intro_ui()
ds = _load(dataset_ui())
preview(ds)
st.info("Fit a model from the command line: "
        f"`python -m ganmm run --dataset {ds.name} --model ganmm --clusters {ds.n_classes or 3}`")
