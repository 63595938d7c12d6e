"""benchmarks.rl_cpu's own logic (the run itself needs the real model and an hour): reuse rules and measures."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from benchmarks import rl_cpu


def test_an_sft_checkpoint_of_other_steps_is_refused_not_retrained(tmp_path: Path) -> None:
    run = tmp_path / "output" / rl_cpu.SFT_RUN
    run.mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"stages": {"train": {"status": "done", "global_step": 8},
                                                              "evaluate": {"status": "done"}}}))
    with pytest.raises(SystemExit) as err:
        rl_cpu.sft_checkpoint(tmp_path, 40, [])
    assert "fine-tuned with 8 steps, not --sft-steps 40" in str(err.value) and "--sft-steps 8" in str(err.value)
    assert rl_cpu.sft_checkpoint(tmp_path, 8, [])["stages"]["train"]["global_step"] == 8, "a finished run is reused"


def test_mean_words_counts_the_scored_rows_only(tmp_path: Path) -> None:
    table = tmp_path / "p.csv"
    pd.DataFrame({"fname": ["a", "b", "c"], "summary": ["하나 둘", "하나 둘 셋 넷", ""]}).to_csv(table, index=False)
    assert rl_cpu.mean_words(table, {"a", "b"}) == 3.0 and rl_cpu.mean_words(table) == 2.0


def test_the_converted_base_model_is_linked_not_converted_again(tmp_path: Path, monkeypatch) -> None:
    import src.models.embedded as embedded

    source = tmp_path / "repo" / "model"
    (source / "embedded" / "gemma-3-270m").mkdir(parents=True)
    monkeypatch.setattr(embedded, "is_built", lambda folder, spec: Path(folder).is_relative_to(source))
    rl_cpu.share_base_model(tmp_path / "work", [tmp_path / "nothing", source])
    link = tmp_path / "work" / "model" / "embedded" / "gemma-3-270m"
    assert link.is_symlink() and link.resolve() == (source / "embedded" / "gemma-3-270m").resolve()
