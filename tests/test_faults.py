"""Faults: a killed server, a full or unwritable disk, out-of-memory and device
errors, corrupt store files. Whatever happens, no stored iteration is lost, the
failing run says clearly what happened, and every other run goes on."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from ganmm import store as store_module
from ganmm.runs import RunManager, failure_message
from ganmm.store import RunStore
from test_runs import FakeModel, factory, fake_snapshot, wait_for

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def ds():
    from ganmm import data

    rng = np.random.default_rng(0)
    return data.from_arrays(rng.normal(size=(40, 2)), np.repeat([0, 1], 20), name="tiny")


def home_page() -> AppTest:
    return AppTest.from_file(str(ROOT / "Home.py"), default_timeout=120).run()


def table_rows(at: AppTest) -> list[dict]:
    return at.dataframe[0].value.to_dict("records")


# ---------------------------------------------------------------- a killed server
SERVER = textwrap.dedent("""
    import time
    from ganmm import data
    from ganmm.runs import get_manager

    manager = get_manager(2)
    ds = data.load_builtin("moons")
    tiny = dict(hidden=16, z_dim=4, batch_size=16, n_critic=1, n_pretrain=5, n_epoch=3,
                classifier_steps=5, classifier_batch=16, n_snapshot_samples=4)
    ids = [manager.start(ds, "ganmm", {"n_clusters": 2, "max_iter": 100000, "tol": -1, **tiny}, seed=seed,
                         dataset_source="moons", name=f"killed {seed}") for seed in (0, 1)]
    print(" ".join(ids), flush=True)
    while True:
        time.sleep(1)
""")


def test_a_server_killed_while_two_runs_train_loses_no_iteration(ganmm_home):
    env = {**os.environ, "GANMM_HOME": str(ganmm_home), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", SERVER], env=env, stdout=subprocess.PIPE, text=True)
    try:
        ids = proc.stdout.readline().split()
        assert len(ids) == 2, "the server did not start its runs"
        store = RunStore(ganmm_home)
        wait_for(lambda: all((store.get_run(r).iterations or 0) >= 3 for r in ids), timeout=120,
                 what="three iterations of both runs")
        assert [store.get_run(r).status for r in ids] == ["running", "running"]
    finally:
        proc.send_signal(signal.SIGKILL)  # no shutdown handler runs
        proc.wait(timeout=30)
    # the restarted dashboard: both runs interrupted, every stored iteration readable
    at = home_page()
    assert not at.exception
    rows = {r["run id"]: r for r in table_rows(at)}
    assert {rows[r]["status"] for r in ids} == {"interrupted"}
    for run_id in ids:
        record = store.get_run(run_id)
        stored = [r.iteration for r in store.iterations(run_id)]
        assert stored == list(range(record.iterations + 1)) and len(stored) >= 4
        assert [store.load_iteration(run_id, i).iteration for i in stored] == stored
        assert store.check_run(run_id) == [] and record.damaged is None
        assert "ended before the run finished" in record.error


# ---------------------------------------------------------- full or unwritable disk
@pytest.mark.parametrize("code, said", [(errno.ENOSPC, "the disk is full"),
                                        (errno.EACCES, "cannot be written")])
def test_a_failing_disk_fails_that_run_only_and_keeps_its_iterations(ds, monkeypatch, code, said):
    gate = threading.Semaphore(0)
    manager = RunManager(model_factory=factory({
        "gated": lambda: FakeModel(n_iter=8, gate=gate), "free": lambda: FakeModel(n_iter=8, delay=0.01)}))
    broken: set[str] = set()
    real_save = store_module._atomic_savez

    def save(path, arrays):  # the disk gives out under one run's folder, at its 4th iteration
        if path.parent.name in broken and path.name >= "iter_000003.npz":
            raise OSError(code, os.strerror(code), str(path))
        return real_save(path, arrays)

    monkeypatch.setattr(store_module, "_atomic_savez", save)
    victim = manager.start(ds, "gated")
    broken.add(victim)
    other = manager.start(ds, "free")
    for _ in range(9):
        gate.release()
    failed, done = manager.wait(victim, timeout=30), manager.wait(other, timeout=30)
    assert failed.status == "failed" and said in failed.error and "iterations stored before are kept" in failed.error
    assert [r.iteration for r in manager.store.iterations(victim)] == [0, 1, 2]
    assert [manager.store.load_iteration(victim, i).iteration for i in range(3)] == [0, 1, 2]
    assert done.status == "done" and done.iterations == 8 and manager.store.check_run(other) == []
    # no half-written file is left behind
    assert sorted(p.name for p in manager.store.run_dir(victim).iterdir()) == \
        ["dataset.npz", "iter_000000.npz", "iter_000001.npz", "iter_000002.npz"]


# ---------------------------------------------------- out of memory, device errors
class Failing:
    """A model that stores two iterations, then raises ``exc``."""

    def __init__(self, exc):
        self.exc = exc

    def fit_iter(self, X, y=None):
        for it in range(2):
            yield fake_snapshot(it, len(X), 3, 2, 2)
        raise self.exc


@pytest.mark.parametrize("exc, said", [
    (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "GPU ran out of memory"),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: "
                  "you tried to allocate 123456789 bytes"), "machine ran out of memory"),
    (MemoryError(), "machine ran out of memory"),
    (RuntimeError("CUDA error: an illegal memory access was encountered"), "GPU error"),
])
def test_out_of_memory_and_device_errors_fail_the_run_clearly(ds, exc, said):
    manager = RunManager(model_factory=factory({"bad": lambda: Failing(exc), "ok": lambda: FakeModel(n_iter=3)}))
    bad, ok = manager.start(ds, "bad"), manager.start(ds, "ok")
    record = manager.wait(bad, timeout=30)
    assert record.status == "failed" and said in record.error
    assert [r.iteration for r in manager.store.iterations(bad)] == [0, 1]
    assert manager.wait(ok, timeout=30).status == "done"
    if "GPU ran out" in said:  # on CUDA the message says what to reduce
        for knob in ("clusters K", "batch_size", "hidden", "device cpu"):
            assert knob in record.error


def test_other_failures_keep_their_own_words():
    assert failure_message(ValueError("bad value")) == "ValueError: bad value"
    assert "the disk is full" in failure_message(OSError(errno.ENOSPC, "No space left on device"))


# ------------------------------------------------------------- corrupt store files
def test_a_corrupt_file_marks_its_run_damaged_and_the_rest_works(ds):
    manager = RunManager(model_factory=factory({"fake": lambda: FakeModel(n_iter=3)}))
    hurt, whole = manager.start(ds, "fake", name="hurt"), manager.start(ds, "fake", name="whole")
    manager.wait(hurt, timeout=30), manager.wait(whole, timeout=30)
    file = manager.store.run_dir(hurt) / "iter_000003.npz"
    file.write_bytes(b"PK\x03\x04" + os.urandom(200))
    assert manager.store.check_run(hurt) and manager.store.get_run(hurt).damaged

    at = home_page()
    assert not at.exception
    rows = {r["name"]: r for r in table_rows(at)}
    assert rows["hurt"]["status"] == "done · damaged" and rows["whole"]["status"] == "done"
    train = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=120)
    train.session_state["run_id"] = hurt
    train.switch_page("pages/2_Train.py").run()
    assert not train.exception
    assert any("damaged" in w.value for w in train.warning)
    assert any("iter_000003.npz is damaged" in e.value for e in train.error)  # the shown iteration
    # the other run, and new runs, work as before
    assert [manager.store.load_iteration(whole, i).iteration for i in range(4)] == [0, 1, 2, 3]
    fresh = manager.start(ds, "fake")
    assert manager.wait(fresh, timeout=30).status == "done"
