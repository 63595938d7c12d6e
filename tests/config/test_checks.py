"""Config validation owns every value check: finite numbers, bounds, choices and cross-key rules, all at once."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from src.config import Config, InferenceConfig, all_keys, config_problems, load_config, section_problems
from src.config.loading import bound_problem
from src.utils.errors import UserError


def problems_of(*overrides: str, debug: bool = True) -> list[str]:
    with pytest.raises(UserError) as err:
        load_config(None, list(overrides), debug_small=debug)
    return err.value.problems


@pytest.mark.parametrize("override, key", [
    ("training.learning_rate=nan", "training.learning_rate"),
    ("training.learning_rate=inf", "training.learning_rate"),
    ("training.learning_rate=-inf", "training.learning_rate"),
    ("augmentation.api.max_cost=nan", "augmentation.api.max_cost"),
    ("training.per_device_train_batch_size=-1", "training.per_device_train_batch_size"),
    ("training.per_device_train_batch_size=nan", "training.per_device_train_batch_size"),
    ("inference.top_p=0", "inference.top_p"),
    ("inference.top_p=1.5", "inference.top_p"),
    ("training.lora.dropout=1", "training.lora.dropout"),
    ("training.warmup_fraction=1", "training.warmup_fraction"),
    ("data.fraction.dev=0", "data.fraction.dev"),
    ("augmentation.near_dup_threshold=1.2", "augmentation.near_dup_threshold"),
    ("merge.near_dup_threshold=0", "merge.near_dup_threshold"),
    ("seq2seq.encoder_max_len=2", "seq2seq.encoder_max_len"),
    ("training.max_steps=-5", "training.max_steps"),
])
def test_a_bad_number_is_one_line_naming_the_key(override: str, key: str) -> None:
    problems = problems_of(override)
    assert len(problems) == 1 and f"'{key}'" in problems[0] and problems[0].startswith("command line:")
    assert "must be" in problems[0] and "default" in problems[0], "the line says what is allowed"


def test_every_problem_is_reported_together() -> None:
    problems = problems_of("training.learning_rate=nan", "inference.batch_size=0", "augmentation.api.timeout=-1",
                           "data.max_rows.test=0", "data.train_weights=[1,-2]")
    assert len(problems) == 5
    for key in ("training.learning_rate", "inference.batch_size", "augmentation.api.timeout", "data.max_rows.test",
                "data.train_weights"):
        assert sum(f"'{key}'" in p for p in problems) == 1, key


def test_every_default_is_within_its_bounds() -> None:
    cfg = Config()
    assert section_problems(cfg, "config") == []
    for key, (_, fld) in all_keys().items():
        default = fld.default_factory() if fld.default_factory is not dataclasses.MISSING else fld.default
        assert bound_problem(default, fld) is None, key


def test_float_keys_that_can_be_inf_or_nan_all_have_a_finite_check() -> None:
    floats = [k for k, (tp, _) in all_keys().items() if tp is float or tp == "float"]
    assert len(floats) > 20
    for key in floats:
        assert problems_of(f"{key}=nan"), key


def test_section_problems_check_a_built_section() -> None:
    gen = dataclasses.replace(InferenceConfig(), temperature=math.nan, num_beams=0)
    found = section_problems(gen, "inference")
    assert [p.split(" = ")[0] for p in found] == ["config key 'inference.num_beams'", "config key 'inference.temperature'"]


def test_cross_key_rules_found_without_files(tmp_path: Path) -> None:
    problems = problems_of(f"paths.data_dir={tmp_path}", "data.train_weights=[1,2]", "data.min_dialogue_chars=50",
                           "data.max_dialogue_chars=10", "data.hub.dev.streaming=true", "data.hub.dev.path=x/y",
                           "data.hub.dev.fraction=0.5", "data.test_file=[]", "data.hub.test.name=cfg",
                           "augmentation.min_length_ratio=2", "training.metric_for_best_model=rouge1",
                           "training.max_steps=0", "inference.backend=vllm", "inference.num_beams=2")
    for key in ("'data.train_weights' has 2 values for 1", "'data.min_dialogue_chars' = 50 > 'data.max_dialogue_chars' = 10",
                "'data.hub.dev.fraction' = 0.5: a streamed dataset", "'data.hub.test' has settings but no path",
                "'data.test_file' and 'data.hub.test.path': the test split has no source",
                "'augmentation.min_length_ratio' = 2.0 >= 'augmentation.max_length_ratio'",
                "'training.metric_for_best_model' = 'rouge1' needs ROUGE", "nothing to train",
                "'inference.num_beams' = 2: the vllm backend"):
        assert sum(key in p for p in problems) == 1, key
    assert len(problems) == 9


def test_mbr_on_vllm_takes_sampled_candidates_only() -> None:
    assert not config_problems(load_config(None, ["inference.backend=vllm", "inference.mbr.num_candidates=4"]))
    from_tune = problems_of("inference.backend=vllm", "inference.mbr.num_candidates=4", "inference.mbr.from_tune=2")
    assert sum("'inference.mbr.from_tune' = 2" in p and "from_tune=0" in p for p in from_tune) == 1


def test_the_rules_pass_on_every_default() -> None:
    assert config_problems(Config()) == []


def test_an_rl_reward_without_any_weight_is_one_line_naming_the_keys() -> None:
    problems = problems_of("rl.rouge_weight=0", "rl.length_weight=0", "rl.no_stop_weight=0")
    assert len(problems) == 1 and "'rl.rouge_weight'" in problems[0] and "give rl.rouge_weight" in problems[0]
    assert not config_problems(load_config(None, ["rl.rouge_weight=0", "rl.length_weight=0"]))


@pytest.mark.parametrize("override, key", [("rl.num_generations=1", "rl.num_generations"),
                                           ("rl.temperature=0", "rl.temperature"),
                                           ("rl.max_completion_length=0", "rl.max_completion_length"),
                                           ("rl.min_kiwi_score=1", "rl.min_kiwi_score")])
def test_rl_bounds_name_the_key(override: str, key: str) -> None:
    problems = problems_of(override)
    assert len(problems) == 1 and f"'{key}'" in problems[0]
