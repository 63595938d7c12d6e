"""A tiny Llama trained for a few seconds on debug dialogues, so greedy outputs differ and some stop early."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest

from src.config import Config, InferenceConfig, PromptConfig
from tests.conftest import REPO

DEBUG = REPO / "data" / "debug"
PROMPT = PromptConfig(num_fewshot=0, max_prompt_tokens=160)
TRAIN_ROWS, STEPS = 24, 120


@contextmanager
def single_thread() -> Iterator[None]:
    """One torch thread: on a shared 2-core machine OpenMP spinning makes tiny models several times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Every test module here runs single-threaded (restored afterwards for other test folders)."""
    with single_thread():
        yield


def tiny_config(**inference: object) -> Config:
    """Settings matching the trained tiny model: CPU, float32, no few-shot, full weights."""
    cfg = Config()
    return replace(cfg, model=replace(cfg.model, device="cpu"), prompt=PROMPT,
                   training=replace(cfg.training, use_qlora=False, compute_dtype="float32"),
                   inference=replace(InferenceConfig(max_new_tokens=32), **inference))


def _train(model, builder, df: pd.DataFrame, pad_id: int) -> None:
    """Full fine-tuning in plain torch until the model reproduces (parts of) its summaries and stops."""
    import torch

    examples = [builder.encode_example(d, s) for d, s in zip(df["dialogue"], df["summary"])]
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    gen = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(STEPS):
        rows = [examples[i] for i in torch.randint(len(examples), (8,), generator=gen).tolist()]
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.tensor([r["input_ids"] + [pad_id] * (width - len(r["input_ids"])) for r in rows])
        labels = torch.tensor([r["labels"] + [-100] * (width - len(r["labels"])) for r in rows])
        mask = (ids != pad_id).long()
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()


@pytest.fixture(scope="session")
def tiny_trained(tmp_path_factory) -> dict:
    """{'path': full-weights checkpoint, 'model', 'tokenizer', 'builder', 'train', 'dev', 'test'}."""
    import torch
    from transformers import AutoModelForCausalLM

    from src.models.debug import build_tiny_causal
    from src.models.loading import load_tokenizer
    from src.prompting.builder import PromptBuilder

    frames = {s: pd.read_csv(DEBUG / f"{s}.csv", dtype=str) for s in ("train", "dev", "test")}
    texts = [t for df in frames.values() for col in ("dialogue", "summary") if col in df for t in df[col]]
    root = tmp_path_factory.mktemp("tiny")
    base = build_tiny_causal(root / "base", texts, seed=0)
    torch.manual_seed(0)
    tokenizer = load_tokenizer(str(base), Config(), padding_side="left")
    builder = PromptBuilder(tokenizer, PROMPT)
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    with single_thread():  # session fixtures start before the module-scoped one_thread
        _train(model, builder, frames["train"].head(TRAIN_ROWS), tokenizer.pad_token_id)
    ckpt = Path(root / "trained")
    model.save_pretrained(str(ckpt))
    tokenizer.save_pretrained(str(ckpt))
    return {"path": ckpt, "base": base, "model": model, "tokenizer": tokenizer, "builder": builder, **frames}
