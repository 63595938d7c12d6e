"""Hub dataset formats read as dialogue/summary rows: conversational ``messages`` and ``prompt``/``completion``.

TRL and LLaMA-Factory users hold SFT data in two shapes besides plain columns:

- conversational: a ``messages`` list of ``{"role", "content"}`` turns: the dialogue is the last user
  turn's text, the summary the assistant turn after it (system turns are left out);
- prompt/completion: a ``prompt`` (text, or a list of turns: its last user turn) and a ``completion``
  (text, or a list of turns: its assistant text).

The column names are ``data.columns.messages``, ``data.columns.prompt`` and ``data.columns.completion``;
a source with a ``data.columns.dialogue`` column is read as plain columns. The user turn is taken
whole as the dialogue, so it should hold the dialogue only (any instruction in it stays in the text).
In files and hub splits the turn lists arrive as JSON text (``src.data.loading.as_text``).
"""
from __future__ import annotations

import json
from typing import Any, Optional

import pandas as pd

from src.config import ColumnMap

MAX_LISTED = 20


def _turns(cell: Any) -> Optional[list[dict[str, Any]]]:
    """A cell as a list of turns (JSON text or a list), or None when it is not one."""
    if isinstance(cell, str):
        try:
            cell = json.loads(cell)
        except ValueError:
            return None
    if isinstance(cell, list) and all(isinstance(t, dict) and "content" in t for t in cell):
        return cell
    return None


def _last(turns: list[dict[str, Any]], role: str) -> Optional[str]:
    texts = [str(t.get("content") or "") for t in turns if t.get("role") == role]
    return texts[-1] if texts else None


def from_messages(cell: Any) -> tuple[Optional[str], Optional[str]]:
    """(dialogue, summary) of a conversational row: the last user turn and the assistant turn that follows it."""
    turns = _turns(cell)
    if turns is None:
        return None, None
    users = [i for i, t in enumerate(turns) if t.get("role") == "user"]
    if not users:
        return None, None
    after = turns[users[-1] + 1:]
    return str(turns[users[-1]].get("content") or ""), _last(after, "assistant")


def from_prompt(cell: Any, role: str) -> Optional[str]:
    """A prompt or completion cell as text: plain text as it is, a list of turns as its last ``role`` turn."""
    if cell is None or (isinstance(cell, float) and pd.isna(cell)):
        return None
    turns = _turns(cell)
    return _last(turns, role) if turns is not None else str(cell)


def chat_format(df: pd.DataFrame, columns: ColumnMap) -> Optional[str]:
    """``messages`` or ``prompt`` when the source is in one of those formats (and has no dialogue column)."""
    if columns.dialogue in df.columns or "dialogue" in df.columns:
        return None
    if columns.messages in df.columns:
        return "messages"
    return "prompt" if columns.prompt in df.columns else None


def to_dialogue_columns(df: pd.DataFrame, columns: ColumnMap, where: Any, first_row: int,
                        needs_summary: bool) -> tuple[pd.DataFrame, list[str]]:
    """The source with ``dialogue`` and ``summary`` columns made from its conversational or prompt/completion
    columns (the other columns kept), and one problem line per row that could not be read (file, row, column)."""
    kind = chat_format(df, columns)
    if kind is None:
        return df, []
    if kind == "messages":
        pairs = [from_messages(cell) for cell in df[columns.messages]]
        source = {"dialogue": columns.messages, "summary": columns.messages}
    else:
        completions = df[columns.completion] if columns.completion in df.columns else [None] * len(df)
        pairs = [(from_prompt(p, "user"), from_prompt(c, "assistant")) for p, c in zip(df[columns.prompt], completions)]
        source = {"dialogue": columns.prompt, "summary": columns.completion}
    problems = [f"{where}: row {i + first_row}: column {source['dialogue']} has no user turn to read as the dialogue "
                f"(expected a list of {{role, content}} turns{' or text' if kind == 'prompt' else ''})"
                for i, (dialogue, _) in enumerate(pairs) if not dialogue][:MAX_LISTED]
    if needs_summary:
        problems += [f"{where}: row {i + first_row}: column {source['summary']} has no assistant text to read as the "
                     f"summary" for i, (dialogue, summary) in enumerate(pairs) if dialogue and not summary][:MAX_LISTED]
    out = df.drop(columns=[c for c in (columns.messages, columns.prompt, columns.completion) if c in df.columns])
    return out.assign(**{columns.dialogue: [d for d, _ in pairs], columns.summary: [s for _, s in pairs]}), problems
