"""python -m src.runs: status, model, dev score with its interval, minutes and the keys changed from the preset;
and python -m src.compare --runs A B on two runs' dev predictions."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from src.config import load_config, to_dict
from src.main import entry_point
from src.main import main as pipeline_main
from src.pipeline import STAGE_NAMES
from src.runs import main
from src.utils.lock import RunLock
from tests.conftest import tmp_paths

REFS = {f"dev_{i}": f"#Person1#이 친구 {i}에게 전화해 약속을 잡는다." for i in range(12)}


def make_run(output: Path, name: str, stages: dict[str, dict], overrides: list[str], finals: list[float] | None = None,
             preds: dict[str, str] | None = None, tuning: list[str] | None = None) -> Path:
    """A run folder as the pipeline leaves it: manifest.json, config.yaml, and the files the stages wrote."""
    folder = output / name
    folder.mkdir(parents=True)
    cfg = load_config(None, overrides, debug_small=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), allow_unicode=True, sort_keys=False))
    stages = {k: dict(v) for k, v in stages.items()}
    if finals is not None:
        pd.DataFrame({"fname": [f"dev_{i}" for i in range(len(finals))], "final": finals}).to_csv(
            folder / "scores.csv", index=False)
        stages["evaluate"] = {"status": "done", "seconds": 1.0, "outputs": {"scores.csv": str(folder / "scores.csv")}}
    if preds is not None:
        refs = output / f"{name}_refs.csv"
        pd.DataFrame({"fname": list(REFS), "summary": list(REFS.values())}).to_csv(refs, index=False)
        pd.DataFrame({"fname": list(preds), "summary": list(preds.values())}).to_csv(folder / "dev_predictions.csv",
                                                                                   index=False)
        stages["preprocess"] = {"status": "done", "seconds": 0.1, "outputs": {"dev_references": str(refs)}}
    if tuning is not None:
        pd.DataFrame({"fname": tuning}).to_csv(folder / "tuning_rows.csv", index=False)
        stages["tune"] = {"status": "done", "seconds": 3.0, "outputs": {"rows": str(folder / "tuning_rows.csv")}}
    manifest = {"run_name": name, "stages": stages, "command": {"stages": None, "skips": [], "debug_small": True},
                "preset": {"config": None, "path": None, "debug_small": True}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def all_done(seconds: float = 60.0) -> dict[str, dict]:
    return {name: {"status": "done", "seconds": seconds} for name in STAGE_NAMES}


def listing(capsys: pytest.CaptureFixture, output: Path) -> list[dict]:
    assert main(["--output-dir", str(output), "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_rows_are_sorted_by_dev_score_with_status_interval_minutes_and_changes(tmp_path: Path,
                                                                               capsys: pytest.CaptureFixture) -> None:
    output = tmp_path / "output"
    finals = [20.0, 30.0, 25.0, 35.0, 28.0, 22.0]
    make_run(output, "good", all_done(), ["training.learning_rate=0.001", "tune.rows=6"], finals=finals)
    make_run(output, "worse", all_done(30.0), [], finals=[f - 10 for f in finals])
    make_run(output, "broken", {**all_done(), "train": {"status": "failed", "seconds": 5.0, "error": "boom"}}, [])
    make_run(output, "halfway", {"preprocess": {"status": "done", "seconds": 1.0}}, [])
    busy = make_run(output, "busy", {"preprocess": {"status": "done", "seconds": 1.0}}, [])
    lock = RunLock(busy).acquire()
    try:
        rows = listing(capsys, output)
    finally:
        lock.release()
    assert [r["run"] for r in rows][:2] == ["good", "worse"], "best dev score first, unscored runs after"
    by_run = {r["run"]: r for r in rows}
    assert {r: by_run[r]["status"] for r in by_run} == {"good": "done", "worse": "done", "broken": "failed",
                                                        "halfway": "incomplete", "busy": "running"}
    good = by_run["good"]
    assert good["model"] == "tiny-debug" and good["dev_final"] == pytest.approx(np.mean(finals))
    assert good["dev_ci_low"] < good["dev_final"] < good["dev_ci_high"] and good["dev_rows"] == 6
    # the interval is the percentile bootstrap of the per-row finals (seed 0)
    means = np.asarray(finals)[np.random.default_rng(0).integers(0, 6, size=(2000, 6))].mean(axis=1)
    assert good["dev_ci_low"] == pytest.approx(np.percentile(means, 2.5))
    assert good["minutes"] == pytest.approx((60 * (len(STAGE_NAMES) - 1) + 1) / 60, abs=0.05)
    assert good["changed"] == {"training.learning_rate": 0.001, "tune.rows": 6} and good["preset"] == "default"
    assert by_run["worse"]["changed"] == {} and by_run["broken"]["dev_final"] is None
    assert main(["--output-dir", str(output)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("run ") and table[1].startswith("good ") and "training.learning_rate=0.001" in table[1]


def test_an_older_run_is_diffed_against_the_nearest_preset(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    output = tmp_path / "output"
    folder = make_run(output, "old", all_done(), ["prompt.num_fewshot=0"])
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["preset"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (row,) = listing(capsys, output)
    assert row["preset_guessed"] is True and row["preset"] == "default"
    assert row["changed"] == {"prompt.num_fewshot": 0}


def test_the_pipeline_records_its_preset_and_the_table_lists_the_run(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    overrides = tmp_paths(tmp_path)
    assert pipeline_main(["--debug-small", "--stages", "preprocess", "--run-name", "p1", *overrides]) == 0
    manifest = json.loads((tmp_path / "output" / "p1" / "manifest.json").read_text())
    assert manifest["preset"] == {"config": None, "path": None, "debug_small": True}
    capsys.readouterr()
    (row,) = listing(capsys, tmp_path / "output")
    assert row["run"] == "p1" and row["status"] == "done" and row["preset_guessed"] is False
    assert set(row["changed"]) == {"paths.output_dir", "paths.model_dir", "paths.clean_dir", "paths.augmented_dir"}
    # a model preset, then a resume with another --config (ignored on resume): the first command's preset stays
    args = ["--config", "qwen2.5-7b-instruct", "--debug-small", "--stages", "preprocess", "--run-name", "p2"]
    assert pipeline_main([*args, "prompt.num_fewshot=0", *overrides]) == 0
    assert pipeline_main(["--config", "kobart-summarization", "--run-name", "p2", "--resume", *overrides]) == 0
    preset = json.loads((tmp_path / "output" / "p2" / "manifest.json").read_text())["preset"]
    assert preset["config"] == "qwen2.5-7b-instruct" and preset["path"].endswith("qwen2.5-7b-instruct.yaml")
    capsys.readouterr()
    row = next(r for r in listing(capsys, tmp_path / "output") if r["run"] == "p2")
    assert row["preset"] == "qwen2.5-7b-instruct" and row["changed"]["prompt.num_fewshot"] == 0
    assert "model.name" not in row["changed"], "the preset with the debug overlay, as the run started"


def test_bad_output_dir_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--output-dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --output-dir") and len(err.strip().splitlines()) == 1
    assert entry_point(["runs", "--output-dir", str(tmp_path), "--json"]) == 0
    assert capsys.readouterr().out.strip() == "[]"


def test_compare_runs_uses_both_runs_dev_predictions_without_tuning_rows(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture) -> None:
    output = tmp_path / "output"
    good = {f: r.replace("약속을", "약속") for f, r in REFS.items()}
    bad = {f: "#Person1#이 전화한다." for f in REFS}
    make_run(output, "a", all_done(), [], preds=good, tuning=["dev_0", "dev_1"])
    make_run(output, "b", all_done(), [], preds=bad, tuning=["dev_2"])
    code = entry_point(["compare", "--runs", "a", "b", "--output-dir", str(output), "--tokenizer", "whitespace"])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n"] == 9 and result["diff"] > 0 and result["ci_low"] > 0
    assert result["a"].endswith("a/dev_predictions.csv") and result["b"].endswith("b/dev_predictions.csv")
    assert entry_point(["compare", "--runs", "a", "nope", "--output-dir", str(output)]) == 2
    err = capsys.readouterr().err
    assert "--runs nope" in err and "runs in" in err and "a, b" in err and len(err.strip().splitlines()) == 1
