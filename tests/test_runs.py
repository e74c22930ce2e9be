"""The run manager: statuses, pause/resume/stop, failures, the concurrency bound,
readers during writes, restart safety. Fake models make the timing controllable."""

import os
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from ganmm import data, runs
from ganmm.base import Snapshot
from ganmm.errors import ConfigError
from ganmm.runs import RunManager, get_manager
from ganmm.store import RunStore

TINY = dict(hidden=16, z_dim=4, batch_size=16, n_critic=1, n_pretrain=5, n_epoch=3,
            classifier_steps=5, classifier_batch=16, n_snapshot_samples=4)


class FakeModel:
    """Yields ``n_iter + 1`` snapshots. Each iteration sleeps ``delay`` seconds and,
    when ``gate`` is given, first waits for the test to release it. ``fail_at``
    raises inside the model at that iteration."""

    live = 0  # models inside fit_iter right now
    peak = 0
    lock = threading.Lock()

    def __init__(self, n_iter=3, delay=0.0, gate=None, fail_at=None, k=3, d=2, samples=2):
        self.n_iter, self.delay, self.gate, self.fail_at = n_iter, delay, gate, fail_at
        self.k, self.d, self.samples = k, d, samples

    def fit_iter(self, X, y=None):
        with FakeModel.lock:
            FakeModel.live += 1
            FakeModel.peak = max(FakeModel.peak, FakeModel.live)
        try:
            start = time.perf_counter()
            for it in range(self.n_iter + 1):
                if self.gate is not None:
                    assert self.gate.acquire(timeout=30), "the test never released the gate"
                time.sleep(self.delay)
                if it == self.fail_at:
                    raise RuntimeError(f"boom at iteration {it}")
                yield fake_snapshot(it, len(X), self.k, self.d, self.samples,
                                    time.perf_counter() - start)
        finally:
            with FakeModel.lock:
                FakeModel.live -= 1


def fake_snapshot(it, n, k, d, samples, elapsed=0.0):
    a = (np.arange(n) + it) % k
    return Snapshot(iteration=it, elapsed=elapsed, assignments=a, sizes=np.bincount(a, minlength=k),
                    changed=1.0, metrics={"purity": it / 100}, losses={"critic": float(it)},
                    samples=np.full((k, samples, d), it, np.float32), extras={"sigma": it})


def factory(models):
    """A model factory handing out the given models by name (the manager's hook)."""
    return lambda name, preset=None, **settings: models[name]()


@pytest.fixture
def ds():
    rng = np.random.default_rng(0)
    return data.from_arrays(rng.normal(size=(40, 2)), np.repeat([0, 1], 20), name="tiny")


def wait_for(condition, timeout=20.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def status(manager, run_id):
    return manager.store.get_run(run_id).status


def test_queued_then_running_then_done_with_its_record(ds):
    gate = threading.Semaphore(0)
    manager = RunManager(max_concurrent=1, model_factory=factory(
        {"blocker": lambda: FakeModel(n_iter=0, gate=gate), "fake": lambda: FakeModel(n_iter=3)}))
    first = manager.start(ds, "blocker")
    second = manager.start(ds, "fake", {"n_clusters": 3}, seed=5, name="second/run")
    wait_for(lambda: status(manager, first) == "running", what="first running")
    assert status(manager, second) == "queued"
    time.sleep(0.2)
    assert status(manager, second) == "queued" and manager.store.iterations(second) == []
    gate.release()
    rec = manager.wait(second, timeout=20)
    assert status(manager, first) == "done"
    assert rec.status == "done" and rec.iterations == 3 and rec.metrics == {"purity": 0.03}
    assert rec.name == "second-run" and rec.seed == 5 and rec.device == "cpu" and rec.model == "fake"
    assert rec.config["settings"] == {"n_clusters": 3, "seed": 5, "device": "auto"}
    assert rec.fingerprint == ds.fingerprint() and rec.versions["numpy"] == np.__version__
    assert rec.created <= rec.started <= rec.finished
    assert [r.iteration for r in manager.store.iterations(second)] == [0, 1, 2, 3]


def test_pause_resume_and_stop_act_between_iterations(ds):
    manager = RunManager(model_factory=factory({"slow": lambda: FakeModel(n_iter=10_000, delay=0.05)}))
    run_id = manager.start(ds, "slow")
    wait_for(lambda: (manager.store.get_run(run_id).iterations or 0) >= 2, what="two iterations")
    assert not manager.pause_asked(run_id)
    manager.pause(run_id)
    assert manager.pause_asked(run_id)  # at once, before the run says paused (a page offers Resume)
    wait_for(lambda: status(manager, run_id) == "paused", what="paused")
    held = manager.store.get_run(run_id).iterations
    time.sleep(0.5)
    assert manager.store.get_run(run_id).iterations == held  # nothing trains while paused
    manager.resume(run_id)
    assert not manager.pause_asked(run_id)
    wait_for(lambda: (manager.store.get_run(run_id).iterations or 0) >= held + 2, what="resumed")
    assert status(manager, run_id) == "running"
    # the 0.5 s pause is not counted as training time
    rows = manager.store.iterations(run_id)
    gap = rows[held + 1].elapsed - rows[held].elapsed
    assert gap < 0.4, f"stored elapsed jumped {gap:.2f}s across the pause"
    began = time.perf_counter()
    assert manager.stop(run_id) == "stopped"
    assert time.perf_counter() - began < 1.0  # an iteration is 0.05 s
    rec = manager.store.get_run(run_id)
    assert rec.finished is not None
    kept = manager.store.iterations(run_id)
    assert [r.iteration for r in kept] == list(range(rec.iterations + 1))
    assert manager.store.load_iteration(run_id, rec.iterations).iteration == rec.iterations
    manager.resume(run_id)  # too late: nothing happens
    time.sleep(0.2)
    assert status(manager, run_id) == "stopped"


def test_a_queued_run_can_be_paused_and_stopped_before_it_trains(ds):
    gate = threading.Semaphore(0)
    manager = RunManager(max_concurrent=1, model_factory=factory(
        {"blocker": lambda: FakeModel(n_iter=0, gate=gate), "fake": lambda: FakeModel()}))
    first = manager.start(ds, "blocker")
    second = manager.start(ds, "fake")
    manager.pause(second)
    wait_for(lambda: status(manager, second) == "paused", what="queued run paused")
    manager.resume(second)
    wait_for(lambda: status(manager, second) == "queued", what="queued again")
    assert manager.stop(second) == "stopped"
    assert manager.store.iterations(second) == [] and manager.store.get_run(second).started is None
    gate.release()
    assert manager.wait(first, timeout=20).status == "done"


def test_a_failing_model_fails_its_run_only(ds):
    manager = RunManager(model_factory=factory({
        "boom": lambda: FakeModel(n_iter=5, delay=0.02, fail_at=2),
        "fine": lambda: FakeModel(n_iter=8, delay=0.02)}))
    bad, good = manager.start(ds, "boom"), manager.start(ds, "fine")
    failed = manager.wait(bad, timeout=20)
    assert failed.status == "failed" and failed.error == "RuntimeError: boom at iteration 2"
    assert "Traceback" in failed.traceback and "fit_iter" in failed.traceback
    assert failed.iterations == 1 and failed.finished is not None  # iterations 0 and 1 were stored
    assert isinstance(manager.exception(bad), RuntimeError)
    assert manager.wait(good, timeout=20).status == "done"
    assert manager.store.get_run(good).iterations == 8


def test_a_failing_listener_is_dropped_and_its_run_goes_on(ds, caplog):
    # the command line's progress printer meets a closed pipe: the run is not its to end
    manager = RunManager(model_factory=factory({"fine": lambda: FakeModel(n_iter=6)}))
    heard = []

    def listener(run_id, snap):
        heard.append(snap.iteration)
        if snap.iteration == 1:
            raise BrokenPipeError(32, "Broken pipe")

    run_id = manager.start(ds, "fine", listener=listener)
    record = manager.wait(run_id, timeout=20)
    assert record.status == "done" and record.iterations == 6 and record.error is None
    assert heard == [0, 1]  # dropped after it failed
    assert "its listener failed" in caplog.text


def test_two_train_at_once_and_a_third_waits_queued(ds):
    FakeModel.peak = 0
    gates = [threading.Semaphore(0) for _ in range(3)]
    models = {f"m{i}": (lambda g=g: FakeModel(n_iter=1, gate=g)) for i, g in enumerate(gates)}
    manager = RunManager(max_concurrent=2, model_factory=factory(models))
    ids = [manager.start(ds, f"m{i}") for i in range(3)]
    wait_for(lambda: [status(manager, r) for r in ids[:2]] == ["running"] * 2, what="two running")
    time.sleep(0.3)
    assert status(manager, ids[2]) == "queued" and FakeModel.live == 2
    gates[0].release(), gates[0].release()  # the first run finishes ...
    assert manager.wait(ids[0], timeout=20).status == "done"
    wait_for(lambda: status(manager, ids[2]) == "running", what="third running")  # ... the third starts
    assert status(manager, ids[1]) == "running"
    for g in gates[1:]:
        g.release(), g.release()
    assert [manager.wait(r, timeout=20).status for r in ids] == ["done"] * 3
    assert FakeModel.peak == 2


def test_a_reader_polling_while_a_run_writes_sees_only_whole_iterations(ds):
    big = data.from_arrays(np.random.default_rng(0).normal(size=(50_000, 2)), name="big")
    manager = RunManager(model_factory=factory({"w": lambda: FakeModel(n_iter=30, k=7, d=300, samples=32)}))
    run_id = manager.start(big, "w")
    reader = RunStore(manager.store.home)  # as another session would open it
    seen, problems = set(), []

    def poll():
        while True:
            try:
                done = reader.get_run(run_id).status == "done"
                last = reader.get_run(run_id).iterations
                if last is not None:  # the run's counter never runs ahead of the files
                    check(reader.load_iteration(run_id, last))
                for row in reader.iterations(run_id):
                    if row.iteration not in seen:
                        check(reader.load_iteration(run_id, row.iteration))
                if done:
                    return
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                problems.append(repr(exc))
                return

    def check(snap):
        want = (np.arange(50_000) + snap.iteration) % 7
        if not np.array_equal(snap.assignments, want) or snap.samples.shape != (7, 32, 300) \
                or not np.all(snap.samples == snap.iteration):
            problems.append(f"iteration {snap.iteration} is not whole")
        seen.add(snap.iteration)

    threads = [threading.Thread(target=poll) for _ in range(2)]
    for t in threads:
        t.start()
    manager.wait(run_id, timeout=60)
    for t in threads:
        t.join(30)
    assert problems == []
    assert seen == set(range(31))


def test_stop_cuts_a_long_ganmm_iteration_short_and_records_the_device(two_blobs):
    import torch

    X, y = two_blobs
    manager = RunManager()
    ds2 = data.from_arrays(X, y, name="blobs60")
    run_id = manager.start(ds2, "ganmm", {"n_clusters": 2, "max_iter": 5, **TINY, "n_epoch": 1_000_000})
    wait_for(lambda: manager.store.get_run(run_id).iterations == 0, timeout=60, what="iteration 0")
    time.sleep(0.3)  # well inside the million-step M-step of iteration 1
    began = time.perf_counter()
    assert manager.stop(run_id, timeout=30) == "stopped"
    assert time.perf_counter() - began < 5.0
    rec = manager.store.get_run(run_id)
    assert rec.iterations == 0  # the cut-short iteration is not stored
    assert rec.device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert rec.config["resolved"]["hidden"] == 16 and rec.config["resolved"]["device"] == rec.device


def test_a_stop_right_after_start_cuts_the_pretraining_short(two_blobs):
    X, y = two_blobs
    manager = RunManager()
    ds2 = data.from_arrays(X, y, name="blobs60")
    run_id = manager.start(ds2, "ganmm", {"n_clusters": 2, "max_iter": 5, **TINY, "n_pretrain": 1_000_000})
    began = time.perf_counter()  # the stop may land before fit_iter has even begun
    assert manager.stop(run_id, timeout=30) == "stopped"
    assert time.perf_counter() - began < 5.0
    assert manager.store.get_run(run_id).iterations is None  # nothing half-made was stored


def test_bad_settings_raise_at_start_and_record_nothing(ds):
    manager = RunManager()
    with pytest.raises(ConfigError, match="covariance_type"):
        manager.start(ds, "gmm", {"n_clusters": 2, "covariance_type": "round"})
    with pytest.raises(ConfigError, match="unknown model"):
        manager.start(ds, "deep", {})
    assert manager.store.list_runs() == []


def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_orphaned_runs_become_interrupted_with_their_iterations(ds):
    store = RunStore()
    ids = []
    for _ in range(4):
        rec = store.create_run(dataset=ds, model="fake", config={}, seed=0, device="cpu")
        for it in range(3):
            store.append_iteration(rec.run_id, fake_snapshot(it, 40, 3, 2, 2))
        store.set_status(rec.run_id, "running")
        ids.append(rec.run_id)
    dead, reused, elsewhere, alive = ids
    with store._write() as db:
        db.execute("UPDATE runs SET pid = ? WHERE run_id = ?", (dead_pid(), dead))
        db.execute("UPDATE runs SET proc_start = 'not-this-one' WHERE run_id = ?", (reused,))
        db.execute("UPDATE runs SET pid = ?, host = 'another-machine' WHERE run_id = ?",
                   (dead_pid(), elsewhere))
    RunManager(store)  # a server starting up
    assert [store.get_run(r).status for r in ids] == ["interrupted", "interrupted", "running", "running"]
    rec = store.get_run(dead)
    assert rec.iterations == 2 and "ended before the run finished" in rec.error and rec.finished
    assert [store.load_iteration(dead, i).iteration for i in range(3)] == [0, 1, 2]
    assert store.get_run(alive).pid == os.getpid() and store.get_run(alive).host == socket.gethostname()


def test_shutdown_marks_unfinished_runs_interrupted(ds):
    manager = RunManager(model_factory=factory({"slow": lambda: FakeModel(n_iter=10_000, delay=0.02)}))
    run_id = manager.start(ds, "slow")
    wait_for(lambda: manager.store.get_run(run_id).iterations is not None, what="an iteration")
    manager.shutdown(timeout=5)
    assert status(manager, run_id) == "interrupted"


def test_one_manager_per_process_and_home(ganmm_home, tmp_path, monkeypatch):
    first = get_manager()
    assert get_manager() is first and first.store.home == ganmm_home
    monkeypatch.setenv("GANMM_HOME", str(tmp_path / "other"))
    other = get_manager()
    assert other is not first and other.store.home == tmp_path / "other"
    assert runs._MANAGERS[str(ganmm_home)] is first


def test_raising_the_bound_starts_a_queued_run(ds):
    gate = threading.Semaphore(0)
    manager = RunManager(max_concurrent=1, model_factory=factory(
        {"g": lambda: FakeModel(n_iter=0, gate=gate)}))
    first, second = manager.start(ds, "g"), manager.start(ds, "g")
    wait_for(lambda: status(manager, first) == "running", what="first running")
    assert status(manager, second) == "queued"
    manager.set_max_concurrent(2)
    wait_for(lambda: status(manager, second) == "running", what="second running")
    gate.release(), gate.release()
    assert [manager.wait(r, timeout=20).status for r in (first, second)] == ["done", "done"]


def test_a_run_can_load_its_data_again_and_notices_a_changed_file(tmp_path):
    csv = tmp_path / "pts.csv"
    csv.write_text("a,b,kind\n" + "".join(f"{i},{i % 7},{'xy'[i % 2]}\n" for i in range(30)))
    ds = data.load(str(csv), label_column="kind")
    manager = RunManager(RunStore(), model_factory=factory({"fake": lambda: FakeModel(n_iter=1)}))
    run_id = manager.start(ds, "fake", {}, dataset_source=str(csv), data_options={"label_column": "kind"})
    record = manager.wait(run_id, timeout=20)
    again = runs.load_run_dataset(record)
    assert again.fingerprint() == ds.fingerprint() and again.label_names == ("x", "y")
    csv.write_text(csv.read_text().replace("\n3,3,", "\n3,4,"))  # one value edited
    with pytest.raises(data.DataError, match="has changed since run"):
        runs.load_run_dataset(record)
