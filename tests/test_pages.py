"""Every page under Streamlit's AppTest: empty states, and a store with runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from ganmm import data
from ganmm.runs import get_manager
from ganmm.ui.common import DataChoice

ROOT = Path(__file__).resolve().parents[1]


def page(name: str) -> AppTest:
    """The app with ``name`` (a file of pages/, or Home.py) as the page shown."""
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=120)
    return at if name == "Home.py" else at.switch_page(name)


def finished_run(dataset="moons", model="gmm", k=2, name=None, seed=0, **settings):
    """A run trained to the end through the server's manager (as the pages see it)."""
    ds = data.load(dataset) if dataset in data.BUILTINS else dataset
    source = dataset if isinstance(dataset, str) else None
    mgr = get_manager()
    run_id = mgr.start(ds, model, {"n_clusters": k, "max_iter": 4, **settings}, seed=seed,
                       dataset_source=source, name=name)
    record = mgr.wait(run_id, timeout=120)
    assert record.status == "done", record.error
    return run_id


TINY_GAN = dict(hidden=16, z_dim=4, batch_size=16, n_critic=1, n_pretrain=2, n_epoch=1, classifier_steps=2,
                classifier_warmup=2, samples_every=3, tol=-1, time_budget=None, max_iter=100_000)
"""GANMM settings for a run on moons that takes many quick iterations, samples every 3"""


def start_tiny_gan(name=None) -> str:
    return get_manager().start(data.load("moons"), "ganmm", {"n_clusters": 2, **TINY_GAN},
                               dataset_source="moons", name=name)


def pause_after(run_id: str, n: int, deadline: float) -> int:
    """Wait until the run has stored ``n`` iterations, pause it, and return its last
    stored iteration once it is paused (it may have stored more by then)."""
    from ganmm.store import RunStore

    store = RunStore()
    while (record := store.get_run(run_id)).iterations is None or record.iterations < n:
        # (still "paused" just after a resume); one read per look: the run moves on between reads
        assert record.status in ("queued", "running", "paused"), record.error
        assert time.monotonic() < deadline, f"no {n} iterations in time"
        time.sleep(0.05)
    get_manager().pause(run_id)
    while (record := store.get_run(run_id)).status != "paused":
        assert record.status in ("queued", "running"), record.error
        assert time.monotonic() < deadline, "not paused in time"
        time.sleep(0.05)
    return record.iterations


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "info", "success", "warning", "error", "title",
                                  "subheader") for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


def progress(at: AppTest) -> str:
    return " ".join(p.proto.text for p in at.get("progress"))


def charts(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


def test_home_without_runs_offers_the_quick_start():
    at = page("Home.py").run()
    assert not at.exception
    assert at.title[0].value == "GANMM Studio" and "epsilon-EM" in at.markdown[0].value
    assert any(b.label == "Start GANMM on mnist5k" for b in at.button)
    assert "No runs yet" in texts(at)


def test_home_lists_runs_with_their_metrics_and_actions():
    run_id = finished_run(name="my moons run")
    at = page("Home.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    row = table[table["run id"] == run_id].iloc[0]
    assert row["name"] == "my moons run" and row["status"] == "done" and row["progress"] == "4 / 4"
    ari = get_manager().store.get_run(run_id).metrics["ari"]
    assert row["ari"] == ari  # a number, so that the column sorts as numbers (as text -0.03 came before -0.1)
    assert table["ari"].dtype.kind == "f"
    shown = at.dataframe[0].proto  # to 3 decimals, and "-" (not "None") where a run has no value
    assert shown.placeholder == "-" and metric_formats(at.dataframe[0]) == {"%.3f"}
    labels = {b.label for b in at.button}
    assert {"Pause", "Stop", "Delete", "Prepare zip"} <= labels
    links = {link.proto.label: link.proto.page for link in at.get("page_link")}
    assert links["Open"] == "Train" and links["Compare"] == "Compare"
    at.button(key="home-zip").click().run()
    assert not at.exception and any(b.label == "Download zip" for b in at.get("download_button"))


def test_home_delete_needs_confirmation_and_removes_the_run():
    run_id = finished_run()
    at = page("Home.py").run()
    assert at.button(key="home-delete").disabled
    at.checkbox(key=f"home-confirm-{run_id}").check().run()
    at.button(key="home-delete").click().run()
    assert not at.exception
    assert "No runs yet" in texts(at)
    assert at.success[0].value == f"Deleted the run gmm on moons ({run_id})."  # said once
    at.run()
    assert not at.success


def test_home_compare_opens_the_run_with_the_latest_other_on_its_data():
    """Comparing needs two runs: Compare on the home page brings the latest other
    run on the same data along (not a page that asks for a second one)."""
    older = finished_run("moons", "gmm", 2, name="older")
    finished_run("blobs", "kmeans", 3, name="other data")
    newer = finished_run("moons", "kmeans", 2, name="newer")
    at = page("Home.py").run()
    at.selectbox(key="home-run").select(older).run()
    at = open_link(at, "Compare")  # a link whose address names both runs
    assert not at.exception and at.title[0].value == "Compare runs"
    assert at.session_state["compare"] == [older, newer]
    assert list(at.dataframe[0].value["run"]) == ["older", "newer"]
    assert at.query_params == {"runs": f"{older},{newer}"}
    at.multiselect(key="compare-runs").unselect(newer).select(other := next(
        r.run_id for r in get_manager().store.list_runs() if r.name == "other data")).run()
    assert at.query_params == {"runs": f"{older},{other}"}  # a reload or Back finds the pair shown
    at.query_params["runs"] = f"{older},{newer}"  # Back
    at.run()
    assert list(at.dataframe[0].value["run"]) == ["older", "newer"]


def test_data_page_previews_builtins_and_sets_the_session_dataset():
    at = page("pages/1_Data.py").run()
    assert not at.exception
    assert "5,000 rows x 784 features" in texts(at)
    at.selectbox[0].select("moons").run()
    assert "1,000 rows x 2 features" in texts(at) and charts(at) == 1
    at.button[0].click().run()  # use this dataset
    assert at.session_state["data_choice"].source == "moons"
    assert "New runs on the Train page use this dataset" in texts(at)


def test_data_page_shows_the_uploaded_file_in_use_when_opened_again():
    """A file uploader is empty again whenever the page is opened; the page then
    shows the uploaded file new runs use, not an empty uploader alone."""
    from ganmm.uploads import save_upload

    rows = "\n".join(f"{i % 7},{i % 5},{'ab'[i % 2]}" for i in range(30))
    path = save_upload("flowers.csv", f"width,height,species\n{rows}\n".encode())
    at = page("pages/1_Data.py")
    at.session_state["data_choice"] = DataChoice(str(path), "species", None, display="flowers.csv")
    at.run()
    assert not at.exception
    assert at.radio[0].value == "Upload"
    assert "Shown: **flowers.csv**" in texts(at) and "30 rows x 2 features" in texts(at)
    assert "New runs on the Train page use this dataset" in texts(at)


def test_data_page_tabular_preview_has_a_column_summary():
    at = page("pages/1_Data.py").run()
    at.selectbox[0].select("digits").run()
    assert not at.exception and "1,797 rows x 64 features" in texts(at)


def test_train_page_without_runs_shows_the_form_and_an_empty_state():
    at = page("pages/2_Train.py").run()
    assert not at.exception
    assert at.button(key="train-start").label == "Start training on mnist5k"  # which data, on the button
    assert "No runs yet" in texts(at)


def test_train_page_starts_a_run_and_shows_its_live_view():
    at = page("pages/2_Train.py")
    at.session_state["data_choice"] = DataChoice("blobs", display="blobs")
    at.run()
    at.selectbox(key="train-model").select("kmeans").run()
    at.number_input(key="train-k").set_value(3).run()
    at.button[0].click().run()
    assert not at.exception
    run_id = at.session_state["run_id"]
    record = get_manager().wait(run_id, timeout=60)
    assert record.status == "done" and record.dataset == "blobs"
    at.run()
    assert not at.exception
    assert charts(at) >= 6  # sizes x2, samples over data, projection, metrics, changed, confusion
    assert progress(at).startswith("**done** · iteration ")


def test_train_form_limits_follow_the_preset_and_a_zero_budget_means_none():
    at = page("pages/2_Train.py")
    at.session_state["data_choice"] = DataChoice("blobs", display="blobs")
    at.run()
    at.selectbox(key="train-model").select("ganmm").run()
    assert at.number_input(key="train-iters-ganmm-default").value == 3000
    assert at.number_input(key="train-budget-ganmm-default").value == 600
    at.selectbox(key="train-preset").select("classic").run()
    assert at.number_input(key="train-iters-ganmm-classic").value == 50  # the classic preset's own cap
    assert at.number_input(key="train-budget-ganmm-classic").value == 0  # and no budget
    at.selectbox(key="train-preset").select("default").run()
    at.number_input(key="train-iters-ganmm-default").set_value(1).run()
    at.number_input(key="train-budget-ganmm-default").set_value(0).run()
    at.number_input(key="train-k").set_value(3).run()
    at.button[0].click().run()
    assert not at.exception
    run_id = at.session_state["run_id"]
    mgr = get_manager()
    record = mgr.wait(run_id, timeout=120)
    assert record.status == "done", record.error
    assert (record.config["resolved"]["max_iter"], record.config["resolved"]["time_budget"]) == (1, None)
    assert record.config["resolved"]["tol"] == 0.001  # stops when settled, as the preset
    at.checkbox(key="train-settle").uncheck().run()  # keep watching: never settled
    at.button[0].click().run()
    record = mgr.wait(at.session_state["run_id"], timeout=120)
    assert record.status == "done", record.error
    assert record.config["resolved"]["tol"] < 0


def test_train_page_live_view_of_a_finished_run_with_labels():
    run_id = finished_run("moons", "gmm", 2)
    at = page("pages/2_Train.py")
    at.session_state["run_id"] = run_id
    at.run()
    assert not at.exception
    assert progress(at).startswith("**done** · iteration 4 of at most 4")
    assert charts(at) >= 7  # area, bar, samples, projection (2-D as is), metrics, changed, confusion
    assert "no labels" not in texts(at)


def test_train_page_explains_empty_label_panels_for_unlabelled_data():
    rng = np.random.default_rng(0)
    ds = data.from_arrays(rng.normal(size=(60, 2)), None, name="nolabels")
    run_id = finished_run(ds, "kmeans", 2)
    at = page("pages/2_Train.py")
    at.session_state["run_id"] = run_id
    at.run()
    assert not at.exception
    assert "no labels" in texts(at)


def test_runs_without_labels_show_a_dash_and_metrics_sort_as_numbers():
    """Home's and Compare's metric columns are numbers (as text, -0.03 sorted before
    -0.1), and a run on unlabelled data has none: NaN, drawn as the table's "-"."""
    rng = np.random.default_rng(0)
    plain = finished_run(data.from_arrays(rng.normal(size=(60, 2)), None, name="nolabels"), "kmeans", 2)
    at = page("Home.py").run()
    assert at.dataframe[0].value["ari"].dtype.kind == "f"  # no run has labels: still a number column
    labelled = finished_run("moons", "kmeans", 2)
    at = page("Home.py").run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("run id")
    assert table["ari"].dtype.kind == "f"  # numbers: the browser sorts them as numbers
    assert np.isnan(table.loc[plain, "ari"]) and not np.isnan(table.loc[labelled, "ari"])
    assert at.dataframe[0].proto.placeholder == "-" and metric_formats(at.dataframe[0]) == {"%.3f"}
    at = page("pages/3_Compare.py")
    at.session_state["compare"] = [plain, labelled]
    at.run()
    assert not at.exception
    summary = at.dataframe[0].value
    assert summary["acc"].isna().tolist() == [True, False]
    assert at.dataframe[0].proto.placeholder == "-" and metric_formats(at.dataframe[0]) == {"%.3f"}


def test_compare_page_needs_two_runs_then_shows_them_side_by_side():
    at = page("pages/3_Compare.py").run()
    assert not at.exception and "at least two runs" in texts(at)
    a = finished_run("moons", "gmm", 2, seed=0)
    b = finished_run("moons", "kmeans", 2, seed=0)
    finished_run("moons", "kmeans", 2, seed=1)  # a second seed of b's configuration
    at = page("pages/3_Compare.py")
    at.session_state["compare"] = [a, b]
    at.run()
    assert not at.exception
    summary = at.dataframe[0].value
    assert list(summary["model"]) == ["gmm", "kmeans"]
    shown = shown_cells(at.dataframe[0])  # seconds to 1 decimal, no "None" (metrics: below)
    assert all(re.fullmatch(r"\d+\.\d", v) for v in shown["seconds"])
    assert list(shown["preset"]) == ["-", "-"] and "None" not in shown.to_string()
    # the browser's table draws a missing value as "None" unless told otherwise: only the
    # metrics (numbers, so that they sort as numbers) may be missing, and show "-"
    assert not summary.drop(columns=["purity", "ari", "nmi", "acc"]).isna().any().any()
    assert all(summary[m].dtype.kind == "f" for m in ("purity", "ari", "nmi", "acc"))
    assert at.dataframe[0].proto.placeholder == "-" and metric_formats(at.dataframe[0]) == {"%.3f"}
    from ganmm.store import RunStore
    from ganmm.ui.compare import settings_of
    from ganmm.ui.compare import summary as summary_of

    runs = {r.name: r for r in map(RunStore().get_run, (a, b))}
    _, differs = summary_of(list(runs.values()))  # highlighted: a setting only one of them has differs too
    assert {"model", "reg_covar", "n_init"} <= differs and not {"dataset", "preset", "seed"} & differs
    columns = set(settings_of(runs["gmm on moons"])) | set(settings_of(runs["kmeans on moons"]))
    assert {"reg_covar", "tol", "n_init"} <= columns  # GMM's tiny floats; k-means' int beside GMM's none
    for row, name in enumerate(shown["run"]):  # each setting as given: 1e-06 not "0.000", 10 not "10.0"
        given = settings_of(runs[name])
        for column in columns:
            value, cell = given.get(column), shown[column][row]
            if value is None:
                assert cell == "-", (name, column, cell)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                assert float(cell) == float(value) and cell == f"{value:.10g}", (name, column, value, cell)
            else:
                assert cell == str(value), (name, column, value, cell)
    seeds = at.dataframe[1].value
    km = seeds[seeds["model"] == "kmeans"].iloc[0]
    assert km["seeds"] == 2 and "±" in km["ari"] and km["preset"] == "-"  # k-means has no preset
    assert charts(at) >= 4 + 2  # four overlaid metric plots, a size bar per run


def test_compare_names_each_models_samples_and_draws_a_stopped_gan_runs_latest():
    """Side by side, a GMM's draws are the Gaussians', k-means' points its centres, and
    a GAN mixture's the generators'; a GAN run stopped on an iteration that stored no
    samples (they come every few iterations) shows those of the latest that did."""
    import json

    from ganmm.store import RunStore

    gmm, km = finished_run("moons", "gmm", 2), finished_run("moons", "kmeans", 2)
    mgr, store = get_manager(), RunStore()
    gan, deadline = start_tiny_gan(name="gan"), time.monotonic() + 120
    last = pause_after(gan, 4, deadline)
    while last % 3 == 0:  # stop on an iteration that stored no samples
        mgr.resume(gan)
        last = pause_after(gan, last + 1, deadline)
    assert mgr.stop(gan, timeout=60) == "stopped"
    assert store.get_run(gan).iterations == last and store.load_iteration(gan, last).samples is None

    at = page("pages/3_Compare.py")
    at.session_state["compare"] = [gmm, km, gan]
    at.run()
    assert not at.exception
    assert "does not generate samples" not in texts(at)
    shown = {}  # picture title: the names of its sample markers
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        title = spec["layout"].get("title", {})
        if title.get("text", "").startswith("Clusters"):
            shown[title["text"], title.get("subtitle", {}).get("text")] = \
                [t["name"] for t in spec["data"] if t.get("marker", {}).get("symbol") == "diamond"]
            # three columns: the legend goes below the points, not beside them
            assert spec["layout"]["legend"]["orientation"] == "h"
    gmm_last, km_last = store.get_run(gmm).iterations, store.get_run(km).iterations
    assert shown[f"Clusters at iteration {gmm_last}", f"samples of the Gaussians of iteration {gmm_last}"] == \
        ["Gaussian 0", "Gaussian 1"]
    assert shown[f"Clusters at iteration {km_last}", f"cluster centres of iteration {km_last}"] == \
        ["centre 0", "centre 1"]
    assert shown[f"Clusters at iteration {last}", f"generator samples of iteration {last - last % 3}"] == \
        ["generator 0", "generator 1"]


def test_live_view_gives_no_time_left_while_paused_and_starts_changes_after_the_split():
    """A paused run's time left is unknown (no "about N s left"), and the fraction of
    points that changed cluster starts at iteration 1: at iteration 0 every point
    "changed" from no cluster, a 100% spike that flattened the real curve."""
    import json

    mgr = get_manager()
    gan, deadline = start_tiny_gan(), time.monotonic() + 120
    last = pause_after(gan, 3, deadline)
    at = page("pages/2_Train.py")
    at.session_state["run_id"] = gan
    at.run()
    assert not at.exception
    assert progress(at).startswith("**paused** · iteration") and "left" not in progress(at)
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    (changed,) = [s["data"][0] for s in specs if s["layout"]["title"]["text"] == "Points that changed cluster"]
    assert list(_array(changed["x"])) == list(range(1, last + 1)) and _array(changed["y"]).max() < 1.0
    mgr.resume(gan)
    while store_status(gan) != "running":
        assert time.monotonic() < deadline, "not running again in time"
        time.sleep(0.05)
    at.run()
    assert "s left" in progress(at)
    assert mgr.stop(gan, timeout=60) == "stopped"


def _array(value) -> np.ndarray:
    """A trace's data as sent to the browser: a list, or plotly's typed array
    ({"dtype": ..., "bdata": base64 of the raw values})."""
    if isinstance(value, dict):
        import base64

        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value)


def open_link(at: AppTest, label: str) -> AppTest:
    """Follow the page link ``label`` of ``at`` as a browser does: its page with its
    address (in a new session; the one thing AppTest cannot do is click a link)."""
    from urllib.parse import parse_qsl

    from ganmm.ui.common import PAGES

    link = next(e for e in at.get("page_link") if e.proto.label == label)
    target = page({name: path for path, name in PAGES.items()}.get(link.proto.page, "Home.py"))
    target.query_params.update(dict(parse_qsl(link.proto.query_string)))
    return target.run()


def metric_formats(element) -> set[str]:
    """The number formats a st.dataframe's column configuration gives the metric
    columns (the browser draws a number column by its format, not a Styler's text)."""
    import json

    config = json.loads(element.proto.columns)
    return {config.get(m, {}).get("type_config", {}).get("format") for m in ("purity", "ari", "nmi", "acc")}


def shown_cells(element):
    """A st.dataframe's cells as the browser shows them: a pandas Styler's display values."""
    import pyarrow as pa

    return pa.ipc.open_stream(element.proto.arrow_data.styler.display_values).read_all().to_pandas()


def store_status(run_id: str) -> str:
    from ganmm.store import RunStore

    return RunStore().get_run(run_id).status


def test_two_d_data_is_drawn_in_its_own_units_in_both_pictures():
    """2-D data shows twice, by cluster and by label: both in the data's own units
    (the second drew the scaled features the models train on, on other axes)."""
    import json

    run_id = finished_run("moons", "gmm", 2)
    at = page("pages/2_Train.py")
    at.session_state["run_id"] = run_id
    at.run()
    assert not at.exception
    ds = data.load("moons")
    raw = np.sort(ds.inverse(ds.X)[:, 0])
    pictures = 0
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        if not spec["layout"]["title"]["text"].startswith(("Clusters at iteration", "The data (2-D")):
            continue
        xs = [_array(t["x"]) for t in spec["data"]  # the points, not the samples
              if not t["name"].startswith(("Gaussian", "generator", "centre"))]
        assert np.allclose(np.sort(np.concatenate(xs)), raw, atol=1e-5)
        pictures += 1
    assert pictures == 2


def test_a_run_picked_by_a_label_that_has_since_changed_stays_picked():
    """A page is not redrawn while its runs train, so the run list it shows goes
    stale (status, ARI). Picking a run by its stale label picks that run, and the
    page sends the browser the run's new label to show: a browser sends back the
    label it shows, and on the next click a stale one no longer matched any run,
    so the picker jumped to the default run, which the page's buttons then acted
    on. Open takes the picked run to the Train page."""
    mgr = get_manager()
    gan, deadline = start_tiny_gan(name="gan"), time.monotonic() + 120
    pause_after(gan, 2, deadline)
    newest = finished_run("moons", "gmm", 2, name="newest")  # the default: listed first
    at = page("Home.py").run()
    picker = at.selectbox(key="home-run")
    assert picker.value == newest and any(o.startswith("gan · paused") for o in picker.options)
    assert mgr.stop(gan, timeout=60) == "stopped"  # the page still offers "gan · paused ..."
    picker.select(gan).run()  # sends the label it was offered, "gan · paused ..."
    assert not at.exception
    picker = at.selectbox(key="home-run")
    assert picker.value == gan
    assert picker.proto.set_value and picker.proto.raw_value.startswith("gan · stopped")  # shown anew
    opened = open_link(at, "Open")  # a link to Train whose address names the picked run
    assert not opened.exception and opened.title[0].value == "Train"
    assert opened.selectbox(key="train-run").value == gan


def test_quick_start_launches_ganmm_on_mnist5k_and_opens_its_live_view():
    at = page("Home.py")
    at.query_params["data"] = "digits"  # the session worked on digits: the quick start is on mnist5k
    at.run()
    assert at.session_state["data_choice"].source == "digits"
    next(b for b in at.button if b.label == "Start GANMM on mnist5k").click().run()
    assert not at.exception
    run_id = at.session_state["run_id"]
    mgr = get_manager()
    try:
        record = mgr.store.get_run(run_id)
        assert (record.model, record.dataset, record.config["settings"]["n_clusters"]) == ("ganmm", "mnist5k", 10)
        # the default preset's own limits: 3000 iterations or 10 minutes, whichever comes first
        assert (record.config["resolved"]["max_iter"], record.config["resolved"]["time_budget"]) == (3000, 600.0)
        assert at.title[0].value == "Train"  # switched to the live view
        assert at.session_state["data_choice"].source == "mnist5k" and at.query_params == {"run": run_id}
        assert "Start training on mnist5k" in [b.label for b in at.button]
    finally:
        assert mgr.stop(run_id, timeout=60) in ("stopped", "done")


def _iteration(at: AppTest) -> str | None:
    return at.metric[0].value if at.metric else None


def _until(at: AppTest, want: str, timeout: float = 90.0) -> AppTest:
    """Rerun the page until the classroom's iteration counter reads ``want``
    (steps run on the lesson's own thread)."""
    import time

    end = time.monotonic() + timeout
    while _iteration(at) != want:
        assert time.monotonic() < end, f"the counter stayed at {_iteration(at)}, wanted {want}"
        time.sleep(0.2)
        at.run()
        assert not at.exception, at.exception
    return at


def _explanations(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if "cls-explain" in m.value]


def test_classroom_steps_resets_and_switches_dataset():
    at = page("pages/4_Classroom.py").run()
    assert not at.exception
    assert at.selectbox(key="cls-dataset").value == "moons"
    _until(at, "0")
    start = _explanations(at)
    assert len(start) == 3 and all("Start." in e for e in start)
    seen = [start]
    for i in (1, 2, 3):
        at.button(key="cls-step").click().run()
        _until(at, str(i))
        seen.append(_explanations(at))
        assert all("E-step." in e for e in seen[-1])
        assert seen[-1] != seen[-2]  # the explanation follows the iteration
    assert charts(at) == 3 + 2 + 2  # the three pictures, changed + sigma_t, ARI + NMI
    at.slider(key="cls-iter").set_value(1).run()
    assert _iteration(at) == "1" and _explanations(at) == seen[1]

    at.button(key="cls-reset").click().run()
    _until(at, "0")
    assert _explanations(at) == start  # same seed, same iteration 0

    at.selectbox(key="cls-dataset").set_value("blobs").run()
    assert at.number_input(key="cls-k").value == 3  # the new set's natural K
    _until(at, "0")
    assert "Cluster sizes: " in _explanations(at)[0] and _explanations(at)[0].count(" / ") == 2
    assert not at.exception


def test_the_server_runs_no_full_garbage_collection_after_each_script_run():
    """Streamlit's default collects all garbage after every rerun, a fragment's timed
    rerun included: with torch, scikit-learn and UMAP loaded that holds the GIL for
    about 0.35 s, so the Classroom's poll and the live view starved the lessons and
    runs training in the server. The project's config turns it off, as Streamlit
    reads it where `make run` starts the server (a renamed option would fall back to
    the default and fail here)."""
    ask = ("from streamlit import config; config.get_config_options(force_reparse=True); "
           "print(config.get_option('runner.postScriptGC'))")
    out = subprocess.run([sys.executable, "-c", ask], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_the_pages_turn_the_collection_off_wherever_the_server_starts(tmp_path):
    """Streamlit reads .streamlit/config.toml from the directory it starts in, so a
    server started elsewhere (`streamlit run /path/to/Home.py`) would collect after
    every rerun again; the module every page imports turns it off, unless the user
    chose a value themselves (a flag or STREAMLIT_RUNNER_POST_SCRIPT_GC, which
    `streamlit run` hands to the config as it does here)."""
    ask = ("from streamlit import config; import sys; "
           "flags = {'runner.postScriptGC': True} if sys.argv[1] == 'chosen' else {}; "
           "config.get_config_options(force_reparse=True, options_from_flags=flags); "
           "import ganmm.ui.common; print(config.get_option('runner.postScriptGC'))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for case, expected in (("default", "False"), ("chosen", "True")):
        out = subprocess.run([sys.executable, "-c", ask, case], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip().splitlines()[-1] == expected, (case, out.stdout)


def test_classroom_teacher_mode_hides_the_settings_and_keeps_the_lesson():
    at = page("pages/4_Classroom.py").run()
    _until(at, "0")
    at.button(key="cls-step").click().run()
    _until(at, "1")
    at.button(key="cls-teacher").click().run()
    assert not at.exception
    assert not at.title and not [s for s in at.selectbox if s.key == "cls-dataset"]
    assert [b.label for b in at.button] == ["Step", "Play", "Leave teacher mode"]
    assert _iteration(at) == "1"
    at.button(key="cls-leave").click().run()
    assert at.selectbox(key="cls-dataset").value == "moons" and _iteration(at) == "1"


def test_train_page_embedded_space_trains_the_autoencoder_then_starts_the_run(monkeypatch):
    import time

    from ganmm import embedding
    from ganmm.embedding import AutoencoderConfig

    monkeypatch.setattr(embedding, "DEFAULT_CONFIG",
                        AutoencoderConfig(hidden=(16,), latent=3, epochs=40, batch_size=64))
    at = page("pages/2_Train.py")
    at.session_state["data_choice"] = DataChoice("blobs", display="blobs")
    at.run()
    at.selectbox(key="train-model").select("kmeans").run()
    at.number_input(key="train-k").set_value(3).run()
    at.radio(key="train-space").set_value("embedded").run()
    at.button[0].click().run()
    assert not at.exception
    seen = set()
    end = time.monotonic() + 60
    while "run_id" not in at.session_state:  # the run starts once the autoencoder is trained
        assert time.monotonic() < end, "the run never started"
        seen.update(p.proto.text for p in at.get("progress"))
        time.sleep(0.2)
        at.run()
        assert not at.exception
    assert any(re.match(r"Training the autoencoder on blobs: epoch [1-9]\d* of 40 · reconstruction error "
                        r"\d", text) for text in seen)
    record = get_manager().wait(at.session_state["run_id"], timeout=60)
    assert record.status == "done" and record.dataset == "blobs·embedded"
    assert record.config["data"]["space"] == "embedded" and record.dataset_info["n_features"] == 3


def test_live_view_draws_the_latest_stored_samples_between_sample_iterations():
    """GAN mixtures store samples every few iterations: an iteration between shows
    those of the latest one before it, and says which."""
    from ganmm.store import RunStore
    from ganmm.ui.live import with_samples

    tiny = dict(hidden=16, z_dim=4, batch_size=16, n_critic=1, n_pretrain=2, n_epoch=1, classifier_steps=2,
                classifier_warmup=2, samples_every=3, tol=-1, time_budget=None)
    run_id = finished_run("moons", "ganmm", 2, **tiny)
    store = RunStore()
    record = store.get_run(run_id)
    stored = [store.load_iteration(run_id, i).samples is not None for i in range(5)]
    assert stored == [True, False, False, True, True]  # 0, 3, and the last
    drawn = with_samples(record, store.load_iteration(run_id, 2))
    np.testing.assert_array_equal(drawn.samples, store.load_iteration(run_id, 0).samples)
    assert drawn.extras["samples_of"] == 0 and drawn.iteration == 2
    own = with_samples(record, store.load_iteration(run_id, 3))
    assert own.extras["samples_of"] == 3
    at = page("pages/2_Train.py")
    at.session_state["run_id"] = run_id
    at.run()
    assert not at.exception and charts(at) >= 7


def test_a_live_view_never_waits_for_new_samples_to_be_placed_in_the_picture(monkeypatch):
    """Placing new generator samples in the UMAP picture takes 0.1-0.5 s while a run
    trains: a live view (a timer redraws it) asks without waiting and meanwhile draws
    the samples of an earlier iteration already placed, and says which; a view of a
    run that has ended waits briefly, then does the same with the timer on."""
    import json

    from ganmm.projection import ProjectionState
    from ganmm.reference import compute_reference
    from ganmm.store import RunStore
    from ganmm.ui import live

    class Projector:  # sample sets in ``ready`` are placed at once; others are "still running"
        def __init__(self):
            self.waits: list[float] = []
            self.ready: set[bytes] = set()

        def request(self, ds):
            return ProjectionState("ready", embedding=np.zeros((ds.n_samples, 2), np.float32))

        def transform(self, ds, points, timeout=10.0):
            self.waits.append(timeout)
            return points + 1.0 if points.tobytes() in self.ready else None

    projector = Projector()
    monkeypatch.setattr(live, "get_projector", lambda: projector)
    mgr, store = get_manager(), RunStore()
    run_id, deadline = start_tiny_gan(), time.monotonic() + 120
    last = pause_after(run_id, 4, deadline)
    newest, earlier = last - last % 3, last - last % 3 - 3  # the latest two iterations with samples
    flat = {i: np.ascontiguousarray(store.load_iteration(run_id, i).samples.reshape(-1, 2), dtype=np.float32)
            for i in (newest, earlier)}
    projector.ready.add(flat[earlier].tobytes())

    def umap_title(at: AppTest) -> str:  # "title, subtitle" of the picture
        titles = [json.loads(c.proto.spec)["layout"].get("title", {}) for c in at.get("plotly_chart")]
        title = next(t for t in titles if t.get("text", "").startswith("The data (2-D, as is)"))
        return ", ".join([title["text"], *([title["subtitle"]["text"]] if "subtitle" in title else [])])

    at = page("pages/2_Train.py")
    at.session_state["run_id"] = run_id
    at.session_state[f"live-follow-{run_id}"] = False  # replay the earlier sample iteration: it gets placed
    at.session_state[f"live-replay-{run_id}"] = earlier
    at.run()
    assert not at.exception
    assert umap_title(at).endswith(f"generator samples of iteration {earlier}")
    titles = [json.loads(c.proto.spec)["layout"].get("title", {}).get("text") for c in at.get("plotly_chart")]
    assert f"Cluster sizes at iteration {earlier}" in titles  # a replay's bar chart says which iteration
    at.session_state[f"live-follow-{run_id}"] = True  # back to the latest: its samples are not placed yet
    at.run()
    assert not at.exception
    assert umap_title(at).endswith(f"generator samples of iteration {earlier}")  # the earlier ones meanwhile
    assert projector.waits and set(projector.waits) == {0.0}  # a paused run is redrawn: never a wait
    projector.ready.add(flat[newest].tobytes())
    at.run()
    assert umap_title(at).endswith(f"generator samples of iteration {newest}")
    assert mgr.stop(run_id) == "stopped"
    compute_reference(data.load("moons"), 2, store.get_run(run_id).seed)  # no reference lines pending either
    projector.ready.discard(flat[newest].tobytes())  # as after a restart: nothing placed yet
    live._placements.clear()
    projector.waits.clear()
    at.run()
    assert not at.exception
    assert projector.waits == [live.SETTLED_PLACEMENT_WAIT, 0.0]  # no timer redraws an ended run: a short
    assert umap_title(at) == "The data (2-D, as is)"  # wait, then no samples yet and the timer on
    assert at.session_state[f"live-placing-{run_id}"] is True
    projector.ready.add(flat[newest].tobytes())
    projector.waits.clear()
    at.run()  # the timer's redraw: placed now, so the timer goes off and the page is drawn once more
    assert umap_title(at).endswith(f"generator samples of iteration {newest}")
    assert projector.waits == [0.0]  # the page drawn once more takes the placement kept in the meantime
    assert at.session_state[f"live-placing-{run_id}"] is False  # nothing left to wait for: the timer is off


def test_a_run_whose_process_died_is_marked_interrupted_by_the_pages():
    """A command-line run killed with -9 stayed "running" on every page, with no
    button to end it, until the server restarted."""
    from ganmm.ui import common

    run_id = finished_run(name="killed")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no longer runs
    store = get_manager().store
    with store._write() as db:
        db.execute("UPDATE runs SET status = 'running', pid = ?, finished = NULL WHERE run_id = ?",
                   (gone.pid, run_id))
    common._last_recovery[0] = 0.0  # as if the last look was long ago
    at = page("Home.py").run()
    assert not at.exception
    record = store.get_run(run_id)
    assert record.status == "interrupted" and f"pid {gone.pid}" in record.error
    assert at.dataframe[0].value.iloc[0]["status"].startswith("interrupted")


def test_runs_of_the_default_preset_group_together_however_it_was_named():
    """The command line records no preset unless one is given, the form "default":
    the mean ± std table kept their seeds apart."""
    from ganmm.ui import compare

    mgr = get_manager()
    tiny = {"n_clusters": 2, **TINY_GAN, "max_iter": 2}
    runs = [mgr.start(data.load("moons"), "ganmm", tiny, seed=seed, preset=preset, dataset_source="moons")
            for seed, preset in ((0, None), (1, "default"))]
    records = [mgr.wait(r, timeout=120) for r in runs]
    assert [r.config.get("preset") for r in records] == [None, "default"]
    table = compare.seed_table(records)
    assert len(table) == 1 and table.iloc[0]["seeds"] == 2 and table.iloc[0]["preset"] == "default"


def test_a_run_deleted_while_shown_is_said_so_not_a_command_line_hint():
    run_id = finished_run(name="to delete")
    keep = finished_run(name="kept")
    at = page("pages/2_Train.py")
    at.session_state["run_id"] = run_id
    at.run()
    assert not at.exception and any(m.value == "#### to delete" for m in at.markdown)
    get_manager().store.delete_run(run_id)
    at.run()
    assert not at.exception
    assert not any("python -m ganmm runs" in e.value for e in at.error)
    assert at.selectbox(key="train-run").value == keep  # the picker moved to a run that exists


def test_a_queued_run_says_it_waits_for_a_free_slot():
    from ganmm.ui import live

    mgr = get_manager()
    busy = [start_tiny_gan(name=f"busy {i}") for i in range(mgr.max_concurrent)]
    queued = start_tiny_gan(name="waiting")
    try:
        record = mgr.store.get_run(queued)
        assert record.status == "queued"
        assert live._waiting_for(record).startswith("Queued: it starts when one of the runs training now ends")
    finally:
        for run_id in (queued, *busy):
            mgr.stop(run_id, timeout=60)


def test_the_autoencoder_wait_can_be_cancelled():
    """The Train page's Cancel under the autoencoder's progress: the training stops
    after its epoch (it went on for minutes, and held the server at exit)."""
    from ganmm.ui import common

    ds, deadline = data.load("digits"), time.monotonic() + 120
    while "epoch" not in (said := common.embedded_space(ds, seed=5)[2]):
        assert time.monotonic() < deadline, said
        time.sleep(0.1)
    common.cancel_embedded_space(ds, seed=5)
    common.embedded_space(ds, seed=5)  # asked again at once (a second click, another session) ...
    common.cancel_embedded_space(ds, seed=5)  # ... and cancelled: neither training goes on
    # the one background worker is free again long before 300 epochs could end
    free = common.background().submit(("probe", time.time()), lambda: "free")
    assert free.result(timeout=60) == "free"
    assert not list((common.store().home / "cache").rglob("*.npz"))  # nothing half-trained was kept
    features, done, said = common.embedded_space(ds, seed=5)  # asked again: it trains anew
    assert features is None and done < 0.5
    common.cancel_embedded_space(ds, seed=5)


def test_compare_keeps_its_choice_when_a_chosen_run_is_deleted_elsewhere():
    a, b, c = (finished_run(name=n) for n in ("a", "b", "c"))
    at = page("pages/3_Compare.py")
    at.session_state["compare"] = [a, b, c]
    at.run()
    assert at.multiselect(key="compare-runs").value == [a, b, c]
    get_manager().store.delete_run(b)  # from Home in another tab
    at.run()
    assert not at.exception and at.multiselect(key="compare-runs").value == [a, c]
    assert any("1 of the chosen runs was deleted meanwhile" in i.value for i in at.info)
    at.multiselect(key="compare-runs").unselect(c).run()  # the next click counts
    assert at.multiselect(key="compare-runs").value == [a]
    assert any("Pick at least two runs" in i.value for i in at.info)


def test_compare_reads_its_runs_from_the_address_and_keeps_them_across_pages():
    """?runs= names the runs (each once, a deleted one said); back on Compare through a
    link, the runs chosen are still the ones shown (Streamlit forgets the picker's value
    on other pages, and the page fell back to the newest two)."""
    a, b, c, d = (finished_run(name=n) for n in ("a", "b", "c", "d"))
    at = page("pages/3_Compare.py")
    at.query_params["runs"] = f"{a},{a},{b},20990101-000000-abcdef"
    at.run()
    assert not at.exception and at.multiselect(key="compare-runs").value == [a, b]
    assert any("1 of the runs the address names is not in the store" in i.value for i in at.info)
    assert at.query_params == {"runs": f"{a},{b}"}
    at.multiselect(key="compare-runs").select(c).run()
    links = {e.proto.label: e.proto.query_string for e in at.get("page_link")}
    assert "%2C".join((a, b, c)) in links["Compare"] or ",".join((a, b, c)) in links["Compare"]
    at.switch_page("Home.py").run()  # another page, in the same session
    assert not at.exception
    at.query_params.clear()
    at.query_params["runs"] = f"{a},{b},{c}"  # the sidebar's Compare link
    at.switch_page("pages/3_Compare.py").run()
    assert not at.exception and at.multiselect(key="compare-runs").value == [a, b, c]
    assert at.query_params == {"runs": f"{a},{b},{c}"}


def test_data_page_previews_the_files_own_values():
    """The preview maps the scaled float32 data back: 0 showed as -0.000000006."""
    rng = np.random.default_rng(0)
    values = np.round(rng.uniform(0, 8, (40, 3)), 1)
    values[:5, 0] = 0.0
    from ganmm.uploads import save_upload

    text = "a,b,c\n" + "\n".join(",".join(f"{v:.1f}" for v in row) for row in values) + "\n"
    path = save_upload("measures.csv", text.encode())  # the pages read built-ins and uploads only
    at = page("pages/1_Data.py")
    at.session_state["data_choice"] = DataChoice(str(path), display="measures.csv")
    at.run()
    assert not at.exception and "40 rows x 3 features" in texts(at)
    shown = at.dataframe[0].value
    np.testing.assert_array_equal(shown.to_numpy(), values)  # exactly the file's numbers
    summary = at.dataframe[1].value
    assert summary.loc["a", "min"] == 0.0 and summary.loc["b", "max"] == values[:, 1].max()


def test_back_on_the_data_page_the_files_label_column_can_still_be_changed():
    """After a visit to another page the uploader is empty and the file in use is
    shown; its label column picker was gone, so changing it meant uploading again."""
    from ganmm.uploads import save_upload

    rows = "\n".join(f"{i % 7}.5,{i % 5}.25,{i % 3}" for i in range(30))
    path = save_upload("kinds.csv", f"a,b,kind\n{rows}\n".encode())
    at = page("pages/1_Data.py")
    at.session_state["data_choice"] = DataChoice(str(path), label_column="kind", display="kinds.csv")
    at.run()
    picker = at.selectbox(key=f"upload-label-column-{path.parent.name}")
    assert not at.exception and picker.value == "kind" and "30 rows x 2 features" in texts(at)
    picker.select("(no labels)").run()
    assert not at.exception and "30 rows x 3 features" in texts(at)
    next(b for b in at.button if b.label == "Use this dataset for new runs").click().run()
    assert at.session_state["data_choice"].label_column is None
    assert at.query_params == {"data": f"{path.parent.name}/kinds.csv"}
    # Back, to the address with the label column: the page shows that choice again
    # (its picker had kept "(no labels)", and a click on Use undid the Back)
    at.query_params["label"] = "kind"
    at.run()
    assert not at.exception and at.session_state["data_choice"].label_column == "kind"
    assert at.selectbox(key=f"upload-label-column-{path.parent.name}-1").value == "kind"
    assert "30 rows x 2 features" in texts(at) and "New runs on the Train page use this dataset." in texts(at)
    assert not any(b.label == "Use this dataset for new runs" for b in at.button)


def test_a_reload_comes_back_to_the_dataset_in_use():
    """A reload starts a new session; the page's address keeps the dataset (built-in,
    or an upload with its label column), and names nothing outside the uploads."""
    from ganmm.uploads import save_upload

    at = page("pages/1_Data.py").run()
    assert not at.exception and at.query_params == {}  # mnist5k, the default, needs no address
    at.selectbox[0].select("digits").run()
    next(b for b in at.button if b.label == "Use this dataset for new runs").click().run()
    assert at.query_params == {"data": "digits"}
    at.query_params.clear()  # Back, to the address before "Use": the dataset before
    at.run()
    assert not at.exception and at.session_state["data_choice"].source == "mnist5k" and at.query_params == {}
    at.query_params["data"] = "digits"  # and Forward again
    at.run()
    assert at.session_state["data_choice"].source == "digits" and at.query_params == {"data": "digits"}
    reloaded = page("pages/2_Train.py")
    reloaded.query_params.update(at.query_params)
    reloaded.run()
    assert not reloaded.exception and reloaded.session_state["data_choice"].source == "digits"
    assert reloaded.query_params == {"data": "digits"}  # kept after switching to this page

    rows = "\n".join(f"{i % 7}.5,{i % 5}.25,{i % 3}" for i in range(30))
    path = save_upload("kinds.csv", f"a,b,kind\n{rows}\n".encode())
    at = page("pages/3_Compare.py")
    at.session_state["data_choice"] = DataChoice(str(path), label_column="kind", display="kinds.csv")
    at.run()
    assert at.query_params == {"data": f"{path.parent.name}/kinds.csv", "label": "kind"}  # no server path
    reloaded = page("pages/1_Data.py")
    reloaded.query_params.update(at.query_params)
    reloaded.run()
    assert not reloaded.exception and "30 rows x 2 features" in texts(reloaded)
    assert reloaded.session_state["data_choice"].source == str(path)
    assert reloaded.session_state["data_choice"].label_column == "kind"

    for bad in ({"label": "nope"}, {"label": "kind", "labels": f"{path.parent.name}/kinds.csv"}):
        at = page("pages/1_Data.py")  # a file kept, but a label column it lacks, or labels twice
        at.query_params.update({"data": f"{path.parent.name}/kinds.csv", **bad})
        at.run()
        assert not at.exception and at.session_state["data_choice"].source == "mnist5k", bad
        assert "cannot be used" in " ".join(t.value for t in at.toast) and at.query_params == {}

    outside = ROOT / "README.md"
    for named in (str(outside), "../" * 12 + str(outside).lstrip("/"), "0" * 24 + "/kinds.csv"):
        at = page("pages/1_Data.py")
        at.query_params["data"] = named
        at.run()
        assert not at.exception and at.session_state["data_choice"].source == "mnist5k", named
        assert "does not keep" in " ".join(t.value for t in at.toast) and at.query_params == {}


def test_the_train_pages_address_names_the_run_watched():
    """A reload of the Train page (a new session) opens the run it showed, not the
    newest; a run id the store does not have falls back to the newest."""
    older = finished_run(name="older")
    newer = finished_run(name="newer")
    home = page("Home.py").run()  # the sidebar's Train link names the run Train will show
    assert [e.proto.query_string for e in home.get("page_link") if e.proto.label == "Train"] == [f"run={newer}"]
    from urllib.parse import parse_qsl  # and Compare's the two runs it will show: the newest

    compare_link = next(e.proto.query_string for e in home.get("page_link") if e.proto.label == "Compare"
                        and e.proto.page == "Compare" and "runs" in e.proto.query_string)
    assert dict(parse_qsl(compare_link)) == {"runs": f"{newer},{older}"}
    at = page("pages/2_Train.py").run()
    assert not at.exception and at.query_params["run"] == newer  # the newest by default
    at.selectbox(key="train-run").select(older).run()
    assert not at.exception and at.query_params["run"] == older
    train_link = [e.proto.query_string for e in at.get("page_link") if e.proto.label == "Train"]
    assert train_link == [f"run={older}"]  # the run now shown: following it stays there
    reloaded = page("pages/2_Train.py")
    reloaded.query_params.update(at.query_params)
    reloaded.run()
    assert not reloaded.exception and reloaded.selectbox(key="train-run").value == older
    assert "older" in reloaded.selectbox(key="train-run").format_func(older)
    reloaded.query_params["run"] = newer  # Back to the page's earlier address: its run again
    reloaded.run()
    assert not reloaded.exception and reloaded.selectbox(key="train-run").value == newer
    gone = page("pages/2_Train.py")
    gone.query_params["run"] = "20990101-000000-abcdef"
    gone.run()
    assert not gone.exception and gone.selectbox(key="train-run").value == newer
    assert gone.query_params["run"] == newer
