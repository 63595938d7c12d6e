"""The cap ``inference.max_new_tokens: auto`` stands for, measured on the real SOLAR tokenizer and dev summaries."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from src.config import load_config
from src.models.loading import load_tokenizer
from src.prompting.builder import PromptBuilder
from src.models.checkpoint import summary_lengths
from tests.conftest import SHARED_DATA, need_shared


def test_percentiles_and_the_auto_cap() -> None:
    stats = summary_lengths(list(range(1, 201)))
    assert (stats["p50"], stats["p99_5"], stats["max"], stats["n"]) == (101, 200, 200, 200)
    assert stats["auto_max_new_tokens"] == 220 and sum(stats["histogram"].values()) == 200


def test_auto_covers_the_solar_dev_summaries_that_128_tokens_cut(shared_tokenizers: Path) -> None:
    need_shared(SHARED_DATA / "dialogsum-ko" / "dev.csv")
    dev = pd.read_csv(SHARED_DATA / "dialogsum-ko" / "dev.csv", dtype=str)
    cfg = load_config(None, [f"model.name={shared_tokenizers / 'solar-10.7b-instruct'}"])
    builder = PromptBuilder(load_tokenizer(cfg.model.name, cfg), cfg.prompt)
    lengths = [len(builder.completion_ids(s)) for s in dev["summary"]]
    over_128 = sum(n > 128 for n in lengths)
    cap = summary_lengths(lengths)["auto_max_new_tokens"]
    assert over_128 >= 20, "the old preset cap of 128 cut a few percent of SOLAR summaries"
    assert sum(n > cap for n in lengths) / len(lengths) <= 0.005
