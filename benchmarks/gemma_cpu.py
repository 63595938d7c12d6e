"""Gemma 3 270M (``model.name=gemma-3-270m``) on CPU: training speed, generation speed, prompt format.

Usage:
  python -m benchmarks.gemma_cpu train    [--variants base,full_logits,eager,bf16,no_dropout,bf16_no_dropout,threads1] [--steps 8]
  python -m benchmarks.gemma_cpu generate [--threads-list 1,2] [--dialogues 8] [--max-new-tokens 48]
  python -m benchmarks.gemma_cpu format   [--eval-rows 30] [--train-steps 40] [key.sub=value ...]
  python -m benchmarks.gemma_cpu sweep    --grid learning_rate=1e-4,3e-4,1e-3 [--train-steps 40]

Every mode reads ``--data`` (default ../shared/data/dialogsum-ko/dev.csv), renders it with the
project's prompt builder, and builds the model and the SFTTrainer with the train stage's own
functions (``load_for_training``, ``build_trainer``), so what is timed is what the pipeline runs.

- ``train``: one training step = forward + backward of one example (the CPU collation:
  padding-free, one example per micro-batch) + an AdamW step of the LoRA weights. The same
  examples in the same order for every variant; variants take turns step by step so load from
  other processes hits all alike. Reports s/step, tokens/s and the loss of the very first example
  before any update (the same weights and input for all variants: equal losses mean the
  variants compute the same thing).
- ``generate``: greedy generation through ``Predictor`` on the base model, tokens/s per thread count.
- ``format``: ``### Instruction`` format vs Gemma's ``<start_of_turn>`` turn format, each scored
  with Kiwi ROUGE on ``--eval-rows`` held-out rows zero-shot, then after ``--train-steps`` LoRA steps.
- ``sweep``: held-out teacher-forced loss after ``--train-steps`` steps for each value of one
  ``training.*`` key (e.g. the learning rate or the LoRA rank).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import tempfile
import sys
import time
from pathlib import Path
from typing import Any

from src.config import load_config
from src.models.embedded import GEMMA_TURN_TEMPLATE

REPO_ROOT = Path(__file__).resolve().parents[1]

PRESET = REPO_ROOT / "configs" / "models" / "gemma-3-270m.yaml"
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "dialogsum-ko" / "dev.csv"
VARIANTS = {  # name -> config overrides on top of the preset
    "base": [],
    "full_logits": ["training.label_logits_only=false"],
    "eager": ["model.attn_implementation=eager"],
    "sdpa": ["model.attn_implementation=sdpa"],
    "bf16": ["training.compute_dtype=bfloat16"],
    "no_dropout": ["training.lora.dropout=0"],
    "bf16_no_dropout": ["training.compute_dtype=bfloat16", "training.lora.dropout=0"],
    "threads1": [],
    "threads2": [],
}


def machine() -> str:
    """One line naming the machine the numbers come from."""
    import torch
    import transformers
    import trl

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{platform.node()} | {platform.platform()} | {os.cpu_count()} CPUs (load average {load}) | "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads) | transformers {transformers.__version__}"
            f" | trl {trl.__version__} | {time.strftime('%Y-%m-%d %H:%M %Z')}")


def make_cfg(overrides: list[str]) -> Any:
    """The Gemma preset (or the defaults plus the alias when it is absent) with ``overrides``."""
    base = [] if PRESET.is_file() else ["model.name=gemma-3-270m", "training.use_qlora=false"]
    return load_config(PRESET if PRESET.is_file() else None,
                       base + ["model.device=cpu", "training.report_to=none", "training.logging_steps=1000",
                               "training.save_steps=100000", *overrides])


def load_rows(data: Path, n: int, offset: int = 0) -> Any:
    """``n`` rows of ``data`` from ``offset`` after a seeded shuffle (eval and train rows never overlap)."""
    import pandas as pd

    df = pd.read_csv(data).sample(frac=1.0, random_state=0).reset_index(drop=True)
    return df.iloc[offset:offset + n].reset_index(drop=True)


def tokenizer_and_builder(cfg: Any, model_path: str, fmt: str | None = None, padding_side: str = "right") -> tuple:
    """The tokenizer (with the turn template when ``fmt == 'turn'``) and the prompt builder on it."""
    from src.prompting.builder import PromptBuilder
    from src.models.loading import load_tokenizer

    tok = load_tokenizer(model_path, cfg, padding_side=padding_side)
    prompt = cfg.prompt
    if fmt is not None:  # the format asked for wins over prompt.use_chat_template
        tok.chat_template = GEMMA_TURN_TEMPLATE if fmt == "turn" else None
        prompt = dataclasses.replace(prompt, use_chat_template=fmt == "turn")
    builder = PromptBuilder(tok, prompt)
    assert builder.use_chat == (fmt == "turn") or fmt is None, "the prompt format was not applied"
    return tok, builder


def trainer_for(cfg: Any, model_path: str, tok: Any, rows: list[dict], out: Path) -> Any:
    """An SFTTrainer built exactly as the train stage builds it."""
    from src.models.device import compute_dtype
    from src.train.options import collation
    from src.train.sft import build_trainer, load_for_training

    dtype = compute_dtype(cfg.training.compute_dtype, "cpu")
    model = load_for_training(cfg, model_path, "cpu", dtype)
    coll = collation(cfg.training, [len(r["input_ids"]) for r in rows], "cpu")
    return build_trainer(cfg, model, tok, rows, None, out, "cpu", dtype, coll, [])


def encode(cfg: Any, builder: Any, df: Any) -> list[dict]:
    """Training rows (prompt + summary ids, labels masked on the prompt) for ``df``."""
    from src.prompting.fewshot import ShotSelector
    from src.train.sft import encode_frame

    return encode_frame(builder, ShotSelector(df, cfg.prompt, cfg.seed), df, cfg, False).rows


# ---------------------------------------------------------------- train speed


@dataclasses.dataclass
class Setup:
    """One variant's trainer, its fixed micro-batches and optimizer, and what was measured."""

    trainer: Any
    batches: list[dict]
    optimizer: Any
    threads: int
    first_loss: float = 0.0
    after_loss: float = 0.0  # the same example's loss after the timed steps
    seconds: list[float] = dataclasses.field(default_factory=list)
    tokens: list[int] = dataclasses.field(default_factory=list)


def build_setup(name: str, args: argparse.Namespace, model_path: str, df: Any, out: Path) -> Setup:
    """A variant: its config, trainer and one micro-batch per example, in a fixed order."""
    import torch

    cfg = make_cfg(VARIANTS[name] + args.overrides)
    tok, builder = tokenizer_and_builder(cfg, model_path, args.format)
    rows = encode(cfg, builder, df)
    trainer = trainer_for(cfg, model_path, tok, rows, out / name)
    collate = trainer.data_collator
    batches = [collate([{"input_ids": r["input_ids"], "labels": r["labels"]}]) for r in rows]
    optimizer = torch.optim.AdamW([p for p in trainer.model.parameters() if p.requires_grad], lr=cfg.training.learning_rate)
    threads = 1 if name == "threads1" else 2 if name == "threads2" else args.threads
    return Setup(trainer, batches, optimizer, threads)


def train_step(setup: Setup, batch: dict) -> float:
    """One optimizer step on one micro-batch, through Trainer.training_step (autocast as configured)."""
    trainer = setup.trainer
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train(); one micro-batch per step here
    loss = trainer.training_step(trainer.model, dict(batch), num_items_in_batch=None)
    setup.optimizer.step()
    setup.optimizer.zero_grad()
    return float(loss)


def first_loss(setup: Setup) -> float:
    """The loss of the first example before any update, without gradients."""
    import torch

    trainer = setup.trainer
    trainer.model.eval()
    with torch.no_grad(), trainer.compute_loss_context_manager():
        return float(trainer.compute_loss(trainer.model, dict(setup.batches[0])))


def run_train(args: argparse.Namespace) -> None:
    """Time the variants step by step, interleaved (A B C A B C ...), on the same examples."""
    import torch

    from src.models.embedded import resolve_embedded

    model_path = resolve_embedded("gemma-3-270m", REPO_ROOT / "model")
    df = load_rows(args.data, args.steps + 1, offset=args.eval_rows)
    names = args.variants.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        setups = {n: build_setup(n, args, model_path, df, Path(tmp)) for n in names}
        for name, s in setups.items():
            torch.set_num_threads(s.threads)
            s.first_loss = first_loss(s)
            train_step(s, s.batches[-1])  # warm-up on the spare example: allocation, kernel choice
        # one step per variant in turn: load from other processes drifts over minutes, so every
        # variant sees about the same load; the rotation changes who goes first in each cycle
        for i in range(args.steps):
            for name in names[i % len(names):] + names[:i % len(names)]:
                s = setups[name]
                torch.set_num_threads(s.threads)
                start = time.perf_counter()
                train_step(s, s.batches[i])
                s.seconds.append(time.perf_counter() - start)
                s.tokens.append(int(s.batches[i]["input_ids"].numel()))
            print(f"step {i + 1}/{args.steps}: " + ", ".join(f"{n} {setups[n].seconds[-1]:.2f} s" for n in names)
                  + f" ({s.tokens[-1]} tokens; load average {os.getloadavg()[0]:.2f})", flush=True)
        for name, s in setups.items():
            torch.set_num_threads(s.threads)
            s.after_loss = first_loss(s)
    for name, s in setups.items():
        per_step = statistics.median(s.seconds)
        print(f"{name}: {s.threads} thread(s), median {per_step:.2f} s/step (min {min(s.seconds):.2f}, max "
              f"{max(s.seconds):.2f}) over {len(s.seconds)} steps, {sum(s.tokens) / sum(s.seconds):.0f} tokens/s "
              f"(mean {statistics.mean(s.tokens):.0f} tokens/example), first-example loss {s.first_loss:.6f}, "
              f"after the steps {s.after_loss:.6f}")
    ref = setups[names[0]]
    for name, s in list(setups.items())[1:]:
        paired = [a / b for a, b in zip(s.seconds, ref.seconds)]  # same example, adjacent in time
        print(f"{name} / {names[0]} step time: median {statistics.median(paired):.2f}x (steps {min(paired):.2f}-"
              f"{max(paired):.2f}); first-example loss difference {abs(s.first_loss - ref.first_loss):.2e}, "
              f"after the steps {abs(s.after_loss - ref.after_loss):.2e}")


# ---------------------------------------------------------------- generation speed


def run_generate(args: argparse.Namespace) -> None:
    """Greedy generation tokens/s of the base model for each thread count, alternating."""
    import torch

    from src.inference.predictor import Predictor
    from src.models.embedded import resolve_embedded
    from src.models.loading import load_causal_model

    model_path = resolve_embedded("gemma-3-270m", REPO_ROOT / "model")
    cfg = make_cfg([f"inference.max_new_tokens={args.max_new_tokens}", f"inference.batch_size={args.batch_size}",
                    *args.overrides])
    tok, builder = tokenizer_and_builder(cfg, model_path, args.format, padding_side="left")
    model = load_causal_model(model_path, cfg, "cpu", torch.float32, quantize=False).eval()
    df = load_rows(args.data, args.dialogues)
    threads = [int(t) for t in args.threads_list.split(",")]
    rates: dict[int, list[float]] = {t: [] for t in threads}
    for r in range(args.rounds):
        for t in threads[r % len(threads):] + threads[:r % len(threads)]:
            torch.set_num_threads(t)
            pred = Predictor(model, tok, builder, None, cfg.inference, "cpu")
            pred.predict_batch(df["dialogue"].tolist())
            rates[t].append(pred.stats.generated_tokens / pred.stats.seconds)
            print(f"threads {t}: {rates[t][-1]:.1f} generated tokens/s (load average {os.getloadavg()[0]:.2f})",
                  flush=True)
    for t, values in rates.items():
        print(f"threads {t}: median {statistics.median(values):.1f} generated tokens/s over {len(values)} rounds of "
              f"{args.dialogues} dialogues, batch {args.batch_size}, max_new_tokens {args.max_new_tokens}")


# ---------------------------------------------------------------- prompt format and sweeps


def generate_scores(cfg: Any, model: Any, tok_path: str, fmt: str, df: Any) -> dict:
    """Kiwi ROUGE of greedy summaries of ``df`` in format ``fmt``, plus generation stats."""
    from src.evaluation.scoring import score_texts
    from src.inference.predictor import Predictor

    tok, builder = tokenizer_and_builder(cfg, tok_path, fmt, padding_side="left")
    pred = Predictor(model, tok, builder, None, cfg.inference, "cpu")
    outputs = pred.predict_batch(df["dialogue"].tolist())
    scores = score_texts(outputs, [[s] for s in df["summary"]], tokenizer=cfg.evaluation.tokenizer)
    return {**scores, "example": outputs[0][:120], **{k: v for k, v in pred.stats.as_dict().items()
                                                      if k in ("hit_max_new_tokens", "empty_outputs", "seconds")}}


def held_out_loss(trainer: Any, rows: list[dict]) -> float:
    """Token-mean teacher-forced loss on ``rows`` (the summary tokens only)."""
    import torch

    model = trainer.model.eval()
    total, count = 0.0, 0
    with torch.no_grad(), trainer.compute_loss_context_manager():
        for r in rows:
            batch = trainer.data_collator([{"input_ids": r["input_ids"], "labels": r["labels"]}])
            n = sum(t != -100 for t in r["labels"][1:])
            total += float(trainer.compute_loss(model, batch)) * n
            count += n
    return total / max(count, 1)


def train_and_score(cfg: Any, model_path: str, fmt: str, train_df: Any, eval_df: Any, out: Path,
                    generate: bool) -> dict:
    """Train ``cfg.training.max_steps`` LoRA steps in format ``fmt``; held-out loss and (optionally) ROUGE."""
    tok, builder = tokenizer_and_builder(cfg, model_path, fmt)
    trainer = trainer_for(cfg, model_path, tok, encode(cfg, builder, train_df), out)
    start = time.perf_counter()
    train_loss = trainer.train().training_loss
    result = {"train_s": round(time.perf_counter() - start, 1), "train_loss": round(train_loss, 4),
              "held_out_loss": round(held_out_loss(trainer, encode(cfg, builder, eval_df)), 4)}
    if generate:
        model = trainer.model.merge_and_unload() if hasattr(trainer.model, "merge_and_unload") else trainer.model
        result.update(generate_scores(cfg, model.eval(), model_path, fmt, eval_df))
    return result


def run_format(args: argparse.Namespace) -> None:
    """Both prompt formats: zero-shot ROUGE on the base model, then ROUGE after a few LoRA steps."""
    import torch

    from src.models.embedded import resolve_embedded
    from src.models.loading import load_causal_model

    model_path = resolve_embedded("gemma-3-270m", REPO_ROOT / "model")
    cfg = make_cfg([f"training.max_steps={args.train_steps}", *args.overrides])
    eval_df = load_rows(args.data, args.eval_rows)
    train_df = load_rows(args.data, args.train_steps * cfg.training.per_device_train_batch_size
                         * cfg.training.gradient_accumulation_steps, offset=args.eval_rows)
    base = load_causal_model(model_path, cfg, "cpu", torch.float32, quantize=False).eval()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in args.formats.split(","):
            zero = generate_scores(cfg, base, model_path, fmt, eval_df)
            print(f"{fmt} zero-shot: {zero}", flush=True)
            trained = train_and_score(cfg, model_path, fmt, train_df, eval_df, Path(tmp) / fmt, generate=True)
            print(f"{fmt} after {args.train_steps} steps on {len(train_df)} rows: {trained}", flush=True)
            results[fmt] = (zero["final"], trained["final"], trained["held_out_loss"])
    for fmt, (zero, trained, loss) in results.items():
        print(f"{fmt}: ROUGE final zero-shot {zero:.2f}, after {args.train_steps} LoRA steps {trained:.2f} "
              f"(held-out loss {loss:.4f}) on {args.eval_rows} held-out rows, kiwi")


def run_sweep(args: argparse.Namespace) -> None:
    """Held-out loss after the same few steps for each value of one ``training.*`` key."""
    from src.models.embedded import resolve_embedded

    model_path = resolve_embedded("gemma-3-270m", REPO_ROOT / "model")
    key, values = args.grid.split("=", 1)
    eval_df = load_rows(args.data, args.eval_rows)
    with tempfile.TemporaryDirectory() as tmp:
        for value in values.split(","):
            extra = [f"training.{k}={v}" for k, v in (kv.split(":") for kv in value.split("+"))] if ":" in value \
                else [f"training.{key}={value}"]
            cfg = make_cfg([f"training.max_steps={args.train_steps}", *extra, *args.overrides])
            n = args.train_steps * cfg.training.per_device_train_batch_size * cfg.training.gradient_accumulation_steps
            train_df = load_rows(args.data, n, offset=args.eval_rows)
            res = train_and_score(cfg, model_path, args.format, train_df, eval_df, Path(tmp) / value, generate=False)
            print(f"{' '.join(extra)}: {res} (load average {os.getloadavg()[0]:.2f})", flush=True)


def main() -> None:
    """Parse the mode and its options, print the machine, run the mode."""
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("train", "generate", "format", "sweep"))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (train variants threads1/threads2 set their own)")
    parser.add_argument("--variants", default="base,full_logits,eager,bf16")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per variant (interleaved)")
    parser.add_argument("--rounds", type=int, default=2, help="generate: alternating rounds per thread count")
    parser.add_argument("--format", default=None, choices=(None, "instruction", "turn"),
                        help="prompt format (default: as the config says)")
    parser.add_argument("--formats", default="instruction,turn")
    parser.add_argument("--threads-list", default="1,2")
    parser.add_argument("--dialogues", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--eval-rows", type=int, default=30, help="held-out rows (the first of the shuffled data)")
    parser.add_argument("--train-steps", type=int, default=40)
    parser.add_argument("--grid", default="learning_rate=1e-4,3e-4,1e-3")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. prompt.num_fewshot=1")
    args = parser.parse_intermixed_args()  # overrides may follow the options
    torch.set_num_threads(args.threads)
    print(f"machine: {machine()}", flush=True)
    {"train": run_train, "generate": run_generate, "format": run_format, "sweep": run_sweep}[args.mode](args)
    print(f"done: load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    from src.utils.errors import UserError

    try:
        main()
    except UserError as err:  # e.g. the model package is missing: one line saying what to run, no traceback
        sys.exit("".join(f"error: {problem}\n" for problem in err.problems).rstrip("\n"))
