"""What augmentation asks an LLM: paraphrase and synthetic-dialogue chat requests, in the configured numbers.

Paraphrase rewrites a train dialogue in natural Korean, keeping meaning, every speaker tag and
every mask token; the original summary stays the label. Synthetic asks for a new dialogue and
its summary on a train topic, with 1-2 train examples as style guides, as a JSON object.
"""
from __future__ import annotations

import logging
import random

import pandas as pd

from src.augment.chat import ChatRequest
from src.config import ApiConfig, AugmentationConfig
from src.utils.patterns import masks_in

logger = logging.getLogger(__name__)

EXAMPLE_MAX_CHARS = 1200  # per style example in a synthetic prompt: enough for style, cheap in tokens
JSON_FORMAT = {"type": "json_object"}

PARAPHRASE_SYSTEM = "당신은 한국어 대화를 의미는 그대로 두고 자연스럽게 다시 쓰는 전문가입니다."
PARAPHRASE_PROMPT = """다음 대화를 같은 의미를 유지하면서 자연스러운 한국어 표현으로 다시 써 주세요.

규칙:
- 줄 수와 순서를 유지하고, 각 줄은 원문과 같은 화자 태그로 시작합니다 (예: "#Person1#: ").
- 화자 태그를 바꾸거나 빼거나 새로 만들지 마세요.{mask_rule}
- 사실, 숫자, 이름을 바꾸거나 새로운 내용을 더하거나 빼지 마세요. 표현과 어휘만 바꾸세요.
- 설명이나 머리말 없이 다시 쓴 대화만 출력하세요.

대화:
{dialogue}"""

SYNTHETIC_SYSTEM = "당신은 한국어 대화 요약 데이터셋을 만드는 전문가입니다."
SYNTHETIC_PROMPT = """주제: {topic}

아래 예시와 같은 형식과 문체로, 이 주제에 대한 새로운 대화와 그 요약을 만들어 주세요.

규칙:
- 대화는 {turns}줄 안팎이며, 각 줄은 "#Person1#: ", "#Person2#: " 처럼 화자 태그로 시작합니다.
- 요약은 예시처럼 1~3문장이고, 사람은 #Person1#, #Person2# 로 부릅니다.
- 예시의 문장이나 사건을 그대로 베끼지 말고 새로운 상황을 만드세요.
- 다른 말 없이 JSON 객체 하나만 출력하세요: {{"dialogue": "대화 (줄바꿈은 \\n)", "summary": "요약"}}

{examples}"""


def resolve_count(value: float, n_rows: int) -> int:
    """A config count: ``value >= 1`` is a count, ``0 < value < 1`` a fraction of ``n_rows``."""
    if value <= 0 or n_rows <= 0:
        return 0
    if value < 1:
        return max(1, round(value * n_rows))
    return int(value)


def paraphrase_messages(dialogue: str) -> list[dict[str, str]]:
    """Chat messages asking for a paraphrase of ``dialogue``."""
    masks = masks_in(dialogue)
    mask_rule = (f"\n- 마스크 토큰 {', '.join(masks)} 은(는) 글자 그대로 남겨 두세요." if masks else "")
    return [{"role": "system", "content": PARAPHRASE_SYSTEM},
            {"role": "user", "content": PARAPHRASE_PROMPT.format(mask_rule=mask_rule, dialogue=dialogue.strip())}]


def build_paraphrase_requests(df: pd.DataFrame, n: int, seed: int, api_cfg: ApiConfig) -> list[ChatRequest]:
    """One paraphrase request for each of ``n`` rows sampled by ``seed`` (at most one per row)."""
    del api_cfg  # generation params are the client's; kept for a uniform builder signature
    if n > len(df):
        logger.warning("augmentation.num_paraphrase=%d is more than the %d train rows; paraphrasing each row once",
                       n, len(df))
    rows = df.sample(n=min(n, len(df)), random_state=seed)
    return [ChatRequest(id=f"{row.fname}_para", messages=paraphrase_messages(str(row.dialogue)),
                        metadata={"kind": "paraphrase", "parent_fname": str(row.fname)})
            for row in rows.itertuples(index=False)]


def _trim_example(dialogue: str, max_chars: int = EXAMPLE_MAX_CHARS) -> str:
    """Whole lines of ``dialogue`` up to ``max_chars`` (at least the first line)."""
    kept: list[str] = []
    size = 0
    for line in dialogue.strip().splitlines():
        if kept and size + len(line) > max_chars:
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join(kept)


def synthetic_messages(topic: str, examples: list[tuple[str, str]]) -> list[dict[str, str]]:
    """Chat messages asking for a new (dialogue, summary) JSON on ``topic`` in the style of ``examples``."""
    blocks = [f"예시 {i}:\n대화:\n{_trim_example(d)}\n요약:\n{s.strip()}" for i, (d, s) in enumerate(examples, 1)]
    turns = max(4, round(sum(len(d.strip().splitlines()) for d, _ in examples) / max(1, len(examples))))
    return [{"role": "system", "content": SYNTHETIC_SYSTEM},
            {"role": "user", "content": SYNTHETIC_PROMPT.format(topic=topic, turns=turns,
                                                                examples="\n\n".join(blocks))}]


def build_synthetic_requests(df: pd.DataFrame, n: int, seed: int, api_cfg: ApiConfig) -> list[ChatRequest]:
    """``n`` synthetic requests: a topic drawn from train rows, that row + one more (same topic if any) as examples."""
    del api_cfg
    if n <= 0 or "topic" not in df.columns:
        if n > 0:
            logger.warning("augmentation: the train set has no 'topic' column; skipping %d synthetic requests", n)
        return []
    rows = df.reset_index(drop=True)
    by_topic = rows.groupby(rows["topic"].astype(str)).indices
    rng = random.Random(seed)
    requests = []
    for i in range(n):
        first = rng.randrange(len(rows))
        topic = str(rows.at[first, "topic"])
        peers = [j for j in by_topic[topic] if j != first]
        second = rng.choice(peers) if peers else rng.randrange(len(rows))
        picked = [first] if second == first else [first, second]
        examples = [(str(rows.at[j, "dialogue"]), str(rows.at[j, "summary"])) for j in picked]
        requests.append(ChatRequest(
            id=f"synth_{i}", messages=synthetic_messages(topic, examples), response_format=JSON_FORMAT,
            metadata={"kind": "synthetic", "topic": topic, "examples": [str(rows.at[j, "fname"]) for j in picked]}))
    return requests


def build_requests(train_df: pd.DataFrame, aug_cfg: AugmentationConfig, seed: int) -> list[ChatRequest]:
    """Paraphrase then synthetic requests, in the numbers the config asks for."""
    n_para = resolve_count(aug_cfg.num_paraphrase, len(train_df))
    n_synth = resolve_count(aug_cfg.num_synthetic, len(train_df))
    return (build_paraphrase_requests(train_df, n_para, seed, aug_cfg.api)
            + build_synthetic_requests(train_df, n_synth, seed, aug_cfg.api))
