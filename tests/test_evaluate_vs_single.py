"""The evaluate stage's comparison with the single decode: the dev predictions (after MBR or an ensemble) against
this run's main decode, on the rows evaluate scores, with a paired interval (issue "Decisions with confidence")."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from src.config import load_config
from src.context import RunContext
from src.evaluation import score_rows
from src.manifest import Manifest
from src.pipeline import attach
from src.stages import STAGE_NAMES, evaluate

WORDS = "가 나 다 라 마 바 사 아 자 차 카 타 파 하".split()


def texts(rng: np.random.Generator, n: int) -> list[str]:
    return [" ".join(rng.choice(WORDS, size=8)) + "." for _ in range(n)]


def noisy(rng: np.random.Generator, refs: list[str], keep: float) -> list[str]:
    """Each reference with each word kept with probability ``keep`` (else a random word)."""
    return [" ".join(w if rng.random() < keep else str(rng.choice(WORDS)) for w in ref[:-1].split()) + "."
            for ref in refs]


def evaluated_run(tmp_path: Path, single: bool = True) -> tuple[RunContext, dict]:
    """A run whose preprocess, tune and infer stages are done: 30 dev rows, 6 of them tuning rows."""
    rng = np.random.default_rng(0)
    fnames = [f"dev_{i}" for i in range(30)]
    refs = texts(rng, 30)
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    files = {"refs": run_dir / "dev_refs.csv", "pred": run_dir / "dev_predictions.csv",
             "single": run_dir / "dev_predictions_single.csv", "rows": run_dir / "tuning_rows.csv"}
    pd.DataFrame({"fname": fnames, "summary": refs}).to_csv(files["refs"], index=False)
    pd.DataFrame({"fname": fnames, "summary": noisy(rng, refs, 0.8)}).to_csv(files["pred"], index=False)
    pd.DataFrame({"fname": fnames, "summary": noisy(rng, refs, 0.6)}).to_csv(files["single"], index=False)
    pd.DataFrame({"fname": fnames[:6]}).to_csv(files["rows"], index=False)
    manifest = Manifest.open(run_dir / "manifest.json", "r", 3, STAGE_NAMES)
    manifest.record("preprocess", status="done", outputs={"dev_references": str(files["refs"])})
    manifest.record("tune", status="done", outputs={"rows": str(files["rows"])})
    infer_outputs = {"dev_predictions": str(files["pred"]), **({"dev_predictions_single": str(files["single"])}
                                                               if single else {})}
    manifest.record("infer", status="done", outputs=infer_outputs,
                    **({"single_decode": {"what": "mbr", "written": True}} if single else {}))
    if not single:
        files["single"].unlink()
    cfg = load_config(None, ["evaluation.tokenizer=whitespace", "seed=3"])
    ctx = attach(RunContext(cfg, "r", run_dir, tmp_path / "m", tmp_path / "c", tmp_path / "a", manifest, ("evaluate",)))
    return ctx, files


def per_row_final(predictions: Path, references: Path, rows: list[str]) -> np.ndarray:
    pred = pd.read_csv(predictions).set_index("fname")["summary"]
    ref = pd.read_csv(references).set_index("fname")["summary"]
    scores = score_rows([pred[f] for f in rows], [[ref[f]] for f in rows], tokenizer="whitespace")
    return np.array([100.0 * sum(row) / 3 for row in scores])


def test_vs_single_is_the_paired_interval_on_the_rows_evaluate_scores(tmp_path: Path) -> None:
    ctx, files = evaluated_run(tmp_path)
    result = evaluate.run(ctx)
    metrics = json.loads((ctx.run_dir / "metrics.json").read_text(encoding="utf-8"))
    found = metrics["vs_single"]
    assert result["vs_single"] == found and metrics["n"] == found["n"] == 24, "the 6 tuning rows stay out"
    rows = [f"dev_{i}" for i in range(6, 30)]
    mine, single = per_row_final(files["pred"], files["refs"], rows), per_row_final(files["single"], files["refs"], rows)
    diffs = mine - single
    means = diffs[np.random.default_rng(3).integers(0, 24, size=(2000, 24))].mean(axis=1)
    assert found["diff"] == pytest.approx(diffs.mean()) and found["final_single"] == pytest.approx(single.mean())
    assert (found["ci_low"], found["ci_high"]) == pytest.approx((np.percentile(means, 2.5), np.percentile(means, 97.5)))
    assert found["p_better"] == pytest.approx((means > 0).mean()) and found["what"] == "mbr"
    assert found["not_sure"] == (found["ci_low"] <= 0 <= found["ci_high"])
    verdict = "not sure" if found["not_sure"] else "better" if found["ci_low"] > 0 else "worse"
    line = (f"MBR vs the single decode: {found['diff']:+.2f} [{found['ci_low']:+.2f}, {found['ci_high']:+.2f}] "
            f"on 24 dialogues: {verdict}")
    assert line in (ctx.run_dir / "report.md").read_text(encoding="utf-8").splitlines()


def test_without_a_single_decode_there_is_no_comparison(tmp_path: Path) -> None:
    ctx, _ = evaluated_run(tmp_path, single=False)
    assert "dev_predictions_single" not in evaluate.inputs(ctx)
    result = evaluate.run(ctx)
    assert "vs_single" not in result and "vs_single" not in json.loads((ctx.run_dir / "metrics.json").read_text())
    assert "single decode" not in (ctx.run_dir / "report.md").read_text(encoding="utf-8")
