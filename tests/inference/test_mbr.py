"""MBR: every run's candidate per dialogue, the consensus wins; tune settings and seeded samples fill the pool."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from src.config import load_config
from src.inference.batching import GenerationStats
from src.inference.mbr import MbrPredictor, candidate_runs, tune_runs
from src.inference.run import with_mbr
from src.stages.infer import ensemble_outputs


class FakePredictor:
    """Answers per run: the odd one out is the sampled run's text."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.stats = GenerationStats()

    def predict_batch(self, dialogues, fnames, **overrides):
        self.calls.append(overrides)
        if overrides.get("do_sample"):
            return ["전혀 다른 엉뚱한 말이다." for _ in dialogues]
        beams = overrides.get("num_beams", 1)
        return [f"#Person1#은 {d} 이야기를 한다." + (" 정말로." if beams > 1 else "") for d in dialogues]


def test_candidate_runs_mix_the_main_decode_tune_settings_and_samples(tmp_path: Path) -> None:
    table = tmp_path / "tuning.csv"
    pd.DataFrame({"setting": ["a", "b", "c"], "param_num_beams": [2, 4, 1], "param_length_penalty": [1.0, 1.3, 0.8],
                  "rows": [20, 20, 10], "final": [30.0, 29.0, 20.0]}).to_csv(table, index=False)
    assert tune_runs(table, 1) == [{"num_beams": 4, "length_penalty": 1.3}]
    cfg = load_config(None, ["inference.mbr.num_candidates=4", "inference.mbr.from_tune=1"])
    runs = candidate_runs(cfg, table)
    assert runs[0] == {} and runs[1] == {"num_beams": 4, "length_penalty": 1.3}
    assert [r["seed"] for r in runs[2:]] == [cfg.seed + 1, cfg.seed + 2] and all(r["do_sample"] for r in runs[2:])
    assert with_mbr(load_config(None, []), "plain", None) == "plain", "one candidate: no MBR"


def test_the_consensus_candidate_wins_for_every_dialogue() -> None:
    base = FakePredictor()
    runs = [{}, {"num_beams": 2}, {"do_sample": True, "seed": 1}]
    mbr = MbrPredictor(base, runs, tokenizer="whitespace", weights=(1.0, 1.0, 1.0), chunk=2)
    done: list[str] = []
    out = mbr.predict_dataframe(pd.DataFrame({"fname": ["a", "b", "c"], "dialogue": ["날씨", "회의", "점심"]}),
                                on_batch=lambda f, s: done.extend(f))
    assert out["summary"].tolist() == [f"#Person1#은 {d} 이야기를 한다." for d in ("날씨", "회의", "점심")]
    assert done == ["a", "b", "c"] and len(base.calls) == 6, "two chunks x three runs"
    assert mbr.summary()["wins"] == {0: 3}


def test_ensemble_from_other_runs_picks_the_consensus_per_fname(tmp_path: Path) -> None:
    out = tmp_path / "output"
    texts = {"me": ["#Person1#은 밥을 먹는다.", "#Person2#는 운다."],
             "r2": ["#Person1#은 밥을 먹는다.", "#Person2#는 웃는다."],
             "r3": ["#Person1#은 밥을 많이 먹는다.", "#Person2#는 웃는다."]}
    for run, summaries in texts.items():
        (out / run).mkdir(parents=True)
        for name in ("submission.csv", "dev_predictions.csv"):
            pd.DataFrame({"fname": ["t1", "t2"], "summary": summaries}).to_csv(out / run / name, index=False)
    cfg = load_config(None, [f"paths.output_dir={out}", "inference.ensemble_from=[r2,r3]",
                             "evaluation.tokenizer=whitespace"])
    frames = {"dev": pd.DataFrame({"fname": ["t1", "t2"]}), "test": pd.DataFrame({"fname": ["t1", "t2"]})}
    outputs = {"submission": out / "me" / "submission.csv", "dev_predictions": out / "me" / "dev_predictions.csv"}
    counts = ensemble_outputs(replace(cfg), outputs, frames)
    assert pd.read_csv(outputs["submission"])["summary"].tolist() == ["#Person1#은 밥을 먹는다.", "#Person2#는 웃는다."]
    assert counts["submission"]["files"] == 3


def test_the_tune_table_is_read_strictly_and_typed_per_key(tmp_path: Path) -> None:
    import pytest

    from src.utils.errors import UserError

    table = tmp_path / "tuning.csv"
    table.write_text("setting,param_num_beams,param_do_sample,final\na,2,False,30\nb,4,true,29\n", encoding="utf-8")
    assert tune_runs(table, 1) == [{"num_beams": 4, "do_sample": True}]
    table.write_text("setting,param_num_beams,final\na,2,30\nb,four,29\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"tuning.csv: line 3: column param_num_beams = 'four'"):
        tune_runs(table, 1)
    table.write_text('setting,param_num_beams,final\na,2,"30\nb,4,29\n', encoding="utf-8")
    with pytest.raises(UserError, match="tuning.csv: line"):
        tune_runs(table, 1)


# ---------------------------------------------------------------- the single decode beside MBR and ensembles

class EngineFake(FakePredictor):
    """The fake as ``load_predictor`` returns it (the manifest reads its engine choice)."""

    choice = None
    engine = None


DIALOGUES = {"d0": "날씨", "d1": "회의", "d2": "점심", "d3": "여행"}


def predict_dev(tmp_path: Path, monkeypatch, cfg) -> tuple[dict, dict]:
    """The infer stage's prediction of a 4-row dev set with a fake model; (report, outputs)."""
    from src.inference import run as infer_run
    from src.inference.settings import InferenceSettings

    monkeypatch.setattr(infer_run, "load_predictor", lambda settings, pool: EngineFake())
    monkeypatch.setattr(infer_run, "engine_record", lambda choice, engine: {})
    frame = pd.DataFrame({"fname": list(DIALOGUES), "dialogue": list(DIALOGUES.values()), "summary": "요약"})
    dev, ckpt = tmp_path / "dev.csv", tmp_path / "ckpt"
    frame.to_csv(dev, index=False)
    ckpt.mkdir(exist_ok=True)
    (ckpt / "weights.bin").write_bytes(b"w")
    outputs = {"dev_predictions": tmp_path / "dev_predictions.csv",
               "dev_predictions_single": tmp_path / "dev_predictions_single.csv"}
    report = infer_run.predict_splits(InferenceSettings(cfg, ckpt, None), {"dev": frame}, {"dev": dev}, outputs, None)
    return report, outputs


MBR_CFG = ["inference.mbr.num_candidates=3", "inference.mbr.chunk=2", "evaluation.tokenizer=whitespace"]


def test_mbr_writes_the_main_decode_beside_its_choice_and_resumes_it_from_the_journal(tmp_path: Path,
                                                                                      monkeypatch) -> None:
    import pytest

    from src.inference.journal import PredictionJournal, journal_path

    cfg = load_config(None, MBR_CFG)
    original = PredictionJournal.append

    def crash_after_one_chunk(self, fnames, summaries, singles=None):
        original(self, fnames, summaries, singles)
        raise KeyboardInterrupt

    monkeypatch.setattr(PredictionJournal, "append", crash_after_one_chunk)
    with pytest.raises(KeyboardInterrupt):
        predict_dev(tmp_path, monkeypatch, cfg)
    lines = journal_path(tmp_path / "dev_predictions.csv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and all('"single": "#Person1#' in line for line in lines)
    monkeypatch.setattr(PredictionJournal, "append", original)

    report, outputs = predict_dev(tmp_path, monkeypatch, cfg)
    assert report["splits"]["dev"]["reused_from_journal"] == 2
    chosen = pd.read_csv(outputs["dev_predictions"])["summary"].tolist()
    single = pd.read_csv(outputs["dev_predictions_single"])
    assert chosen == ["전혀 다른 엉뚱한 말이다."] * 4, "the two samples agree, so MBR picks them"
    assert single["fname"].tolist() == list(DIALOGUES)
    assert single["summary"].tolist() == [f"#Person1#은 {d} 이야기를 한다." for d in DIALOGUES.values()]
    assert report["single_decode"] == {"what": "mbr", "written": True, "file": str(outputs["dev_predictions_single"])}


def test_rows_journaled_without_their_main_decode_leave_the_single_file_out(tmp_path: Path, monkeypatch,
                                                                             caplog) -> None:
    from src.inference.journal import PredictionJournal, journal_path, prediction_key

    cfg = load_config(None, MBR_CFG)
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "weights.bin").write_bytes(b"w")
    pd.DataFrame({"fname": list(DIALOGUES), "dialogue": list(DIALOGUES.values()), "summary": "요약"}).to_csv(
        tmp_path / "dev.csv", index=False)
    key = prediction_key(cfg, tmp_path / "ckpt", tmp_path / "dev.csv", None, candidate_runs(cfg, None))
    PredictionJournal(journal_path(tmp_path / "dev_predictions.csv"), key).append(["d0"], ["옛 요약"])
    report, outputs = predict_dev(tmp_path, monkeypatch, cfg)
    assert report["splits"]["dev"]["reused_from_journal"] == 1 and not outputs["dev_predictions_single"].exists()
    assert report["single_decode"]["written"] is False and "1 of 4 dev rows" in report["single_decode"]["reason"]
    assert "journaled without their main decode" in caplog.text


def test_an_ensemble_keeps_the_main_decode_and_plain_runs_write_none(tmp_path: Path) -> None:
    from src.inference.journal import PredictionJournal
    from src.inference.run import write_single

    pred = pd.DataFrame({"fname": ["a", "b"], "summary": ["하나.", "둘."]})
    journal = PredictionJournal(tmp_path / "j.jsonl", "key")
    out = tmp_path / "single.csv"
    assert write_single(load_config(None, []), FakePredictor(), pred, journal, out) == {} and not out.exists()
    found = write_single(load_config(None, ["inference.ensemble_from=[other]"]), FakePredictor(), pred, journal, out)
    assert found["what"] == "ensemble" and pd.read_csv(out).equals(pred)
