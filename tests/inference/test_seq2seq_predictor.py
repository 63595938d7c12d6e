"""Seq2SeqPredictor: generation defaults, batching, decoding that keeps speaker tags, the Predictor API."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from src.config import Config, InferenceConfig, Seq2SeqConfig, load_config
from src.utils.errors import UserError
from src.inference.decoding import DecodingParams
from src.inference.seq2seq import Seq2SeqPredictor, length_batches, seq2seq_generate_kwargs
from src.inference.settings import resolve_settings
from tests.conftest import REPO

DEBUG = REPO / "data" / "debug"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """An untrained tiny BART: outputs are noise but deterministic, which is all these tests need."""
    from src.models.debug import build_tiny_seq2seq

    df = pd.read_csv(DEBUG / "train.csv")
    return build_tiny_seq2seq(tmp_path_factory.mktemp("s2s") / "tiny", [*df["dialogue"], *df["summary"]],
                              hidden=32, layers=1)


@pytest.fixture(scope="module")
def test_df() -> pd.DataFrame:
    return pd.read_csv(DEBUG / "test.csv").head(6)


def predictor(checkpoint: Path, **inference) -> Seq2SeqPredictor:
    cfg = replace(Config(), inference=InferenceConfig(**inference))
    return Seq2SeqPredictor.from_checkpoint(cfg, checkpoint, None)


def generation(cfg: Config, explicit: frozenset[str] = frozenset()) -> InferenceConfig:
    return resolve_settings(cfg, None, None, None, explicit).gen


def test_generation_defaults_come_from_seq2seq_section() -> None:
    s2s = replace(Config(), model=replace(Config().model, type="seq2seq"))
    gen = generation(s2s)
    assert (gen.max_new_tokens, gen.num_beams, gen.no_repeat_ngram_size) == (100, 4, 2)
    changed = generation(replace(s2s, inference=InferenceConfig(num_beams=2, max_new_tokens=60)))
    assert (changed.max_new_tokens, changed.num_beams, changed.no_repeat_ngram_size) == (60, 2, 2)
    greedy = generation(load_config(None, ["model.type=seq2seq", "seq2seq.num_beams=1"]))
    assert greedy.num_beams == 1
    kobart = generation(load_config(REPO / "configs" / "models" / "kobart-summarization.yaml", []))
    assert (kobart.max_new_tokens, kobart.num_beams, kobart.no_repeat_ngram_size) == (100, 4, 2)


def test_a_command_line_key_wins_over_the_seq2seq_defaults_whatever_its_value() -> None:
    """inference.num_beams=1 equals the causal default; named on the command line it still wins (it was ignored)."""
    overrides = ["model.type=seq2seq", "inference.num_beams=1", "inference.no_repeat_ngram_size=0"]
    named = generation(load_config(None, overrides), frozenset({"inference.num_beams", "inference.no_repeat_ngram_size"}))
    via_seq2seq = generation(load_config(None, ["model.type=seq2seq", "seq2seq.num_beams=1",
                                                "seq2seq.no_repeat_ngram_size=0"]))
    assert (named.num_beams, named.no_repeat_ngram_size) == (1, 0) == (via_seq2seq.num_beams,
                                                                       via_seq2seq.no_repeat_ngram_size)
    assert named == via_seq2seq
    settings = resolve_settings(load_config(None, overrides), None, None, None, frozenset({"inference.num_beams"}))
    assert settings.sources["inference.num_beams"] == "command line"
    assert settings.sources["inference.no_repeat_ngram_size"] == "seq2seq.*", "not named: the seq2seq default"


def test_a_tune_choice_wins_over_the_seq2seq_defaults(tmp_path: Path) -> None:
    best = tmp_path / "best_generation.yaml"
    best.write_text("inference: {num_beams: 1}\n", encoding="utf-8")
    settings = resolve_settings(load_config(None, ["model.type=seq2seq"]), None, None, best)
    assert settings.gen.num_beams == 1 and settings.sources["inference.num_beams"].startswith("tune ")
    assert settings.decoding().num_beams == 1


def test_the_predictor_generates_with_the_settings_it_is_given(checkpoint: Path) -> None:
    cfg = load_config(None, ["model.type=seq2seq", "inference.num_beams=1"])
    resolved = resolve_settings(cfg, None, None, None, frozenset({"inference.num_beams"})).cfg
    p = Seq2SeqPredictor.from_checkpoint(resolved, checkpoint, None)
    assert p.gen.num_beams == 1 and p.gen.no_repeat_ngram_size == 2 and p.choice.name == "seq2seq"


def test_seq2seq_generate_kwargs_follow_the_baseline() -> None:
    s2s = generation(load_config(None, ["model.type=seq2seq"]))
    kw = seq2seq_generate_kwargs(DecodingParams.of(s2s), early_stopping=True)
    assert (kw["max_length"], kw["num_beams"], kw["no_repeat_ngram_size"], kw["early_stopping"]) == (100, 4, 2, True)
    greedy = seq2seq_generate_kwargs(DecodingParams(max_new_tokens=100, num_beams=1), early_stopping=True)
    assert greedy["early_stopping"] is False and "temperature" not in greedy


def test_length_batches_respect_size_and_token_budget() -> None:
    lengths = [50, 40, 30, 20, 10]
    assert length_batches([0, 1, 2, 3, 4], lengths, 2, 0) == [[0, 1], [2, 3], [4]]
    assert length_batches([0, 1, 2, 3, 4], lengths, 8, 100) == [[0, 1], [2, 3, 4]]  # 2 x 50, 3 x 30


def test_predictions_do_not_depend_on_batching(checkpoint: Path, test_df: pd.DataFrame) -> None:
    dialogues = test_df["dialogue"].tolist()
    one = predictor(checkpoint, batch_size=1, num_beams=1, max_new_tokens=12).predict_batch(dialogues)
    many = predictor(checkpoint, batch_size=8, num_beams=1, max_new_tokens=12).predict_batch(dialogues)
    assert one == many and all(one)


def test_predictor_api_and_stats(checkpoint: Path, test_df: pd.DataFrame, tmp_path: Path) -> None:
    p = predictor(checkpoint, max_new_tokens=6, batch_size=4)
    assert isinstance(p.predict_single(test_df["dialogue"].iloc[0]), str)
    seen: list[tuple[str, str]] = []
    frame = p.predict_dataframe(test_df, on_batch=lambda f, s: seen.extend(zip(f, s)), num_beams=1)
    assert list(frame.columns) == ["fname", "summary"] and frame["fname"].tolist() == test_df["fname"].tolist()
    assert sorted(seen) == sorted(zip(frame["fname"], frame["summary"])), "every row is reported once, per batch"
    with pytest.raises(ValueError, match="unknown generation setting"):
        p.predict_single("#Person1#: 안녕.", beams=2)
    path = p.create_submission(test_df, tmp_path / "submission.csv")
    assert pd.read_csv(path)["fname"].tolist() == test_df["fname"].tolist()
    stats = p.stats.as_dict()
    assert stats["dialogues"] == 1 + 2 * len(test_df)
    assert stats["hit_max_new_tokens"] == stats["dialogues"], "an untrained model never stops within 6 tokens"
    assert stats["batches"] == 1 + 2 * 2 and stats["generated_tokens"] > 0 and stats["dialogues_per_s"] > 0


def test_speaker_tags_kept_and_empty_output_replaced(checkpoint: Path, monkeypatch) -> None:
    import torch

    p = predictor(checkpoint, num_beams=1)
    tok = p.tokenizer
    tagged = tok("#Person1#는 #Person2#에게 인사한다.", add_special_tokens=False)["input_ids"]
    start, eos, pad = p.model.config.decoder_start_token_id, tok.eos_token_id, tok.pad_token_id
    rows = [[start, *tagged, eos], [start, eos, pad, *[pad] * (len(tagged) - 1)]]
    monkeypatch.setattr(p.model, "generate", lambda **kw: torch.tensor(rows))
    # the longer dialogue comes first in the batch (length-sorted), so it gets the tagged row
    out = p.predict_batch(["#Person1#: 첫 줄이에요.\n#Person2#: 둘째 줄.", "#Person1#: 안녕."])
    assert out == ["#Person1#는 #Person2#에게 인사한다.", "#Person1#: 안녕."]
    assert p.stats.empty_outputs == 1


def test_missing_checkpoint_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="inference.checkpoint"):
        Seq2SeqPredictor.from_checkpoint(Config(), tmp_path, None)


def test_encoder_length_beyond_the_model_is_a_user_error(checkpoint: Path) -> None:
    cfg = replace(Config(), seq2seq=Seq2SeqConfig(encoder_max_len=4096))
    with pytest.raises(UserError, match="seq2seq.encoder_max_len.*1024 positions"):
        Seq2SeqPredictor.from_checkpoint(cfg, checkpoint, None)
