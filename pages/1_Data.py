"""Data: choose a built-in dataset or upload a file, preview it, pick its labels."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import streamlit as st

from ganmm import data, plots
from ganmm.errors import GanmmError
from ganmm.loaders import ACCEPTED_TYPES
from ganmm.ui import common
from ganmm.uploads import save_upload

common.set_up_page("Data")
st.title("Data")

current = common.data_choice()
# the upload widgets start afresh when Back or Forward brought another dataset: they
# kept the file and label column of before, and a click on Use put them back
fresh = common.address_switches()


def key(name: str) -> str:
    return name if not fresh else f"{name}-{fresh}"


st.caption(f"The dataset for new runs: **{current.display or current.source}**")


def builtin_ui() -> common.DataChoice:
    described = dict(data.list_builtins())
    names = list(described)
    index = names.index(current.source) if current.source in names else names.index("mnist5k")
    name = st.selectbox("Built-in dataset", names, index=index, format_func=lambda n: f"{n} — {described[n]}")
    return common.DataChoice(name, display=name)


def upload_ui() -> common.DataChoice | None:
    st.caption(f"Accepted: {ACCEPTED_TYPES}. Files are only read as numbers, never run or unpickled.")
    up = st.file_uploader("Data file", key=key("upload-data"))
    if up is None:
        return None
    try:
        path = save_upload(up.name, up.getvalue())
    except GanmmError as exc:
        st.error(str(exc))
        return None
    label_column, labels = None, None
    if _is_csv(path):
        label_column = label_ui(path)
    elif not path.name.lower().endswith((".npz", ".npz.gz")):
        lab = st.file_uploader("Labels file (optional: IDX or NPY, one label per row)", key=key("upload-labels"))
        if lab is not None:
            try:
                labels = str(save_upload(lab.name, lab.getvalue()))
            except GanmmError as exc:
                st.error(str(exc))
    return common.DataChoice(str(path), label_column, labels, display=up.name)


def _is_csv(path: Path) -> bool:
    return path.suffix.lower() in (".csv", ".tsv", ".txt") or \
        path.name.lower().endswith((".csv.gz", ".tsv.gz", ".txt.gz"))


def label_ui(path: Path, chosen: str | None = None, *, first: bool = True) -> str | None:
    """The label column picker of an uploaded CSV/TSV: its columns, the guess (a text
    column, one named "label", MNIST's first) preselected, or ``chosen`` when the
    file is already in use (``first`` False: back on the page after another)."""
    columns, guess = _csv_columns(str(path))
    if not columns:
        return chosen
    pick = chosen if not first else guess
    # a key per file: a shared one kept the last file's "(no labels)" while
    # showing this file's guess, and loading failed on its text column
    choice = st.selectbox("Label column", ["(no labels)"] + columns,
                          key=key(f"upload-label-column-{path.parent.name}"),
                          index=1 + columns.index(pick) if pick in columns else 0,
                          help="a column that holds the true class of each row; it is never used "
                               "for training, only to score the clusters")
    return None if choice == "(no labels)" else choice


@st.cache_data(max_entries=16, show_spinner=False)
def _csv_columns(path: str) -> tuple[list[str], str | None]:
    """The columns of a CSV/TSV and the one to preselect as labels, from its first
    lines; empty when it cannot be read."""
    try:
        columns, _, guess = data.csv_head_info(path)
    except GanmmError:
        return [], None
    return columns, guess


def preview(ds: data.Dataset) -> None:
    st.markdown(f"{ds.n_samples:,} rows x {ds.n_features} features, kind **{ds.kind}**, "
                f"{ds.n_classes or 'no'} classes")
    if ds.kind == "image":
        rng = np.random.default_rng(0)
        pick = rng.choice(ds.n_samples, min(32, ds.n_samples), replace=False)
        rows = 2 if len(pick) > 16 else 1
        tiles = ds.X[pick[: rows * (len(pick) // rows)]].reshape(rows, -1, ds.n_features)
        mosaic = plots.image_tiles(tiles, ds.image_shape, max_per_row=16)
        grow = max(1, round(56 / max(ds.image_shape)))  # 8x8 digits drawn 7x, 28x28 2x: tiles one can read
        st.image(mosaic.repeat(grow, axis=0).repeat(grow, axis=1), clamp=True)
    elif ds.kind == "2d":
        pts = ds.inverse(ds.X)
        fig = plots.scatter_clusters(pts, None if ds.y is None else ds.y, labels=ds.y,
                                     label_names=ds.label_names,
                                     color_by="label" if ds.y is not None else "cluster",
                                     axis_names=tuple(ds.feature_names), title="The data")
        st.plotly_chart(fig, width="stretch")
    else:
        import pandas as pd

        frame = pd.DataFrame(data.round_to_spread(ds.inverse(ds.X[:200]), ds.scale), columns=list(ds.feature_names))
        if ds.y is not None:
            frame.insert(0, "label", [ds.label_names[i] for i in ds.y[:200]])
        st.dataframe(frame, height=240)
        st.markdown("Per-column summary")
        summary = pd.DataFrame(data.round_to_spread(ds.inverse(ds.X), ds.scale), columns=list(ds.feature_names)).describe().T
        st.dataframe(summary[["mean", "std", "min", "max"]], height=240)


source = st.radio("Source", ["Built-in", "Upload"], horizontal=True,
                  index=0 if current.source in data.BUILTINS else 1)
choice = builtin_ui() if source == "Built-in" else upload_ui()
if choice is None and source == "Upload" and current.source not in data.BUILTINS:
    # the uploader is empty again after a visit to another page: show the file in use
    st.caption(f"Shown: **{current.display or current.source}**, the uploaded file new runs use. "
               "Upload another file to replace it.")
    choice = current
    if _is_csv(Path(current.source)):  # its label column can still be changed (it was gone)
        picked = label_ui(Path(current.source), current.label_column, first=False)
        choice = dataclasses.replace(current, label_column=picked)
if choice is not None:
    try:
        ds = common.load_dataset(choice.source, choice.label_column, choice.labels)
    except GanmmError as exc:
        st.error(f"This file cannot be used: {exc}")
    else:
        preview(ds)
        if choice != current:
            if st.button("Use this dataset for new runs", type="primary"):
                common.set_data_choice(choice)
                st.rerun()
        else:
            st.success("New runs on the Train page use this dataset.")
            common.page_link(common.TRAIN, "Go to Train")
