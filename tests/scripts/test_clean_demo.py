"""make clean removes demo runs only and never a journal of API answers."""
from __future__ import annotations

from pathlib import Path

from scripts import clean_demo
from src.config import Config, PathsConfig


def test_only_demo_outputs_go_and_journals_stay(tmp_path: Path, monkeypatch) -> None:
    paths = PathsConfig(output_dir=str(tmp_path / "output"), model_dir=str(tmp_path / "model"),
                        clean_dir=str(tmp_path / "clean"), augmented_dir=str(tmp_path / "aug"))
    monkeypatch.setattr(clean_demo, "load_config", lambda *a, **k: Config(paths=paths))
    for root in ("output", "model", "clean", "aug"):
        for run in ("demo-20261201-1200", "exp1"):
            (tmp_path / root / run).mkdir(parents=True)
            (tmp_path / root / run / "file.csv").write_text("x")
    (tmp_path / "aug" / "demo-20261201-1200" / "journal.jsonl").write_text('{"key": "paid"}\n')
    assert clean_demo.clean(dry_run=True) == 4 and (tmp_path / "output" / "demo-20261201-1200").exists()
    clean_demo.clean(dry_run=False)
    for root in ("output", "model", "clean"):
        assert not (tmp_path / root / "demo-20261201-1200").exists() and (tmp_path / root / "exp1").exists()
    assert [p.name for p in (tmp_path / "aug" / "demo-20261201-1200").iterdir()] == ["journal.jsonl"]
    assert (tmp_path / "aug" / "exp1" / "file.csv").exists()
