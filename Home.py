"""GANMM Studio home: what GANMM is, a one-click quick start, and the run list."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from ganmm.errors import GanmmError
from ganmm.models import DESCRIPTIONS
from ganmm.ui import common, forms
from ganmm.ui.compare import METRICS, numeric_metrics

common.set_up_page()

QUICK_START = dict(model="ganmm", settings={"n_clusters": 10})  # the default preset: 3000 iterations or 10 minutes


def intro_ui() -> None:
    st.title("GANMM Studio")
    st.markdown(
        "A Gaussian mixture clusters data by EM: the E-step gives each point to the component most "
        "likely to have produced it, the M-step refits each Gaussian to its points. "
        "**GANMM** (Yu & Zhou, IJCAI 2018) keeps that loop but replaces every Gaussian by a GAN, so a "
        "cluster can take any shape a generator can draw. "
        "Because such flexible components would never leave their starting split under plain hard EM, "
        "it uses *epsilon-EM*: a classifier trained on generated samples does the E-step, and each GAN "
        "also borrows a shrinking number of the other clusters' most likely points.")
    st.caption("Models: " + "; ".join(f"**{forms.MODEL_LABELS[k]}**: {v}" for k, v in DESCRIPTIONS.items()))


def quick_start_ui() -> None:
    st.subheader("Quick start")
    st.write("Cluster the 5,000 real MNIST digits of `mnist5k` into 10 clusters with GANMM "
             "(default preset, at most 10 minutes) and watch it live.")
    if st.button("Start GANMM on mnist5k", type="primary"):
        try:
            ds = common.load_dataset("mnist5k")
            run_id = common.start_run(common.DEFAULT_DATA, ds, QUICK_START["model"],
                                      dict(QUICK_START["settings"]), name="quick start: GANMM on mnist5k")
        except GanmmError as exc:
            st.error(str(exc))
            return
        common.set_data_choice(common.DEFAULT_DATA, address=False)  # the switch carries it
        st.session_state["run_id"] = run_id
        common.go(common.TRAIN)
    common.page_link(common.CLASSROOM, "Or step through EM vs GAN mixtures on 2-D shapes in the Classroom",
                     icon=":material/school:")


def runs_table(records) -> pd.DataFrame:
    rows = []
    for r in records:
        max_iter = r.config.get("resolved", {}).get("max_iter")
        rows.append({
            "name": r.name, "status": f"{r.status} · damaged" if r.damaged else r.status, "model": r.model, "dataset": r.dataset,
            "progress": f"{r.iterations if r.iterations is not None else '-'} / {max_iter or '?'}",
            "device": r.device,
            **{m: r.metrics.get(m) for m in METRICS},
            "created": pd.Timestamp(r.created, unit="s").strftime("%Y-%m-%d %H:%M"),
            "run id": r.run_id})
    return numeric_metrics(pd.DataFrame(rows))


RUNS_REFRESH_SECONDS = 3.0  # how often Home reads the run list again (a string here would be drawn)


def _still(run_id: str, doing: str) -> bool:
    """True when the run is still active; else says why the click did nothing (the
    list is a few seconds old: the run may have ended or gone meanwhile)."""
    try:
        record = common.store().get_run(run_id)
    except GanmmError:
        st.session_state["home-said"] = ("info", f"Nothing to {doing}: the run {run_id} was deleted meanwhile.")
        return False
    if not common.is_active(record):
        st.session_state["home-said"] = ("info", f"Nothing to {doing}: the run {record.name} ended "
                                                   f"meanwhile ({record.status}).")
        return False
    return True


def run_actions_ui(records) -> None:
    run_id = forms.run_picker(records, key="home-run", default=st.session_state.get("run_id"))
    record = next(r for r in records if r.run_id == run_id)
    cols = st.columns(6)
    # a link, not a button: a switch from a button wrote the address here first,
    # an entry of the browser's history that Back then showed again
    common.page_link(common.TRAIN, "Open", where=cols[0], params={"run": run_id})
    # with the latest other run on the same data (else any): comparing needs two
    others = [r for r in records if r.run_id != run_id]
    partner = ([r for r in others if r.fingerprint == record.fingerprint] or others)[:1]
    common.page_link(common.COMPARE, "Compare", where=cols[1], disabled=not partner,
                     params={"runs": ",".join([run_id, *(r.run_id for r in partner)])})
    mine = common.is_active(record) and common.owned_here(run_id)
    # a pause acts after the current iteration: from the click on the button offers Resume
    # (this page does not redraw by itself, and it kept offering Pause)
    if record.status == "paused" or (mine and common.manager().pause_asked(run_id)):
        if cols[2].button("Resume", key="home-resume", disabled=not mine):
            if _still(run_id, "resume"):
                common.manager().resume(run_id)
            st.rerun()
    elif cols[2].button("Pause", key="home-pause", disabled=not mine):
        if _still(run_id, "pause"):
            common.manager().pause(run_id)
        st.rerun()
    if cols[3].button("Stop", key="home-stop", disabled=not mine):
        if _still(run_id, "stop"):
            common.manager().stop(run_id, wait=False)
        st.rerun()
    confirm = cols[4].checkbox("confirm delete", key=f"home-confirm-{run_id}")
    if cols[4].button("Delete", key="home-delete", disabled=not confirm or common.is_active(record)):
        try:
            common.store().delete_run(run_id)
        except GanmmError as exc:
            st.error(str(exc))
        else:
            st.session_state.pop("run_id", None)
            st.session_state["home-said"] = ("success", f"Deleted the run {record.name} ({run_id}).")
            st.rerun()
    if cols[5].button("Prepare zip", key="home-zip"):
        with tempfile.TemporaryDirectory() as tmp:
            path = common.store().export_run(run_id, Path(tmp) / f"{run_id}.zip")
            st.session_state["zip"] = (run_id, path.read_bytes())
    if common.is_active(record) and not mine:
        st.caption(common.OTHER_PROCESS)
    elif common.is_active(record):
        st.caption("Delete takes runs that have ended: stop this one first.")
    prepared = st.session_state.get("zip")
    if prepared and prepared[0] == run_id:
        cols[5].download_button("Download zip", prepared[1], file_name=f"ganmm-{run_id}.zip",
                                mime="application/zip", key="home-download")


@st.fragment(run_every=RUNS_REFRESH_SECONDS)
def runs_ui() -> None:
    """The run list and its actions, read again every few seconds: runs started
    from the command line appear, and training ones move on, without a reload."""
    records = common.store().list_runs()
    if not records:
        st.info("No runs yet. Start one with the quick start above, on the Train page, "
                "or from the command line (`python -m ganmm run ...`): every run appears here.")
        return
    # metrics stay numbers, so that a click on a column sorts -0.1 before -0.03
    st.dataframe(runs_table(records), hide_index=True, width="stretch",
                 column_config=common.METRIC_COLUMNS, placeholder=common.NONE_SHOWN)
    run_actions_ui(records)


intro_ui()
quick_start_ui()
st.subheader("Runs")
if said := st.session_state.pop("home-said", None):  # what the last action did, once
    kind, text = said
    (st.success if kind == "success" else st.info)(text)
runs_ui()
