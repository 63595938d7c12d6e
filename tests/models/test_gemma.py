"""Gemma 3 correctness: stop token, BOS once, padding side, attention over padding-free rows, tied embeddings.

Fast tests use a toy Gemma 3 (same architecture code, random weights); tests marked slow use the
real converted Gemma 3 270M tokenizer and weights (tests/models/conftest.py: ``gemma_dir``).
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from src.config import load_config
from src.prompting.builder import PromptBuilder



def toy_gemma3(attn: str) -> torch.nn.Module:
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    config = Gemma3TextConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=4,
                              layer_types=["sliding_attention", "full_attention"], tie_word_embeddings=True)
    config._attn_implementation = attn
    return Gemma3ForCausalLM(config).eval()


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_a_padding_free_row_gives_each_example_its_own_loss(attn: str) -> None:
    """Position ids restart per example: no example attends to another, sliding layers included."""
    model = toy_gemma3(attn)
    g = torch.Generator().manual_seed(3)
    examples = [torch.randint(5, 300, (1, n), generator=g) for n in (9, 6, 11)]
    with torch.no_grad():
        alone = [model(input_ids=x).logits for x in examples]
        row = torch.cat(examples, dim=1)
        positions = torch.cat([torch.arange(x.shape[1]) for x in examples])[None]
        # use_cache=False as in training: transformers detects packed rows only when no cache is built
        packed = model(input_ids=row, position_ids=positions, use_cache=False).logits
    torch.testing.assert_close(packed, torch.cat(alone, dim=1), rtol=1e-4, atol=1e-5)


def test_sdpa_and_eager_compute_the_same_gemma3_logits() -> None:
    g = torch.Generator().manual_seed(4)
    ids = torch.randint(5, 300, (2, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[1, :3] = 0  # left padding, as in generation
    with torch.no_grad():
        a = toy_gemma3("sdpa")(input_ids=ids, attention_mask=mask).logits
        b = toy_gemma3("eager")(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(a[mask.bool()], b[mask.bool()], rtol=1e-4, atol=1e-5)


def lora_wrapped(model: torch.nn.Module) -> torch.nn.Module:
    from peft import get_peft_model

    from src.train.options import peft_config

    cfg = load_config(None, ["training.use_qlora=false"])  # the project's LoRA config: all-linear, r=16
    return get_peft_model(model, peft_config(cfg))


def assert_tied_and_untouched(peft_model: torch.nn.Module) -> None:
    from peft.tuners.tuners_utils import BaseTunerLayer

    base = peft_model.get_base_model()
    lora = [n for n, _ in peft_model.named_parameters() if "lora_" in n]
    assert lora and not any("lm_head" in n or "embed_tokens" in n for n in lora)
    assert not isinstance(base.lm_head, BaseTunerLayer) and not isinstance(base.model.embed_tokens, BaseTunerLayer)
    assert base.lm_head.weight is base.model.embed_tokens.weight, "the output layer stays tied to the embeddings"
    assert not base.lm_head.weight.requires_grad


def test_all_linear_lora_leaves_the_tied_embeddings_alone() -> None:
    assert_tied_and_untouched(lora_wrapped(toy_gemma3("sdpa")))


# ---------------------------------------------------------------- the real tokenizer and model


def real_cfg(*overrides: str):
    return load_config(None, ["model.name=gemma-3-270m", "training.use_qlora=false", "prompt.num_fewshot=0",
                              *overrides])


@pytest.fixture(scope="module")
def real_tok(gemma_dir: Path):
    from src.models.loading import load_tokenizer

    return load_tokenizer(str(gemma_dir), real_cfg("prompt.use_chat_template=false"))


@pytest.mark.slow
def test_instruction_format_adds_bos_once_and_stops_at_eos(real_tok) -> None:
    assert not real_tok.chat_template, "the base model ships no chat template and none is given without the key"
    builder = PromptBuilder(real_tok, real_cfg("prompt.use_chat_template=false").prompt)
    assert not builder.use_chat and builder.turn_end == "<eos>" and builder.stop_token_ids == [1]
    ex = builder.encode_example("#Person1#: 안녕하세요.\n#Person2#: 네.", "두 사람이 인사한다.")
    ids = ex["input_ids"]
    assert ids[0] == real_tok.bos_token_id and ids.count(real_tok.bos_token_id) == 1
    assert ids[-1] == real_tok.eos_token_id and ex["labels"][-1] == real_tok.eos_token_id
    assert real_tok.decode(ids[ex["prompt_len"]:], skip_special_tokens=True) == "두 사람이 인사한다."


@pytest.mark.slow
def test_turn_format_adds_bos_once_and_stops_at_end_of_turn(gemma_dir: Path, tmp_path: Path) -> None:
    """prompt.use_chat_template=true gives the base model Gemma's turn format (its GGUF has no template; it was
    silently the instruction format before); a checkpoint keeps the tokenizer it saved."""
    from src.models.loading import load_tokenizer

    cfg = real_cfg("prompt.use_chat_template=true")
    tok = load_tokenizer(str(gemma_dir), cfg)
    builder = PromptBuilder(tok, cfg.prompt)
    end = tok.convert_tokens_to_ids("<end_of_turn>")
    assert builder.use_chat and builder.system_in_user, "Gemma has no system role: it goes into the user turn"
    assert builder.turn_end == "<end_of_turn>" and end in builder.stop_token_ids
    ex = builder.encode_example("#Person1#: 안녕하세요.", "인사한다.")
    ids = ex["input_ids"]
    assert ids.count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id
    assert tok.decode(ids[:ex["prompt_len"]]).endswith("<start_of_turn>model\n")
    assert ids[-1] == end
    plain = load_tokenizer(str(gemma_dir), real_cfg("prompt.use_chat_template=false"))
    plain.save_pretrained(str(tmp_path))  # a checkpoint trained in the instruction format
    assert not load_tokenizer(str(tmp_path), cfg).chat_template


@pytest.mark.slow
def test_korean_dialogues_round_trip_through_the_real_tokenizer(real_tok) -> None:
    import pandas as pd

    from tests.conftest import SHARED_DATA, need_shared

    path = need_shared(SHARED_DATA / "dialogsum-ko" / "dev.csv")
    texts = pd.read_csv(path)["dialogue"].head(50).tolist()
    assert all(real_tok.decode(real_tok(t, add_special_tokens=False)["input_ids"]) == t for t in texts)


@pytest.mark.slow
def test_left_padded_batched_generation_equals_one_at_a_time(gemma_dir: Path) -> None:
    """Inference pads on the left; with the mask, a short prompt in a batch generates as it does alone."""
    from src.config import InferenceConfig
    from src.inference.engine import TransformersEngine
    from src.models.loading import load_causal_model, load_tokenizer

    cfg = real_cfg()
    tok = load_tokenizer(str(gemma_dir), cfg, padding_side="left")
    assert tok.padding_side == "left" and load_tokenizer(str(gemma_dir), cfg).padding_side == "right"
    model = load_causal_model(str(gemma_dir), cfg, "cpu", torch.float32, quantize=False).eval()
    builder = PromptBuilder(tok, cfg.prompt)
    prompts = [builder.encode_prompt(d).input_ids for d in ("#Person1#: 내일 몇 시에 만날까?\n#Person2#: 세 시에 보자.",
                                                             "#Person1#: 안녕.")]
    engine = TransformersEngine(model, tok.pad_token_id, "cpu")
    gen = InferenceConfig(max_new_tokens=8)
    together = engine.generate(prompts, gen, builder.stop_token_ids)
    alone = [engine.generate([p], gen, builder.stop_token_ids)[0] for p in prompts]
    assert together == alone


@pytest.mark.slow
def test_real_gemma_lora_leaves_the_tied_embeddings_alone(gemma_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    assert_tied_and_untouched(lora_wrapped(AutoModelForCausalLM.from_pretrained(gemma_dir, dtype=torch.float32)))


@pytest.mark.slow
def test_the_demo_config_fine_tunes_and_summarizes_in_korean(gemma_dir: Path, tmp_path: Path) -> None:
    """A real-model smoke run of ``make demo``'s job, cut to 6 LoRA steps and 2 dev dialogues (after 2 steps,
    one of them at LR 0 in the warm-up, it still wrote nothing but speaker tags)."""
    import json
    import re

    import pandas as pd

    from tests.conftest import run_cli, tmp_paths

    embedded = tmp_path / "model" / "embedded"
    embedded.mkdir(parents=True)
    (embedded / gemma_dir.name).symlink_to(gemma_dir, target_is_directory=True)  # converted once, reused
    res = run_cli(["--config", "configs/demo.yaml", "--stages", "preprocess,train,infer,evaluate", "--run-name", "smoke",
                   "training.max_steps=6", "training.save_steps=6", "data.max_rows.train=24", "data.max_rows.dev=2",
                   "data.max_rows.test=2", "inference.max_new_tokens=32", *tmp_paths(tmp_path)], timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    out = tmp_path / "output" / "smoke"
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["stages"]["train"]["global_step"] == 6
    assert json.loads((out / "metrics.json").read_text(encoding="utf-8"))["n"] == 2
    summaries = pd.read_csv(out / "dev_predictions.csv", dtype=str, keep_default_na=False)["summary"]
    assert all(re.search("[가-힣]", s) for s in summaries), list(summaries)
