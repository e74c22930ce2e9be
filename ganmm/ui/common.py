"""What every page shares: the run manager, cached data, the chosen dataset.

The only module family besides the pages that imports Streamlit. Pages call
these helpers; the helpers call the library; nothing here trains a model.
"""

from __future__ import annotations

import os
import queue
import threading
import time
import functools
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from .. import data, uploads
from ..errors import GanmmError
from ..runs import RunManager, get_manager, load_run_dataset
from ..store import ACTIVE, RunRecord, RunStore, StoreError
from .compare import METRICS

MAX_CONCURRENT = 2
"""runs that train at once in one server; the others wait queued"""


def no_full_collection_after_each_run() -> None:
    """Turn off Streamlit's full garbage collection after every script run
    (``runner.postScriptGC``) unless the user set it themselves.

    The repository's ``.streamlit/config.toml`` says so too, but Streamlit reads
    that file from the directory the server starts in: ``streamlit run`` from
    anywhere else got the default back, and with it a collection of about 0.35 s,
    holding the GIL, after every poll of the Classroom and the live view, which
    starved the lessons and runs training in the server (see the config file).
    Every page imports this module, so this holds wherever the server started."""
    from streamlit import config

    if not config.is_manually_set("runner.postScriptGC"):
        config.set_option("runner.postScriptGC", False, where_defined=__name__)


no_full_collection_after_each_run()


@dataclass(frozen=True)
class DataChoice:
    """The dataset a browser session works on: what ``ganmm.data.load`` takes."""

    source: str
    """a built-in name, or the path of an upload kept in GANMM_HOME/uploads"""
    label_column: str | None = None
    """CSV/TSV: the column holding labels (None: no labels)"""
    labels: str | None = None
    """path of an uploaded labels file (IDX / NPY), kept in GANMM_HOME/uploads"""
    display: str = ""
    """the name shown to the user (the uploaded file's name)"""

    @property
    def options(self) -> dict[str, str | None]:
        return {"label_column": self.label_column, "labels": self.labels}


DEFAULT_DATA = DataChoice("mnist5k", display="mnist5k")

DATA_KEYS = ("data", "label", "labels")
"""the query parameters that name the dataset"""

NONE_SHOWN = "-"
"""what a table cell without a value shows (the browser's table drew "None")"""
METRIC_COLUMNS = {m: st.column_config.NumberColumn(format="%.3f") for m in METRICS}
"""metric columns as numbers to 3 decimals: they sort as numbers (as text, -0.03 came
before -0.1)"""


def manager() -> RunManager:
    """The server's one run manager (shared by every browser session)."""
    return get_manager(MAX_CONCURRENT)


@st.cache_resource(show_spinner=False)
def leave_a_core_for_the_pages() -> int:
    """Training threads of this server use all cores but one (once per process).

    Runs train in threads of the server, so on a 2-core machine torch's two
    threads would starve the pages: a live refresh took ~600 ms instead of
    ~40 ms with a GANMM run training (benchmarks/dashboard.py)."""
    import torch

    n = max(1, (os.cpu_count() or 1) - 1)
    torch.set_num_threads(n)
    return n


def start_run(choice: DataChoice, ds: data.Dataset, model: str, settings: dict, *, seed: int = 0,
              preset: str | None = None, device: str = "auto", name: str | None = None,
              space: str = "raw") -> str:
    """Queue a run on the server's manager; bad settings raise GanmmError. With
    ``space="embedded"``, ``ds`` is the embedded dataset (see :func:`embedded_space`)."""
    leave_a_core_for_the_pages()
    ds.validate_for(settings["n_clusters"])
    options = {**choice.options, "space": space, **({"space_seed": seed} if space == "embedded" else {})}
    return manager().start(ds, model, settings, seed=seed, preset=preset, device=device, name=name,
                           dataset_source=choice.source, data_options=options)


def embedded_space(ds: data.Dataset, seed: int, device: str = "auto") -> tuple[data.Dataset | None, float, str]:
    """The embedded dataset when ready, else None; the training's progress (0-1)
    and a line saying where it stands. Trains on the background thread once per
    dataset and seed (then the disk cache serves it)."""
    from ..embedding import DEFAULT_CONFIG, embedded_dataset

    key = ("embedded", ds.fingerprint(), seed)
    progress = _AE_PROGRESS.setdefault(key, [0, DEFAULT_CONFIG.epochs, None])

    mine = _AE_CANCELS.get(key, 0)  # a cancel after this call stops the training made for it

    def seen(epoch: int, epochs: int, loss: float) -> None:
        if _AE_CANCELS.get(key, 0) != mine:
            raise AutoencoderCancelled("the autoencoder's training was cancelled")
        progress[:] = [epoch, epochs, loss]

    fut = background().submit(key, lambda: embedded_dataset(ds, seed=seed, device=device, progress=seen))
    if fut.done():
        if fut.exception() is not None:
            background().forget(key)  # the next click tries again
            _AE_PROGRESS.pop(key, None)
            return None, 0.0, f"The autoencoder failed: {fut.exception()}"
        return fut.result(), 1.0, "The embedded space is ready."
    epoch, epochs, loss = progress
    if loss is None:
        return None, 0.0, f"The autoencoder for {ds.name} is about to train (after other background work) ..."
    said = f" · reconstruction error {loss:.4f}"
    return None, epoch / max(epochs, 1), (f"Training the autoencoder on {ds.name}: epoch {epoch} of "
                                          f"{epochs}{said}. The run starts when it is done.")


_AE_PROGRESS: dict[tuple, list] = {}
"""autoencoder training progress per (dataset, seed): [epoch, epochs, loss]"""
_AE_CANCELS: dict[tuple, int] = {}
"""cancels asked per (dataset, seed): a training made before the last one ends at its next epoch"""


class AutoencoderCancelled(GanmmError):
    """The embedded space's autoencoder was cancelled from the page that waited for it."""


def cancel_embedded_space(ds: data.Dataset, seed: int) -> None:
    """Stop the autoencoder training for ``ds`` and ``seed`` after its current epoch
    (a later request trains it anew)."""
    key = ("embedded", ds.fingerprint(), seed)
    fut = background().forget(key)
    if fut is not None and not fut.done():
        _AE_CANCELS[key] = _AE_CANCELS.get(key, 0) + 1
        fut.cancel()  # not started yet: it never will
    _AE_PROGRESS.pop(key, None)


OTHER_PROCESS = ("Trained by another process (the command line, or another server): pause, stop or "
                 "delete it there (Ctrl-C stops a command-line run). If that process ends without "
                 "finishing the run, the run is marked interrupted here within seconds.")
"""what a page says under a run it cannot pause or stop"""

RECOVER_EVERY = 2.0
"""seconds between two looks for runs whose process died (a command line killed)"""
_last_recovery = [0.0]


def store() -> RunStore:
    """The run store. At most every RECOVER_EVERY seconds it first marks
    interrupted the active runs whose process is gone: a command-line run killed
    with -9 stayed "running" on every page, with no button to end it, until the
    server restarted."""
    runs = manager().store
    now = time.monotonic()
    if now - _last_recovery[0] >= RECOVER_EVERY:
        _last_recovery[0] = now
        try:
            runs.recover_interrupted()
        except StoreError:
            pass  # a store that cannot be read says so on the caller's own read
    return runs


def data_choice() -> DataChoice:
    """The session's dataset: mnist5k until the Data page changes it, or what the
    page's address names. The address wins when it is not the one this session
    wrote last: a reload (a new session), or Back and Forward to an address
    written before (Back after "Use this dataset" goes back to the dataset before)."""
    params = st.query_params.to_dict()
    named = {k: params[k] for k in DATA_KEYS if k in params}
    if "data_choice" in st.session_state:
        if named == st.session_state.get("address-data", named):
            return st.session_state["data_choice"]
        st.session_state["address-switches"] = address_switches() + 1
    choice = choice_from_address(named) if named else DEFAULT_DATA
    if choice is not None and choice != DEFAULT_DATA:
        try:  # a label column the file lacks, or labels given twice, cannot be used
            load_dataset(choice.source, choice.label_column, choice.labels)
        except GanmmError as exc:
            st.toast(f"The address names a dataset that cannot be used ({exc}); "
                     f"new runs use {DEFAULT_DATA.display}.")
            choice = DEFAULT_DATA
    elif choice is None:
        st.toast(f"The address names a dataset this server does not keep; new runs use {DEFAULT_DATA.display}.")
        choice = DEFAULT_DATA
    st.session_state["data_choice"] = choice
    st.session_state["address-data"] = address_of(choice)
    return choice


def address_switches() -> int:
    """How often Back or Forward brought another dataset in this session (the Data
    page's upload widgets start afresh each time)."""
    return st.session_state.get("address-switches", 0)


def set_data_choice(choice: DataChoice, *, address: bool = True) -> None:
    """Make ``choice`` the session's dataset and write it into the address; with
    ``address`` False the caller's switch to another page carries it (a write here
    first was an entry of the browser's history of its own)."""
    st.session_state["data_choice"] = choice
    if address:
        keep_choice_in_address()
    else:
        st.session_state["address-data"] = address_of(choice)


def address_of(choice: DataChoice) -> dict[str, str]:
    """The query parameters that name ``choice``: a built-in's name, or an upload's
    place in the uploads folder (its content hash and safe name), never a path."""
    if choice == DEFAULT_DATA:
        return {}
    root = uploads.uploads_dir()

    def kept(path: str) -> str:
        return Path(path).relative_to(root).as_posix() if uploads.is_upload(path) else path

    params = {"data": kept(choice.source)}
    if choice.label_column is not None:
        params["label"] = choice.label_column
    if choice.labels is not None:
        params["labels"] = kept(choice.labels)
    return params


def choice_from_address(params: dict[str, str]) -> DataChoice | None:
    """The dataset the query parameters name, when it is a built-in or a file kept
    in the uploads folder; None otherwise (nothing else on the server is named)."""
    source = params.get("data")
    if not source:
        return None
    if source in data.BUILTINS:
        return DataChoice(source, display=source)
    root = uploads.uploads_dir()
    files = [params[k] for k in ("data", "labels") if params.get(k)]
    if not all(uploads.is_upload(root / f) for f in files):
        return None
    path = root / source
    labels = str(root / params["labels"]) if params.get("labels") else None
    return DataChoice(str(path), params.get("label") or None, labels, display=path.name)


def keep_choice_in_address() -> None:
    """Write the session's dataset into the page's address, so that a reload comes
    back to it: once, and only when it changed (each change of the address is an
    entry of the browser's history)."""
    current = st.query_params.to_dict()
    mine = address_of(data_choice())
    st.session_state["address-data"] = mine
    wanted = {**{k: v for k, v in current.items() if k not in DATA_KEYS}, **mine}
    if wanted != current:
        st.query_params.from_dict(wanted)


HOME, DATA, TRAIN, COMPARE, CLASSROOM = (
    "Home.py", "pages/1_Data.py", "pages/2_Train.py", "pages/3_Compare.py", "pages/4_Classroom.py")
PAGES = {HOME: "Home", DATA: "Data", TRAIN: "Train", COMPARE: "Compare", CLASSROOM: "Classroom"}
"""the pages in the sidebar's order, with their names"""


def page_address(page: str, given: dict[str, str] | None = None, *, base: dict[str, str] | None = None,
                 newest: Any = None) -> dict[str, str]:
    """The query parameters a link to ``page`` carries: ``given``, else the session's
    dataset (``base``, when the caller has it), for Train the run it shows, for
    Compare the runs it shows (``newest``: the store's run ids, newest first, read
    only when the session has no run of its own). Streamlit clears the address
    when the page changes, and a page that wrote it back after arriving added a
    second history entry per visit, so that Back seemed to do nothing; a link
    that carries it adds one."""
    # the session's choice as it is (set_up_page has matched it with the address):
    # data_choice() here took a dataset just set, not yet in the address, for a Back
    params = dict(address_of(st.session_state.get("data_choice", DEFAULT_DATA)) if base is None else base)
    params.update(given or {})
    newest = newest or newest_run_ids
    if page == TRAIN and "run" not in params:  # the session's run, else the newest
        run_id = st.session_state.get("run_id") or next(iter(newest()), None)
        if run_id:
            params["run"] = run_id
    if page == COMPARE and "runs" not in params:  # the session's runs, else the newest two
        runs = st.session_state.get("compare")
        if runs is None:
            ids = newest()
            runs = ids[:2] if len(ids) >= 2 else []
        if runs:
            params["runs"] = ",".join(runs)
    return params


def newest_run_ids() -> list[str]:
    """The store's run ids, newest first."""
    return [r.run_id for r in store().list_runs()]


def go(page: str) -> None:
    """Switch to ``page`` with its address (see :func:`page_address`). Streamlit
    writes the address on the page left first: a link adds one history entry
    less (:func:`page_link`)."""
    st.switch_page(page, query_params=page_address(page) or None)


def page_link(page: str, label: str, *, where: Any = None, params: dict[str, str] | None = None,
              address: dict[str, str] | None = None, **kwargs: Any) -> None:
    """A link to ``page`` that carries its address (``address``, else
    :func:`page_address` with ``params``: the run Train shows, the runs Compare
    shows), drawn in ``where`` (a container; default the page)."""
    address = page_address(page, params) if address is None else address
    (where or st).page_link(page, label=label, query_params=address or None, **kwargs)


def no_default_navigation() -> None:
    """Hide Streamlit's own page list (``client.showSidebarNavigation``) unless the
    user set it: its links drop the address. The repository's config file says so
    too, for a server started in the repository."""
    from streamlit import config

    if not config.is_manually_set("client.showSidebarNavigation"):
        config.set_option("client.showSidebarNavigation", False, where_defined=__name__)


no_default_navigation()


def navigation() -> None:
    """The sidebar's links to the pages, each carrying its address (the dataset's
    part made once, the store read at most once)."""
    base = address_of(st.session_state.get("data_choice", DEFAULT_DATA))
    newest = functools.cache(newest_run_ids)
    for page, name in PAGES.items():
        page_link(page, name, where=st.sidebar, address=page_address(page, base=base, newest=newest))


def set_up_page(title: str | None = None, *, links: bool = True) -> None:
    """Every page's first call: its title, the wide layout, the session's dataset
    kept in the address, and the sidebar's links (``links`` False: the page draws
    them itself, later, with :func:`navigation`)."""
    st.set_page_config(page_title=f"{title} · GANMM Studio" if title else "GANMM Studio", layout="wide")
    keep_choice_in_address()
    if links:
        navigation()


@st.cache_resource(max_entries=8, show_spinner="Loading the dataset ...")
def load_dataset(source: str, label_column: str | None = None, labels: str | None = None) -> data.Dataset:
    """A dataset, loaded once per server (datasets are immutable records).

    The dashboard loads built-in datasets and files uploaded to it, nothing else:
    a browser never names a path on the server."""
    if source.strip().lower() not in data.BUILTINS and not uploads.is_upload(source):
        raise GanmmError(f"the dashboard loads built-in datasets and uploaded files only, not {source!r}")
    if labels is not None and not uploads.is_upload(labels):
        raise GanmmError(f"the dashboard loads uploaded labels files only, not {labels!r}")
    return data.load(source, label_column=label_column, labels_path=labels)


def chosen_dataset() -> tuple[DataChoice, data.Dataset | None, str | None]:
    """The session's dataset, loaded; or None and the error that says why not."""
    choice = data_choice()
    try:
        return choice, load_dataset(choice.source, choice.label_column, choice.labels), None
    except GanmmError as exc:
        return choice, None, str(exc)


@st.cache_resource(max_entries=16, show_spinner=False)
def _run_dataset(run_id: str, fingerprint: str) -> tuple[data.Dataset | None, str | None]:
    try:
        return load_run_dataset(store().get_run(run_id)), None
    except GanmmError as exc:
        return None, str(exc)


def run_dataset(record: RunRecord) -> tuple[data.Dataset | None, str | None]:
    """The data a run trained on (None and a reason when it cannot be loaded)."""
    return _run_dataset(record.run_id, record.fingerprint)


@st.cache_resource(max_entries=64, show_spinner=False)
def load_iteration(run_id: str, iteration: int) -> Any:
    """A stored iteration (Snapshot). Stored iterations never change, so one copy
    serves every refresh and every session."""
    return store().load_iteration(run_id, iteration)


def is_active(record: RunRecord) -> bool:
    return record.status in ACTIVE


def owned_here(run_id: str) -> bool:
    """True when this server's manager trains the run (so it can pause or stop it)."""
    return run_id in manager().active()


def run_label(record: RunRecord) -> str:
    metrics = record.metrics or {}
    ari = f", ARI {metrics['ari']:.3f}" if metrics.get("ari") is not None else ""
    damaged = " · damaged" if record.damaged else ""
    return f"{record.name} · {record.status}{damaged}{ari} · {record.run_id}"


class _Background:
    """One worker thread for slow, cacheable side computations (reference fits, the
    embedded space's autoencoder). A daemon thread: a ThreadPoolExecutor's worker
    is joined at exit, and a server told to stop (Ctrl-C) went on training an
    autoencoder for minutes."""

    def __init__(self) -> None:
        self.futures: dict[Any, Future] = {}
        self.lock = threading.Lock()
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._work, name="ganmm-ui", daemon=True).start()

    def _work(self) -> None:
        while True:
            fut, fn, args = self.jobs.get()
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                fut.set_exception(exc)

    def submit(self, key: Any, fn, *args) -> Future:
        with self.lock:
            fut = self.futures.get(key)
            if fut is None:  # a failure stays failed: no retry on every refresh
                fut = self.futures[key] = Future()
                self.jobs.put((fut, fn, args))
            return fut

    def forget(self, key: Any) -> Future | None:
        """Drop the result kept for ``key`` (the next submit computes anew); returns its future."""
        with self.lock:
            return self.futures.pop(key, None)


@st.cache_resource(show_spinner=False)
def background() -> _Background:
    return _Background()


def reference_metrics(ds: data.Dataset, k: int, seed: int) -> dict[str, dict[str, float]] | None:
    """GMM and k-means metrics on the same data: None while they are computed,
    {} when they could not be (the view then draws no reference lines)."""
    from ..reference import cached_reference, compute_reference

    if ds.y is None:
        return None
    found = cached_reference(ds.fingerprint(), k, seed)
    if found is not None:
        return found
    fut = background().submit(("reference", ds.fingerprint(), k, seed), compute_reference, ds, k, seed)
    if not fut.done():
        return None
    return fut.result() if fut.exception() is None else {}
