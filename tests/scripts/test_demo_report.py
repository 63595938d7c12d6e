"""scripts.demo_report: the dev examples make demo prints, read from a finished run's files."""
from __future__ import annotations

from pathlib import Path

from scripts import demo_report
from src.config import load_config
from src.run import config_yaml


def test_examples_show_dialogue_generated_and_reference_in_dev_order(tmp_path: Path) -> None:
    data, run = tmp_path / "data", tmp_path / "run"
    data.mkdir()
    run.mkdir()
    (data / "dev.csv").write_text("fname,dialogue,summary\nd2,#Person1#: 둘,둘이다.\nd1,#Person1#: 하나,하나다.\n",
                                  encoding="utf-8")
    (run / "config.yaml").write_text(config_yaml(load_config(None, [f"paths.data_dir={data}"])), encoding="utf-8")
    (run / "scores.csv").write_text("fname,final,prediction,reference\nd1,40.0,하나 요약,하나다.\nd2,55.5,둘 요약,둘이다.\n",
                                    encoding="utf-8")
    shown = demo_report.examples(run, 1)
    assert len(shown) == 1 and shown[0].startswith("[d2]  final 55.5")
    assert "둘 요약" in shown[0] and "둘이다." in shown[0] and "#Person1#: 둘" in shown[0]
