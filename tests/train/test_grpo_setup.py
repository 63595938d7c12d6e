"""What the rl stage hands GRPOTrainer: exact prompt ids as text, installed GRPOConfig names, generation settings."""
from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch

from src.config import PromptConfig, load_config
from src.utils.errors import UserError
from src.prompting.builder import PromptBuilder
from src.train.grpo_setup import (call_adds, check_grpo_extra, generation_kwargs, grpo_arguments,
                                  prompt_rows, prompt_text, sample_rows, setup_problems)

DIALOGUES = pd.DataFrame({
    "fname": ["a", "b"],
    "dialogue": ["#Person1#: 안녕하세요, 예약하려고요.\n#Person2#: 네, 성함이 어떻게 되세요?",
                 "#Person1#: 기차표는 어디서 사요?\n#Person2#: 저쪽 창구에서 사시면 돼요."],
    "summary": ["#Person1#이 예약을 한다.", "#Person2#가 기차표 사는 곳을 알려 준다."]})


def test_every_argument_is_a_field_of_the_installed_grpoconfig(tmp_path: Path) -> None:
    from trl import GRPOConfig

    cfg = load_config(None, ["model.device=cpu", "rl.num_generations=4", "rl.prompts_per_step=3", "rl.beta=0.1"])
    kwargs = grpo_arguments(cfg, tmp_path / "rl", "cpu", torch.float32, 40, {"bad_words_ids": [[7]]}, False)
    assert set(kwargs) <= {f.name for f in dataclasses.fields(GRPOConfig)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        args = GRPOConfig(**kwargs)
    assert not [w for w in caught if "checkpointing" in str(w.message)], "no deprecated argument names of ours"
    assert args.per_device_train_batch_size == 4 and args.gradient_accumulation_steps == 3
    assert args.generation_batch_size == 12 and args.num_generations == 4, "three dialogues' groups per step"
    assert args.max_completion_length == 40 and args.beta == 0.1 and args.temperature == 0.9
    assert not args.bf16 and not args.fp16 and not args.gradient_checkpointing and args.use_cpu
    assert args.generation_kwargs == {"bad_words_ids": [[7]]} and args.remove_unused_columns is False


def test_rl_extra_is_applied_and_an_unknown_key_names_the_closest_field(tmp_path: Path) -> None:
    cfg = load_config(None, ["model.device=cpu", "rl.extra={loss_type: grpo}"])
    assert grpo_arguments(cfg, tmp_path, "cpu", torch.float32, 8, None, False)["loss_type"] == "grpo"
    with pytest.raises(UserError) as err:
        check_grpo_extra({"los_type": "grpo"})
    assert err.value.problems == ["config key 'rl.extra.los_type': not an argument of the installed GRPOConfig "
                                  "(did you mean 'loss_type'?)"]


def test_vllm_asked_for_on_a_cpu_is_one_line_naming_the_key() -> None:
    problems = setup_problems(load_config(None, ["model.device=cpu", "rl.generation=vllm"]))
    assert len(problems) == 1 and problems[0].startswith("config key 'rl.generation' = 'vllm' needs vLLM")


def test_generation_settings_per_engine() -> None:
    assert generation_kwargs([2, 5], [9, 11], vllm=False) == {"bad_words_ids": [[9], [11]]}
    assert generation_kwargs([2, 5], [], vllm=False) is None
    assert generation_kwargs([2, 5], [9], vllm=True) == {"stop_token_ids": [2, 5], "logit_bias": {9: -100.0}}


def test_prompts_reach_trl_as_text_that_encodes_to_the_builder_ids(synthetic: dict) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(synthetic["model"])
    builder = PromptBuilder(tokenizer, PromptConfig(num_fewshot=0))
    rows, lost = prompt_rows(builder, None, DIALOGUES)
    assert lost == 0 and [r["fname"] for r in rows] == ["a", "b"]
    for row, dialogue in zip(rows, DIALOGUES["dialogue"]):
        assert tokenizer(text=[row["prompt"]])["input_ids"][0] == builder.encode_prompt(dialogue).input_ids
    assert rows[0]["references"] == ["#Person1#이 예약을 한다."]


def test_a_tokenizer_that_appends_to_every_call_is_refused_per_row(synthetic: dict) -> None:
    """TRL's own tokenizer call would put an EOS after the prompt the builder did not: no exact text exists."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(synthetic["model"])
    ids = PromptBuilder(tokenizer, PromptConfig(num_fewshot=0)).encode_prompt(DIALOGUES["dialogue"][0]).input_ids
    assert prompt_text(tokenizer, ids, ([], [tokenizer.eos_token_id])) is None
    assert prompt_text(tokenizer, ids, ([], [])) is not None


def test_rows_are_drawn_by_seed() -> None:
    frame = pd.DataFrame({"fname": [str(i) for i in range(10)]})
    assert sample_rows(frame, None, 1) is frame and len(sample_rows(frame, 20, 1)) == 10
    assert sample_rows(frame, 4, 1)["fname"].tolist() == sample_rows(frame, 4, 1)["fname"].tolist()
    assert len(sample_rows(frame, 4, 1)) == 4


@pytest.mark.slow
@pytest.mark.parametrize("name", ["qwen2.5-instruct", "llama-3.2-instruct", "solar-10.7b-instruct"])
def test_real_tokenizers_get_their_exact_prompt_ids(shared_tokenizers: Path, name: str) -> None:
    """Llama and SOLAR add BOS themselves (given once, not twice); Qwen adds nothing."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(shared_tokenizers / name)
    for use_chat in (True, False):
        builder = PromptBuilder(tokenizer, PromptConfig(num_fewshot=0, use_chat_template=use_chat))
        rows, lost = prompt_rows(builder, None, DIALOGUES)
        assert lost == 0, (name, use_chat)
        for row, dialogue in zip(rows, DIALOGUES["dialogue"]):
            assert tokenizer(text=row["prompt"])["input_ids"] == builder.encode_prompt(dialogue).input_ids
    head, tail = call_adds(tokenizer)
    assert tail == [] and head == ([] if name == "qwen2.5-instruct" else [tokenizer.bos_token_id])
