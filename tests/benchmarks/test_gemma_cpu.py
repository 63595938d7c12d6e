"""benchmarks.gemma_cpu builds its training rows with the train stage's own encoder (imports kept current)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmarks import gemma_cpu
from src.prompting.builder import PromptBuilder
from src.models.loading import load_tokenizer

DEBUG = Path(__file__).resolve().parents[2] / "data" / "debug" / "train.csv"


def test_encode_gives_prompt_masked_rows_for_every_variant_config(shared_tokenizers: Path) -> None:
    tok_dir = str(shared_tokenizers / "qwen2.5-instruct")
    df = pd.read_csv(DEBUG, dtype=str).head(3)
    for variant in ("base", "no_dropout", "bf16_no_dropout"):
        cfg = gemma_cpu.make_cfg(gemma_cpu.VARIANTS[variant])
        rows = gemma_cpu.encode(cfg, PromptBuilder(load_tokenizer(tok_dir, cfg), cfg.prompt), df)
        assert len(rows) == 3
        for row in rows:
            labelled = [x for x in row["labels"] if x != -100]
            assert 0 < len(labelled) < len(row["input_ids"])  # the summary is trained, the prompt is not
    assert gemma_cpu.make_cfg(gemma_cpu.VARIANTS["no_dropout"]).training.lora.dropout == 0
