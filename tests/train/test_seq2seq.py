"""Seq2seq training: input framing, special tokens, trainer settings, resume, and a tiny BART that learns a rule."""
from __future__ import annotations

import json
import logging
import random
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from src.config import Config, Seq2SeqConfig, TrainingConfig, load_config
from src.utils.errors import UserError
from src.models.seq2seq import (
    decode_summary,
    encode_source,
    find_mask_tokens,
    load_seq2seq,
    load_seq2seq_tokenizer,
    special_tokens,
)
from src.train.final import TrainJob
from src.train.seq2seq import best_metric, encode_pairs, mixed_precision, schedule, train_seq2seq
from tests.conftest import REPO, need_shared, run_cli, tmp_paths

PERSONS = [f"#Person{i}#" for i in range(1, 8)]
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # a 300k-parameter model runs several times faster without thread contention


def cfg_with(**sections) -> Config:
    """A seq2seq Config() with whole sections replaced, e.g. training=TrainingConfig(max_steps=4)."""
    base = replace(Config(), model=replace(Config().model, type="seq2seq"))
    return replace(base, **sections)


@pytest.fixture(scope="module")
def kobart(shared_tokenizers: Path) -> Path:
    path = shared_tokenizers / "kobart-base-v2"
    need_shared(path)
    return path


# ------------------------------------------------------------------ tokens and framing


def test_mask_tokens_found_in_text() -> None:
    texts = ["#Person1#: 제 번호는 #PhoneNumber#예요.\n#Person2#: 주소는 #Address#", "#Person3#와 # 아님 #", "없음"]
    assert find_mask_tokens(texts) == ["#Address#", "#Person1#", "#Person2#", "#Person3#", "#PhoneNumber#"]
    assert special_tokens(Config(), texts) == [*PERSONS, "#Address#", "#PhoneNumber#"]


def test_kobart_tokens_added_and_embeddings_resized(kobart: Path, tmp_path: Path, caplog) -> None:
    from transformers import AutoTokenizer, BartConfig, BartForConditionalGeneration

    tok = AutoTokenizer.from_pretrained(str(kobart))
    config = BartConfig(vocab_size=len(tok), d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                        decoder_attention_heads=2, encoder_ffn_dim=16, decoder_ffn_dim=16, max_position_embeddings=512,
                        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                        decoder_start_token_id=tok.eos_token_id)
    BartForConditionalGeneration(config).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    tokens = special_tokens(Config(), ["#Person1#: 연락처는 #PhoneNumber#입니다."])
    with caplog.at_level(logging.INFO):
        model, tok = load_seq2seq(str(tmp_path), Config(), "cpu", None, tokens)
    assert "embeddings resized: 30000 -> 30008" in caplog.text
    assert model.get_input_embeddings().weight.shape[0] == len(tok) == 30008
    ids = tok("#Person1#: 연락처는 #PhoneNumber#", add_special_tokens=False)["input_ids"]
    assert ids[0] == tok.convert_tokens_to_ids("#Person1#") and tok.convert_tokens_to_ids("#PhoneNumber#") in ids
    assert "#Person1#" in decode_summary(tok, ids) and "#PhoneNumber#" in decode_summary(tok, ids)


def test_kobart_framing_and_truncation(kobart: Path) -> None:
    tok = load_seq2seq_tokenizer(str(kobart), Config(), PERSONS)
    long_dialogue = "#Person1#: " + "안녕하세요 " * 200
    df = pd.DataFrame({"dialogue": ["#Person1#: 안녕.\n#Person2#: 응.", long_dialogue],
                       "summary": ["#Person1#과 #Person2#가 인사한다.", "아주 " * 50 + "긴 요약"]})
    cfg = cfg_with(seq2seq=Seq2SeqConfig(encoder_max_len=32, decoder_max_len=10))
    enc = encode_pairs(tok, df, cfg)
    short, long = enc.rows
    body = tok("#Person1#: 안녕.\n#Person2#: 응.", add_special_tokens=False)["input_ids"]
    assert short["input_ids"] == [tok.bos_token_id, *body, tok.eos_token_id]
    assert short["labels"][-1] == tok.eos_token_id and tok.bos_token_id not in short["labels"]
    assert len(long["input_ids"]) == 32 and long["input_ids"][-1] == tok.eos_token_id
    assert len(long["labels"]) == 10 and long["labels"][-1] == tok.eos_token_id
    assert (enc.long_dialogues, enc.long_summaries) == (1, 1)
    assert encode_source(tok, "짧은 대화", 512)[1] is False


def test_seq2seq_settings_checked_by_the_config() -> None:
    with pytest.raises(UserError) as err:
        load_config(None, ["seq2seq.encoder_max_len=2", "seq2seq.decoder_max_len=1", "seq2seq.num_beams=0"])
    assert [p.split(": must")[0] for p in err.value.problems] == [
        "command line: config key 'seq2seq.encoder_max_len' = 2",
        "command line: config key 'seq2seq.decoder_max_len' = 1",
        "command line: config key 'seq2seq.num_beams' = 0"]
    assert [p.split(": must")[1].split(";")[0] for p in err.value.problems] == [" be >= 3", " be >= 2", " be >= 1"]


# ------------------------------------------------------------------ trainer settings


def test_schedule_keeps_saves_on_eval_steps() -> None:
    steps = cfg_with(training=TrainingConfig(eval_steps=15, save_steps=10))
    assert schedule(steps, True) == {"eval_strategy": "steps", "eval_steps": 15, "save_strategy": "steps",
                                     "save_steps": 15}
    assert schedule(cfg_with(training=TrainingConfig(eval_steps=0)), True) == {"eval_strategy": "epoch",
                                                                               "save_strategy": "epoch"}
    assert schedule(steps, False) == {"eval_strategy": "no", "save_strategy": "steps", "save_steps": 10}


def test_best_metric_defaults_to_rouge_final() -> None:
    assert best_metric(Config()) == ("rouge_final", True)
    assert best_metric(cfg_with(training=TrainingConfig(metric_for_best_model="eval_loss"))) == ("loss", False)


def test_no_mixed_precision_without_cuda(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        flags = mixed_precision(cfg_with(training=TrainingConfig(compute_dtype="bfloat16")), "cpu")
    assert flags == {"bf16": False, "fp16": False} and "needs CUDA" in caplog.text


@pytest.mark.slow
def test_resume_continues_from_latest_checkpoint(tmp_path: Path) -> None:
    from src.models.debug import build_tiny_seq2seq

    train = pd.read_csv(REPO / "data" / "debug" / "train.csv").head(16)
    model = build_tiny_seq2seq(tmp_path / "tiny", [*train["dialogue"], *train["summary"]], hidden=32, layers=1)
    t = TrainingConfig(max_steps=2, save_steps=2, per_device_train_batch_size=8, gradient_accumulation_steps=1,
                       logging_steps=1, learning_rate=1e-3)
    parts = {"data": "same", "model": str(model)}
    first = train_seq2seq(cfg_with(training=t), str(model), train, None, TrainJob(tmp_path / "run", False, parts))
    assert first["global_step"] == 2 and first["resumed_from"] is None and first["world_size"] == 1
    assert (tmp_path / "run" / "checkpoint-2" / "pipeline_fingerprint.json").is_file()
    # a killed run resumed with the same settings continues; at its planned step it only writes the final folder
    again = train_seq2seq(cfg_with(training=t), str(model), train, None, TrainJob(tmp_path / "run", True, parts))
    assert again["resumed_from"] == str(tmp_path / "run" / "checkpoint-2") and again["global_step"] == 2
    assert not (tmp_path / "run" / "checkpoint-3").exists(), "no extra step past max_steps"
    longer = {**parts, "training": "max_steps=4"}  # other settings: the old checkpoint is set aside, training restarts
    second = train_seq2seq(cfg_with(training=replace(t, max_steps=4)), str(model), train, None,
                           TrainJob(tmp_path / "run", True, longer))
    assert second["resumed_from"] is None and second["global_step"] == 4
    assert (tmp_path / "run" / "checkpoint-4" / "trainer_state.json").is_file()
    assert list((tmp_path / "run" / "set_aside").glob("checkpoint-2.stale-*"))


# ------------------------------------------------------------------ the keyword rule, end to end

RULES = {
    "날씨": ("이번 주말 날씨가 어떨까요?", "#Person1#과 #Person2#는 주말 날씨에 대해 이야기한다."),
    "회의": ("내일 회의가 몇 시예요?", "#Person2#는 #Person1#에게 내일 회의 시간을 알려준다."),
    "병원": ("머리가 아파서 병원에 가야겠어요.", "#Person1#은 아파서 #Person2#와 병원에 가기로 한다."),
    "여행": ("여름에 여행 가는 거 어때요?", "#Person1#과 #Person2#는 여름 여행 계획을 세운다."),
}
FILLER = ["안녕하세요, 오랜만이에요.", "요즘 어떻게 지내세요?", "저는 잘 지내요.", "커피 한 잔 할까요?", "오늘 좀 바빠요.",
          "점심은 드셨어요?", "그럼 이따 봐요.", "네, 좋아요.", "정말요? 몰랐어요.", "고마워요."]


def keyword_split(n: int, prefix: str, rng: random.Random) -> pd.DataFrame:
    """Dialogues of filler turns plus one keyword turn; the summary is fixed by the keyword."""
    rows = []
    for i in range(n):
        line, summary = RULES[rng.choice(sorted(RULES))]
        turns = rng.sample(FILLER, 3)
        turns.insert(rng.randrange(4), line)
        dialogue = "\n".join(f"#Person{1 + j % 2}#: {t}" for j, t in enumerate(turns))
        rows.append({"fname": f"{prefix}_{i}", "dialogue": dialogue, "summary": summary})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def keyword_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("s2s_rule")
    rng = random.Random(0)
    (root / "data").mkdir()
    keyword_split(200, "train", rng).to_csv(root / "data" / "train.csv", index=False)
    keyword_split(20, "dev", rng).to_csv(root / "data" / "dev.csv", index=False)
    keyword_split(10, "test", rng).drop(columns="summary").to_csv(root / "data" / "test.csv", index=False)
    res = run_cli(["--debug-small", "--skip-augmentation", "--skip-tune", "--run-name", "r1", "model.type=seq2seq",
                   f"paths.data_dir={root / 'data'}", *tmp_paths(root), "training.max_steps=60",
                   "training.learning_rate=5e-3", "training.per_device_train_batch_size=16", "training.eval_steps=30",
                   "training.save_steps=30", "training.logging_steps=20", "training.warmup_fraction=0.05"],
                  env=ONE_THREAD)
    assert res.returncode == 0, res.stderr[-4000:]
    return root


@pytest.mark.slow
def test_tiny_bart_learns_the_keyword_rule(keyword_run: Path) -> None:
    metrics = json.loads((keyword_run / "output" / "r1" / "metrics.json").read_text())
    assert metrics["final"] >= 80 and metrics["n"] == 20
    dev = pd.read_csv(keyword_run / "output" / "r1" / "dev_predictions.csv")
    assert dev["summary"].str.contains("#Person1#").all(), "speaker tags survive decoding"


@pytest.mark.slow
def test_manifest_and_checkpoints(keyword_run: Path) -> None:
    train = json.loads((keyword_run / "output" / "r1" / "manifest.json").read_text())["stages"]["train"]
    assert train["status"] == "done" and train["global_step"] == 60 and train["resumed_from"] is None
    assert train["world_size"] == 1 and train["special_tokens"] == PERSONS and train["best_metric"] >= 80
    model_dir = keyword_run / "model" / "r1"
    assert sorted(p.name for p in model_dir.glob("checkpoint-*")) == ["checkpoint-30", "checkpoint-60"]
    final = model_dir / "final_checkpoint"
    for name in ("model.safetensors", "config.json", "generation_config.json", "tokenizer.json",
                 "pipeline_config.yaml"):
        assert (final / name).is_file(), name
    gen = json.loads((final / "generation_config.json").read_text())
    assert (gen["num_beams"], gen["no_repeat_ngram_size"], gen["early_stopping"]) == (4, 2, True)


@pytest.mark.slow
def test_final_checkpoint_tokenizer_holds_special_tokens(keyword_run: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(keyword_run / "model" / "r1" / "final_checkpoint"))
    for token in PERSONS:
        assert tok(token, add_special_tokens=False)["input_ids"] == [tok.convert_tokens_to_ids(token)]


@pytest.mark.slow
def test_fresh_process_reproduces_predictions(keyword_run: Path) -> None:
    ckpt = keyword_run / "model" / "r1" / "final_checkpoint"
    res = run_cli(["--debug-small", "--run-name", "r2", "--stages", "preprocess,infer,evaluate", "model.type=seq2seq",
                   f"paths.data_dir={keyword_run / 'data'}", *tmp_paths(keyword_run), f"inference.checkpoint={ckpt}"],
                  env=ONE_THREAD)
    assert res.returncode == 0, res.stderr[-4000:]
    for name in ("dev_predictions.csv", "submission.csv"):
        first = (keyword_run / "output" / "r1" / name).read_text(encoding="utf-8")
        assert (keyword_run / "output" / "r2" / name).read_text(encoding="utf-8") == first, name


@pytest.mark.slow
def test_debug_small_seq2seq_runs_every_stage(tmp_path: Path) -> None:
    res = run_cli(["--debug-small", "--run-name", "s", "model.type=seq2seq", *tmp_paths(tmp_path),
                   "training.max_steps=6", "training.eval_steps=3", "training.save_steps=3"], env=ONE_THREAD)
    assert res.returncode == 0, res.stderr[-4000:]
    stages = json.loads((tmp_path / "output" / "s" / "manifest.json").read_text())["stages"]
    assert {name: s["status"] for name, s in stages.items()} == {**dict.fromkeys(
        ("preprocess", "augment", "merge", "train", "tune", "infer", "evaluate"), "done"), "rl": "skipped"}
    assert (tmp_path / "model" / "debug" / "tiny-bart" / "config.json").is_file()
    assert (tmp_path / "output" / "s" / "submission.csv").is_file()
