"""Inference takes from the checkpoint what training used: prompt settings, few-shot pool, the length cap."""
from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest

from src.config import Config, InferenceConfig, load_config
from src.utils.errors import UserError
from src.inference.settings import fewshot_pool, resolve_max_new_tokens, settings_for_inference
from src.models.checkpoint import INFERENCE_INFO, newest_final
from src.utils.io import file_digest

LENGTHS = {"auto_max_new_tokens": 71, "p99_5": 63, "histogram": {"20": 90, "60": 8, "80": 2}}


def test_auto_becomes_the_recorded_cap_and_a_low_cap_warns(caplog) -> None:
    assert resolve_max_new_tokens(InferenceConfig(), {"completion_tokens": LENGTHS}).max_new_tokens == 71
    with caplog.at_level(logging.WARNING):
        assert resolve_max_new_tokens(InferenceConfig(max_new_tokens=40), {"completion_tokens": LENGTHS}
                                      ).max_new_tokens == 40
    assert "cuts 10.0% of the training summaries" in caplog.text
    assert resolve_max_new_tokens(InferenceConfig(), {}).max_new_tokens == 128


def checkpoint(tmp_path: Path, **info: object) -> Path:
    folder = tmp_path / "run" / "final_checkpoint"
    folder.mkdir(parents=True)
    (folder / INFERENCE_INFO).write_text(json.dumps(info))
    (folder / "pipeline_fingerprint.json").write_text("{}")
    return folder


def test_prompt_settings_come_from_the_checkpoint_and_the_differences_are_named(tmp_path: Path, caplog) -> None:
    trained = load_config(None, ["prompt.num_fewshot=2", "prompt.max_prompt_tokens=900"])
    folder = checkpoint(tmp_path, model_type="causal", prompt=json.loads(json.dumps(
        {k: list(v) if isinstance(v, tuple) else v for k, v in trained.prompt.__dict__.items()})))
    now = load_config(None, ["prompt.num_fewshot=0"])
    with caplog.at_level(logging.WARNING):
        used = settings_for_inference(now, folder, json.loads((folder / INFERENCE_INFO).read_text()))
    assert used.prompt == trained.prompt
    assert "prompt.num_fewshot, prompt.max_prompt_tokens" in caplog.text
    mine = replace(now, inference=replace(now.inference, prompt_from_checkpoint=False))
    assert settings_for_inference(mine, folder, {"prompt": {"num_fewshot": 2}}).prompt == now.prompt


def test_a_checkpoint_of_the_other_model_type_is_refused(tmp_path: Path) -> None:
    bart = tmp_path / "bart"
    bart.mkdir()
    (bart / "config.json").write_text(json.dumps({"is_encoder_decoder": True}))
    with pytest.raises(UserError) as err:
        settings_for_inference(Config(), bart, {})
    assert "holds a seq2seq model but model.type=causal" in err.value.problems[0]


def test_the_recorded_pool_is_used_when_its_digest_matches(tmp_path: Path) -> None:
    pool, other = tmp_path / "train.csv", tmp_path / "other.csv"
    pool.write_text("fname,dialogue,summary\na,b,c\n")
    other.write_text("fname,dialogue,summary\nx,y,z\n")
    info = {"fewshot_pool": {"path": str(pool), "digest": file_digest(pool)}}
    assert fewshot_pool(Config(), info, other) == pool
    pool.write_text("fname,dialogue,summary\nchanged,b,c\n")
    assert fewshot_pool(Config(), info, other) == other


def test_inference_only_finds_the_newest_final_checkpoint_of_the_same_model(tmp_path: Path) -> None:
    import os
    import time

    cfg = load_config(None, [], debug_small=True)
    old = checkpoint(tmp_path / "a", model_type="causal", model_name="tiny-debug")
    checkpoint(tmp_path / "b", model_type="causal", model_name="other/model")
    newer = checkpoint(tmp_path / "c", model_type="causal", model_name="tiny-debug")
    stamp = time.time()
    os.utime(old / "pipeline_fingerprint.json", (stamp - 100, stamp - 100))
    os.utime(newer / "pipeline_fingerprint.json", (stamp, stamp))
    roots = tmp_path / "models"
    roots.mkdir()
    for name, folder in (("a", old), ("c", newer)):
        (roots / name).symlink_to(folder.parent)
    assert newest_final(roots, cfg) == roots / "c" / "final_checkpoint"
