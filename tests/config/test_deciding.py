"""What decides a summary is declared once, on the schema's fields; every key list derives from it."""
from __future__ import annotations

import dataclasses

from src.config import Config, InferenceConfig
from src.config.deciding import DECIDING_KEYS, GENERATION_KEYS, MANIFEST_KEYS, inference_values
from src.inference.decoding import DecodingParams
from src.inference.journal import prediction_key
from src.inference.settings import SHOWN
from src.models.checkpoint import training_parts


def test_every_inference_key_says_what_it_decides() -> None:
    undeclared = [f.name for f in dataclasses.fields(InferenceConfig) if f.metadata.get("decides") is None]
    assert undeclared == ["checkpoint", "predict_dev"], "which checkpoint and which splits are inputs, not settings"


def test_the_engines_read_exactly_the_generation_keys() -> None:
    assert tuple(f.name for f in dataclasses.fields(DecodingParams)) == GENERATION_KEYS
    assert set(GENERATION_KEYS) < set(DECIDING_KEYS) < set(MANIFEST_KEYS)
    assert set(SHOWN) <= set(DECIDING_KEYS)
    assert {"batch_size", "slots", "max_batch_tokens"} <= set(MANIFEST_KEYS) - set(DECIDING_KEYS)


def test_key_lists_follow_the_metadata(tmp_path) -> None:
    gen = InferenceConfig()
    assert set(inference_values(gen)) == set(DECIDING_KEYS) and isinstance(inference_values(gen)["mbr"], dict)
    parts = training_parts(Config(), {}, "m")
    assert tuple(parts["rouge_generation"]) == GENERATION_KEYS
    ckpt, split = tmp_path / "c", tmp_path / "s.csv"
    ckpt.mkdir()
    split.write_text("fname\n", encoding="utf-8")
    cfg = Config()
    same = dataclasses.replace(cfg, inference=dataclasses.replace(cfg.inference, batch_size=3, slots=2))
    other = dataclasses.replace(cfg, inference=dataclasses.replace(cfg.inference, num_beams=2))
    key = prediction_key(cfg, ckpt, split, None)
    assert prediction_key(same, ckpt, split, None) == key, "engine keys do not decide a summary"
    assert prediction_key(other, ckpt, split, None) != key
