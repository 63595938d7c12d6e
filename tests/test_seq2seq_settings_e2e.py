"""The seq2seq run does what its command line says: ``inference.num_beams=1`` is greedy, like ``seq2seq.num_beams=1``.

Before the settings were resolved in one place, a seq2seq run logged ``inference.num_beams = 1 (command line)``,
generated with 4 beams and recorded 4 in the manifest (the seq2seq defaults were applied a second time).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli, tmp_paths

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def infer_entry(root: Path, run: str) -> dict:
    return json.loads((root / "output" / run / "manifest.json").read_text())["stages"]["infer"]


def test_an_explicit_inference_key_decides_a_seq2seq_run(tmp_path: Path) -> None:
    paths = tmp_paths(tmp_path)
    named = run_cli(["--debug-small", "--run-name", "named", "--stages", "preprocess,train,infer", *paths,
                     "model.type=seq2seq", "inference.num_beams=1", "inference.no_repeat_ngram_size=0"])
    assert named.returncode == 0, named.stderr[-3000:]
    checkpoint = tmp_path / "model" / "named" / "final_checkpoint"
    via_section = run_cli(["--debug-small", "--run-name", "section", "--stages", "preprocess,infer", *paths,
                           "model.type=seq2seq", f"inference.checkpoint={checkpoint}", "seq2seq.num_beams=1",
                           "seq2seq.no_repeat_ngram_size=0"])
    assert via_section.returncode == 0, via_section.stderr[-3000:]
    defaults = run_cli(["--debug-small", "--run-name", "defaults", "--stages", "preprocess,infer", *paths,
                        "model.type=seq2seq", f"inference.checkpoint={checkpoint}"])
    assert defaults.returncode == 0, defaults.stderr[-3000:]
    entries = {run: infer_entry(tmp_path, run) for run in ("named", "section", "defaults")}
    for run in ("named", "section"):
        assert (entries[run]["settings"]["num_beams"], entries[run]["settings"]["no_repeat_ngram_size"]) == (1, 0), run
    assert (entries["defaults"]["settings"]["num_beams"], entries["defaults"]["settings"]["no_repeat_ngram_size"]) == (4, 2)
    assert entries["named"]["engine"]["choice"] == "seq2seq"
    out = tmp_path / "output"
    assert (out / "named" / "submission.csv").read_bytes() == (out / "section" / "submission.csv").read_bytes()
    log = (out / "named" / "logs" / "pipeline.log").read_text(encoding="utf-8")
    assert "inference.num_beams = 1  (command line)" in log
    assert "num_beams 1, no_repeat_ngram_size 0" in log and "num_beams 4" not in log
