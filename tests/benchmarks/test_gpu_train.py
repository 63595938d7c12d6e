"""The GPU training benchmark skips cleanly without a GPU (the --smoke path is exercised by hand; see BENCHMARKS.md)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_gpu_train_skips_without_gpu() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: the benchmark would run for real")
    res = subprocess.run([sys.executable, "-m", "benchmarks.gpu_train"], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0
    assert res.stdout.strip().splitlines()[-1].startswith("gpu_train: skipped: no CUDA GPU")
