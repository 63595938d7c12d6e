"""Training collation: the project default (padding-free) vs plain padded batches, on CPU.

Usage: python -m benchmarks.train_throughput --data ../shared/data/dialogsum-ko/dev.csv
           [--batch-size 4] [--rounds 9] [--tokens 4000] [--threads 1] [key.sub=value ...]

The dialogues of ``--data`` are rendered with the project's prompt builder (the real length
distribution), a tiny Llama (``build_tiny_causal`` with a tokenizer trained on the same text)
gets a LoRA adapter, and SFTTrainers are built by ``src.train.sft.build_trainer`` with the
project's collation for CPU (``training.padding_free=true``, the default: one example per
micro-batch), with BFD-packed rows (``training.packing=true``) and with plain padded batches
(``training.padding_free=false``), all at ``--batch-size`` examples per batch. Each round times
forward + backward + optimizer step over each trainer's own dataloader batches until ``--tokens``
useful (non-pad) tokens have gone through; rounds rotate over the collations, so load from
other processes hits all alike. The last line is the median over rounds of default / padded.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from src.config import load_config

REPO_ROOT = Path(__file__).resolve().parents[1]


def machine(threads: int) -> str:
    """One line naming the machine the numbers come from."""
    import torch
    import transformers
    import trl

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{platform.node()} | {platform.platform()} | {os.cpu_count()} CPUs (load average {load}) | "
            f"torch {torch.__version__} on {threads} thread(s) | transformers {transformers.__version__} | trl {trl.__version__}")


def build(data: Path, root: Path, batch: int, overrides: list[str]) -> tuple:
    """The config, tiny model folder and encoded examples for ``data``."""
    import pandas as pd

    from src.models.debug import build_tiny_causal
    from src.models.loading import load_tokenizer
    from src.prompting.builder import PromptBuilder
    from src.prompting.fewshot import ShotSelector
    from src.train.sft import encode_frame

    df = pd.read_csv(data)
    model_dir = build_tiny_causal(root / "tiny", df["dialogue"].astype(str).tolist() + df["summary"].astype(str).tolist())
    cfg = load_config(None, [f"model.name={model_dir}", "model.device=cpu", "training.use_qlora=false",
                             "prompt.num_fewshot=0", f"training.per_device_train_batch_size={batch}",
                             "training.report_to=none", *overrides])
    tokenizer = load_tokenizer(str(model_dir), cfg)
    builder = PromptBuilder(tokenizer, cfg.prompt)
    rows = encode_frame(builder, ShotSelector(df, cfg.prompt, cfg.seed), df, cfg, False).rows
    return cfg, model_dir, tokenizer, rows


COLLATIONS = {  # name -> (training.padding_free, training.packing)
    "default": (True, False),
    "packed": (True, True),
    "padded": (False, False),
}


def trainer_for(cfg, model_dir: Path, tokenizer, rows: list[dict], name: str, out: Path):
    """An SFTTrainer built the way the train stage builds it, with its batches and optimizer."""
    import dataclasses

    import torch

    from src.models.loading import load_causal_model
    from src.train.options import collation
    from src.train.sft import build_trainer

    padding_free, packing = COLLATIONS[name]
    cfg = dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, padding_free=padding_free, packing=packing))
    coll = collation(cfg.training, [len(r["input_ids"]) for r in rows], "cpu")
    model = load_causal_model(str(model_dir), cfg, "cpu", torch.float32, quantize=False)
    trainer = build_trainer(cfg, model, tokenizer, rows, None, out / name, "cpu", torch.float32, coll, [])
    batches = list(trainer.get_train_dataloader())
    optimizer = torch.optim.AdamW([p for p in trainer.model.parameters() if p.requires_grad], lr=1e-4)
    return trainer, batches, optimizer, coll


def useful_tokens(batch: dict, pad_id: int) -> int:
    """Non-pad tokens of a batch (a packed batch has no padding)."""
    if "attention_mask" in batch:
        return int(batch["attention_mask"].sum())
    return int((batch["input_ids"] != pad_id).sum())


def timed_round(setup: tuple, start: int, tokens: int, pad_id: int) -> float:
    """Useful tokens per second over consecutive batches from ``start`` until ``tokens`` went through."""
    trainer, batches, optimizer, _ = setup
    done, i = 0, start
    began = time.perf_counter()
    while done < tokens:
        batch = dict(batches[i % len(batches)])
        i += 1
        done += useful_tokens(batch, pad_id)
        loss = trainer.compute_loss(trainer.model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return done / (time.perf_counter() - began)


def rotate(setups: dict, rounds: int, tokens: int, pad_id: int) -> dict[str, list[float]]:
    """Useful tokens/s per collation and round; each round starts with the next collation."""
    for name in setups:  # warm-up: first calls allocate and pick kernels
        timed_round(setups[name], 0, tokens // 4, pad_id)
    rates: dict[str, list[float]] = {name: [] for name in setups}
    names = list(setups)
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            rates[name].append(timed_round(setups[name], 7 * r, tokens, pad_id))
    return rates


def main() -> None:
    """Build the three trainers, time them in rotating rounds, print the figures."""
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="CSV with fname, dialogue, summary")
    parser.add_argument("--batch-size", type=int, default=4, help="training.per_device_train_batch_size")
    parser.add_argument("--rounds", type=int, default=9, help="alternating timed rounds per collation")
    parser.add_argument("--tokens", type=int, default=4000, help="useful tokens per timed round")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 keeps a shared machine's noise low)")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. prompt.num_fewshot=1")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {machine(args.threads)}")
    with tempfile.TemporaryDirectory() as tmp:
        cfg, model_dir, tokenizer, rows = build(args.data, Path(tmp), args.batch_size, args.overrides)
        lengths = [len(r["input_ids"]) for r in rows]
        print(f"data: {args.data} -> {len(rows)} examples, tokens per example min {min(lengths)} "
              f"mean {statistics.mean(lengths):.0f} max {max(lengths)} (tiny byte-level BPE, prompt builder)")
        setups = {name: trainer_for(cfg, model_dir, tokenizer, rows, name, Path(tmp)) for name in COLLATIONS}
        pad_id = tokenizer.pad_token_id
        for name, (_, batches, _, coll) in setups.items():
            share = sum(useful_tokens(b, pad_id) for b in batches) / sum(b["input_ids"].numel() for b in batches)
            print(f"{name}: {coll.describe(cfg.training)}; {len(batches)} micro-batches, {share:.0%} of computed tokens useful")
        rates = rotate(setups, args.rounds, args.tokens, pad_id)
    for name, values in rates.items():
        ratios = [x / y for x, y in zip(values, rates["padded"])]
        print(f"{name}: useful tokens/s median {statistics.median(values):,.0f}, best {max(values):,.0f} over "
              f"{args.rounds} rounds of >= {args.tokens} tokens; vs padded median {statistics.median(ratios):.2f}x "
              f"(rounds {min(ratios):.2f}-{max(ratios):.2f})")
    ratios = [x / y for x, y in zip(rates["default"], rates["padded"])]
    print("measured: forward + backward + an AdamW step (LoRA) after every micro-batch (training steps once per "
          "accumulation, so the default's extra micro-batches cost it more here); the project default "
          f"(padding-free) / padded useful tokens per second, median of {args.rounds} rotating rounds")
    print(f"{statistics.median(ratios):.1f}x")


if __name__ == "__main__":
    main()
