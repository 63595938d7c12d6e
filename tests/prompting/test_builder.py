"""The shared prompt builder on real tokenizers: templates, EOS, BOS, label masks, length budget."""
from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from src.config import PromptConfig
from src.prompting.builder import PromptBuilder, cap_dialogue, keep_turns
from src.prompting.fewshot import ShotSelector

DIALOGUE = "#Person1#: 안녕하세요, 예약하려고요.\n#Person2#: 네, 성함이 어떻게 되세요?\n#Person1#: 김민수입니다. #PhoneNumber#로 연락 주세요."
SUMMARY = "#Person1#은 #Person2#에게 예약을 요청하고 연락처를 남긴다."
TOKENIZERS = ["qwen2.5-instruct", "llama-3.2-instruct", "solar-10.7b-instruct"]
STOP = {"qwen2.5-instruct": "<|im_end|>", "llama-3.2-instruct": "<|eot_id|>", "solar-10.7b-instruct": "</s>"}


@pytest.fixture(scope="module", params=TOKENIZERS)
def tok(request, shared_tokenizers):
    from transformers import AutoTokenizer

    t = AutoTokenizer.from_pretrained(shared_tokenizers / request.param)
    t.name = request.param
    return t


def long_dialogue(n: int) -> str:
    return "\n".join(f"#Person{1 + i % 2}#: 이것은 {i}번째 발화이고 내용이 꽤 길게 이어지는 문장입니다." for i in range(n))


def test_train_and_inference_prompts_match_up_to_completion(tok) -> None:
    b = PromptBuilder(tok, PromptConfig())
    shots = [("#Person1#: 예시 대화\n#Person2#: 네.", "예시 요약.")]
    ex = b.encode_example(DIALOGUE, SUMMARY, shots)
    prompt = b.encode_prompt(DIALOGUE, shots).input_ids
    assert ex["input_ids"][: len(prompt)] == prompt
    assert ex["labels"][: len(prompt)] == [-100] * len(prompt)
    completion = tok.decode(ex["input_ids"][len(prompt):])
    assert completion.startswith(SUMMARY) and completion.endswith(STOP[tok.name])


def test_stop_token_is_labelled_and_stops_generation(tok) -> None:
    b = PromptBuilder(tok, PromptConfig())
    ex = b.encode_example(DIALOGUE, SUMMARY)
    stop_id = tok.convert_tokens_to_ids(STOP[tok.name])
    assert ex["labels"][-1] == stop_id
    assert stop_id in b.stop_token_ids


def test_bos_appears_exactly_once(tok) -> None:
    b = PromptBuilder(tok, PromptConfig())
    ids = b.encode_prompt(DIALOGUE).input_ids
    if tok.bos_token_id is not None and tok.name != "qwen2.5-instruct":
        assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    else:
        assert tok.bos_token_id not in ids[:1] or tok.bos_token_id is None


def test_prompt_ends_with_generation_header(tok) -> None:
    b = PromptBuilder(tok, PromptConfig())
    text = b.render(DIALOGUE)
    header = {"qwen2.5-instruct": "<|im_start|>assistant\n", "llama-3.2-instruct": "assistant<|end_header_id|>\n\n",
              "solar-10.7b-instruct": "### Assistant:\n"}[tok.name]
    assert text.endswith(header)


def test_overlong_prompts_keep_header_and_full_summary(tok) -> None:
    cfg = PromptConfig(max_prompt_tokens=256, num_fewshot=1)
    b = PromptBuilder(tok, cfg)
    header_ids = b.encode_prompt("x").input_ids[-3:]
    summary_ids = b.completion_ids(SUMMARY)
    shots = [(long_dialogue(4), "예시 요약.")]
    for n in (20, 60, 200):
        ex = b.encode_example(long_dialogue(n), SUMMARY, shots)
        plen = ex["prompt_len"]
        assert plen <= 256
        assert ex["input_ids"][plen - 3: plen] == header_ids
        assert ex["input_ids"][plen:] == summary_ids
        assert ex["trimmed"] and ex["dropped_shots"] == 1
        assert "다음 대화를 요약해주세요." in tok.decode(ex["input_ids"][:plen])


def test_a_single_huge_turn_is_cut_by_characters(tok) -> None:
    b = PromptBuilder(tok, PromptConfig(max_prompt_tokens=128, system_prompt=""))
    enc = b.encode_prompt("#Person1#: " + "아주 긴 말 " * 500)
    assert len(enc.input_ids) <= 128 and enc.cut_chars


def test_instruction_format_without_template(tok) -> None:
    b = PromptBuilder(tok, PromptConfig(use_chat_template=False))
    assert b.render(DIALOGUE).endswith("### Response:\n")
    ex = b.encode_example(DIALOGUE, SUMMARY)
    assert ex["labels"][-1] == tok.eos_token_id


@pytest.mark.parametrize("policy, expected", [("head", "a\nb"), ("tail", "d\ne"), ("middle", "a\ne")])
def test_keep_turns_policies(policy: str, expected: str) -> None:
    assert keep_turns(list("abcde"), 2, policy) == expected


def test_cap_dialogue_keeps_whole_turns() -> None:
    assert cap_dialogue("aaaa\nbbbb\ncccc", 10) == "aaaa\nbbbb"
    assert cap_dialogue("aaaaaaaaaaaa\nb", 5) == "aaaaaaaaaaaa"


def test_shot_selector_never_picks_itself_and_is_deterministic() -> None:
    pool = pd.DataFrame({"fname": [f"t{i}" for i in range(10)], "dialogue": [f"d{i}" for i in range(10)],
                         "summary": [f"s{i}" for i in range(10)]})
    for mode in ("fixed", "random"):
        cfg = PromptConfig(num_fewshot=2, fewshot_selection=mode)
        sel = ShotSelector(pool, cfg, seed=1)
        for i in range(10):
            shots = sel.select(f"t{i}")
            assert len(shots) == 2 and (f"d{i}", f"s{i}") not in shots
            assert shots == ShotSelector(pool, cfg, seed=1).select(f"t{i}")
    assert ShotSelector(pool, replace(PromptConfig(), num_fewshot=0), 1).select("t0") == []
