"""notebooks/EDA.ipynb runs headless with nbconvert and is committed with its outputs."""
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
NOTEBOOK = REPO_ROOT / "notebooks" / "EDA.ipynb"


def tiny_dataset(folder: Path) -> Path:
    """Three train rows (one with masks and a third speaker) and a test split without summaries."""
    folder.mkdir()
    pd.DataFrame({
        "fname": ["train_0", "train_1", "train_2"],
        "dialogue": [
            "#Person1#: 안녕하세요.\n#Person2#: 네, 반갑습니다.",
            "#Person1#: 번호가 뭐예요?\n#Person2#: #PhoneNumber#예요.\n#Person3#: 저도 알려주세요.",
            "#Person1#: #DateAndTime#에 만나요.\n#Person2#: 좋아요.",
        ],
        "summary": ["#Person1#과 #Person2#가 인사합니다.", "#Person2#는 번호를 알려줍니다.", "둘은 만나기로 합니다."],
        "topic": ["인사", "연락처", "약속"],
    }).to_csv(folder / "train.csv", index=False)
    pd.DataFrame({"fname": ["test_0"], "dialogue": ["#Person1#: 잘 가요.\n#Person2#: 안녕히 계세요."]}).to_csv(
        folder / "test.csv", index=False
    )
    return folder


def execute(output: Path, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "EDA_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
               str(NOTEBOOK), "--output", str(output)]
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_notebook_executes_headless_on_a_given_folder(tmp_path: Path) -> None:
    output = tmp_path / "EDA.out.ipynb"
    done = execute(output, tiny_dataset(tmp_path / "data"))
    assert done.returncode == 0, done.stderr[-3000:]
    cells = json.loads(output.read_text(encoding="utf-8"))["cells"]
    outputs = [o for c in cells if c["cell_type"] == "code" for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    text = "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "#PhoneNumber#" in text and "#DateAndTime#" in text and "#Person3#" in text


def test_committed_notebook_is_executed_with_outputs() -> None:
    if not NOTEBOOK.is_file():
        pytest.fail(f"{NOTEBOOK} is missing")
    cells = [c for c in json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
    assert cells and all(c["execution_count"] for c in cells), "run nbconvert --execute --inplace and save"
    counts = [c["execution_count"] for c in cells]
    assert counts == list(range(1, len(cells) + 1))  # one clean top-to-bottom run
    outputs = [o for c in cells for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert any("data/debug" in "".join(o.get("text", "")) for o in outputs)  # run on the bundled data
