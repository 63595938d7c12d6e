"""Table-driven normalisation of the known noise in DialogSum-ko dialogues and summaries.

The rules live in ``docs/denoise_rules.csv`` (columns ``pattern,replacement,note[,scope]``):
``pattern`` is a Python regex, ``replacement`` a ``re.sub`` template (``\\n`` means a newline,
``\\1`` a group), ``note`` the rule's name used in the counts, and ``scope`` one of ``all``
(default), ``dialogue`` or ``summary``, because some rules (a tag at the start of a line must be
followed by a colon) only make sense for dialogues. Rules run in file order.

Semantics are protected in code: a rule application that would change the mask tokens
(``#PhoneNumber#`` ...) or lose a well-formed speaker tag is undone for that text and counted as
``reverted:<note>``, so a careless rule cannot silently damage the data.
"""
from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from src.data.tables import read_rule_table
from src.utils.errors import UserError
from src.utils.patterns import MASK, SPEAKER_TAG

log = logging.getLogger(__name__)

DEFAULT_RULES_PATH = Path(__file__).resolve().parents[3] / "docs" / "denoise_rules.csv"
SCOPES = ("all", "dialogue", "summary")


@dataclass(frozen=True)
class Rule:
    """One denoise rule: a compiled regex, its replacement template, name and scope."""

    pattern: re.Pattern[str]
    replacement: str
    note: str
    scope: str = "all"
    line: int = 0

    def applies_to(self, column: str | None) -> bool:
        """True when the rule should run on text from ``column`` (None: any column)."""
        return self.scope == "all" or column is None or self.scope == column


def load_rules(path: str | Path = DEFAULT_RULES_PATH) -> list[Rule]:
    """Load denoise rules from a CSV table, collecting every bad row into one ``UserError``."""
    rules: list[Rule] = []
    problems: list[str] = []
    for line, row in read_rule_table(path, ("pattern", "replacement", "note"), ("scope",)):
        rule, problem = _parse_rule(Path(path), line, row)
        if problem:
            problems.append(problem)
        elif rule is not None:
            rules.append(rule)
    if problems:
        raise UserError(*problems)
    return rules


def _parse_rule(path: Path, line: int, row: dict[str, str]) -> tuple[Rule | None, str]:
    """Compile one table row; return ``(rule, "")`` or ``(None, problem line)``."""
    where = f"{path}: row at line {line}"
    note, scope = row["note"].strip(), row["scope"].strip() or "all"
    if not row["pattern"]:
        return None, f"{where}, column 'pattern': empty pattern; give a regex or delete the row."
    if not note:
        return None, f"{where}, column 'note': empty; name the rule (it is used in the counts)."
    if scope not in SCOPES:
        return None, f"{where}, column 'scope': '{scope}' is not one of {', '.join(SCOPES)}."
    try:
        pattern = re.compile(row["pattern"])
    except re.error as exc:
        return None, (f"{where}, column 'pattern': invalid regex {row['pattern']!r} ({exc}); "
                      "fix or escape it.")
    try:
        _dummy_match(pattern).expand(row["replacement"])
    except (re.error, IndexError) as exc:
        return None, f"{where}, column 'replacement': invalid template {row['replacement']!r} ({exc})."
    return Rule(pattern, row["replacement"], note, scope, line), ""


def _dummy_match(pattern: re.Pattern[str]) -> re.Match[str]:
    """A match with the same groups as ``pattern``, to validate a template at load time."""
    names = {index: name for name, index in pattern.groupindex.items()}
    groups = "".join(f"(?P<{names[i]}>)" if i in names else "()" for i in range(1, pattern.groups + 1))
    match = re.compile(groups).match("")
    assert match is not None  # an empty pattern always matches ""
    return match


def _protected(text: str) -> tuple[Counter, int]:
    """What no rule may change: the multiset of masks and the number of well-formed tags."""
    return Counter(MASK.findall(text)), len(SPEAKER_TAG.findall(text))


def _apply_rule(rule: Rule, text: str) -> tuple[str, int]:
    """Apply one rule; count only matches whose replacement actually differs from the match."""
    changed = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal changed
        new = match.expand(rule.replacement)
        changed += new != match.group(0)
        return new

    return rule.pattern.sub(replace, text), changed


def denoise_text(text: str, rules: list[Rule], column: str | None = "dialogue") -> tuple[str, Counter]:
    """Apply ``rules`` in order to one text; return the clean text and per-rule change counts.

    ``column`` selects scoped rules (``"dialogue"`` by default; ``None`` runs every rule).
    """
    counts: Counter = Counter()
    for rule in rules:
        if not rule.applies_to(column):
            continue
        new, changed = _apply_rule(rule, text)
        if not changed:
            continue
        before_masks, before_tags = _protected(text)
        after_masks, after_tags = _protected(new)
        if after_masks != before_masks or after_tags < before_tags:
            counts[f"reverted:{rule.note}"] += 1
            continue
        counts[rule.note] += changed
        text = new
    return text, counts


def denoise_frame(
    df: pd.DataFrame, rules: list[Rule], columns: tuple[str, ...] = ("dialogue", "summary")
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Denoise ``columns`` of a copy of ``df``; return it and the total count per rule (> 0).

    Columns that are absent (the test split has no summary) are skipped; missing cells are kept.
    """
    out = df.copy()
    totals: Counter = Counter()
    for column in columns:
        if column not in out.columns:
            continue
        cleaned = []
        for value in out[column]:
            if not isinstance(value, str):
                cleaned.append(value)
                continue
            text, counts = denoise_text(value, rules, column)
            totals.update(counts)
            cleaned.append(text)
        out[column] = cleaned
    if any(key.startswith("reverted:") for key in totals):
        log.warning("denoise: some rule applications were undone to protect masks/tags: %s",
                    {k: v for k, v in totals.items() if k.startswith("reverted:")})
    return out, {key: int(value) for key, value in totals.items() if value > 0}
