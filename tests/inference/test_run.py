"""The infer stage's work: dev and test predicted, submission validated, journal resume after a crash."""
from __future__ import annotations

import pandas as pd
import pytest

from src.inference import run as infer_run
from src.inference.journal import PredictionJournal, journal_path
from src.inference.settings import resolve_settings
from tests.inference.conftest import DEBUG, tiny_config


def predict(cfg, inputs, outputs) -> dict:
    """What the infer stage does with its inputs: read the splits, resolve the settings once, predict."""
    frames = infer_run.read_splits(inputs["dev"], inputs["test"], "dev_predictions" in outputs)
    settings = resolve_settings(cfg, inputs["checkpoint"], inputs["train"], None)
    return infer_run.predict_splits(settings, frames, {"dev": inputs["dev"], "test": inputs["test"]}, outputs, None)


def _io(ckpt, out_dir, dev=DEBUG / "dev.csv"):
    inputs = {"checkpoint": ckpt, "dev": dev, "test": DEBUG / "test.csv", "train": DEBUG / "train.csv"}
    outputs = {"submission": out_dir / "submission.csv", "dev_predictions": out_dir / "dev_predictions.csv"}
    return inputs, outputs


@pytest.fixture(scope="module")
def clean_run(tiny_trained: dict, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("clean")
    inputs, outputs = _io(tiny_trained["path"], out)
    report = predict(tiny_config(batch_size=5), inputs, outputs)
    return {"out": out, "report": report, "outputs": outputs}


def test_writes_dev_predictions_and_submission(clean_run: dict) -> None:
    sub = pd.read_csv(clean_run["outputs"]["submission"])
    test = pd.read_csv(DEBUG / "test.csv")
    assert sub.columns.tolist() == ["fname", "summary"] and sub["fname"].tolist() == test["fname"].tolist()
    assert sub["summary"].str.strip().ne("").all()
    dev = pd.read_csv(clean_run["outputs"]["dev_predictions"])
    assert dev["fname"].tolist() == pd.read_csv(DEBUG / "dev.csv")["fname"].tolist()
    assert not list(clean_run["out"].glob("*.journal.jsonl")), "journals are removed once the outputs exist"


def test_manifest_fields(clean_run: dict) -> None:
    r = clean_run["report"]
    assert r["throughput"]["dialogues"] == 24 and r["throughput"]["generated_tokens"] > 0
    assert r["throughput"]["dialogues_per_s"] > 0 and r["throughput"]["generated_tokens_per_s"] > 0
    assert r["splits"]["test"]["rows"] == 12 and r["splits"]["dev"]["reused_from_journal"] == 0
    assert r["hit_max_new_tokens"] == r["throughput"]["hit_max_new_tokens"] > 0
    assert r["settings"]["batch_size"] == 5 and r["settings"]["backend"] == "auto"
    assert r["engine"]["backend"] == "ContinuousEngine", "auto on a CPU: the continuous engine"
    assert r["engine"]["choice"] == "continuous" and r["engine"]["why"] == "inference.backend=auto on a CPU"


def test_interrupted_inference_resumes_from_journal(tiny_trained: dict, clean_run: dict, tmp_path, monkeypatch) -> None:
    inputs, outputs = _io(tiny_trained["path"], tmp_path)
    original, calls = PredictionJournal.append, []

    def crash_after_one_test_batch(self, fnames, summaries, singles=None):
        original(self, fnames, summaries, singles)
        calls.append(self.path.name)
        if self.path.name.startswith("submission"):
            raise KeyboardInterrupt

    monkeypatch.setattr(PredictionJournal, "append", crash_after_one_test_batch)
    with pytest.raises(KeyboardInterrupt):
        predict(tiny_config(batch_size=4, slots=1), inputs, outputs)  # chunks of 4
    assert not outputs["submission"].exists() and outputs["dev_predictions"].exists()
    assert len(journal_path(outputs["submission"]).read_text().splitlines()) == 4
    monkeypatch.setattr(PredictionJournal, "append", original)

    report = predict(tiny_config(batch_size=4, slots=1), inputs, outputs)
    assert report["splits"]["dev"]["reused_from_journal"] == 12 and report["splits"]["dev"]["dialogues"] == 0
    assert report["splits"]["test"]["reused_from_journal"] == 4 and report["splits"]["test"]["dialogues"] == 8
    assert outputs["submission"].read_bytes() == clean_run["outputs"]["submission"].read_bytes()
    assert not journal_path(outputs["submission"]).exists()


def test_journal_of_other_settings_is_not_reused(tiny_trained: dict, tmp_path) -> None:
    inputs, outputs = _io(tiny_trained["path"], tmp_path)
    PredictionJournal(journal_path(outputs["submission"]), "stale").append(["test_0"], ["옛 요약"])
    report = predict(tiny_config(predict_dev=False, max_new_tokens=4), inputs, {"submission": outputs["submission"]})
    assert report["splits"]["test"]["reused_from_journal"] == 0 and "dev" not in report["splits"]
    assert "옛 요약" not in outputs["submission"].read_text(encoding="utf-8")


def test_dev_without_summaries_is_not_predicted(tiny_trained: dict, tmp_path) -> None:
    dev = tmp_path / "dev.csv"
    pd.read_csv(DEBUG / "dev.csv")[["fname", "dialogue"]].to_csv(dev, index=False)
    inputs, outputs = _io(tiny_trained["path"], tmp_path, dev=dev)
    report = predict(tiny_config(max_new_tokens=4), inputs, outputs)
    assert "dev" not in report["splits"] and not outputs["dev_predictions"].exists()
    assert outputs["submission"].exists()
