"""The command line and the run store: run, runs, export, delete, and a killed run."""

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ganmm import data
from ganmm.store import RunStore

ROOT = Path(__file__).resolve().parents[1]


def cli_env():
    # one thread: these nets are tiny, and threads fighting over 2 cores slow them 5x
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def ganmm(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "ganmm", *map(str, args)], cwd=ROOT, env=cli_env(),
                          capture_output=True, text=True, timeout=timeout)


def runs_json():
    out = ganmm("runs", "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture
def csv_file(tmp_path):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-2, 0.4, (40, 2)), rng.normal(2, 0.4, (40, 2))])
    path = tmp_path / "two.csv"
    path.write_text("a,b,side\n" + "".join(f"{x:.4f},{y:.4f},{'LR'[i >= 40]}\n"
                                            for i, (x, y) in enumerate(X)))
    return path


def test_run_writes_through_the_store_and_runs_lists_it(csv_file, ganmm_home, tmp_path):
    assert runs_json() == []
    assert "no runs yet" in ganmm("runs").stdout
    out = ganmm("run", "--dataset", csv_file, "--label-column", "side", "--model", "gmm",
                "--clusters", 2, "--iters", 4, "--seed", 3, "--name", "two blobs")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    [run] = runs_json()
    assert run["run_id"] == result["run_id"] and run["status"] == "done" and run["name"] == "two blobs"
    assert (run["model"], run["dataset"], run["seed"], run["device"]) == ("gmm", "two", 3, "cpu")
    assert run["iterations"] == result["iterations"]
    assert run["metrics"] == {k: v for k, v in result["metrics"].items()}
    assert run["dataset_source"] == str(csv_file.resolve())
    assert run["fingerprint"] == data.load(str(csv_file), label_column="side").fingerprint()
    assert run["config"]["settings"]["n_clusters"] == 2 and run["config"]["resolved"]["covariance_type"] == "full"
    assert (ganmm_home / "runs" / run["run_id"]).is_dir()
    table = ganmm("runs").stdout
    assert result["run_id"] in table and "done" in table and "two blobs" in table

    # export, then delete
    zip_path = tmp_path / "run.zip"
    out = ganmm("export", run["run_id"], zip_path)
    assert out.returncode == 0, out.stderr
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist())
        assert {"config.json", "metrics.csv", "assignments.csv", "assignments.npy", "samples.csv"} <= names
        assert json.loads(zf.read("config.json"))["run_id"] == run["run_id"]
        assert len(zf.read("metrics.csv").decode().splitlines()) == 1 + result["iterations"] + 1
    out = ganmm("delete", run["run_id"])
    assert out.returncode == 0, out.stderr
    assert runs_json() == [] and not (ganmm_home / "runs" / run["run_id"]).exists()


@pytest.mark.parametrize("args,message", [
    (["export", "20990101-000000-abcdef", "x.zip"], "no run with id"),
    (["export", "../../etc", "x.zip"], "no run with id"),
    (["delete", "20990101-000000-abcdef"], "no run with id"),
    (["delete"], "RUN_ID"),
    (["runs", "--color"], "unrecognized arguments"),
])
def test_bad_run_ids_give_one_line_and_exit_2(args, message, tmp_path):
    out = ganmm(*args)
    assert out.returncode == 2 and message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_export_needs_a_zip_path(csv_file, tmp_path):
    out = ganmm("run", "--dataset", csv_file, "--label-column", "side", "--model", "kmeans",
                "--clusters", 2, "--iters", 2, "--quiet")
    run_id = json.loads(out.stdout)["run_id"]
    out = ganmm("export", run_id, tmp_path / "run.tar")
    assert out.returncode == 2 and "ending in .zip" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    (tmp_path / "adir.zip").mkdir()  # the message names the user's path, not a temporary file
    out = ganmm("export", run_id, tmp_path / "adir.zip")
    assert out.returncode == 2 and f"{tmp_path / 'adir.zip'} is a folder" in out.stderr and ".tmp" not in out.stderr


def test_a_killed_run_shows_interrupted_with_its_iterations(ganmm_home, tmp_path):
    # GANMM with K=4 on the moons never settles within a few iterations: still training when killed
    log = open(tmp_path / "stderr.txt", "w")
    proc = subprocess.Popen([sys.executable, "-m", "ganmm", "run", "--dataset", "moons", "--model", "ganmm",
                             "--clusters", "4", "--iters", "500", "--seed", "0", "--device", "cpu"],
                            cwd=ROOT, env=cli_env(), stdout=subprocess.DEVNULL, stderr=log)
    try:
        store = RunStore(ganmm_home)
        end = time.monotonic() + 240
        while time.monotonic() < end and proc.poll() is None:
            runs = store.list_runs()
            if runs and (runs[0].iterations or 0) >= 3:
                break
            time.sleep(0.2)
        assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()
        assert runs and (runs[0].iterations or 0) >= 3, "no 3 iterations in 240 s"
        [seen] = runs_json()  # the command line shows the run while it trains
        assert seen["status"] == "running" and seen["iterations"] >= 3
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    [after] = runs_json()
    assert after["run_id"] == seen["run_id"] and after["status"] == "interrupted"
    assert after["iterations"] >= seen["iterations"] and "ended before the run finished" in after["error"]
    for it in range(after["iterations"] + 1):
        snap = store.load_iteration(after["run_id"], it)
        assert snap.assignments.shape == (1000,)
        if it % 10 == 0:  # the default preset draws each GAN's samples every 10 iterations
            assert snap.samples.shape[0] == 4
    assert not list((ganmm_home / "runs" / after["run_id"]).glob(".*.tmp"))
    assert ganmm("export", after["run_id"], tmp_path / "killed.zip").returncode == 0


def test_ctrl_c_stops_the_run_promptly(ganmm_home):
    proc = subprocess.Popen([sys.executable, "-m", "ganmm", "run", "--dataset", "moons", "--model", "ganmm",
                             "--clusters", "4", "--iters", "500", "--device", "cpu"],
                            cwd=ROOT, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        store = RunStore(ganmm_home)
        end = time.monotonic() + 120
        while time.monotonic() < end and not [r for r in store.list_runs() if r.status == "running"]:
            time.sleep(0.1)
        time.sleep(1.0)  # inside GANMM's pretraining: a long first iteration
        began = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert time.monotonic() - began < 15, "the stop did not cut the pretraining short"
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "stopped: run" in err and "Traceback" not in err
    [run] = runs_json()
    assert run["status"] == "stopped" and run["finished"] is not None
