"""The settings inference uses, built in one place: config < checkpoint < tune < command line, each with its source."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from src.config import Config, load_config, to_dict
from src.inference.settings import resolve_settings
from src.models.checkpoint import INFERENCE_INFO


def trained_checkpoint(tmp_path: Path, **prompt: object) -> Path:
    folder = tmp_path / "final_checkpoint"
    folder.mkdir()
    saved = {**to_dict(Config().prompt), **prompt}
    (folder / INFERENCE_INFO).write_text(json.dumps({"model_type": "causal", "prompt": saved,
                                                     "completion_tokens": {"auto_max_new_tokens": 77}}))
    (folder / "adapter_config.json").write_text("{}")
    return folder


def tuned_file(tmp_path: Path) -> Path:
    best = tmp_path / "best_generation.yaml"
    best.write_text("inference: {num_beams: 4, length_penalty: 1.3}\nprompt: {instruction: 요약해}\n", encoding="utf-8")
    return best


def test_each_layer_wins_over_the_one_before_and_says_so(tmp_path: Path) -> None:
    cfg = load_config(None, ["inference.length_penalty=0.9", "prompt.num_fewshot=0"])
    ckpt = trained_checkpoint(tmp_path, max_prompt_tokens=900, num_fewshot=2)
    settings = resolve_settings(cfg, ckpt, None, tuned_file(tmp_path),
                                frozenset({"inference.length_penalty", "prompt.num_fewshot"}))
    used, src = settings.cfg, settings.sources
    assert used.prompt.max_prompt_tokens == 900 and src["prompt.max_prompt_tokens"] == f"checkpoint {ckpt}"
    assert used.inference.max_new_tokens == 77 and src["inference.max_new_tokens"].startswith("checkpoint")
    assert used.inference.num_beams == 4 and src["inference.num_beams"].startswith("tune ")
    assert used.prompt.instruction == "요약해" and src["prompt.instruction"].startswith("tune ")
    assert used.inference.length_penalty == 0.9 and src["inference.length_penalty"] == "command line"
    assert used.prompt.num_fewshot == 0 and src["prompt.num_fewshot"] == "command line"
    lines = settings.lines()
    assert "inference.num_beams = 4  (tune " in "\n".join(lines)
    assert "inference.repetition_penalty = 1.0  (config)" in lines


def test_without_a_checkpoint_or_a_tune_choice_the_config_stands(tmp_path: Path) -> None:
    cfg = Config()
    settings = resolve_settings(cfg, tmp_path / "not-trained-yet", None, None)
    assert settings.cfg == cfg and settings.sources == {}
    assert resolve_settings(cfg, None, None, tmp_path / "missing.yaml").cfg == cfg


def test_seq2seq_defaults_apply_where_inference_was_left_alone(tmp_path: Path) -> None:
    cfg = load_config(None, ["model.type=seq2seq", "inference.num_beams=2"])
    settings = resolve_settings(cfg, None, None, None)
    assert settings.cfg.inference.max_new_tokens == cfg.seq2seq.generation_max_length
    assert settings.sources["inference.max_new_tokens"] == "seq2seq.*" and settings.cfg.inference.num_beams == 2
    assert replace(cfg.inference, max_new_tokens=100, no_repeat_ngram_size=2) == settings.cfg.inference


def mbr_tuned_file(tmp_path: Path, use: bool) -> Path:
    best = tmp_path / "best_generation.yaml"
    best.write_text(f"inference: {{num_beams: 2}}\nmbr: {{candidates: 3, rows: 40, use: {str(use).lower()}, "
                    "reason: not sure}\n", encoding="utf-8")
    return best


def test_the_tune_stage_turns_mbr_off_unless_the_command_line_names_it(tmp_path: Path) -> None:
    cfg = load_config(None, ["inference.mbr.num_candidates=4", "inference.mbr.from_tune=2"])
    off = resolve_settings(cfg, None, None, mbr_tuned_file(tmp_path, use=False))
    assert off.gen.mbr.num_candidates == 1 and off.gen.mbr.from_tune == 2 and off.gen.num_beams == 2
    assert off.sources["inference.mbr.num_candidates"].startswith("tune ")
    assert "inference.mbr.num_candidates = 1  (tune " in "\n".join(off.lines())
    named = resolve_settings(cfg, None, None, mbr_tuned_file(tmp_path, use=False),
                             frozenset({"inference.mbr.num_candidates"}))
    assert named.gen.mbr.num_candidates == 4 and named.sources["inference.mbr.num_candidates"] == "command line"
    kept = resolve_settings(cfg, None, None, mbr_tuned_file(tmp_path, use=True))
    assert kept.gen.mbr == cfg.inference.mbr and "inference.mbr.num_candidates" not in kept.sources


def test_the_tune_stage_writes_its_mbr_check_where_settings_read_it(tmp_path: Path) -> None:
    from src.evaluation.paired import Interval
    from src.inference.settings import tuned_choice
    from src.inference.tune_select import MbrCheck
    from src.inference.tuning import Trial
    from src.inference.tuning_run import write_results
    import yaml

    chosen = Trial({"num_beams": 2}, {"final": 31.0}, rows=20)
    other = Trial({"num_beams": 1}, {"final": 30.0}, rows=20)
    outputs = {k: tmp_path / f"{k}.out" for k in ("tuning", "best", "plot")}
    check = MbrCheck(2, 20, Interval(0.4, -0.2, 1.1, 0.8, 20), False, "not sure: MBR turned off")
    write_results([chosen, other], Config(), outputs, other, chosen, {}, "why", check)
    written = yaml.safe_load(outputs["best"].read_text(encoding="utf-8"))
    assert written["mbr"] == {"candidates": 2, "rows": 20, "diff": 0.4, "ci_low": -0.2, "ci_high": 1.1,
                              "p_above": 0.8, "use": False, "reason": "not sure: MBR turned off"}
    assert tuned_choice(outputs["best"]) == {"inference.num_beams": 2, "inference.mbr.num_candidates": 1}
