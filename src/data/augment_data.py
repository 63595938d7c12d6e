"""The augment stage: LLM paraphrases and synthetic dialogues, plus speaker swap.

Paraphrase rewrites a train dialogue in natural Korean, keeping meaning, every speaker tag and
every mask token; the original summary stays the label. Synthetic asks for a new dialogue and
its summary on a train topic, with 1-2 train examples as style guides, as a JSON object. Every
response goes through a defensive parser and the validators; each rejection is written to
``rejected.csv`` with its reason. Requests go through ``src.data.llm_client`` (journaled, so a
rerun never pays twice for a completed request).
"""
from __future__ import annotations

import json
import logging
import random
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from src.config import ApiConfig, AugmentationConfig
from src.data.llm_client import BatchClient, ChatRequest, ChatResult, LLMClient, LocalLLMClient, run_requests
from src.errors import UserError

logger = logging.getLogger(__name__)

COLUMNS = ["fname", "dialogue", "summary", "topic", "source", "parent_fname"]
REJECTED_COLUMNS = COLUMNS + ["reason"]
SPEAKER = re.compile(r"#Person\d+#")
MASK = re.compile(r"#[A-Za-z]+#")
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


@dataclass(frozen=True)
class AugmentResult:
    """What the stage wrote (name -> path) and its counts for the manifest."""

    outputs: dict[str, str]
    stats: dict[str, Any]


# ---------------------------------------------------------------- counts and requests


def resolve_count(value: float, n_rows: int) -> int:
    """A config count: ``value >= 1`` is a count, ``0 < value < 1`` a fraction of ``n_rows``."""
    if value <= 0 or n_rows <= 0:
        return 0
    if value < 1:
        return max(1, round(value * n_rows))
    return int(value)


def _masks(dialogue: str) -> list[str]:
    return sorted({m for m in MASK.findall(dialogue) if not SPEAKER.fullmatch(m)})


def paraphrase_messages(dialogue: str) -> list[dict[str, str]]:
    """Chat messages asking for a paraphrase of ``dialogue``."""
    masks = _masks(dialogue)
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
    kept, size = [], 0
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


# ---------------------------------------------------------------- parsing


_FENCE = re.compile(r"```[\w-]*[ \t]*\n?(.*?)(?:```|$)", re.DOTALL)
_TAG_COLON = re.compile(r"^\**\s*(#Person\d+#)\s*\**\s*[:：]\s*")  # a turn's opening tag, maybe in **bold**


def strip_fences(text: str) -> str:
    """The inside of the first Markdown code fence, or ``text`` unchanged."""
    match = _FENCE.search(text)
    return match.group(1).strip() if match else text.strip()


def _unescape_newlines(text: str) -> str:
    # Models sometimes emit the two characters '\' 'n' instead of a line break.
    if "\n" not in text.strip() and "\\n" in text:
        return text.replace("\\r\\n", "\n").replace("\\n", "\n")
    return text


def normalize_dialogue(text: str) -> str:
    """One turn per line as '#PersonN#: text'; blank lines and tag decoration removed."""
    lines = []
    for raw in _unescape_newlines(text).splitlines():
        line = _TAG_COLON.sub(lambda m: f"{m.group(1)}: ", raw.strip().strip('"').strip(), count=1)
        if line:
            lines.append(line.rstrip())
    return "\n".join(lines)


def _turn_block(lines: list[str]) -> list[str]:
    """From the first tagged line through the last one, dropping prose before and after."""
    tagged = [i for i, line in enumerate(lines) if _TAG_COLON.match(line.strip())]
    if not tagged:
        return lines
    return lines[tagged[0]:tagged[-1] + 1]


def parse_paraphrase(text: Optional[str]) -> Optional[str]:
    """The dialogue in a paraphrase reply (fences, prose, JSON wrappers, escaped newlines handled)."""
    if not text or not text.strip():
        return None
    body = strip_fences(text)
    if body.lstrip().startswith("{"):
        obj = _json_object(body)
        body = _dialogue_text(_pick(obj, _DIALOGUE_KEYS)) if obj else body
    lines = _unescape_newlines(body).splitlines()
    dialogue = normalize_dialogue("\n".join(_turn_block(lines)))
    return dialogue or None


_DIALOGUE_KEYS = ("dialogue", "dialog", "conversation", "대화")
_SUMMARY_KEYS = ("summary", "요약")
_SPEAKER_KEYS = ("speaker", "role", "name", "person", "화자")
_TEXT_KEYS = ("text", "utterance", "content", "message", "line", "발화")
_LOOSE_SPEAKER = re.compile(r"^#?\s*person\s*(\d+)\s*#?$", re.IGNORECASE)


def _pick(obj: dict, keys: tuple[str, ...]) -> Any:
    lowered = {str(k).strip().lower(): v for k, v in obj.items()}
    return next((lowered[k] for k in keys if k in lowered), None)


def _json_object(text: str) -> Optional[dict]:
    """The JSON object in ``text`` (after fences and leading prose), repaired if it has trailing commas."""
    import ast

    body = strip_fences(text)
    start, end = body.find("{"), body.rfind("}")
    if start == -1 or end <= start:
        return None
    candidate = body[start:end + 1]
    for attempt in (candidate, re.sub(r",\s*([}\]])", r"\1", candidate)):
        try:
            obj = json.loads(attempt, strict=False)  # strict=False: raw newlines inside strings
        except json.JSONDecodeError:
            continue
        return obj if isinstance(obj, dict) else None
    try:  # a Python-style dict with single quotes
        obj = ast.literal_eval(candidate)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def _speaker_tag(speaker: Any) -> str:
    text = str(speaker).strip()
    match = _LOOSE_SPEAKER.match(text) or (re.fullmatch(r"(\d+)", text))
    return f"#Person{match.group(1)}#" if match else text


def _turn_text(turn: Any) -> str:
    if isinstance(turn, dict):
        speaker, said = _pick(turn, _SPEAKER_KEYS), _pick(turn, _TEXT_KEYS)
        if said is None and len(turn) == 1:  # {"#Person1#": "..."}
            speaker, said = next(iter(turn.items()))
        return f"{_speaker_tag(speaker)}: {said}" if speaker is not None else str(said or "")
    if isinstance(turn, (list, tuple)) and len(turn) == 2:
        return f"{_speaker_tag(turn[0])}: {turn[1]}"
    return str(turn)


def _dialogue_text(value: Any) -> str:
    """A dialogue given as a string, a list of turns, or an object holding a list of turns."""
    if isinstance(value, dict):
        value = _pick(value, ("turns", "utterances", "lines", *_DIALOGUE_KEYS)) or list(value.values())
    if isinstance(value, (list, tuple)):
        value = "\n".join(_turn_text(t) for t in value)
    return normalize_dialogue(str(value)) if value is not None else ""


def parse_synthetic(text: Optional[str]) -> Optional[tuple[str, str]]:
    """(dialogue, summary) from a synthetic reply, or None when either is missing or empty."""
    if not text or not text.strip():
        return None
    obj = _json_object(text)
    if obj is None:
        return None
    dialogue = _dialogue_text(_pick(obj, _DIALOGUE_KEYS))
    summary = _pick(obj, _SUMMARY_KEYS)
    if isinstance(summary, (list, tuple)):
        summary = " ".join(map(str, summary))
    summary = " ".join(_unescape_newlines(str(summary or "")).split())
    return (dialogue, summary) if dialogue and summary else None


# ---------------------------------------------------------------- the stage


def make_client(aug_cfg: AugmentationConfig, api_key: Optional[str], journal_path: Path,
                local_model_path: Optional[str] = None, seed: int = 0) -> Optional[BatchClient]:
    """The client for ``augmentation.backend``; None for the API backend without a key."""
    if aug_cfg.backend == "transformers":
        path = local_model_path or aug_cfg.local_model
        if not path:
            raise UserError("augmentation.backend=transformers needs a model: set augmentation.local_model "
                            "to a hub id or a local folder")
        return LocalLLMClient(path, aug_cfg.api, journal_path, seed=seed)
    if not api_key:
        return None
    return LLMClient(aug_cfg.api, api_key, journal_path, seed=seed)


def build_requests(train_df: pd.DataFrame, aug_cfg: AugmentationConfig, seed: int) -> list[ChatRequest]:
    """Paraphrase then synthetic requests, in the numbers the config asks for."""
    n_para = resolve_count(aug_cfg.num_paraphrase, len(train_df))
    n_synth = resolve_count(aug_cfg.num_synthetic, len(train_df))
    return (build_paraphrase_requests(train_df, n_para, seed, aug_cfg.api)
            + build_synthetic_requests(train_df, n_synth, seed, aug_cfg.api))


def speaker_swap_rows(train_df: pd.DataFrame, amount: float, seed: int) -> pd.DataFrame:
    """Speaker-swapped copies from ``src.data.speaker_swap`` (source ``swap``) in this stage's columns."""
    if amount <= 0 or train_df.empty:
        return pd.DataFrame(columns=COLUMNS)
    from src.data.speaker_swap import swap_frame

    # swap_frame reads an int as a count and a float as a fraction; the config holds a float for both.
    swapped = swap_frame(train_df, int(amount) if amount >= 1 else float(amount), seed).copy()
    for col in COLUMNS:
        if col not in swapped.columns:
            swapped[col] = ""
    return swapped[COLUMNS].reset_index(drop=True)


def validation_settings(aug_cfg: AugmentationConfig) -> Any:
    """``validators.ValidationSettings`` filled from the augmentation config's thresholds."""
    import dataclasses

    from src.data.validators import ValidationSettings

    if hasattr(ValidationSettings, "from_config"):
        return ValidationSettings.from_config(aug_cfg)
    names = {f.name for f in dataclasses.fields(ValidationSettings)}
    return ValidationSettings(**{n: getattr(aug_cfg, n) for n in names if hasattr(aug_cfg, n)})


@dataclass
class Verdicts:
    """Accepted and rejected rows of one batch (dicts with ``COLUMNS``, rejected ones with ``reason``)."""

    accepted: list[dict[str, str]]
    rejected: list[dict[str, str]]


def _candidate(req: ChatRequest, res: ChatResult, parents: dict[str, dict]) -> tuple[dict[str, str], str]:
    """The row a result would add, and '' or the reason it cannot be judged (failed, unparseable)."""
    kind = req.metadata["kind"]
    parent = parents.get(req.metadata.get("parent_fname", ""), {})
    row = {"fname": req.id, "dialogue": "", "summary": str(parent.get("summary", "")),
           "topic": str(req.metadata.get("topic", parent.get("topic", "")) or ""), "source": kind,
           "parent_fname": req.metadata.get("parent_fname", "")}
    if not res.ok:
        return row, f"request_failed: {res.error}"
    if kind == "paraphrase":
        dialogue = parse_paraphrase(res.text)
        row["dialogue"] = dialogue or res.text[:2000]
        return row, "" if dialogue else "unparseable: empty reply"
    parsed = parse_synthetic(res.text)
    if parsed is None:
        row["dialogue"] = res.text[:2000]  # the raw reply, for the rejected file
        return row, "unparseable: no JSON object with dialogue and summary"
    row["dialogue"], row["summary"] = parsed
    return row, ""


def _validate(row: dict[str, str], parents: dict[str, dict], index: Any, settings: Any) -> str:
    """'' to keep a parsed row, else the validators' rejection reason."""
    from src.data.validators import validate_paraphrase, validate_synthetic

    if row["source"] == "paraphrase":
        original = str(parents[row["parent_fname"]]["dialogue"])
        keep, reason = validate_paraphrase(original, row["dialogue"], index, settings)
    else:
        keep, reason = validate_synthetic(row["dialogue"], row["summary"], index, settings)
    return "" if keep else (reason or "rejected")


def judge_results(train_df: pd.DataFrame, requests: list[ChatRequest], results: list[ChatResult],
                  reference_dialogues: list[str], aug_cfg: AugmentationConfig) -> Verdicts:
    """Parse and validate every result; accepted rows join the near-duplicate index as they pass."""
    from src.data.validators import build_index

    settings = validation_settings(aug_cfg)
    # The train set (parents included: a near-copy of its parent adds nothing) plus the caller's references.
    texts = [str(d) for d in train_df["dialogue"]] + [str(d) for d in reference_dialogues]
    keys = [str(f) for f in train_df["fname"]] + [f"reference_{i}" for i in range(len(reference_dialogues))]
    index = build_index(texts, keys, settings=settings)
    parents = {str(r["fname"]): r for r in train_df.to_dict("records")}
    verdicts = Verdicts([], [])
    for req, res in zip(requests, results):
        row, reason = _candidate(req, res, parents)
        reason = reason or _validate(row, parents, index, settings)
        if reason:
            verdicts.rejected.append({**row, "reason": reason})
            continue
        index.add(row["fname"], row["dialogue"])  # later candidates must not copy accepted ones
        verdicts.accepted.append(row)
    return verdicts


def _write(out_dir: Path, augmented: pd.DataFrame, rejected: pd.DataFrame) -> dict[str, str]:
    from src.utils.io import atomic_write_csv

    return {"augmented": str(atomic_write_csv(out_dir / "augmented.csv", augmented[COLUMNS])),
            "rejected": str(atomic_write_csv(out_dir / "rejected.csv", rejected[REJECTED_COLUMNS]))}


def reason_code(reason: str) -> str:
    """The countable part of a reason (``"masks_changed: missing #Email#"`` -> ``"masks_changed"``)."""
    return reason.split(":", 1)[0].strip()


def _stats(requests: list[ChatRequest], swapped: pd.DataFrame, verdicts: Verdicts, client: Optional[BatchClient],
           skipped: Optional[str], aug_cfg: AugmentationConfig) -> dict[str, Any]:
    kinds = ("paraphrase", "synthetic")
    requested = Counter(r.metadata["kind"] for r in requests)
    accepted = Counter(r["source"] for r in verdicts.accepted)
    rejected = {k: dict(Counter(reason_code(r["reason"]) for r in verdicts.rejected if r["source"] == k))
                for k in kinds}
    return {
        "backend": aug_cfg.backend,
        "requested": {**{k: requested[k] for k in kinds}, "speaker_swap": len(swapped)},
        "accepted": {**{k: accepted[k] for k in kinds}, "speaker_swap": len(swapped)},
        "rejected": rejected,
        "acceptance_rate": {k: round(accepted[k] / requested[k], 4) if requested[k] else None for k in kinds},
        "skipped": skipped,
        "ledger": client.ledger.to_dict() if client is not None else None,
    }


def augment(train_df: pd.DataFrame, reference_dialogues: list[str], aug_cfg: AugmentationConfig,
            api_key: Optional[str], out_dir: Path, seed: int, local_model_path: Optional[str] = None,
            progress: bool = True) -> AugmentResult:
    """Run speaker swap and the LLM augmenters; write augmented.csv and rejected.csv atomically.

    Augmented dialogues must not near-duplicate a train dialogue or any of ``reference_dialogues``
    (dev and test, typically). Without a key the API augmenters are skipped with one warning line. Responses
    are journaled in ``out_dir/journal.jsonl``: a rerun re-sends only what never completed.
    """
    started = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    swapped = speaker_swap_rows(train_df, aug_cfg.num_speaker_swap, seed)
    requests = build_requests(train_df, aug_cfg, seed)
    journal = out_dir / "journal.jsonl"
    journal.touch(exist_ok=True)  # always an output, even when nothing is requested
    client = make_client(aug_cfg, api_key, journal, local_model_path, seed) if requests else None
    verdicts, skipped = Verdicts([], []), None
    if requests and client is None:
        skipped = "no_api_key"
        logger.warning("augmentation: no API key in %s (environment or .env); skipping %d paraphrase/synthetic "
                       "requests, speaker swap still runs", aug_cfg.api.api_key_env, len(requests))
    elif requests:
        results = run_requests(client, requests, progress=progress)
        verdicts = judge_results(train_df, requests, results, reference_dialogues, aug_cfg)
    augmented = pd.concat([swapped, pd.DataFrame(verdicts.accepted, columns=COLUMNS)], ignore_index=True)
    outputs = {**_write(out_dir, augmented, pd.DataFrame(verdicts.rejected, columns=REJECTED_COLUMNS)),
               "journal": str(journal)}
    stats = _stats(requests, swapped, verdicts, client, skipped, aug_cfg)
    stats["seconds"] = round(time.monotonic() - started, 3)
    logger.info("augmentation: accepted %s, rejected %d (reasons in %s)", stats["accepted"],
                len(verdicts.rejected), outputs["rejected"])
    return AugmentResult(outputs=outputs, stats=stats)
