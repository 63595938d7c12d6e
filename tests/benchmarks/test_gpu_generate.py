"""The GPU benchmark skips cleanly without a GPU and its code path runs (--smoke: 2 layers on CPU)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO, SHARED, need_shared


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks.gpu_generate", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow  # a benchmark subprocess
def test_gpu_benchmark_skips_without_gpu() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the benchmark would run for real")
    res = _run()
    assert res.returncode == 0 and res.stdout.startswith("skipped: "), res.stdout + res.stderr


@pytest.mark.slow
def test_gpu_benchmark_smoke_runs_the_project_path() -> None:
    need_shared(SHARED / "tokenizers" / "solar-10.7b-instruct")
    res = _run("--smoke", "--backend", "transformers", "--max-new-tokens", "8")
    assert res.returncode == 0, res.stderr[-3000:]
    result = json.loads(res.stdout.strip().splitlines()[-1])["transformers"]
    assert result["dialogues"] == 8 and result["generated_tokens"] > 0 and result["seconds"] > 0
