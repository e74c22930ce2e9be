"""The speed benchmark: its loop baseline does the same work, and `bench` reports
what the README quotes."""

import json
import time

import numpy as np
import pytest
import torch

from ganmm import speed
from ganmm.mixture import GANMM, GANMMConfig
from ganmm.speed import BenchConfig, LoopGANMM, _iteration_seconds, grown_mnist, step_flops
from tests.test_cli import ganmm

SMALL = dict(hidden=32, z_dim=8, batch_size=16, n_critic=2, n_pretrain=1, n_epoch=2, classifier_steps=2,
             classifier_batch=8, device="cpu", init="random", seed=0)


def _ready(cls, X, k=3, **kw):
    model = cls(GANMMConfig.from_preset("default", n_clusters=k, **{**SMALL, **kw}))
    model._initialize(X)
    return model


@pytest.mark.parametrize("loss", ["gp", "clip"])
def test_loop_baseline_has_the_same_networks_and_does_the_same_work(loss):
    X = np.random.default_rng(0).random((90, 20)).astype(np.float32)
    batched, loop = _ready(GANMM, X, loss=loss), _ready(LoopGANMM, X, loss=loss)
    # the loop's K networks start as copies of the ensemble's members ...
    z = torch.randn(3, 5, 8)
    torch.testing.assert_close(loop._generate(5, z), batched._generate(5, z))
    # ... and one GAN step of either costs the same floating-point operations
    assert step_flops(loop) == pytest.approx(step_flops(batched), rel=1e-9)
    # every loop network is updated, and only by its own optimizer
    before = [p.detach().clone() for g in loop._gens for p in g.parameters()]
    loop._train_gans(1)
    after = [p.detach() for g in loop._gens for p in g.parameters()]
    assert all(not torch.equal(a, b) for a, b in zip(before, after))
    assert all(len(opt.param_groups[0]["params"]) == len(list(g.parameters()))
               for opt, g in zip(loop._opts_g, loop._gens))


def test_loop_baseline_clusters_like_a_model():
    X = np.random.default_rng(1).random((60, 20)).astype(np.float32)
    model = LoopGANMM(GANMMConfig.from_preset("default", n_clusters=3, max_iter=2, tol=-1, **SMALL))
    snaps = list(model.fit_iter(X))
    assert [s.iteration for s in snaps] == [0, 1, 2]
    assert snaps[-1].sizes.sum() == 60 and np.isfinite(snaps[-1].samples).all()


def test_the_two_models_iterations_are_timed_in_turns(monkeypatch):
    """A machine's speed drifts: the batched model and the loop must be timed
    over the same minutes, one iteration each in turn, not one block after
    the other."""
    calls = []

    class Fake:
        device_ = torch.device("cpu")

        def __init__(self, name, seconds):
            self.name, self.seconds = name, seconds

        def _iterate(self, iteration):
            calls.append((self.name, iteration))
            time.sleep(self.seconds)

    bench = BenchConfig(device="cpu", repeats=3, warmup=2)
    got = _iteration_seconds({"a": Fake("a", 0.01), "b": Fake("b", 0.2)}, bench)
    assert calls == [("a", 3), ("b", 3), ("b", 3), ("a", 3), ("a", 3), ("b", 3)]  # neither always first
    assert 0.01 <= got["a"] < got["b"] and got["b"] >= 0.2  # each model's own median
    # the benchmark's comparison hands both models to it together
    calls.clear()
    monkeypatch.setattr(speed, "_model", lambda cls, X, k, bench: Fake(cls.__name__, 0.001))
    row = speed.measure(np.zeros((4, 2), np.float32), 3, bench, loop=True, detail=False)
    timed = [name for name, iteration in calls if iteration == 3]
    assert timed == ["GANMM", "LoopGANMM", "LoopGANMM", "GANMM", "GANMM", "LoopGANMM"]
    assert row["speedup"] == pytest.approx(row["loop_seconds"] / row["batched_seconds"])


def test_grown_mnist_repeats_with_noise():
    X = np.random.default_rng(0).random((50, 12)).astype(np.float32)
    big = grown_mnist(X, 120)
    assert big.shape == (120, 12) and big.dtype == np.float32
    np.testing.assert_array_equal(big[:50], X)
    assert big.min() >= 0 and big.max() <= 1
    assert len(np.unique(big, axis=0)) == 120  # the copies are not duplicates
    assert np.abs(big[50:100] - X).mean() < 0.1  # ... but close to the originals


def test_bench_quick_reports_what_the_readme_quotes(tmp_path):
    out_json = tmp_path / "bench.json"
    out = ganmm("bench", "--quick", "--device", "cpu", "--json", out_json, timeout=600)
    assert out.returncode == 0, out.stderr
    r = json.loads(out_json.read_text())
    assert r["device"] == "cpu"
    it = r["iteration_seconds"]
    assert it["batched"] > 0 and it["loop"] > 0
    assert r["speedup"] == pytest.approx(it["loop"] / it["batched"])
    assert r["matmul_peak_gflops"] > 0 and r["gflops"] > 0
    # the fraction is the median of step rate / peak over blocks measured in turns
    pairs = r["step_pairs"]
    assert len(pairs) == 2 and r["matmul_peak_size"] in (1024, 2048, 3072)
    own = sorted(r["step_gflop"] / p["step_seconds"] / p["peak_gflops"] for p in pairs)
    assert r["peak_fraction"] == pytest.approx((own[0] + own[1]) / 2)
    assert r["paired_peak_gflops"] == pytest.approx((pairs[0]["peak_gflops"] + pairs[1]["peak_gflops"]) / 2)
    assert r["gan_step_seconds"] == pytest.approx((pairs[0]["step_seconds"] + pairs[1]["step_seconds"]) / 2)
    assert r["gflops"] == pytest.approx(r["step_gflop"] / r["gan_step_seconds"])
    assert r["peak_memory_mb"] > 0
    assert set(r["e_step_seconds"]) == {"classifier", "assign"}
    assert [(row["hidden"], row["batch_size"]) for row in r["step_sizes"]] == [(128, 64)]
    for row in r["step_sizes"]:
        gflop = row["gflops"] * row["step_seconds"]  # this size's step
        own = [gflop / p["step_seconds"] / p["peak_gflops"] for p in row["pairs"]]
        assert 0 < row["peak_fraction"] == pytest.approx(sum(own) / 2)
    assert [row["k"] for row in r["scaling_k"]] == [2, 10]
    assert [row["n"] for row in r["scaling_n"]] == [1000, 5000]
    assert all(row["batched_seconds"] > 0 for row in r["scaling_k"] + r["scaling_n"])
    gp = r["gradients"]  # the same step both ways; the closed form skips work autograd does
    assert gp["speedup"] == pytest.approx(gp["autograd_step_seconds"] / gp["closed_form_step_seconds"])
    assert 0 < gp["closed_form_step_gflop"] < gp["autograd_step_gflop"]
    assert gp["closed_form_step_gflop"] == pytest.approx(r["step_gflop"])
    # the markdown on stdout quotes the same numbers
    assert f"{r['speedup']:.2f}x" in out.stdout and "peak fraction" in out.stdout
    assert f"closed form speed-up: {gp['speedup']:.2f}x" in out.stdout


def test_bench_on_a_missing_gpu_is_one_line():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    out = ganmm("bench", "--quick", "--device", "cuda")
    assert out.returncode == 2 and "no CUDA GPU" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
