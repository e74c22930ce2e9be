"""The embedded space (a cached autoencoder), DEC, and the paper-style tables command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ganmm import cli, data, embedding
from ganmm.dec import DEC, DECConfig, soft_assignment, target_distribution
from ganmm.embedding import AutoencoderConfig, embed, embedded_dataset
from ganmm.errors import ConfigError
from ganmm.models import MODEL_NAMES
from ganmm.store import RunStore

FAST_AE = AutoencoderConfig(hidden=(32, 32), latent=4, epochs=3, batch_size=64)


@pytest.fixture(scope="module")
def blobs():
    return data.load_builtin("blobs")


def test_target_distribution_matches_a_hand_computation():
    q = np.array([[0.6, 0.4], [0.5, 0.5], [0.1, 0.9]])
    f = q.sum(0)  # (1.2, 1.8)
    w = q ** 2 / f  # row 0: (0.3, 0.0888...), row 1: (0.2083, 0.1388), row 2: (0.00833, 0.45)
    expected = np.array([[0.36 / 1.2, 0.16 / 1.8], [0.25 / 1.2, 0.25 / 1.8], [0.01 / 1.2, 0.81 / 1.8]])
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(target_distribution(q), expected)
    np.testing.assert_allclose(expected[0], [0.7714285714, 0.2285714286])  # by hand: 0.3 / 0.3889
    # the target is sharper than q: confident points gain weight
    assert target_distribution(q)[0, 0] > q[0, 0] and target_distribution(q)[2, 1] > q[2, 1]
    import torch

    np.testing.assert_allclose(target_distribution(torch.tensor(q)).numpy(), expected)


def test_soft_assignment_is_students_t_normalised():
    Z = np.array([[0.0, 0.0], [2.0, 0.0]])
    mu = np.array([[0.0, 0.0], [1.0, 0.0]])
    q = soft_assignment(Z, mu, alpha=1.0)
    # point 0: kernels 1/(1+0) = 1 and 1/(1+1) = 0.5
    np.testing.assert_allclose(q[0], [1 / 1.5, 0.5 / 1.5])
    np.testing.assert_allclose(q.sum(1), 1.0)


def test_the_autoencoder_cache_is_reused_and_invalidated(blobs, ganmm_home, monkeypatch):
    calls = []
    real_train = embedding._train
    monkeypatch.setattr(embedding, "_train", lambda *a, **k: calls.append(1) or real_train(*a, **k))
    first = embed(blobs.X, seed=0, config=FAST_AE)
    assert not first.cached and len(calls) == 1 and first.Z.shape == (1500, 4) and len(first.curve) == 3
    again = embed(blobs.X, seed=0, config=FAST_AE)
    assert again.cached and len(calls) == 1  # no retraining
    np.testing.assert_array_equal(again.Z, first.Z)
    np.testing.assert_array_equal(again.curve, first.curve)
    embed(blobs.X, seed=1, config=FAST_AE)  # another seed
    embed(blobs.X[:-1], seed=0, config=FAST_AE)  # other data
    embed(blobs.X, seed=0, config=AutoencoderConfig(**{**FAST_AE.__dict__, "epochs": 4}))  # other config
    assert len(calls) == 4
    assert len(list((ganmm_home / "cache" / "ae").glob("*.npz"))) == 4


def test_a_damaged_cache_is_trained_again(blobs, ganmm_home):
    first = embed(blobs.X, seed=0, config=FAST_AE)
    path = next((ganmm_home / "cache" / "ae").glob("*.npz"))
    path.write_bytes(b"garbage")
    again = embed(blobs.X, seed=0, config=FAST_AE)
    assert not again.cached
    np.testing.assert_allclose(again.Z, first.Z, atol=1e-5)  # same seed, same training


def test_dec_meets_the_snapshot_contract_and_stops_on_tolerance(blobs):
    model = DEC(DECConfig(n_clusters=3, autoencoder=FAST_AE, update_interval=5, max_iter=30, n_init=3))
    snaps = list(model.fit_iter(blobs.X, blobs.y))
    assert snaps[0].iteration == 0 and snaps[0].extras["centroids"].shape == (3, 4)
    assert all(s.sizes.sum() == 1500 and len(s.assignments) == 1500 for s in snaps)
    assert model.predict_proba(blobs.X[:5]).shape == (5, 3)
    np.testing.assert_allclose(model.predict_proba(blobs.X[:5]).sum(1), 1.0, rtol=1e-5)
    assert snaps[-1].metrics["ari"] > 0.9  # three round blobs
    # each iteration's clusters come from the model after that iteration's training
    assert model.history_[-1].losses["kl"] > 0
    np.testing.assert_array_equal(model.predict(blobs.X), snaps[-1].assignments)
    if len(snaps) < 31:
        assert snaps[-1].converged and snaps[-1].changed <= 0.001


@pytest.fixture
def fast_autoencoder(monkeypatch):
    monkeypatch.setattr(embedding, "DEFAULT_CONFIG", FAST_AE)


def test_embedded_space_works_for_every_model(blobs, fast_autoencoder):
    emb = embedded_dataset(blobs, seed=0, config=FAST_AE)
    assert emb.X.shape == (1500, 4) and emb.name == "blobs·embedded"
    np.testing.assert_array_equal(emb.y, blobs.y)
    tiny = dict(hidden=16, z_dim=4, batch_size=16, n_critic=1, n_pretrain=5, n_epoch=3,
                classifier_steps=5, classifier_batch=16)
    from ganmm.models import make_model

    for name in MODEL_NAMES:
        extra = tiny if name.startswith("ganmm") else {}
        model = make_model(name, n_clusters=3, max_iter=2, **extra)
        snaps = list(model.fit_iter(emb.X, emb.y))
        assert snaps[-1].sizes.sum() == 1500, name


def test_cli_run_with_the_embedded_space_records_it(tmp_path, capsys, fast_autoencoder):
    out = tmp_path / "r.json"
    assert cli.main(["run", "--dataset", "blobs", "--model", "kmeans", "--clusters", "3", "--space",
                     "embedded", "--json", str(out), "--quiet"]) == 0
    result = json.loads(out.read_text())
    assert result["space"] == "embedded" and result["dataset"] == "blobs·embedded"
    record = RunStore().get_run(result["run_id"])
    assert record.config["data"]["space"] == "embedded"
    from ganmm.runs import load_run_dataset

    assert load_run_dataset(record).fingerprint() == record.fingerprint  # the same codes again
    # DEC takes the raw features: its encoder is this same autoencoder, from the cache
    assert cli.main(["run", "--dataset", "blobs", "--model", "dec", "--clusters", "3", "--space",
                     "embedded", "--iters", "2", "--json", str(out), "--quiet"]) == 0
    result = json.loads(out.read_text())
    assert result["space"] == "raw" and "its own autoencoder" in capsys.readouterr().err


def test_table_prints_every_requested_row_with_plus_minus(tmp_path, capsys):
    out = tmp_path / "t.json"
    code = cli.main(["table", "--dataset", "blobs", "--models", "kmeans,gmm", "--seeds", "2",
                     "--iters", "5", "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    rows = [line for line in printed.splitlines() if line.startswith("| kmeans") or line.startswith("| gmm")]
    assert len(rows) == 2 and all(row.count("±") == 5 for row in rows)
    summary = json.loads(out.read_text())
    assert len(summary["runs"]) == 4 and {r["seed"] for r in summary["runs"]} == {0, 1}
    ari = [r["metrics"]["ari"] for r in summary["runs"] if r["model"] == "kmeans"]
    kmeans = next(s for s in summary["summary"] if s["model"] == "kmeans")
    assert kmeans["ari"][0] == pytest.approx(np.mean(ari)) and kmeans["ari"][1] == pytest.approx(np.std(ari))
    assert len(RunStore().list_runs()) == 4  # through the run store: Compare shows them
    assert "paper" not in printed  # the paper's rows are for MNIST only


def test_table_runs_a_gan_mixture_under_a_named_preset(tmp_path, capsys):
    out = tmp_path / "t.json"
    code = cli.main(["table", "--dataset", "blobs", "--models", "ganmm:paper,ganmm", "--seeds", "1",
                     "--iters", "1", "--time-budget", "0", "--device", "cpu", "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert any(line.startswith("| ganmm:paper |") for line in printed.splitlines())
    assert any(line.startswith("| ganmm |") for line in printed.splitlines())
    runs = {r.name: r for r in RunStore().list_runs()}
    paper = next(r for name, r in runs.items() if "ganmm:paper" in name)
    default = next(r for name, r in runs.items() if "ganmm:paper" not in name)
    assert paper.config["resolved"]["preset"] == "paper" and paper.config["resolved"]["loss"] == "clip"
    assert default.config["resolved"]["preset"] == "default"
    assert paper.config["resolved"]["time_budget"] is None  # --time-budget 0: no budget
    assert {r["model"] for r in json.loads(out.read_text())["runs"]} == {"ganmm:paper", "ganmm"}


def test_table_trains_decs_autoencoder_before_decs_own_run(monkeypatch, capsys):
    # in the raw table too: DEC's time budget is then its clustering's, not the autoencoder's
    from ganmm import dec as dec_module

    monkeypatch.setattr(embedding, "DEFAULT_CONFIG", FAST_AE)
    cached, real = [], dec_module.embed

    def spy(*args, **kwargs):
        emb = real(*args, **kwargs)
        cached.append(emb.cached)
        return emb

    monkeypatch.setattr(dec_module, "embed", spy)
    code = cli.main(["table", "--dataset", "blobs", "--space", "raw", "--models", "dec,kmeans", "--seeds", "2",
                     "--iters", "2", "--device", "cpu"])
    assert code == 0 and "autoencoder for seed 1" in capsys.readouterr().err
    assert cached == [True, True]  # one DEC run per seed, each finding its autoencoder ready


def test_table_refuses_an_unknown_model_entry():
    with pytest.raises(ConfigError, match="ganmm:paper"):
        from ganmm.tables import run_table
        run_table("blobs", "raw", ["ganmm", "gann:paper"], 1)


def test_the_autoencoder_moves_images_and_only_images(monkeypatch):
    """Images are turned and shifted at random before each reconstruction (DEC-DA);
    other data is not, and asking for moves on it is refused."""
    from ganmm import augment

    calls = []
    real = augment.random_affine
    monkeypatch.setattr(augment, "random_affine", lambda x, *a, **k: calls.append(x.shape) or real(x, *a, **k))
    images = np.random.default_rng(0).random((40, 64)).astype(np.float32)
    cfg = AutoencoderConfig(hidden=(16,), latent=3, epochs=2, batch_size=20)
    embed(images, config=cfg)
    assert calls == [(20, 64)] * 4  # every batch of both epochs
    calls.clear()
    blobs = data.load_builtin("blobs").X[:40]
    embed(blobs, config=cfg)
    assert calls == []
    with pytest.raises(ConfigError, match="square images"):
        embed(blobs, config=AutoencoderConfig(hidden=(16,), latent=3, epochs=1, augment="affine"))
    off = embed(images, config=AutoencoderConfig(hidden=(16,), latent=3, epochs=2, batch_size=20, augment="none"))
    assert calls == [] and not off.cached  # another setting: another cache entry
