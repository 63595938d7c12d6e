"""Batched vs one-at-a-time generation through the project's Predictor: tiny Llama, CPU, 64 dialogues.

    .venv/bin/python -m benchmarks.inference_throughput [--n 64] [--batch-size 16] [--max-new-tokens 32] [--threads 1]

The model is the --debug-small tiny Llama with random weights: greedy outputs do not depend on the
batch size, so both modes generate the same tokens and the comparison is like for like. Prints each
mode's dialogues/s and generated tokens/s, whether the outputs are identical, and last the speed-up
as ``N.Nx``.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

DEBUG = REPO / "data" / "debug"


def load_dialogues(n: int) -> tuple[list[str], list[str]]:
    """The first ``n`` dialogues of the debug set (train, dev, test) and every text for the tokenizer."""
    import pandas as pd

    frames = [pd.read_csv(DEBUG / f"{s}.csv", dtype=str) for s in ("train", "dev", "test")]
    dialogues = [d for df in frames for d in df["dialogue"]]
    if len(dialogues) < n:
        raise SystemExit(f"only {len(dialogues)} dialogues in {DEBUG}; pass --n {len(dialogues)} or fewer")
    texts = [t for df in frames for col in ("dialogue", "summary") if col in df for t in df[col]]
    return dialogues[:n], texts


def build_predictor(model_dir: Path, texts: list[str], args: argparse.Namespace):
    """The tiny model and the project's Predictor over it (float32, CPU, no few-shot)."""
    import torch
    from transformers import AutoModelForCausalLM

    from src.config import Config, InferenceConfig, PromptConfig
    from src.inference.predictor import Predictor
    from src.models.debug import build_tiny_causal
    from src.models.loading import load_tokenizer
    from src.prompting.builder import PromptBuilder

    path = build_tiny_causal(model_dir, texts, seed=0)
    tokenizer = load_tokenizer(str(path), Config(), padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()
    builder = PromptBuilder(tokenizer, PromptConfig(num_fewshot=0))
    gen = InferenceConfig(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
    return Predictor(model, tokenizer, builder, None, gen, "cpu")


def timed(predictor, dialogues: list[str], batch_size: int) -> tuple[list[str], float, int]:
    """Outputs, seconds and generated tokens of one predict_batch call."""
    from src.inference.batching import GenerationStats

    predictor.stats = GenerationStats()
    start = time.perf_counter()
    out = predictor.predict_batch(dialogues, batch_size=batch_size)
    return out, time.perf_counter() - start, predictor.stats.generated_tokens


def main() -> None:
    """Measure both modes and print the figures, the speed-up last."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=64, help="dialogues")
    p.add_argument("--batch-size", type=int, default=16, help="prompts per generate() call in the batched mode")
    p.add_argument("--max-new-tokens", type=int, default=32, help="generation cap (random weights run to it)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1: steadiest on a shared machine; both modes get the same)")
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    dialogues, texts = load_dialogues(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        predictor = build_predictor(Path(tmp) / "tiny", texts, args)
        predictor.predict_batch(dialogues[:2], batch_size=2)  # warm-up: first-call allocations
        single, t1, tok1 = timed(predictor, dialogues, 1)
        batched, tb, tokb = timed(predictor, dialogues, args.batch_size)
    print(f"tiny Llama (hidden 64, 2 layers, random weights), CPU, {args.threads} thread(s), {args.n} dialogues, "
          f"max_new_tokens {args.max_new_tokens}")
    print(f"one at a time: {t1:.2f} s, {args.n / t1:.1f} dialogues/s, {tok1 / t1:.0f} generated tokens/s")
    print(f"batched (batch_size {args.batch_size}): {tb:.2f} s, {args.n / tb:.1f} dialogues/s, "
          f"{tokb / tb:.0f} generated tokens/s")
    print(f"identical outputs: {single == batched}")
    print(f"{t1 / tb:.1f}x")


if __name__ == "__main__":
    main()
