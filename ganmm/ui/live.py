"""The live view of one run: read from the run store, never from a live trainer.

``live_view(run_id)`` draws the run's panels inside ``st.fragment(run_every=...)``
while the run is active, so each refresh re-reads the store (scalars of every
iteration from SQLite, arrays of the shown iteration from its file, cached) and
redraws only the fragment. When the run ends the whole page reruns once and
the timer stops.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import streamlit as st

from .. import plots
from ..metrics import contingency
from ..projection import get_projector
from ..store import IterationRecord, RunNotFound, RunRecord, StoreError
from . import common

REFRESH_SECONDS = 1.0
"""how often the live view re-reads the store while a run is active"""


def live_view(run_id: str, *, key: str = "live", controls: bool = True) -> None:
    """The run's panels; refreshed every REFRESH_SECONDS while the run is active
    or something it shows (UMAP, reference lines) is still being computed."""
    try:
        record = common.store().get_run(run_id)
    except RunNotFound:
        st.warning("This run was deleted (on another page or tab, or from the command line). "
                   "Pick another run above.")
        return
    except StoreError as exc:
        st.error(str(exc))
        return
    every = REFRESH_SECONDS if _needs_refresh(record, key) else None
    st.session_state[_status_key(key, run_id)] = record.status  # as the page around the view shows it
    st.fragment(_live_body, run_every=every)(run_id, key, controls, every is not None)


def _status_key(key: str, run_id: str) -> str:
    return f"{key}-page-status-{run_id}"


def _needs_refresh(record: RunRecord, key: str) -> bool:
    """True while the run trains or its projection / reference lines / the placing
    of the samples shown (``placed_samples``) are pending."""
    if common.is_active(record) or st.session_state.get(_placing_key(key, record.run_id)):
        return True
    ds, _ = common.run_dataset(record)
    if ds is None:
        return False
    if ds.kind != "2d" and get_projector().request(ds).status == "pending":
        return True
    return ds.y is not None and _references(record) is None


def _live_body(run_id: str, key: str, controls: bool, refreshing: bool) -> None:
    try:
        record = common.store().get_run(run_id)
        rows = common.store().iterations(run_id)
    except RunNotFound:
        st.rerun()  # deleted meanwhile: the whole page, whose run picker no longer lists it
    except StoreError as exc:
        st.error(str(exc))
        return
    if refreshing and st.session_state.get(_status_key(key, run_id)) not in (None, record.status):
        st.rerun()  # queued, running, paused, ended: the page's run picker names the status too
    header(record, rows, controls=controls, key=key)
    st.session_state[_placing_key(key, record.run_id)] = False  # projection_panel sets it when it waits
    if not rows:
        st.info(_waiting_for(record))
    else:
        panels(record, rows, _replay_slider(record, rows, key), key=key, refreshing=refreshing)
    if refreshing and not _needs_refresh(record, key):
        st.rerun()  # nothing left to wait for: redraw the page once, without the timer
    elif not refreshing and st.session_state.get(_placing_key(key, run_id)):
        st.rerun()  # samples still being placed after the run ended: redraw the page with the timer on


def _waiting_for(record: RunRecord) -> str:
    """What a run without iterations waits for."""
    if record.status == "queued":
        return (f"Queued: it starts when one of the runs training now ends (this server trains "
                f"{common.manager().max_concurrent} at a time).")
    first = {"ganmm": "the initial split and the GANs' pretraining",
             "ganmm-em": "the initial split and the GANs' pretraining",
             "dec": "DEC trains its autoencoder first: minutes on mnist5k, unless cached",
             }.get(record.model, "the initial split")
    return f"Waiting for the first iteration ({first}) ..."


def header(record: RunRecord, rows: list[IterationRecord], *, controls: bool, key: str) -> None:
    """Status, progress, ETA and the pause / resume / stop buttons."""
    cfg = record.config.get("resolved", {})
    max_iter = int(cfg.get("max_iter") or record.config.get("settings", {}).get("max_iter") or 1)
    budget = cfg.get("time_budget")
    done = rows[-1].iteration if rows else 0
    elapsed = rows[-1].elapsed if rows else 0.0
    per_iter = elapsed / max(done, 1)
    left = max(max_iter - done, 0) * per_iter
    if budget:
        left = min(left, max(budget - elapsed, 0.0))
    frac = max(done / max_iter, elapsed / budget if budget else 0.0)
    frac = 1.0 if record.status == "done" else min(frac, 1.0)
    status = f"**{record.status}** · iteration {done} of at most {max_iter} · {elapsed:.0f} s"
    if record.status == "running" and rows:  # a paused or queued run's time left is not known
        status += f" · about {left:.0f} s left"
    st.markdown(f"#### {record.name}")
    st.caption(f"{record.model} on {record.dataset} · K={cfg.get('n_clusters', '?')} · seed {record.seed} · "
               f"device {record.device} · run {record.run_id}")
    st.progress(frac, text=status)
    if record.status == "failed":
        st.error(f"This run failed: {record.error}")
        if record.traceback:
            with st.expander("Traceback"):
                st.code(record.traceback)
    if record.damaged:
        st.warning(f"Some of this run's stored files are damaged; what is readable is shown. "
                   f"First finding: {record.damaged}")
    if record.status == "interrupted":
        st.warning(f"This run was interrupted: {record.error}." if record.error else
                   "This run was interrupted: its process ended; every stored iteration is kept.")
    if controls and common.is_active(record):
        if common.owned_here(record.run_id):
            run_controls(record, key)
        else:
            st.caption(common.OTHER_PROCESS)


def run_controls(record: RunRecord, key: str) -> None:
    """Pause / resume / stop: they act between iterations."""
    mgr = common.manager()
    a, b, _ = st.columns([1, 1, 4])
    if record.status == "paused" or mgr.pause_asked(record.run_id):
        if a.button("Resume", key=f"{key}-resume-{record.run_id}"):
            mgr.resume(record.run_id)
            st.rerun()
    elif a.button("Pause", key=f"{key}-pause-{record.run_id}"):
        mgr.pause(record.run_id)
        st.toast("Pausing after this iteration")
    if b.button("Stop", key=f"{key}-stop-{record.run_id}", type="primary"):
        mgr.stop(record.run_id, wait=False)
        st.toast("Stopping: the iterations stored so far are kept")


def _replay_slider(record: RunRecord, rows: list[IterationRecord], key: str) -> int:
    """The iteration to show: the latest, or one picked on the slider to replay."""
    its = [r.iteration for r in rows]
    follow_key = f"{key}-follow-{record.run_id}"
    follow = st.toggle("Follow the latest iteration", value=True, key=follow_key) \
        if len(its) > 1 else True
    if follow or len(its) == 1:
        return its[-1]
    return st.select_slider("Replay iteration", options=its, value=its[-1],
                            key=f"{key}-replay-{record.run_id}")


def panels(record: RunRecord, rows: list[IterationRecord], shown: int, *, key: str,
           refreshing: bool = False) -> None:
    """Every panel of the live view at iteration ``shown`` (``refreshing``: a timer
    redraws it within REFRESH_SECONDS)."""
    its = [r.iteration for r in rows]
    try:
        snap = common.load_iteration(record.run_id, shown)
    except StoreError as exc:
        st.error(str(exc))
        return
    labels = labels_of(record)
    k = len(snap.sizes)
    col1, col2 = st.columns(2)
    sizes = np.array([r.sizes for r in rows if len(r.sizes) == k]).reshape(-1, k)
    run, last = record.run_id, its[-1]
    col1.plotly_chart(_figure(("area", run, last), lambda: plots.sizes_area(
        [r.iteration for r in rows if len(r.sizes) == k], sizes)), key=f"{key}-area", width="stretch")
    col2.plotly_chart(_figure(("bar", run, shown), lambda: plots.sizes_bar(snap.sizes, iteration=shown)),
                      key=f"{key}-bar", width="stretch")

    drawn = with_samples(record, snap)
    col1, col2 = st.columns(2)
    with col1:
        samples_panel(record, drawn, key)
    with col2:
        projection_panel(record, drawn, labels, key, refreshing=refreshing)

    col1, col2 = st.columns(2)
    with col1:
        if labels is None:
            st.info("No metric curves: this data has no labels to compare the clusters with.")
        else:
            metrics = {m: [r.metrics.get(m) for r in rows] for m in ("purity", "ari", "nmi", "acc")}
            refs = _references(record)
            col1.plotly_chart(_figure(("metrics", run, last, refs is None),
                                      lambda: plots.metric_curves(its, metrics, refs)),
                              key=f"{key}-metrics", width="stretch")
            if refs is None:
                st.caption("GMM and k-means reference lines appear once they are fitted on this data.")
            elif not refs:
                st.caption("No reference lines: GMM and k-means could not be fitted on this data.")

    def changed():  # built only when not cached; at iteration 0 every point "changed", from no cluster
        moved = [r for r in rows if r.iteration > 0]
        return plots.changed_curve([r.iteration for r in moved], [r.changed for r in moved])

    col2.plotly_chart(_figure(("changed", run, last), changed),
                      key=f"{key}-changed", width="stretch")

    col1, col2 = st.columns(2)
    names = sorted({n for r in rows for n in r.losses})
    if names:
        losses = {n: [r.losses.get(n) for r in rows] for n in names}
        col1.plotly_chart(_figure(("losses", run, last), lambda: plots.loss_curves(its, losses)),
                          key=f"{key}-losses", width="stretch")
    else:
        col1.info(f"{record.model} has no training losses to show.")
    with col2:
        if labels is None:
            st.info("No confusion matrix: this data has no labels.")
        else:
            st.plotly_chart(_figure(("confusion", run, shown), lambda: confusion_figure(labels, snap)),
                            key=f"{key}-confusion", width="stretch")


def with_samples(record: RunRecord, snap):
    """``snap`` with generated samples to draw: GAN mixtures store them every
    ``samples_every`` iterations only, so an iteration between takes those of the
    latest iteration that has them (``snap.extras["samples_of"]`` says which)."""
    every = record.config.get("resolved", {}).get("samples_every")
    if snap.samples is not None or not isinstance(every, int) or every < 1:
        return dataclasses.replace(snap, extras={**snap.extras, "samples_of": snap.iteration})
    source = snap.iteration - snap.iteration % every
    try:
        samples = common.load_iteration(record.run_id, source).samples
    except StoreError:
        samples = None
    return dataclasses.replace(snap, samples=samples, extras={**snap.extras, "samples_of": source})


@dataclasses.dataclass(frozen=True)
class SampleWords:
    """What a model's stored samples are called in the views."""

    member: str  # the legend's name of member i: "<member> i"
    plural: str  # the subtitle: "<plural> of iteration t"
    heading: str  # above the image tiles


SAMPLE_WORDS = {
    "gmm": SampleWords("Gaussian", "samples of the Gaussians", "Samples of each Gaussian"),
    "kmeans": SampleWords("centre", "cluster centres", "Centre of each cluster"),
}
GENERATOR_WORDS = SampleWords("generator", "generator samples", "Samples of each generator")


def sample_words(model: str) -> SampleWords:
    """GAN mixtures store generator samples; a GMM draws from its Gaussians and
    k-means stores its centres, which the views must not call generators."""
    return SAMPLE_WORDS.get(model, GENERATOR_WORDS)


def _titled(title: str, subtitle: str | None) -> dict:
    """Layout of a picture's title, and which samples it shows on a line of its own
    (one line for both was cut off in a half-width column: "...of iteration 1" for
    130), with the room that line takes above the plot (it overlapped the top tick)."""
    if subtitle is None:
        return dict(title=dict(text=title))
    return dict(title=dict(text=title, subtitle=dict(text=subtitle)),
                margin={**plots.MARGIN, "t": plots.MARGIN["t"] + 24})


def samples_panel(record: RunRecord, snap, key: str, *, narrow: bool = False) -> None:
    """Generated samples: image tiles per generator, or points over the data.
    ``narrow``: a column of three or four, where a legend beside the picture
    left the points a thin strip; it goes below."""
    if snap.samples is None:
        st.info(f"{record.model} does not generate samples.")
        return
    info = record.dataset_info
    source = snap.extras.get("samples_of", snap.iteration)
    words = sample_words(record.model)
    if info.get("kind") == "image" and info.get("image_shape"):
        st.markdown(f"**{words.heading}** (iteration {source})")
        st.image(plots.image_tiles(snap.samples, tuple(info["image_shape"])), clamp=True,
                 width="stretch")
        return
    ds, why = common.run_dataset(record)
    if ds is None:
        st.info(f"Samples cannot be drawn over the data: {why}")
        return
    def build():
        f = (0, 1) if ds.n_features >= 2 else (0, 0)
        pts, smp = ds.inverse(ds.X)[:, f], ds.inverse(snap.samples)[..., f]
        names = (ds.feature_names[f[0]], ds.feature_names[f[1]])
        fig = plots.scatter_clusters(pts, snap.assignments, samples=smp, axis_names=names,
                                     sample_name=words.member)
        fig.update_layout(**_titled(f"Clusters at iteration {snap.iteration}",
                                    f"{words.plural} of iteration {source}"))
        return fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.2)) if narrow else fig

    st.plotly_chart(_figure(("samples", record.run_id, snap.iteration, narrow), build),
                    key=f"{key}-samples", width="stretch")


def projection_panel(record: RunRecord, snap, labels, key: str, *, refreshing: bool = False) -> None:
    """UMAP of the data by cluster or label, generated samples placed in it."""
    ds, why = common.run_dataset(record)
    if ds is None:
        st.info(f"No projection: {why}")
        return
    state = get_projector().request(ds)
    if state.status == "pending":
        st.info("Computing the UMAP projection of this dataset (once per dataset; it is cached) ...")
        return
    if state.status == "failed":
        st.warning(f"The UMAP projection failed: {state.error}")
        return
    options = ["cluster", "label"] if labels is not None else ["cluster"]
    # 2-D data is drawn by cluster beside this panel already: show the labels here first
    first = 1 if ds.kind == "2d" and labels is not None else 0
    color_by = st.radio("Colour by", options, index=first, horizontal=True,
                        key=f"{key}-colour-{record.run_id}")
    samples, samples_of = placed_samples(ds, record.run_id, snap,
                                         wait=0.0 if refreshing else SETTLED_PLACEMENT_WAIT)
    wanted = snap.samples is not None and samples_of != snap.extras.get("samples_of", snap.iteration)
    words = sample_words(record.model)
    st.session_state[_placing_key(key, record.run_id)] = wanted  # the timer redraws until they are placed
    def build():
        points, placed = state.embedding, samples
        if ds.kind == "2d":  # the data itself, in its own units, as the picture beside it
            points = ds.inverse(points)
            placed = None if placed is None else ds.inverse(placed)
        fig = plots.scatter_clusters(
            points, snap.assignments, labels=None if labels is None else labels[0],
            label_names=None if labels is None else labels[1], color_by=color_by, samples=placed,
            axis_names=("UMAP 1", "UMAP 2") if ds.kind != "2d" else tuple(ds.feature_names[:2]),
            sample_name=words.member)
        title = "UMAP projection" if ds.kind != "2d" else "The data (2-D, as is)"
        return fig.update_layout(**_titled(
            title, None if samples_of is None else f"{words.plural} of iteration {samples_of}"))

    figure_key = ("umap", record.run_id, snap.iteration, color_by, samples_of)
    st.plotly_chart(_figure(figure_key, build), key=f"{key}-umap", width="stretch")


SETTLED_PLACEMENT_WAIT = 0.5
"""seconds a view that no timer redraws (the run has ended) waits for its
generator samples to be placed in the UMAP picture; after that it draws
earlier ones and turns the timer on until they are placed"""
PLACEMENTS_KEPT = 8
"""placed sample sets remembered per run (``_placements``)"""


def placed_samples(ds, run_id: str, snap, *, wait: float) -> tuple[np.ndarray | None, int | None]:
    """``snap``'s generator samples placed in the UMAP picture, (K, S, 2), and the
    iteration they come from; (None, None) when there are none to draw.

    Placing new samples (UMAP's transform, on the projector's worker) takes 0.1
    to 0.5 s on a 2-core machine while a run trains, so a live view waits
    ``wait`` seconds at most (0 when a timer redraws it) and meanwhile draws the
    latest placed samples of an earlier iteration of the run, rather than a
    picture without samples; a later refresh draws the new ones."""
    if snap.samples is None:
        return None, None
    k, s, d = snap.samples.shape
    source = snap.extras.get("samples_of", snap.iteration)
    memory = _placements(run_id)
    kept = memory.get(source)
    if kept is not None:
        return kept, source
    placed = get_projector().transform(ds, snap.samples.reshape(k * s, d), timeout=wait)
    if placed is not None:
        placed = memory[source] = placed.reshape(k, s, 2)
        for old in sorted(memory)[:-PLACEMENTS_KEPT]:
            memory.pop(old, None)
        return placed, source
    earlier = max((i for i in list(memory) if i < source), default=None)
    found = None if earlier is None else memory.get(earlier)
    return (found, earlier) if found is not None else (None, None)


def _placing_key(key: str, run_id: str) -> str:
    """Session state: True while the view ``key`` of ``run_id`` waits for its samples' placement."""
    return f"{key}-placing-{run_id}"


@st.cache_resource(max_entries=64, show_spinner=False)
def _placements(run_id: str) -> dict[int, np.ndarray]:
    """The run's generator samples placed in its UMAP picture so far, by the
    iteration they come from (the latest PLACEMENTS_KEPT), shared by every session."""
    return {}


def confusion_figure(labels: tuple[np.ndarray, list[str]], snap):
    """True labels against the iteration's clusters (every cluster a column)."""
    y, names = labels
    table = contingency(y, snap.assignments)
    table = np.pad(table, ((0, 0), (0, max(len(snap.sizes) - table.shape[1], 0))))
    return plots.confusion(table, names)


@st.cache_resource(max_entries=256, show_spinner=False)
def _figure(key: tuple, _build: Callable[[], Any]) -> Any:
    """One figure per key, built once and shared by every refresh and session: a
    stored iteration never changes, so most refreshes (no new iteration yet)
    rebuild nothing. Keys name the run and the iterations the figure shows."""
    return _build()


def labels_of(record: RunRecord) -> tuple[np.ndarray, list[str]] | None:
    try:
        arrays = _dataset_arrays(record.run_id)
    except StoreError:
        return None
    if "y" not in arrays:
        return None
    return arrays["y"], [str(n) for n in arrays["label_names"]]


@st.cache_resource(max_entries=32, show_spinner=False)
def _dataset_arrays(run_id: str) -> dict[str, np.ndarray]:
    return common.store().dataset_arrays(run_id)


def _references(record: RunRecord) -> dict[str, dict[str, float]] | None:
    ds, _ = common.run_dataset(record)
    k = record.config.get("resolved", {}).get("n_clusters")
    if ds is None or not k:
        return None
    return common.reference_metrics(ds, int(k), record.seed)

