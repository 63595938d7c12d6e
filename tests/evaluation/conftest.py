"""Shared data for the evaluation tests: real dev data when the shared folder is there."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import need_shared

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
DEV_KO = SHARED_DATA / "dialogsum-ko" / "dev.csv"
TEST_EN = SHARED_DATA / "dialogsum-en" / "test.jsonl"


def perturb(summary: str, dialogue: str, i: int) -> str:
    """A deterministic, imperfect prediction so that scores are neither 0 nor 1."""
    words = summary.split()
    kind = i % 4
    if kind == 0:
        return " ".join(w for k, w in enumerate(words) if k % 3 != 2)
    if kind == 1:
        return dialogue.split("\n")[0].split(": ", 1)[-1]
    if kind == 2:
        middle = len(words) // 2
        return " ".join(words[:2] + words[2:middle][::-1] + words[middle:])
    return summary.split(". ")[0] + ". 그리고 대화를 마칩니다."


@pytest.fixture(scope="session")
def dev_ko() -> pd.DataFrame:
    """The 499-row Korean dev set (fname, dialogue, summary, topic)."""
    return pd.read_csv(need_shared(DEV_KO))


@pytest.fixture(scope="session")
def dev_pred(dev_ko: pd.DataFrame) -> pd.DataFrame:
    """Predictions for the dev set in submission format (fname, summary), in dev order."""
    summaries = [perturb(s, d, i) for i, (s, d) in enumerate(zip(dev_ko["summary"], dev_ko["dialogue"]))]
    return pd.DataFrame({"fname": dev_ko["fname"], "summary": summaries})


@pytest.fixture(scope="session")
def test_en() -> pd.DataFrame:
    """English DialogSum test rows with three references (summary1..summary3)."""
    with need_shared(TEST_EN).open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return pd.DataFrame(rows)[["fname", "dialogue", "summary1", "summary2", "summary3"]]


@pytest.fixture(scope="session")
def dev_ko_path() -> Path:
    """Path of the Korean dev CSV, skipping (failing under CI=true) when the shared data is absent."""
    return need_shared(DEV_KO)
