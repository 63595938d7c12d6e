"""Conversational (``messages``) and prompt/completion sources read as dialogue/summary, with a column mapping."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from src.config import load_config
from src.data.sources import load_split_sources
from src.utils.errors import UserError

DIALOGUES = ["#Person1#: 안녕하세요.\n#Person2#: 네, 안녕하세요.", "#Person1#: 내일 봐요.\n#Person2#: 좋아요."]
SUMMARIES = ["두 사람이 인사한다.", "두 사람이 내일 만나기로 한다."]


def conversation(dialogue: str, summary: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "요약하세요."}, {"role": "user", "content": dialogue},
            {"role": "assistant", "content": summary}]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def train(tmp_path: Path, name: str, *overrides: str) -> pd.DataFrame:
    cfg = load_config(None, [f"paths.data_dir={tmp_path}", f"data.train_file={name}", *overrides], debug_small=True)
    return load_split_sources(cfg, "train").frame


def test_a_conversational_jsonl_gives_the_user_turn_and_the_reply(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "chat.jsonl", [{"id": f"c{i}", "messages": conversation(d, s)}
                                          for i, (d, s) in enumerate(zip(DIALOGUES, SUMMARIES))])
    frame = train(tmp_path, "chat.jsonl", "data.columns.fname=id")
    assert frame["fname"].tolist() == ["c0", "c1"]
    assert frame["dialogue"].tolist() == DIALOGUES and frame["summary"].tolist() == SUMMARIES


def test_a_mapped_messages_column_in_parquet_with_generated_ids(tmp_path: Path) -> None:
    pd.DataFrame({"conversation": [conversation(d, s) for d, s in zip(DIALOGUES, SUMMARIES)]}).to_parquet(
        tmp_path / "chat.parquet")
    frame = train(tmp_path, "chat.parquet", "data.columns.messages=conversation", "data.generate_ids=true")
    assert frame["dialogue"].tolist() == DIALOGUES and frame["summary"].tolist() == SUMMARIES
    assert frame["fname"].str.startswith("train-0-").all()


def test_prompt_completion_as_text_or_as_turns(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "pc.jsonl", [
        {"fname": "p0", "prompt": DIALOGUES[0], "completion": SUMMARIES[0]},
        {"fname": "p1", "prompt": [{"role": "user", "content": DIALOGUES[1]}],
         "completion": [{"role": "assistant", "content": SUMMARIES[1]}]}])
    frame = train(tmp_path, "pc.jsonl")
    assert frame["dialogue"].tolist() == DIALOGUES and frame["summary"].tolist() == SUMMARIES
    write_jsonl(tmp_path / "qa.jsonl", [{"fname": "q0", "question": DIALOGUES[0], "answer": SUMMARIES[0]}])
    mapped = train(tmp_path, "qa.jsonl", "data.columns.prompt=question", "data.columns.completion=answer")
    assert mapped["summary"].tolist() == SUMMARIES[:1]


def test_a_conversation_without_a_reply_is_refused_naming_file_row_and_column(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "chat.jsonl", [{"fname": "c0", "messages": conversation(DIALOGUES[0], SUMMARIES[0])},
                                          {"fname": "c1", "messages": [{"role": "user", "content": DIALOGUES[1]}]},
                                          {"fname": "c2", "messages": "not turns"}])
    with pytest.raises(UserError) as err:
        train(tmp_path, "chat.jsonl")
    problems = err.value.problems
    assert any("chat.jsonl: row 3: column messages has no user turn" in p for p in problems), problems
    assert any("chat.jsonl: row 2: column messages has no assistant text" in p for p in problems), problems


def test_a_test_split_of_prompts_needs_no_completion(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "test.jsonl", [{"fname": "t0", "prompt": DIALOGUES[0]}])
    cfg = load_config(None, [f"paths.data_dir={tmp_path}", "data.test_file=test.jsonl"], debug_small=True)
    frame = load_split_sources(cfg, "test").frame
    assert frame["dialogue"].tolist() == DIALOGUES[:1]
