"""The command line, run as users run it: a subprocess, JSON out, exit codes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def ganmm(*args, cwd=ROOT, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "ganmm", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_datasets_lists_every_builtin():
    out = ganmm("datasets")
    assert out.returncode == 0
    names = [line.split()[0] for line in out.stdout.splitlines()]
    assert names == ["mnist5k", "digits", "blobs", "moons", "circles", "aniso", "varied", "spirals"]


@pytest.fixture
def small_csv(tmp_path):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-2, 0.4, (40, 2)), rng.normal(2, 0.4, (40, 2))])
    labels = ["left"] * 40 + ["right"] * 40
    path = tmp_path / "two.csv"
    path.write_text("a,b,side\n" + "".join(f"{x:.4f},{y:.4f},{s}\n" for (x, y), s in zip(X, labels)))
    return path


@pytest.mark.parametrize("model", ["ganmm", "ganmm-em", "gmm", "kmeans"])
def test_every_model_runs_and_writes_the_json(model, small_csv, tmp_path):
    out_json = tmp_path / "result.json"
    out = ganmm("run", "--dataset", small_csv, "--label-column", "side", "--model", model,
                "--clusters", 2, "--iters", 2, "--seed", 3, "--device", "cpu", "--json", out_json)
    assert out.returncode == 0, out.stderr
    result = json.loads(out_json.read_text())
    assert {"run_id", "model", "dataset", "iterations", "seconds", "device", "metrics"} <= set(result)
    assert result["model"] == model and result["dataset"] == "two" and result["device"] == "cpu"
    assert 1 <= result["iterations"] <= 2 and result["seconds"] > 0
    assert set(result["metrics"]) == {"purity", "ari", "nmi", "acc", "rand"}
    assert all(0.0 <= result["metrics"][k] <= 1.0 for k in ("purity", "nmi", "acc", "rand"))
    assert "iter   0/2" in out.stderr and "ETA" in out.stderr  # progress on the terminal


def test_json_on_stdout_and_no_metrics_without_labels(small_csv):
    out = ganmm("run", "--dataset", small_csv, "--model", "kmeans", "--clusters", 2, "--iters", 5, "--quiet")
    # without --label-column the text column is refused; drop it and try again
    assert out.returncode == 2 and "side" in out.stderr
    plain = small_csv.with_name("plain.csv")
    plain.write_text("\n".join(",".join(line.split(",")[:2]) for line in small_csv.read_text().splitlines()))
    out = ganmm("run", "--dataset", plain, "--model", "kmeans", "--clusters", 2, "--iters", 5, "--quiet")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["metrics"] == {k: None for k in ("purity", "ari", "nmi", "acc", "rand")}
    assert sorted(result["sizes"]) == [40, 40]


def test_time_budget_is_respected_on_mnist():
    out = ganmm("run", "--dataset", "digits", "--model", "ganmm", "--clusters", 10, "--iters", 1000,
                "--time-budget", 3, "--quiet")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["iterations"] < 1000 and result["seconds"] < 60


@pytest.mark.parametrize("args,message", [
    (["--dataset", "no-such-file.csv", "--model", "gmm", "--clusters", 2], "no such file or built-in"),
    (["--dataset", "moons", "--model", "gmm", "--clusters", 0], "clusters"),
    (["--dataset", "moons", "--model", "gmm", "--clusters", 5000], "choose at most 1,000 clusters"),
    (["--dataset", "moons", "--model", "deep", "--clusters", 2], "invalid choice"),
    (["--dataset", "moons", "--model", "gmm", "--clusters", "two"], "invalid int value"),
    (["--dataset", "moons", "--model", "gmm", "--clusters", 2, "--preset", "paper"], "presets are for"),
    (["--dataset", "moons", "--model", "ganmm", "--clusters", 2, "--preset", "fastest"], "unknown preset"),
    (["--model", "gmm", "--clusters", 2], "--dataset"),
])
def test_bad_arguments_give_one_line_and_exit_2(args, message):
    out = ganmm("run", *args)
    assert out.returncode == 2
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr


def test_bad_file_gives_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3,nan\n4,5\n")
    out = ganmm("run", "--dataset", bad, "--model", "kmeans", "--clusters", 2)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "NaN" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_each_model_keeps_its_own_cap_and_budget_unless_given(small_csv):
    common = ("--dataset", small_csv, "--label-column", "side", "--clusters", 2, "--quiet", "--device", "cpu")
    assert ganmm("run", "--model", "ganmm", "--time-budget", 2, *common).returncode == 0
    assert ganmm("run", "--model", "kmeans", *common).returncode == 0
    assert ganmm("run", "--model", "ganmm", "--iters", 1, "--time-budget", 0, *common).returncode == 0
    # a preset brings its own cap: classic's 50 iterations (its budget, none, is overridden here)
    assert ganmm("run", "--model", "ganmm", "--preset", "classic", "--time-budget", 2, *common).returncode == 0
    runs = json.loads(ganmm("runs", "--json").stdout)
    resolved = [(r["model"], r["config"]["resolved"]["max_iter"], r["config"]["resolved"]["time_budget"])
                for r in sorted(runs, key=lambda r: r["created"])]
    assert resolved == [("ganmm", 3000, 2.0), ("kmeans", 300, None), ("ganmm", 1, None), ("ganmm", 50, 2.0)]
    from ganmm.models import default_settings

    assert default_settings("ganmm-em", "classic") == {"max_iter": 50, "time_budget": None}
    out = ganmm("run", "--model", "kmeans", "--preset", "paper", *common)
    assert out.returncode == 2 and "presets are for ganmm and ganmm-em" in out.stderr


def runs_in_store():
    """The runs of this test's GANMM_HOME, as `runs --json` gives them (read in this
    process: a command line per look would start torch each time)."""
    from ganmm.store import RunStore

    return [r.to_json() for r in RunStore().list_runs()]


@pytest.mark.parametrize("args,message", [
    # checks that need no data come before loading it: this file does not exist
    (["--model", "kmeans", "--covariance", "diag"], "--covariance is for gmm"),
    (["--model", "gmm", "--init", "random"], "--init is for ganmm and ganmm-em"),
    (["--model", "kmeans", "--seed", "-1"], "--seed must lie in 0..4294967295, got -1"),
    (["--model", "gmm", "--seed", "4294967296"], "--seed must lie in 0..4294967295"),
    (["--model", "kmeans", "--json", "/no/such/folder/r.json"], "does not exist"),
    (["--model", "kmeans", "--json", "."], "is a folder"),
])
def test_settings_are_checked_before_the_data_is_loaded(args, message, tmp_path):
    out = ganmm("run", "--dataset", tmp_path / "absent.csv", "--clusters", 2, *args)
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert runs_in_store() == []  # nothing was started


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize("args", [["--model", "dec"], ["--model", "kmeans"],
                                  ["--model", "gmm", "--space", "embedded"]])
def test_cuda_without_a_gpu_is_one_line_for_every_model(args):
    out = ganmm("run", "--dataset", "blobs", "--clusters", 3, "--device", "cuda", *args)
    assert out.returncode == 2 and "no CUDA GPU is available" in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert runs_in_store() == []


def test_a_closed_stderr_does_not_end_the_run(small_csv):
    # `python -m ganmm run ... 2>&1 | head -2`: the progress lines meet a closed pipe
    proc = subprocess.Popen([sys.executable, "-m", "ganmm", "run", "--dataset", str(small_csv),
                             "--label-column", "side", "--model", "gmm", "--clusters", "2", "--iters", "5"],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    proc.stderr.close()
    proc.wait(120)
    [run] = runs_in_store()
    assert run["status"] == "done" and run["iterations"] >= 1 and run["error"] is None


def test_no_stderr_at_all_keeps_stdout_pure_json(small_csv):
    # `... 2>&-`: Python starts with sys.stderr None, and print(file=None) writes to stdout
    proc = subprocess.run([sys.executable, "-m", "ganmm", "run", "--dataset", str(small_csv),
                           "--label-column", "side", "--model", "kmeans", "--clusters", "2"],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=False,
                          stdout=subprocess.PIPE, text=True, timeout=120, preexec_fn=lambda: os.close(2))
    assert proc.returncode == 0
    result = json.loads(proc.stdout)  # one JSON object, no progress lines around it
    assert result["metrics"]["purity"] == 1.0


def test_table_takes_a_files_label_column_and_refuses_bad_lists(small_csv, tmp_path):
    out = ganmm("table", "--dataset", small_csv, "--label-column", "side", "--models", "kmeans",
                "--seeds", 1, "--json", tmp_path / "t.json")
    assert out.returncode == 0, out.stderr
    assert "| kmeans | 1.0000 ± 0.0000 |" in out.stdout  # purity against the labels
    [run] = json.loads((tmp_path / "t.json").read_text())["runs"]
    [stored] = runs_in_store()
    assert stored["run_id"] == run["run_id"] and stored["metrics"]["purity"] == 1.0
    for args, message in ((["--clusters", 0], "--clusters must be at least 1"),
                          (["--models", "kmeans,gmm,kmeans"], "names kmeans more than once")):
        out = ganmm("table", "--dataset", small_csv, "--label-column", "side", "--seeds", 1,
                    *(["--models", "gmm"] if "--models" not in args else []), *args)
        assert out.returncode == 2 and message in out.stderr, out.stderr
    assert len(runs_in_store()) == 1


def test_ctrl_c_in_a_table_stops_its_run_and_prints_what_ended(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ganmm", "table", "--dataset", "moons", "--models",
                             "kmeans,ganmm", "--seeds", "1", "--device", "cpu", "--json", str(tmp_path / "t.json")],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 120
        while time.monotonic() < end and not [r for r in runs_in_store()
                                              if r["model"] == "ganmm" and r["status"] == "running"]:
            time.sleep(0.2)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "stopped: run" in err and "the 2 runs that ended" in err
    assert "| kmeans | 0." in out and "| ganmm | - | - | - | - | - | 0 (1 not done) |" in out
    statuses = {r["model"]: r["status"] for r in runs_in_store()}
    assert statuses == {"kmeans": "done", "ganmm": "stopped"}
    assert [r["status"] for r in json.loads((tmp_path / "t.json").read_text())["runs"]] == ["done", "stopped"]


def test_a_damaged_store_database_is_one_line(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "runs.db").write_text("not a database\n")
    monkeypatch.setenv("GANMM_HOME", str(home))
    for args in (["runs"], ["run", "--dataset", "blobs", "--model", "kmeans", "--clusters", 3]):
        out = ganmm(*args)
        assert out.returncode == 2 and "cannot be read" in out.stderr and str(home / "runs.db") in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
    # a whole header over a damaged page: found where a query reads it
    (home / "runs.db").unlink()
    assert ganmm("run", "--dataset", "blobs", "--model", "kmeans", "--clusters", 3, "--quiet").returncode == 0
    raw = bytearray((home / "runs.db").read_bytes())
    raw[4096:8192] = b"\xff" * 4096
    (home / "runs.db").write_bytes(bytes(raw))
    out = ganmm("runs")
    assert out.returncode == 2 and "malformed" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_ctrl_c_between_a_tables_runs_still_prints_what_ended(monkeypatch, capsys, tmp_path):
    # Ctrl-C while seed 1's autoencoder trains: seed 0's run is done and is the table
    from ganmm import cli, embedding

    def codes(ds, seed, **kwargs):
        if seed == 1:
            raise KeyboardInterrupt
        return ds

    monkeypatch.setattr(embedding, "embedded_dataset", codes)
    out_json = tmp_path / "t.json"
    code = cli.main(["table", "--dataset", "blobs", "--space", "embedded", "--models", "kmeans", "--seeds", "2",
                     "--json", str(out_json)])
    captured = capsys.readouterr()
    assert code == 130 and "stopped between runs" in captured.err and "the table below holds the 1 run" in captured.err
    assert "| kmeans | 1.0000 ± 0.0000 |" in captured.out
    assert [r["status"] for r in json.loads(out_json.read_text())["runs"]] == ["done"]
    # Ctrl-C before any run ended: no table, no traceback
    monkeypatch.setattr(embedding, "embedded_dataset", lambda ds, seed, **kwargs: (_ for _ in ()).throw(KeyboardInterrupt))
    assert cli.main(["table", "--dataset", "blobs", "--space", "embedded", "--models", "kmeans"]) == 130
    assert "no run had ended: no table" in capsys.readouterr().err


def test_a_closed_stderr_does_not_stop_an_embedded_run(monkeypatch, capsys):
    # the autoencoder's progress lines meet the closed pipe before the run starts
    from ganmm import cli, embedding

    class Closed:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    def codes(ds, seed, progress=None, **kwargs):
        progress(10, 20, 0.1)
        return ds

    monkeypatch.setattr(embedding, "embedded_dataset", codes)
    with monkeypatch.context() as closed:
        closed.setattr(sys, "stderr", Closed())
        assert cli.main(["run", "--dataset", "blobs", "--model", "gmm", "--clusters", "3", "--space", "embedded"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["purity"] == 1.0
    [run] = runs_in_store()
    assert run["status"] == "done"
