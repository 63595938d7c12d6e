"""notebooks/EDA_augmented.ipynb runs headless (on a stage output folder and in demo mode) and is committed executed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow  # executes a notebook in a kernel

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO_ROOT / "notebooks" / "EDA_augmented.ipynb"
DEBUG_TRAIN = REPO_ROOT / "data" / "debug" / "train.csv"


def stage_output(folder: Path) -> Path:
    """A real augment() output folder, made against the scripted loopback server."""
    from src.augment.generate import augment
    from src.config import ApiConfig, AugmentationConfig
    from tests.augment.fake_openai_server import FakeOpenAIServer, demo_responder

    train = pd.read_csv(DEBUG_TRAIN, dtype=str, keep_default_na=False)
    with FakeOpenAIServer(responder=demo_responder) as server:
        cfg = AugmentationConfig(num_paraphrase=12, num_synthetic=8, num_speaker_swap=4,
                                 api=ApiConfig(base_url=server.base_url, timeout=5.0))
        augment(train, [], cfg, "sk-notebook-test", folder, seed=0, progress=False)
    return folder


def execute(output: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1", **env}
    command = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
               str(NOTEBOOK), "--output", str(output)]
    return subprocess.run(command, cwd=REPO_ROOT, env=full_env, capture_output=True, text=True, timeout=300)


def outputs_of(notebook: dict) -> list[dict]:
    return [o for c in notebook["cells"] if c["cell_type"] == "code" for o in c["outputs"]]


def text_of(outputs: list[dict]) -> str:
    return "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", "")) for o in outputs)


@pytest.mark.parametrize("mode", ["folder", "demo"])
def test_notebook_executes_headless(tmp_path: Path, mode: str) -> None:
    if mode == "folder":
        env = {"EDA_AUGMENTED_DIR": str(stage_output(tmp_path / "aug")), "EDA_TRAIN_CSV": str(DEBUG_TRAIN)}
    else:
        env = {"EDA_AUGMENTED_DIR": "demo"}
    done = execute(tmp_path / "out.ipynb", env)
    assert done.returncode == 0, done.stderr[-3000:]
    outputs = outputs_of(json.loads((tmp_path / "out.ipynb").read_text(encoding="utf-8")))
    assert not [o for o in outputs if o["output_type"] == "error"]
    text = text_of(outputs)
    assert ("stage output in" if mode == "folder" else "mode: DEMO") in text
    assert "acceptance" in text and "paraphrase" in text and "synthetic" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)


def test_committed_notebook_is_executed_with_outputs() -> None:
    assert NOTEBOOK.is_file(), f"{NOTEBOOK} is missing"
    notebook = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in cells] == list(range(1, len(cells) + 1)), \
        "run nbconvert --execute --inplace and save (one clean top-to-bottom run)"
    outputs = outputs_of(notebook)
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert not [o for o in outputs if o.get("name") == "stderr"], "warnings in the committed notebook"
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert "acceptance" in text_of(outputs)


def test_the_notebook_needs_no_test_fixture_and_names_paths_that_exist() -> None:
    import re

    notebook = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = "".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
    assert "tests." not in code and "from tests" not in code, "a notebook is for users: no test fixtures"
    prose = "".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown")
    for path in re.findall(r"`((?:src|tests|data)/[\w/.]+\.\w+)`", prose):
        assert (REPO_ROOT / path).exists(), f"the notebook names {path}, which does not exist"
