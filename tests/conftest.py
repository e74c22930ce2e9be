"""Shared fixtures: every test gets its own GANMM_HOME and a seeded, small world."""

from __future__ import annotations

import numpy as np
import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def ganmm_home(tmp_path, monkeypatch):
    """Runs and caches go to a temporary folder, never the user's home."""
    home = tmp_path / "ganmm_home"
    monkeypatch.setenv("GANMM_HOME", str(home))
    return home


@pytest.fixture
def two_blobs():
    """Two well separated 2-D blobs, 60 points, labels 0/1."""
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-3, 0.5, (30, 2)), rng.normal(3, 0.5, (30, 2))]).astype(np.float32)
    y = np.repeat([0, 1], 30)
    return X, y
