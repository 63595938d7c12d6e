"""The prediction journal: rows survive a crash, other settings are discarded, torn lines skipped."""
from __future__ import annotations

from dataclasses import replace

from src.inference.journal import PredictionJournal, journal_path, prediction_key
from tests.inference.conftest import tiny_config


def test_rows_are_reused_under_the_same_settings(tmp_path) -> None:
    path = journal_path(tmp_path / "submission.csv")
    assert path.name == "submission.journal.jsonl"
    PredictionJournal(path, "h1").append(["t0", "t1"], ["가 나", "다"])
    again = PredictionJournal(path, "h1")
    assert again.done == {"t0": "가 나", "t1": "다"}
    again.append(["t2"], ["라"])
    assert len(path.read_text(encoding="utf-8").splitlines()) == 3


def test_other_settings_are_discarded(tmp_path) -> None:
    path = tmp_path / "j.jsonl"
    PredictionJournal(path, "old").append(["t0"], ["x"])
    assert PredictionJournal(path, "new").done == {}
    assert not path.exists()


def test_torn_last_line_is_skipped(tmp_path) -> None:
    path = tmp_path / "j.jsonl"
    PredictionJournal(path, "h").append(["t0"], ["x"])
    with path.open("a", encoding="utf-8") as fh:
        fh.write('{"fname": "t1", "summ')
    journal = PredictionJournal(path, "h")
    assert journal.done == {"t0": "x"}
    journal.append(["t1"], ["y"])
    assert PredictionJournal(path, "h").done == {"t0": "x", "t1": "y"}


def test_prediction_key_follows_what_decides_a_summary(tmp_path) -> None:
    ckpt, split = tmp_path / "ckpt", tmp_path / "test.csv"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    split.write_text("fname,dialogue\nt0,a\n")
    cfg = tiny_config()
    base = prediction_key(cfg, ckpt, split, None)
    assert prediction_key(replace(cfg, inference=replace(cfg.inference, batch_size=3)), ckpt, split, None) == base
    assert prediction_key(replace(cfg, inference=replace(cfg.inference, max_new_tokens=7)), ckpt, split, None) != base
    assert prediction_key(replace(cfg, prompt=replace(cfg.prompt, instruction="요약")), ckpt, split, None) != base
    (ckpt / "adapter_model.safetensors").write_text("new weights")
    assert prediction_key(cfg, ckpt, split, None) != base
