"""Train: launch a run on the session's dataset, then watch it live."""

from __future__ import annotations

import streamlit as st

from ganmm.errors import GanmmError
from ganmm.ui import common, forms, live

common.set_up_page("Train", links=False)  # its links below, once the run shown is known
st.title("Train")

choice, ds, error = common.chosen_dataset()
# open when the session began with no runs; kept for the session, so that the
# form does not fold away under the user when their first run starts
if "train-form-open" not in st.session_state:
    st.session_state["train-form-open"] = not common.store().list_runs()
form_open = st.session_state["train-form-open"]
with st.expander("New run", expanded=form_open):
    if ds is None:
        st.error(f"The chosen dataset cannot be loaded: {error}")
        common.page_link(common.DATA, "Choose another dataset")
    else:
        st.caption(f"Dataset **{choice.display or ds.name}**: {ds.n_samples:,} rows x {ds.n_features} "
                   f"features, {ds.n_classes or 'no'} classes. Change it on the Data page.")
        request = forms.run_settings_ui(ds.n_samples, ds.n_classes, ds.n_features)
        # the dataset on the button itself: a reload starts a new session on mnist5k, and a
        # small caption above the form let a run meant for moons start on it (browser audit)
        if st.button(f"Start training on {choice.display or ds.name}", type="primary", key="train-start"):
            st.session_state.pop("train-error", None)
            st.session_state["train-pending"] = (choice, ds, request)  # the data of this click
        if st.session_state.get("train-error"):
            st.error(st.session_state["train-error"])
        if note := st.session_state.pop("train-note", None):  # once
            st.info(note)


def start_pending() -> None:
    """Start the requested run; in the embedded space, once its autoencoder is ready
    (this fragment polls the training's progress until then). An error ends the
    wait and stays shown in the form until the next click."""
    pending = st.session_state.get("train-pending")
    if pending is None:  # started or failed in an earlier tick
        return
    choice, raw, request = pending
    features = raw
    if request.space == "embedded":
        features, done, said = common.embedded_space(raw, request.seed, device=request.device)
        if features is None and not said.startswith("The autoencoder failed"):
            st.progress(done, text=said)
            if st.button("Cancel", key="train-cancel-autoencoder",
                         help="stop the autoencoder after its current epoch; no run starts"):
                st.session_state.pop("train-pending", None)
                common.cancel_embedded_space(raw, request.seed)
                st.session_state["train-note"] = "Cancelled: the autoencoder stops, and no run started."
                st.rerun()
            return
    st.session_state.pop("train-pending", None)
    try:
        if features is None:
            raise GanmmError(said)
        run_id = common.start_run(choice, features, request.model, request.settings, seed=request.seed,
                                  preset=request.preset, device=request.device, name=request.name,
                                  space=request.space)
    except GanmmError as exc:
        st.session_state["train-error"] = str(exc)
    else:
        # show it below, in a picker of its own: a refresh of the live view that the
        # browser sent before it heard of the new run carries the old picker's value,
        # and it won that race now and then (2 of 7 starts in a browser audit)
        st.session_state["run_id"] = run_id
        st.session_state["train-picker"] = st.session_state.get("train-picker", 0) + 1
        queued = common.store().get_run(run_id).status == "queued"
        st.toast(f"Run {run_id} queued: it starts when a run training now ends" if queued
                 else f"Run {run_id} started")
    st.rerun()  # the whole page: the form shows the error, or the live view the run


if "train-pending" in st.session_state:
    st.fragment(start_pending, run_every=1.0)()

records = common.store().list_runs()
picker = st.session_state.get("train-picker", 0)  # a new one for each run started here
picker_key = "train-run" if not picker else f"train-run-{picker}"
# The run shown is kept in the address: a reload, Back or Forward, or the address
# sent to a colleague opens that run. An address this page did not write last
# came from outside, and its run wins over the one the session shows.
asked = st.query_params.get("run")
if asked and asked != st.session_state.get("train-address-run") and any(r.run_id == asked for r in records):
    st.session_state["run_id"] = st.session_state[picker_key] = asked
run_id = forms.run_picker(records, key=picker_key, default=st.session_state.get("run_id"))
if run_id is not None:
    st.session_state["run_id"] = st.session_state["train-address-run"] = run_id
    if st.query_params.get("run") != run_id:
        st.query_params["run"] = run_id
common.navigation()  # after the picker: the Train link names the run now shown
if run_id is None:
    st.info("No runs yet: start one above, or use the quick start on the home page.")
else:
    live.live_view(run_id)
