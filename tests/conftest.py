"""Test-wide settings: offline hub, quiet tokenizers, shared paths and a CLI runner."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_MODE", "disabled")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHARED_DATA = SHARED / "data"
SHARED_TOKENIZERS = SHARED / "tokenizers"


def run_cli(args: list[str], env: dict | None = None, timeout: int = 600, module: str = "src.main") -> subprocess.CompletedProcess:
    """Run ``python -m <module> args`` from the repo root, offline, capturing output."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


def tmp_paths(root: Path) -> list[str]:
    """Overrides that keep every output of a test run under ``root``."""
    return [f"paths.output_dir={root / 'output'}", f"paths.model_dir={root / 'model'}",
            f"paths.clean_dir={root / 'clean'}", f"paths.augmented_dir={root / 'augmented'}"]


@pytest.fixture(scope="session")
def shared_tokenizers() -> Path:
    """The real tokenizers folder (skips when ../shared is absent)."""
    if not SHARED_TOKENIZERS.is_dir():
        pytest.skip("../shared/tokenizers not available")
    return SHARED_TOKENIZERS
