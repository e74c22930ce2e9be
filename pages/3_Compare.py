"""Compare: 2-4 runs side by side, their curves overlaid, and mean ± std over seeds."""

from __future__ import annotations

import streamlit as st

from ganmm import plots
from ganmm.ui import common, compare, live

common.set_up_page("Compare", links=False)  # its links below, once the runs shown are known
st.title("Compare runs")

records = common.store().list_runs()
by_id = {r.run_id: r for r in records}
if len(records) < 2:
    common.navigation()
    st.info("Comparing needs at least two runs in the store; start some on the Train page.")
    st.stop()
# the picker has a key, so that a run added to or gone from the store does not reset it
# (without one, a run deleted in another tab made it forget the user's next click);
# "compare" is what other pages ask for and mirrors the picker. The runs are kept in
# the address too (?runs=a,b): one this page did not write last (a reload, Back or
# Forward, Home's Compare link, an address sent to a colleague) asks for its runs.
named = list(dict.fromkeys(i for i in st.query_params.get("runs", "").split(",") if i))  # once each
if named and named != st.session_state.get("compare-mirror"):  # the address this page wrote last
    st.session_state["compare"] = named
    if missing := [i for i in named if i not in by_id]:
        st.info(f"{len(missing)} of the runs the address names {'is' if len(missing) == 1 else 'are'} "
                f"not in the store (deleted?): {', '.join(missing)}.")
asked = st.session_state.get("compare")
# set by another page, or back here (Streamlit forgets a widget's value on other pages)
if asked is not None and (asked != st.session_state.get("compare-mirror") or "compare-runs" not in st.session_state):
    st.session_state["compare-runs"] = [i for i in asked if i in by_id][:4]
kept = st.session_state.get("compare-runs")
if kept is None:
    st.session_state["compare-runs"] = [r.run_id for r in records[:2]]
elif gone := [i for i in kept if i not in by_id]:
    st.session_state["compare-runs"] = [i for i in kept if i in by_id]
    st.info(f"{len(gone)} of the chosen runs {'was' if len(gone) == 1 else 'were'} deleted meanwhile "
            f"({', '.join(gone)}).")
chosen = st.multiselect("Runs (2 to 4)", list(by_id), max_selections=4, key="compare-runs",
                        format_func=lambda i: common.run_label(by_id[i]))
st.session_state["compare"] = st.session_state["compare-mirror"] = chosen  # and the address:
if st.query_params.get("runs", "") != ",".join(chosen):
    if chosen:
        st.query_params["runs"] = ",".join(chosen)
    else:
        del st.query_params["runs"]
common.navigation()  # after the picker: the Compare link names the runs now shown
if len(chosen) < 2:
    st.info("Pick at least two runs.")
    st.stop()
runs = [by_id[i] for i in chosen]

st.subheader("Summary")
st.dataframe(compare.summary_view(runs), width="stretch", hide_index=True,
             column_config=common.METRIC_COLUMNS, placeholder=common.NONE_SHOWN)
st.caption("Highlighted: settings that differ between the chosen runs. NMI uses arithmetic normalisation.")

st.subheader("Metric curves")
rows = {r.run_id: common.store().iterations(r.run_id) for r in runs}
cols = st.columns(2)
for n, metric in enumerate(("ari", "nmi", "purity", "acc")):
    series = {f"{r.name} ({r.run_id[-6:]})": ([x.iteration for x in rows[r.run_id]],
                                    [x.metrics.get(metric) for x in rows[r.run_id]]) for r in runs}
    if all(all(v is None for v in s[1]) for s in series.values()):
        cols[n % 2].info(f"No {metric.upper()} curves: none of these runs' data has labels.")
        continue
    fig = plots.overlay_curves(series, metric.upper(), metric.upper())
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.25))
    cols[n % 2].plotly_chart(fig, width="stretch", key=f"cmp-{metric}")

st.subheader("Side by side (last stored iteration)")
cols = st.columns(len(runs))
for col, r in zip(cols, runs):
    with col:
        st.markdown(f"**{r.name}**  \n{r.model} · {r.status} · run {r.run_id}")
        if not rows[r.run_id]:
            st.info("No iteration stored yet.")
            continue
        last = rows[r.run_id][-1].iteration
        try:
            snap = common.load_iteration(r.run_id, last)
        except Exception as exc:  # a damaged file spoils this column only
            st.error(str(exc))
            continue
        st.plotly_chart(plots.sizes_bar(snap.sizes, iteration=last, height=240), width="stretch",
                        key=f"cmp-bar-{r.run_id}")
        live.samples_panel(r, live.with_samples(r, snap), key=f"cmp-{r.run_id}",  # GANs store samples every few iterations
                           narrow=len(runs) > 2)
        labels = live.labels_of(r)
        if labels is not None:
            st.plotly_chart(live.confusion_figure(labels, snap), width="stretch", key=f"cmp-conf-{r.run_id}")

st.subheader("Mean ± std over seeds")
st.caption("Every run in the store, grouped by model, dataset and settings (the seed aside), as in the paper's tables.")
st.dataframe(compare.seed_table(records), width="stretch", hide_index=True)
