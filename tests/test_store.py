"""The run store: schema version, whole iterations, damaged files, delete, export."""

import csv
import dataclasses
import io
import json
import os
import sqlite3
import zipfile

import numpy as np
import pytest
from PIL import Image

from ganmm import data
from ganmm.base import Snapshot
from ganmm.store import (SCHEMA_VERSION, IterationUnreadable, RunBusy, RunNotFound, RunStore,
                         StoreError, sanitize_name)


def snapshot(it, n=30, k=3, d=2, samples=2):
    a = (np.arange(n) + it) % k
    return Snapshot(
        iteration=it, elapsed=0.1 * (it + 1), assignments=a, sizes=np.bincount(a, minlength=k),
        changed=1.0 if it == 0 else 0.5, metrics={"purity": 0.5 + 0.01 * it, "ari": 0.1},
        losses={"critic": -1.5 * it, "generator": float("nan")},
        samples=np.full((k, samples, d), 0.25 * it, dtype=np.float32),
        extras={"sigma": 10 - it, "means": np.full((k, d), float(it), np.float32), "tag": "x"},
        converged=it == 2)


@pytest.fixture
def tiny_ds():
    rng = np.random.default_rng(1)
    return data.from_arrays(rng.normal(size=(30, 2)), np.repeat(["a", "b", "c"], 10), name="tiny")


@pytest.fixture
def store(ganmm_home):
    return RunStore()


def new_run(store, ds, iterations=3, status="done"):
    run = store.create_run(dataset=ds, model="gmm", config={"model": "gmm", "settings": {"k": 3}},
                           seed=7, device="cpu", name="my run", dataset_source="tiny")
    for it in range(iterations):
        store.append_iteration(run.run_id, snapshot(it, n=ds.n_samples))
    store.set_status(run.run_id, status)
    return run.run_id


def test_store_lives_in_ganmm_home_with_its_schema_version(ganmm_home, tmp_path):
    store = RunStore()
    assert store.home == ganmm_home and (ganmm_home / "runs.db").is_file()
    assert store.schema_version() == SCHEMA_VERSION
    with sqlite3.connect(ganmm_home / "runs.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="schema version 99, newer"):
        RunStore()


def test_an_iteration_reads_back_whole(store, tiny_ds):
    run_id = new_run(store, tiny_ds)
    run = store.get_run(run_id)
    assert (run.status, run.iterations, run.seed, run.device, run.name) == ("done", 2, 7, "cpu", "my run")
    assert run.fingerprint == tiny_ds.fingerprint() and run.dataset_info["n_samples"] == 30
    assert run.metrics == {"purity": 0.52, "ari": 0.1}  # the last iteration's
    assert run.finished is not None and set(run.versions) >= {"numpy", "torch", "scikit-learn", "ganmm"}
    rows = store.iterations(run_id)
    assert [r.iteration for r in rows] == [0, 1, 2] and rows[2].converged
    assert rows[1].losses == {"critic": -1.5, "generator": None}  # NaN is stored as null
    assert rows[1].extras == {"sigma": 9, "tag": "x"}  # scalars only; arrays live in the file
    assert rows[1].sizes == [int(v) for v in snapshot(1).sizes]  # no file needed for the sizes
    snap = store.load_iteration(run_id, 1)
    want = snapshot(1)
    np.testing.assert_array_equal(snap.assignments, want.assignments)
    assert snap.assignments.dtype == np.int64
    np.testing.assert_array_equal(snap.sizes, want.sizes)
    np.testing.assert_allclose(snap.samples, want.samples, rtol=1e-3)
    np.testing.assert_array_equal(snap.extras["means"], want.extras["means"])
    assert snap.extras["sigma"] == 9 and snap.changed == 0.5 and snap.elapsed == pytest.approx(0.2)


def test_a_failed_write_leaves_no_partial_iteration(store, tiny_ds, monkeypatch):
    run_id = new_run(store, tiny_ds, iterations=1, status="running")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        store.append_iteration(run_id, snapshot(1))
    monkeypatch.undo()
    assert [r.iteration for r in store.iterations(run_id)] == [0]
    assert store.get_run(run_id).iterations == 0
    assert sorted(p.name for p in store.run_dir(run_id).iterdir()) == ["dataset.npz", "iter_000000.npz"]


def test_a_record_carries_the_training_seconds_of_its_last_iteration(store, tiny_ds):
    import dataclasses

    from ganmm.ui.compare import summary

    run_id = new_run(store, tiny_ds, iterations=3)  # elapsed 0.1, 0.2, 0.3
    assert store.get_run(run_id).elapsed == pytest.approx(0.3)
    assert [r.elapsed for r in store.list_runs()] == [pytest.approx(0.3)]
    empty = store.create_run(dataset=tiny_ds, model="gmm", config={"model": "gmm"}, seed=0, device="cpu")
    assert store.get_run(empty.run_id).elapsed is None
    # Compare's seconds are the training's, pauses excluded (a run paused for a minute
    # read 81.4 s there and 69 s on the Train page)
    paused = dataclasses.replace(store.get_run(run_id), started=1000.0, finished=1060.0)
    table, _ = summary([paused, dataclasses.replace(paused, run_id="b", name="b")])
    assert list(table["seconds"]) == [pytest.approx(0.3)] * 2


def test_damaged_or_missing_files_fail_that_iteration_only(store, tiny_ds):
    damaged, healthy = new_run(store, tiny_ds), new_run(store, tiny_ds)
    folder = store.run_dir(damaged)
    (folder / "iter_000001.npz").write_bytes((folder / "iter_000001.npz").read_bytes()[:100])
    (folder / "iter_000002.npz").unlink()
    with pytest.raises(IterationUnreadable, match=f"iteration 1 of run {damaged}.*damaged"):
        store.load_iteration(damaged, 1)
    with pytest.raises(IterationUnreadable, match=f"iteration 2 of run {damaged}.*missing"):
        store.load_iteration(damaged, 2)
    # same size, flipped bytes: the zip checksum catches it
    raw = bytearray((folder / "iter_000000.npz").read_bytes())
    raw[200:260] = bytes(60)
    (folder / "iter_000000.npz").write_bytes(bytes(raw))
    with pytest.raises(IterationUnreadable, match="iteration 0"):
        store.load_iteration(damaged, 0)
    assert len(store.iterations(damaged)) == 3  # the scalars are still there
    assert [store.load_iteration(healthy, i).iteration for i in range(3)] == [0, 1, 2]
    assert {r.run_id for r in store.list_runs()} == {damaged, healthy}
    # the run is marked damaged, with what was found first; the healthy one is not
    assert "iteration 1" in store.get_run(damaged).damaged and store.get_run(healthy).damaged is None
    assert len(store.check_run(damaged)) == 3 and store.check_run(healthy) == []
    # the export keeps what is readable and says what is not
    with zipfile.ZipFile(store.export_run(damaged, store.home.parent / "d.zip")) as zf:
        config = json.loads(zf.read("config.json"))
        assert config["iterations_exported"] == [0, 1, 2] and config["iterations_with_arrays"] == []
        assert sorted(config["iterations_damaged"]) == ["0", "1", "2"] and config["damaged"]
        assert "assignments.npy" not in zf.namelist()
        assert len(zf.read("metrics.csv").decode().splitlines()) == 4
    # a damaged dataset file: the export keeps the rest, without labels and the data's
    # units, and says so; the iterations stay readable
    other = new_run(store, tiny_ds)
    (store.run_dir(other) / "dataset.npz").write_bytes(b"not a zip")
    with zipfile.ZipFile(store.export_run(other, store.home.parent / "o.zip")) as zf:
        config = json.loads(zf.read("config.json"))
        assert "dataset file" in config["dataset_damaged"] and config["iterations_with_arrays"] == [0, 1, 2]
        assert zf.read("assignments.csv").decode().splitlines()[:2] == ["row,cluster", "0,2"]
        samples = zf.read("samples.csv").decode().splitlines()
        assert samples[0] == "iteration,cluster,sample,x0,x1" and samples[-1] == "2,2,1,0.5,0.5"
    assert store.load_iteration(other, 2).iteration == 2 and "dataset file" in store.get_run(other).damaged
    # a dataset file holding a pickle is never loaded, and the message gives no advice to
    third = new_run(store, tiny_ds)
    np.savez(store.run_dir(third) / "dataset.npz", y=np.array([{"a": 1}], dtype=object))
    with pytest.raises(IterationUnreadable, match="pickled objects, which are never loaded") as err:
        store.dataset_arrays(third)
    assert "allow_pickle" not in str(err.value)


def test_a_version_1_store_is_migrated_in_place(ganmm_home, tiny_ds):
    from ganmm.paths import runs_db
    from ganmm.store import _schema_v1

    runs_db(ganmm_home).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(runs_db(ganmm_home))
    _schema_v1(db)
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    store = RunStore(ganmm_home)
    assert store.schema_version() == SCHEMA_VERSION == 2
    run_id = new_run(store, tiny_ds)
    assert store.get_run(run_id).damaged is None


def test_unknown_and_path_like_run_ids_are_refused(store):
    for bad in ("20990101-000000-abcdef", "../../etc", "/etc/passwd", "", "x" * 500):
        with pytest.raises(RunNotFound, match="no run with id"):
            store.get_run(bad)
        with pytest.raises(RunNotFound):
            store.delete_run(bad)


def test_delete_refuses_a_live_run_then_removes_everything(store, tiny_ds):
    run_id = new_run(store, tiny_ds, status="running")  # owned by this (live) process
    with pytest.raises(RunBusy, match="stop it first"):
        store.delete_run(run_id)
    assert store.run_dir(run_id).is_dir()
    store.set_status(run_id, "stopped")
    store.delete_run(run_id)
    assert not store.run_dir(run_id).exists()
    with pytest.raises(RunNotFound):
        store.get_run(run_id)
    with sqlite3.connect(store.db_path) as db:
        assert db.execute("SELECT COUNT(*) FROM iterations").fetchone()[0] == 0


def test_names_are_sanitised_and_editable(store, tiny_ds):
    assert sanitize_name("../../etc/passwd") == "-..-etc-passwd"
    assert sanitize_name("a\x00b\nc\td\u202e") == "a b c d"
    assert len(sanitize_name("x" * 1000)) == 80
    run_id = new_run(store, tiny_ds)
    assert store.rename(run_id, "  moons\\K=2 / seed\x07 1 ") == "moons-K=2 - seed 1"
    store.set_notes(run_id, "line 1\nline\x1b 2")
    run = store.get_run(run_id)
    assert run.name == "moons-K=2 - seed 1" and run.notes == "line 1\nline 2"
    with pytest.raises(StoreError, match="visible character"):
        store.rename(run_id, "\x00 \n")


def read_zip(path):
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def test_export_of_tabular_data(store, tiny_ds, tmp_path):
    run_id = new_run(store, tiny_ds)
    files = read_zip(store.export_run(run_id, tmp_path / "out.zip"))
    assert set(files) == {"config.json", "metrics.csv", "assignments.csv", "assignments.npy", "samples.csv"}
    assert all(not n.startswith(("/", "..")) and ".." not in n.split("/") for n in files)
    config = json.loads(files["config.json"])
    assert config["run_id"] == run_id and config["seed"] == 7 and config["schema_version"] == SCHEMA_VERSION
    assert config["fingerprint"] == tiny_ds.fingerprint() and config["config"]["settings"] == {"k": 3}
    metrics = list(csv.DictReader(io.StringIO(files["metrics.csv"].decode())))
    assert [int(m["iteration"]) for m in metrics] == [0, 1, 2]
    assert float(metrics[2]["purity"]) == pytest.approx(0.52) and metrics[1]["loss_critic"] == "-1.5"
    assert metrics[1]["extra_sigma"] == "9" and metrics[2]["converged"] == "1"
    final = list(csv.DictReader(io.StringIO(files["assignments.csv"].decode())))
    assert [int(r["cluster"]) for r in final] == list(snapshot(2).assignments)
    assert [r["label"] for r in final] == ["a"] * 10 + ["b"] * 10 + ["c"] * 10
    every = np.load(io.BytesIO(files["assignments.npy"]), allow_pickle=False)
    assert every.shape == (3, 30)
    np.testing.assert_array_equal(every[1], snapshot(1).assignments)
    samples = list(csv.DictReader(io.StringIO(files["samples.csv"].decode())))
    assert len(samples) == 3 * 3 * 2 and list(samples[0]) == ["iteration", "cluster", "sample", "x0", "x1"]
    # samples are written back in the data's own units
    last = [s for s in samples if s["iteration"] == "2"][0]
    assert float(last["x0"]) == pytest.approx(0.5 * tiny_ds.scale[0] + tiny_ds.offset[0], rel=1e-3)


def test_data_far_from_zero_keep_their_units_back_and_in_the_export(store, tmp_path):
    # time stamps near 1.6e9 s that vary by seconds: float32 units made them all 1.6e9
    rng = np.random.default_rng(0)
    X = np.column_stack([1.6e9 + 10 * rng.normal(size=30), rng.normal(size=30)])
    ds = data.from_arrays(X, name="stamps")
    np.testing.assert_allclose(ds.inverse(ds.X), X, rtol=0, atol=1e-3)  # a thousandth of a second
    run = store.create_run(dataset=ds, model="gmm", config={}, seed=0, device="cpu")
    store.append_iteration(run.run_id, snapshot(0, n=30, k=3, d=2, samples=2))
    store.set_status(run.run_id, "done")
    files = read_zip(store.export_run(run.run_id, tmp_path / "stamps.zip"))
    [row] = [r for r in csv.DictReader(io.StringIO(files["samples.csv"].decode())) if r["sample"] == "0"][:1]
    # sample 0 of iteration 0 is 0.0 in scaled units: the column's mean, to the second
    assert float(row["x0"]) == pytest.approx(X[:, 0].mean(), abs=1.0) and float(row["x0"]) != 1.6e9


def test_export_of_image_data_has_png_tiles(store, tmp_path):
    rng = np.random.default_rng(0)
    ds = data.from_arrays(rng.integers(0, 17, (30, 8, 8)), None, name="imgs", pixel_max=16)
    run = store.create_run(dataset=ds, model="ganmm", config={}, seed=0, device="cpu")
    for it in range(2):
        store.append_iteration(run.run_id, snapshot(it, n=30, k=3, d=64, samples=5))
    store.set_status(run.run_id, "done")
    files = read_zip(store.export_run(run.run_id, tmp_path / "img.zip"))
    assert {"samples/iter_000000.png", "samples/iter_000001.png"} <= set(files)
    assert "samples.csv" not in files and "label" not in files["assignments.csv"].decode()
    png = Image.open(io.BytesIO(files["samples/iter_000001.png"]))
    assert png.mode == "L" and png.size == (5 * (32 + 2) + 2, 3 * (32 + 2) + 2)  # 8x8 drawn 4x
    with pytest.raises(StoreError, match="ending in .zip"):
        store.export_run(run.run_id, tmp_path / "img.tar")


def test_an_iteration_is_written_once(store, tiny_ds):
    run_id = new_run(store, tiny_ds, iterations=2, status="running")
    with pytest.raises(StoreError, match="already stored"):
        store.append_iteration(run_id, dataclasses.replace(snapshot(1), assignments=np.zeros(30, int)))
    np.testing.assert_array_equal(store.load_iteration(run_id, 1).assignments, snapshot(1).assignments)
