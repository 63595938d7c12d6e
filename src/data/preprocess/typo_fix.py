"""A small table-driven fixer for common Korean misspellings.

The table (``docs/typo_rules.csv``, columns ``wrong,right,note``) holds literal strings, not
regexes: an entry is only safe when ``wrong`` can never be correct Korean in any context, which
is why the shipped table is short (``됬`` is never a valid syllable; ``않되`` alone is left out
because ``-지 않되`` is a valid connective, so only ``않되요``/``않되는`` are listed).
Counts are keyed by ``note`` so related entries (``할께``, ``갈께``) can share one name.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from src.data.tables import read_rule_table
from src.utils.errors import UserError

DEFAULT_TYPOS_PATH = Path(__file__).resolve().parents[3] / "docs" / "typo_rules.csv"


@dataclass(frozen=True)
class Typo:
    """One literal replacement ``wrong`` -> ``right``, counted under ``note``."""

    wrong: str
    right: str
    note: str


def load_typos(path: str | Path = DEFAULT_TYPOS_PATH) -> list[Typo]:
    """Load the typo table; every bad row is reported in one ``UserError``."""
    typos, problems = [], []
    for line, row in read_rule_table(path, ("wrong", "right", "note")):
        wrong, right = row["wrong"].strip(), row["right"].strip()
        where = f"{path}: row at line {line}"
        if not wrong:
            problems.append(f"{where}, column 'wrong': empty; give the misspelling or delete the row.")
        elif wrong == right:
            problems.append(f"{where}, column 'right': same as 'wrong' ({wrong!r}); the row does nothing.")
        elif wrong in right:
            # e.g. 됐 -> 됐다 would re-match its own output on every rerun.
            problems.append(
                f"{where}, column 'right': contains 'wrong' ({wrong!r}); fixes must be idempotent.")
        else:
            typos.append(Typo(wrong, right, row["note"].strip() or f"{wrong}->{right}"))
    if problems:
        raise UserError(*problems)
    return typos


def fix_typos_text(text: str, table: list[Typo]) -> tuple[str, Counter]:
    """Apply every entry of ``table`` to ``text``; return the text and counts per note."""
    counts: Counter = Counter()
    for typo in table:
        hits = text.count(typo.wrong)
        if hits:
            text = text.replace(typo.wrong, typo.right)
            counts[typo.note] += hits
    return text, counts


def fix_typos_frame(
    df: pd.DataFrame, table: list[Typo], columns: tuple[str, ...] = ("dialogue", "summary")
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Fix typos in ``columns`` of a copy of ``df``; return it and total counts per note (> 0).

    Absent columns are skipped and missing cells kept as they are.
    """
    out = df.copy()
    totals: Counter = Counter()
    for column in columns:
        if column not in out.columns:
            continue
        fixed = []
        for value in out[column]:
            if isinstance(value, str):
                value, counts = fix_typos_text(value, table)
                totals.update(counts)
            fixed.append(value)
        out[column] = fixed
    return out, {key: int(value) for key, value in totals.items() if value > 0}
