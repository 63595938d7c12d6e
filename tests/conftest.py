"""Test-wide settings: offline hub, quiet tokenizers, shared paths and a CLI runner."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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


def kill_at_first_checkpoint(args: list[str], folder: Path, timeout: float = 300) -> None:
    """Start ``python -m src.main args`` and SIGKILL it once ``folder`` holds a checkpoint recorded complete."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "src.main", *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while not list(folder.glob("checkpoint-*/pipeline_fingerprint.json")):
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before writing a checkpoint"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL


def tmp_paths(root: Path) -> list[str]:
    """Overrides that keep every output of a test run under ``root``."""
    return [f"paths.output_dir={root / 'output'}", f"paths.model_dir={root / 'model'}",
            f"paths.clean_dir={root / 'clean'}", f"paths.augmented_dir={root / 'augmented'}"]


def free_port() -> int:
    """A TCP port nobody listens on right now (for multi-process tests that would clash on a fixed one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def need_shared(path: Path) -> Path:
    """``path`` under ../shared: a skip when it is absent, but a failure under ``CI=true`` (CI must have it)."""
    if path.exists():
        return path
    message = f"{path} not found: these tests read real data or tokenizers from ../shared beside the repo"
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(message + " (CI=true: the shared folder is required)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared_tokenizers() -> Path:
    """The real tokenizers folder (see ``need_shared``)."""
    return need_shared(SHARED_TOKENIZERS)


def write_table(path: Path, rows: list[tuple[str, ...]], columns: tuple[str, ...] = ("fname", "summary")) -> str:
    """A CSV of ``rows`` under ``columns`` at ``path`` (its path as a string, for command lines)."""
    import pandas as pd

    pd.DataFrame(rows, columns=list(columns)).to_csv(path, index=False)
    return str(path)


def run_main(main: Any, capsys: Any, *argv: str) -> tuple[int, str, str]:
    """A tool's ``main(argv)`` in this process: exit code, stdout, stderr."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err

