"""Fixtures of the training tests: synthetic data and a tiny model built on it."""
from __future__ import annotations

import pytest

from tests.train.synthetic import build_model, write_synthetic


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory) -> dict:
    """Synthetic CSVs and a tiny model (hidden 64) on them, shared by the fast training tests."""
    root = tmp_path_factory.mktemp("synthetic")
    frames = write_synthetic(root / "data", n_train=40, n_dev=8, n_test=4)
    return {"root": root, "data": root / "data", "frames": frames, "model": build_model(root / "tiny", frames)}
