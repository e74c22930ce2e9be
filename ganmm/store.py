"""The run store: every run and every iteration it completed, in ``GANMM_HOME``.

Layout::

    GANMM_HOME/runs.db                      SQLite (WAL): runs, per-iteration scalars
    GANMM_HOME/runs/<run_id>/dataset.npz    labels, feature names, units of the data
    GANMM_HOME/runs/<run_id>/iter_<n>.npz   arrays of iteration n (assignments, ...)

Writing an iteration puts its array file in place first (temporary file in the
same folder, fsync, rename) and commits its database row after, so a reader
that sees the row always finds a whole iteration, in this process or another.
Arrays are saved with ``np.savez_compressed`` and read with
``allow_pickle=False``; generated samples are kept at half precision
(float16, about 3 significant digits: enough to draw them).

The schema version lives in ``PRAGMA user_version``; :data:`MIGRATIONS` takes
an older store forward when it is opened. Statuses are written by the run
manager (:mod:`ganmm.runs`) alone; this module only records them.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import socket
import sqlite3
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .errors import GanmmError
from .paths import ganmm_home, runs_db, runs_dir

SCHEMA_VERSION = 2
"""version of the database layout this code writes (``PRAGMA user_version``)"""

STATUSES = ("queued", "running", "paused", "done", "stopped", "failed", "interrupted")
"""every run status; the first three mean a process still owns the run"""
ACTIVE = ("queued", "running", "paused")
"""statuses of a run that some process is (or was, if it died) working on"""

NAME_MAX = 80
"""longest run name kept, in characters"""
NOTES_MAX = 10_000
"""longest notes kept, in characters"""

_RUN_ID = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$")
_ITER_FILE = re.compile(r"^iter_[0-9]{6,}\.npz$")
_KEY = re.compile(r"[^A-Za-z0-9_]")


class StoreError(GanmmError):
    """The run store cannot do what was asked; the message says why and what to do."""


class RunNotFound(StoreError, KeyError):
    """No run has this id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class RunBusy(StoreError):
    """The run is still owned by a live process (queued, running or paused)."""


class IterationUnreadable(StoreError):
    """An iteration's array file is missing or damaged (that iteration only)."""


# --------------------------------------------------------------------------- #
# Records
# --------------------------------------------------------------------------- #

@dataclass(frozen=True)
class RunRecord:
    """One run as the store holds it."""

    run_id: str
    """``YYYYmmdd-HHMMSS-xxxxxx``"""
    name: str
    """editable display name (sanitised)"""
    status: str
    """one of :data:`STATUSES`"""
    model: str
    """model name: ganmm, ganmm-em, gmm, kmeans"""
    dataset: str
    """dataset name"""
    dataset_source: str | None
    """built-in name or absolute path of the data file"""
    fingerprint: str
    """SHA-256 of the scaled data and labels (``Dataset.fingerprint``)"""
    dataset_info: dict
    """kind, image_shape, n_samples, n_features, n_classes"""
    config: dict
    """model name, preset, settings as given, and the model's full resolved config"""
    seed: int
    device: str
    """device the run trains on: cpu, cuda, ..."""
    versions: dict
    """python, ganmm, numpy, torch, scikit-learn versions"""
    created: float
    """Unix time the run was recorded"""
    started: float | None
    """Unix time training first started"""
    finished: float | None
    """Unix time the run reached done, stopped, failed or interrupted"""
    iterations: int | None
    """number of the last stored iteration (0: the initial split), None before any"""
    metrics: dict
    """metrics of the last stored iteration (empty without labels)"""
    notes: str
    error: str | None
    """one line: what went wrong (failed or interrupted runs)"""
    traceback: str | None
    """the Python traceback of a failed run"""
    pid: int | None
    """process that owns (or owned) the run"""
    host: str | None
    """host of that process"""
    damaged: str | None = None
    """what was found damaged in the run's files (first finding), or None; the run's
    other iterations and the rest of the store stay usable"""
    elapsed: float | None = None
    """seconds of training at the last stored iteration (pauses excluded), None before any"""

    def to_json(self) -> dict:
        """Plain JSON-ready dict (times as ISO 8601 UTC)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for key in ("created", "started", "finished"):
            out[key] = _iso(out[key])
        return out


@dataclass(frozen=True)
class IterationRecord:
    """The scalars of one stored iteration (no file access needed)."""

    iteration: int
    elapsed: float
    """seconds of training since the run started (pauses excluded)"""
    changed: float
    converged: bool
    metrics: dict
    losses: dict
    extras: dict
    """scalar extras; array extras live in the iteration's file"""
    sizes: list[int]
    """points per cluster (also in the array file; here so that views of every
    iteration's sizes need no file access)"""


# --------------------------------------------------------------------------- #
# Schema and migrations
# --------------------------------------------------------------------------- #

def _schema_v1(db: sqlite3.Connection) -> None:
    db.execute("""
        CREATE TABLE runs (
            run_id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL,
            model TEXT NOT NULL, dataset TEXT NOT NULL, dataset_source TEXT,
            fingerprint TEXT NOT NULL, dataset_json TEXT NOT NULL, config_json TEXT NOT NULL,
            seed INTEGER, device TEXT, versions_json TEXT NOT NULL,
            created REAL NOT NULL, started REAL, finished REAL, updated REAL,
            last_iteration INTEGER, metrics_json TEXT NOT NULL DEFAULT '{}',
            notes TEXT NOT NULL DEFAULT '', error TEXT, traceback TEXT,
            pid INTEGER, host TEXT, proc_start TEXT)""")
    db.execute("""
        CREATE TABLE iterations (
            run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
            iteration INTEGER NOT NULL, elapsed REAL NOT NULL, changed REAL NOT NULL,
            converged INTEGER NOT NULL, metrics_json TEXT NOT NULL, losses_json TEXT NOT NULL,
            extras_json TEXT NOT NULL, sizes_json TEXT NOT NULL, file TEXT NOT NULL,
            nbytes INTEGER NOT NULL, written REAL NOT NULL, PRIMARY KEY (run_id, iteration))""")
    db.execute("CREATE INDEX runs_status ON runs(status)")


def _schema_v2(db: sqlite3.Connection) -> None:
    """A run whose files were found damaged says so."""
    db.execute("ALTER TABLE runs ADD COLUMN damaged TEXT")


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {0: _schema_v1, 1: _schema_v2}
"""version v -> function taking a store from v to v + 1 (inside one transaction)"""


# --------------------------------------------------------------------------- #
# The store
# --------------------------------------------------------------------------- #

class RunStore:
    """Runs and their iterations under ``home`` (default: :func:`ganmm_home`).

    Safe to share between threads and processes: every call opens its own
    SQLite connection; writes are short ``BEGIN IMMEDIATE`` transactions.
    """

    def __init__(self, home: Path | str | None = None):
        self.home = Path(home) if home is not None else ganmm_home()
        self.db_path = runs_db(self.home)
        self.runs_path = runs_dir(self.home)
        try:
            self.runs_path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the run store folder {self.home} ({exc.strerror}); "
                             "set GANMM_HOME to a folder you can write") from exc
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            self._migrate(db)

    # ---- connections -----------------------------------------------------------
    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.db_path, timeout=30.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the run store {self.db_path} ({exc}); "
                             "check GANMM_HOME and its permissions") from exc
        try:
            db.row_factory = sqlite3.Row
            try:
                db.execute("PRAGMA synchronous=FULL")  # a committed iteration survives power loss
                db.execute("PRAGMA foreign_keys=ON")
                yield db
            except sqlite3.DatabaseError as exc:
                # opening is lazy: a damaged file shows at the first statement that reads
                # it ("not a database") or at the first damaged page ("malformed")
                if type(exc) is sqlite3.DatabaseError:
                    raise StoreError(
                        f"the run store's database {self.db_path} cannot be read ({exc}); move "
                        "it aside to start an empty store (the runs' array files stay in its "
                        "runs folder), or set GANMM_HOME to another folder") from exc
                if isinstance(exc, sqlite3.OperationalError) and "unable to open" in str(exc):
                    raise StoreError(f"cannot open the run store {self.db_path} ({exc}); "
                                     "check GANMM_HOME and its permissions") from exc
                raise  # locked, full, a constraint: not damage, said where it is met
        finally:
            db.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _migrate(self, db: sqlite3.Connection) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the run store {self.db_path} has schema version {version}, newer than this "
                    f"ganmm understands ({SCHEMA_VERSION}); upgrade ganmm or point GANMM_HOME elsewhere")
            while version < SCHEMA_VERSION:
                MIGRATIONS[version](db)
                version += 1
                db.execute(f"PRAGMA user_version = {int(version)}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def schema_version(self) -> int:
        """The schema version recorded in the database file."""
        with self._connect() as db:
            return int(db.execute("PRAGMA user_version").fetchone()[0])

    # ---- runs ------------------------------------------------------------------
    def create_run(self, *, dataset: Any, model: str, config: dict, seed: int, device: str,
                   name: str | None = None, dataset_source: str | None = None,
                   versions: dict | None = None) -> RunRecord:
        """Record a new queued run of ``model`` on ``dataset`` (a ``ganmm.data.Dataset``)
        owned by this process, and keep the data's labels and units beside it."""
        while True:  # a fresh id and its folder (files first, then the row that points at them)
            run_id = new_run_id()
            folder = self.run_dir(run_id)
            try:
                folder.mkdir(parents=True)
                break
            except FileExistsError:
                continue
        info = {"kind": dataset.kind, "n_samples": int(dataset.X.shape[0]),
                "n_features": int(dataset.X.shape[1]),
                "image_shape": list(dataset.image_shape) if dataset.image_shape else None,
                "n_classes": None if dataset.label_names is None else len(dataset.label_names)}
        clean = sanitize_name(name) if name else ""
        meta = {"offset": np.asarray(dataset.offset, np.float64),  # the data's units, exactly
                "scale": np.asarray(dataset.scale, np.float64),
                "feature_names": np.asarray(dataset.feature_names, dtype=str)}
        if dataset.y is not None:
            meta["y"] = np.asarray(dataset.y, np.int64)
            meta["label_names"] = np.asarray(dataset.label_names, dtype=str)
        try:
            _atomic_savez(folder / "dataset.npz", meta)
            with self._write() as db:
                db.execute(
                    "INSERT INTO runs (run_id, name, status, model, dataset, dataset_source,"
                    " fingerprint, dataset_json, config_json, seed, device, versions_json, created,"
                    " updated, pid, host, proc_start)"
                    " VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, clean or f"{model} on {dataset.name}", model, dataset.name,
                     dataset_source, dataset.fingerprint(), _dumps(info), _dumps(config), int(seed),
                     device, _dumps(versions if versions is not None else package_versions()),
                     time.time(), time.time(), os.getpid(), socket.gethostname(),
                     _process_start(os.getpid())))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return self.get_run(run_id)

    def get_run(self, run_id: str) -> RunRecord:
        """The run with this id; :class:`RunNotFound` if there is none."""
        if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
            raise RunNotFound(_not_found(run_id))
        with self._connect() as db:
            row = db.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(_not_found(run_id))
        return _run_record(row)

    def list_runs(self) -> list[RunRecord]:
        """Every run, newest first."""
        with self._connect() as db:
            rows = db.execute(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY created DESC, run_id DESC").fetchall()
        return [_run_record(r) for r in rows]

    def set_status(self, run_id: str, status: str, *, error: str | None = None,
                   traceback: str | None = None, device: str | None = None) -> None:
        """Record a status (the run manager's call). Sets the start time on the first
        ``running`` and the finish time on a final status."""
        if status not in STATUSES:
            raise StoreError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
        now = time.time()
        with self._write() as db:
            cur = db.execute(
                "UPDATE runs SET status = ?, updated = ?,"
                " started = CASE WHEN ? = 'running' AND started IS NULL THEN ? ELSE started END,"
                " finished = CASE WHEN ? IN ('queued', 'running', 'paused') THEN NULL ELSE ? END,"
                " error = COALESCE(?, error), traceback = COALESCE(?, traceback),"
                " device = COALESCE(?, device) WHERE run_id = ?",
                (status, now, status, now, status, now, error, traceback, device, run_id))
            if cur.rowcount == 0:
                raise RunNotFound(_not_found(run_id))

    def rename(self, run_id: str, name: str) -> str:
        """Give the run a new (sanitised) name; returns the name kept."""
        clean = sanitize_name(name)
        if not clean:
            raise StoreError("a run name needs at least one visible character; type a name")
        self._update(run_id, "name", clean)
        return clean

    def set_notes(self, run_id: str, notes: str) -> None:
        """Replace the run's notes (control characters other than newlines and tabs dropped)."""
        clean = "".join(c for c in str(notes) if c in "\n\t" or unicodedata.category(c)[0] != "C")
        self._update(run_id, "notes", clean[:NOTES_MAX])

    def _update(self, run_id: str, column: str, value: Any) -> None:
        with self._write() as db:
            cur = db.execute(f"UPDATE runs SET {column} = ?, updated = ? WHERE run_id = ?",
                             (value, time.time(), run_id))
            if cur.rowcount == 0:
                raise RunNotFound(_not_found(run_id))

    def delete_run(self, run_id: str) -> None:
        """Delete the run, its iterations and its files. Refused (:class:`RunBusy`)
        while a live process owns it: stop it first."""
        self.recover_interrupted()
        run = self.get_run(run_id)
        with self._write() as db:
            cur = db.execute("DELETE FROM runs WHERE run_id = ? AND status NOT IN (?, ?, ?)",
                             (run_id, *ACTIVE))
            if cur.rowcount == 0:
                raise RunBusy(
                    f"run {run_id} is {run.status} in process {run.pid} on {run.host}; "
                    "stop it first (or wait until it ends), then delete it")
        shutil.rmtree(self.run_dir(run_id), ignore_errors=True)

    def recover_interrupted(self) -> list[str]:
        """Mark ``interrupted`` every queued/running/paused run whose owning process
        on this host is gone; returns their ids. Their stored iterations stay."""
        with self._connect() as db:
            rows = db.execute("SELECT run_id, pid, host, proc_start FROM runs WHERE status IN (?, ?, ?)",
                              ACTIVE).fetchall()
        gone = [r for r in rows if not _owner_alive(r["pid"], r["host"], r["proc_start"])]
        marked = []
        for r in gone:
            with self._write() as db:
                cur = db.execute(
                    "UPDATE runs SET status = 'interrupted', finished = ?, updated = ?, error = ?"
                    " WHERE run_id = ? AND status IN (?, ?, ?)",
                    (time.time(), time.time(),
                     f"the process that ran it (pid {r['pid']} on {r['host']}) ended before the run "
                     "finished; its stored iterations are kept", r["run_id"], *ACTIVE))
            if cur.rowcount:
                marked.append(r["run_id"])
                for tmp in self.run_dir(r["run_id"]).glob(".*.tmp"):  # half-written files
                    tmp.unlink(missing_ok=True)
        return marked

    def run_dir(self, run_id: str) -> Path:
        """The folder of a run's array files (the id is checked: it cannot leave the store)."""
        if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
            raise RunNotFound(_not_found(run_id))
        return self.runs_path / run_id

    # ---- iterations ------------------------------------------------------------
    def append_iteration(self, run_id: str, snap: Any) -> int:
        """Persist one Snapshot: its array file first, then its row. Returns the bytes
        written. When this returns the iteration is durable."""
        folder = self.run_dir(run_id)
        folder.mkdir(parents=True, exist_ok=True)
        scalars, arrays = _split_extras(snap.extras)
        payload = {"assignments": _compact_ints(snap.assignments),
                   "sizes": np.asarray(snap.sizes, np.int64)}
        if snap.samples is not None:
            payload["samples"] = _half(np.asarray(snap.samples))
        payload.update({f"extra__{k}": v for k, v in arrays.items()})
        file = f"iter_{int(snap.iteration):06d}.npz"
        if (folder / file).exists():
            raise StoreError(f"iteration {snap.iteration} of run {run_id} is already stored; "
                             "a run's iterations are written once")
        nbytes = _atomic_savez(folder / file, payload)
        try:
            with self._write() as db:
                db.execute(
                    "INSERT INTO iterations (run_id, iteration, elapsed, changed, converged,"
                    " metrics_json, losses_json, extras_json, sizes_json, file, nbytes, written)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, int(snap.iteration), float(snap.elapsed), float(snap.changed),
                     int(bool(snap.converged)), _dumps(snap.metrics), _dumps(snap.losses),
                     _dumps(scalars), _dumps([int(v) for v in snap.sizes]), file, nbytes,
                     time.time()))
                db.execute("UPDATE runs SET last_iteration = ?, metrics_json = ?, updated = ?"
                           " WHERE run_id = ?", (int(snap.iteration), _dumps(snap.metrics),
                                                 time.time(), run_id))
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"cannot store iteration {snap.iteration} of run {run_id} ({exc}); "
                             "the run was deleted or this iteration is already stored") from exc
        return nbytes

    def iterations(self, run_id: str) -> list[IterationRecord]:
        """The scalars of every stored iteration of a run, in order."""
        self.get_run(run_id)
        with self._connect() as db:
            rows = db.execute("SELECT * FROM iterations WHERE run_id = ? ORDER BY iteration",
                              (run_id,)).fetchall()
        return [IterationRecord(r["iteration"], r["elapsed"], r["changed"], bool(r["converged"]),
                                json.loads(r["metrics_json"]), json.loads(r["losses_json"]),
                                json.loads(r["extras_json"]), json.loads(r["sizes_json"]))
                for r in rows]

    def load_iteration(self, run_id: str, iteration: int) -> Any:
        """One stored iteration as a ``ganmm.base.Snapshot`` (arrays included).

        A missing or damaged array file raises :class:`IterationUnreadable` for
        this iteration only."""
        from .base import Snapshot

        self.get_run(run_id)
        with self._connect() as db:
            row = db.execute("SELECT * FROM iterations WHERE run_id = ? AND iteration = ?",
                             (run_id, int(iteration))).fetchone()
        if row is None:
            raise StoreError(f"run {run_id} has no stored iteration {iteration}; "
                             "list its iterations with RunStore.iterations")
        arrays = self._read_arrays(run_id, row)
        extras = json.loads(row["extras_json"])
        extras.update({k[len("extra__"):]: v for k, v in arrays.items() if k.startswith("extra__")})
        samples = arrays.get("samples")
        return Snapshot(
            iteration=row["iteration"], elapsed=row["elapsed"],
            assignments=arrays["assignments"].astype(np.int64), sizes=arrays["sizes"],
            changed=row["changed"], metrics=json.loads(row["metrics_json"]),
            losses=json.loads(row["losses_json"]),
            samples=None if samples is None else samples.astype(np.float32),
            extras=extras, converged=bool(row["converged"]))

    def _read_arrays(self, run_id: str, row: sqlite3.Row) -> dict[str, np.ndarray]:
        it, file = row["iteration"], row["file"]
        where = f"iteration {it} of run {run_id}"
        path = self.run_dir(run_id) / file
        if not _ITER_FILE.match(file):
            raise self._damaged(run_id, f"{where}: the store names an unexpected file {file!r}")
        if not path.is_file():
            raise self._damaged(
                run_id, f"{where}: its array file {file} is missing from {path.parent}; the run's "
                "other iterations and other runs are not affected (delete or export the run)")
        try:
            if path.stat().st_size != row["nbytes"]:
                raise ValueError(f"{path.stat().st_size} bytes on disk, {row['nbytes']} written")
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            if "assignments" not in arrays or "sizes" not in arrays:
                raise ValueError("assignments or sizes are absent")
        except (MemoryError, PermissionError) as exc:  # the machine's trouble, not the file's
            raise IterationUnreadable(f"{where}: its array file {file} could not be read now "
                                      f"({type(exc).__name__}: {exc}); try again") from exc
        except Exception as exc:  # zip, CRC, header and shape errors alike
            raise self._damaged(
                run_id, f"{where}: its array file {file} is damaged ({type(exc).__name__}: {exc}); "
                "the run's other iterations and other runs are not affected") from exc
        return arrays

    def _damaged(self, run_id: str, message: str) -> IterationUnreadable:
        """Mark the run damaged (the first finding is kept) and return the error to raise.
        Best effort: a store that cannot be written still reports the damage."""
        with contextlib.suppress(StoreError, sqlite3.Error):
            with self._connect() as db:  # already marked: no write lock on every read
                row = db.execute("SELECT damaged FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is not None and row["damaged"] is not None:
                return IterationUnreadable(message)
            with self._write() as db:
                db.execute("UPDATE runs SET damaged = ? WHERE run_id = ? AND damaged IS NULL",
                           (message, run_id))
        return IterationUnreadable(message)

    def check_run(self, run_id: str) -> list[str]:
        """Read every file of the run; the problems found (empty when all is whole).
        A run with problems is marked damaged."""
        problems = []
        for row in self.iterations(run_id):
            try:
                self.load_iteration(run_id, row.iteration)
            except IterationUnreadable as exc:
                problems.append(str(exc))
        try:
            self.dataset_arrays(run_id)
        except IterationUnreadable as exc:
            problems.append(str(exc))
        return problems

    def dataset_arrays(self, run_id: str) -> dict[str, np.ndarray]:
        """Labels ``y`` (if any), ``label_names``, ``feature_names``, ``offset`` and ``scale``
        of the run's data, as recorded when the run was created."""
        path = self.run_dir(run_id) / "dataset.npz"
        try:
            with np.load(path, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        except Exception as exc:
            # numpy's advice to load pickles "unsafely" is not for this store: files are never unpickled
            pickled = isinstance(exc, ValueError) and "allow_pickle" in str(exc)
            detail = "it holds pickled objects, which are never loaded" if pickled \
                else f"{type(exc).__name__}: {exc}"
            raise self._damaged(
                run_id, f"run {run_id}: its dataset file is missing or damaged ({detail}); its "
                "iterations are still readable") from exc

    def disk_bytes(self, run_id: str) -> int:
        """Bytes the run's array files take on disk."""
        return sum(p.stat().st_size for p in self.run_dir(run_id).glob("*.npz"))

    # ---- export ----------------------------------------------------------------
    def export_run(self, run_id: str, path: Path | str) -> Path:
        """Write the run as a zip at ``path`` (see :func:`ganmm.export.export_run`)."""
        from .export import export_run

        return export_run(self, run_id, path)


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #

def new_run_id() -> str:
    """``YYYYmmdd-HHMMSS-`` and 6 random hex digits (sorts by creation time)."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + os.urandom(3).hex()


def sanitize_name(name: str) -> str:
    """A name safe to show and to use anywhere: no path separators, no control
    characters, spaces collapsed, at most :data:`NAME_MAX` characters."""
    text = unicodedata.normalize("NFC", str(name))
    text = "".join(" " if unicodedata.category(c)[0] == "C" else c for c in text)
    text = text.replace("/", "-").replace("\\", "-")
    text = " ".join(text.split()).strip(" .")
    return text[:NAME_MAX].rstrip()


def package_versions() -> dict:
    """Versions of python, ganmm and the numeric packages (None when not installed)."""
    import platform
    from importlib import metadata

    from . import __version__

    out = {"python": platform.python_version(), "ganmm": __version__}
    for dist in ("numpy", "torch", "scikit-learn"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _not_found(run_id: Any) -> str:
    return f"no run with id {run_id!r}; `python -m ganmm runs` lists the runs"


_RUN_COLUMNS = ("runs.*, (SELECT elapsed FROM iterations i WHERE i.run_id = runs.run_id "
                "AND i.iteration = runs.last_iteration) AS elapsed")
"""a run's row and the training seconds of its last iteration (a primary-key lookup)"""


def _run_record(r: sqlite3.Row) -> RunRecord:
    return RunRecord(
        run_id=r["run_id"], name=r["name"], status=r["status"], model=r["model"],
        dataset=r["dataset"], dataset_source=r["dataset_source"], fingerprint=r["fingerprint"],
        dataset_info=json.loads(r["dataset_json"]), config=json.loads(r["config_json"]),
        seed=r["seed"], device=r["device"], versions=json.loads(r["versions_json"]),
        created=r["created"], started=r["started"], finished=r["finished"],
        iterations=r["last_iteration"], metrics=json.loads(r["metrics_json"]), notes=r["notes"],
        error=r["error"], traceback=r["traceback"], pid=r["pid"], host=r["host"],
        damaged=r["damaged"], elapsed=r["elapsed"])


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def _plain(v: Any) -> Any:
    """JSON-safe value: numpy scalars to Python, NaN/inf to None, containers recursively."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return _plain(v.tolist())
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


def _dumps(v: Any) -> str:
    return json.dumps(_plain(v), allow_nan=False)


def _split_extras(extras: dict) -> tuple[dict, dict[str, np.ndarray]]:
    """Scalars (to the database) and numeric arrays (to the iteration's file)."""
    scalars, arrays = {}, {}
    for key, value in (extras or {}).items():
        if isinstance(value, (np.ndarray, list, tuple)):
            arr = np.asarray(value)
            if arr.dtype.kind in "biuf" and arr.ndim > 0:
                arrays[_KEY.sub("_", str(key))] = arr
                continue
        scalars[str(key)] = value
    return scalars, arrays


def _compact_ints(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    top = int(a.max()) if a.size else 0
    for dtype in (np.int8, np.int16, np.int32):
        if top <= np.iinfo(dtype).max and (not a.size or int(a.min()) >= 0):
            return a.astype(dtype)
    return a.astype(np.int64)


def _half(samples: np.ndarray) -> np.ndarray:
    """float16 when every value fits it, else float32."""
    finite = samples[np.isfinite(samples)]
    if finite.size and np.abs(finite).max() >= 60000:
        return samples.astype(np.float32)
    return samples.astype(np.float16)


def _atomic_savez(path: Path, arrays: dict[str, np.ndarray]) -> int:
    """Write ``arrays`` to ``path`` as a compressed .npz, all or nothing: a temporary
    file in the same folder, fsync, rename, fsync of the folder. Returns its size."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
            size = fh.tell()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # not every platform can fsync a folder
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return size


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (Linux: clock ticks since boot), to tell a reused pid
    from the original owner; None where the system does not say."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2:].split()[19]
    except (OSError, ValueError, IndexError):
        return None


def _owner_alive(pid: int | None, host: str | None, start: str | None) -> bool:
    """Whether the process that owns a run still runs. A run owned on another host is
    assumed alive (this machine cannot tell)."""
    if host != socket.gethostname():
        return True
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    now = _process_start(pid)
    return start is None or now is None or now == start
