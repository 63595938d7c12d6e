"""QLoRA training throughput on a real model shape (random weights: speed does not depend on values).

    python -m benchmarks.gpu_train --shape solar-10.7b --data ../shared/data/dialogsum-ko/dev.csv
    python -m benchmarks.gpu_train --smoke        # 2-layer shape on CPU: checks the code path only
    python -m benchmarks.gpu_train --smoke --rows 16 --steps 1 --warmup 1 --out FILE.json   # the suite's --tiny

For each collation (plain padded batches, the project's default padding-free batches, and the
default with Liger kernels when ``liger_kernel`` is installed) it trains a few steps through the
project's own training code and reports useful (non-pad) tokens/s, peak GPU memory and MFU
(6 x parameters FLOPs per token: forward, activation gradients and the gradient-checkpointing
recompute). Then it projects the wall time of the real job: 3 epochs over 12,457 dialogues at
the token lengths of the given dialogue set rendered with the model's tokenizer and prompt.
Without a CUDA GPU (and without --smoke) it prints why and exits 0. Last line: default / padded.
``--out`` also writes every figure as JSON; ``--rows`` trains on the first N dialogues only (the
projection still uses the lengths of those rows).
"""
from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DIALSUM_SHARED") or REPO.parent / "shared")  # tokenizers and data (../shared by default)

SHAPES = {  # published configs of the seed models (shapes only)
    "solar-10.7b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=48, num_attention_heads=32,
                        num_key_value_heads=8, vocab_size=32000, max_position_embeddings=4096,
                        tie_word_embeddings=False, tokenizer="solar-10.7b-instruct", max_prompt_tokens=1536),
    "llama-3.2-3b": dict(hidden_size=3072, intermediate_size=8192, num_hidden_layers=28, num_attention_heads=24,
                         num_key_value_heads=8, vocab_size=128256, max_position_embeddings=8192,
                         tie_word_embeddings=True, rope_theta=500000.0, tokenizer="llama-3.2-instruct",
                         max_prompt_tokens=1024),
}
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}
REAL_JOB_DIALOGUES, REAL_JOB_EPOCHS = 12_457, 3
log = logging.getLogger("gpu_train")


def build_model(shape: str, folder: Path, smoke: bool) -> Path:
    """Random-init model of the shape (bf16) and the real tokenizer, saved once under ``folder``."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    spec = dict(SHAPES[shape])
    tok_name, _ = spec.pop("tokenizer"), spec.pop("max_prompt_tokens")
    if smoke:
        spec.update(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2)
    if (folder / "config.json").is_file():
        return folder
    torch.set_default_dtype(torch.bfloat16)  # a 10.7B model in fp32 would need 43 GB of RAM first
    with torch.device("cuda" if torch.cuda.is_available() and not smoke else "cpu"):  # GPU init: seconds, not minutes
        model = LlamaForCausalLM(LlamaConfig(**spec))
    torch.set_default_dtype(torch.float32)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(SHARED / "tokenizers" / tok_name).save_pretrained(folder)
    return folder


class StepTimer:
    """Trainer callback: wall time and non-pad tokens after the warm-up steps."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.tokens0, self.result = warmup, None, 0, {}

    def on_step_end(self, args, state, control, **kwargs):  # noqa: D401 - TrainerCallback hook
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
        if state.global_step == self.warmup:
            self.start, self.tokens0 = time.perf_counter(), state.num_input_tokens_seen
        elif state.global_step == state.max_steps and self.start is not None:
            seconds = time.perf_counter() - self.start
            self.result = {"tokens_per_s": (state.num_input_tokens_seen - self.tokens0) / seconds,
                           "seconds": seconds, "steps": state.global_step - self.warmup}

    def __getattr__(self, name):  # the other TrainerCallback hooks do nothing
        if name.startswith("on_"):
            return lambda *a, **k: None
        raise AttributeError(name)


def make_config(model_dir: Path, shape: str, steps: int, device: str, overrides: list[str]):
    """The project's default config with this model, a fixed step count and no checkpoints."""
    from src.config import load_config

    return load_config(None, [f"model.name={model_dir}", f"model.device={device}", f"training.max_steps={steps}",
                              "training.save_steps=1000000", "training.logging_steps=1", "training.report_to=none",
                              "training.extra={include_num_input_tokens_seen: non_padding, save_strategy: 'no'}",
                              f"prompt.max_prompt_tokens={SHAPES[shape]['max_prompt_tokens']}", *overrides])


def encode(cfg, data: Path, limit: int | None = None):
    """Training rows from the real dialogues with the model's tokenizer and the project's prompt."""
    import pandas as pd

    from src.models.loading import load_tokenizer
    from src.prompting.builder import PromptBuilder
    from src.prompting.fewshot import ShotSelector
    from src.train.sft import encode_frame

    df = pd.read_csv(data, dtype=str, keep_default_na=False)
    df = df.head(limit) if limit else df
    tok = load_tokenizer(cfg.model.name, cfg)
    builder = PromptBuilder(tok, cfg.prompt)
    rows = encode_frame(builder, ShotSelector(df, cfg.prompt, cfg.seed), df, cfg, False).rows
    return tok, rows


def run_variant(cfg, tok, rows, out: Path, warmup: int) -> dict:
    """Train ``training.max_steps`` steps through the project's trainer; time the steps after warm-up."""
    import torch

    from src.models.device import compute_dtype, pick_device
    from src.train.options import collation
    from src.train.sft import build_trainer, load_for_training, parameter_counts

    device = pick_device(cfg.model.device)
    dtype = compute_dtype(cfg.training.compute_dtype, device)
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    model = load_for_training(cfg, cfg.model.name, device, dtype)
    coll = collation(cfg.training, [len(r["input_ids"]) for r in rows], device)
    timer = StepTimer(warmup)
    trainer = build_trainer(cfg, model, tok, rows, None, out, device, dtype, coll, [timer])
    _, total = parameter_counts(trainer.model)
    trainer.train()
    result = dict(timer.result, params=total)
    result["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    del trainer, model
    gc.collect()
    return result


def mfu(tokens_per_s: float, params: int) -> float | None:
    """Model FLOPs utilisation against the GPU's dense bf16 peak (None when the GPU is not in the table)."""
    import torch

    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(0)
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
    return 6 * params * tokens_per_s / peak if peak else None


def main() -> int:
    """Run the variants, print one line per variant, the projection, and the ratio last."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", choices=sorted(SHAPES), default="solar-10.7b")
    p.add_argument("--data", default=str(SHARED / "data" / "dialogsum-ko" / "dev.csv"))
    p.add_argument("--steps", type=int, default=12, help="timed optimizer steps per variant")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--work", default="/tmp/gpu_train_bench")
    p.add_argument("--smoke", action="store_true", help="2-layer shape on CPU: checks the code path only")
    p.add_argument("--rows", type=int, default=None, help="encode and train on the first N dialogues only")
    p.add_argument("--out", default=None, help="also write the figures as JSON to this file")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    if not torch.cuda.is_available() and not args.smoke:
        print("gpu_train: skipped: no CUDA GPU visible (run on a GPU machine, or --smoke for the code path)")
        return 0
    device = "cuda" if torch.cuda.is_available() and not args.smoke else "cpu"
    work = Path(args.work) / (args.shape + ("-smoke" if args.smoke else ""))
    model_dir = build_model(args.shape, work / "model", args.smoke)
    machine = torch.cuda.get_device_name(0) if device == "cuda" else f"CPU {platform.processor() or platform.machine()}"
    print(f"machine: {machine}; torch {torch.__version__}; shape {args.shape}{' (smoke: 2 layers)' if args.smoke else ''}")
    base = make_config(model_dir, args.shape, args.warmup + args.steps, device, [])
    tok, rows = encode(base, Path(args.data), args.rows)
    lengths = [len(r["input_ids"]) for r in rows]
    small = ["training.per_device_train_batch_size=1", "training.gradient_accumulation_steps=1"] if args.smoke else []
    variants = {"padded": ["training.padding_free=false", "training.packing=false", *small], "default": small}
    if importlib.util.find_spec("liger_kernel") and device == "cuda":
        variants["default+liger"] = ["training.extra={include_num_input_tokens_seen: non_padding, save_strategy: 'no', "
                                     "use_liger_kernel: true}"]
    results = {}
    for name, extra in variants.items():
        cfg = make_config(model_dir, args.shape, args.warmup + args.steps, device, extra)
        r = results[name] = run_variant(cfg, tok, rows, work / name, args.warmup)
        u = r["mfu"] = mfu(r["tokens_per_s"], r["params"])
        peak = f"{r['peak_gib']:.1f} GiB" if r["peak_gib"] is not None else "n/a"
        print(f"{name}: {r['tokens_per_s']:.0f} useful tokens/s over {r['steps']} steps, peak memory {peak}, "
              f"MFU {'n/a' if u is None else f'{100 * u:.1f}%'}")
    mean_len = statistics.mean(lengths)
    total_tokens = REAL_JOB_EPOCHS * REAL_JOB_DIALOGUES * mean_len
    best = max(results.values(), key=lambda r: r["tokens_per_s"])
    print(f"projected real job ({REAL_JOB_EPOCHS} epochs x {REAL_JOB_DIALOGUES} dialogues x {mean_len:.0f} tokens "
          f"mean from {Path(args.data).name}): {total_tokens / best['tokens_per_s'] / 60:.1f} minutes")
    summary = {"machine": machine, "torch": torch.__version__, "shape": args.shape, "smoke": args.smoke,
               "model_dir": str(model_dir), "results": results, "mean_tokens": mean_len,
               "projected_minutes": total_tokens / best["tokens_per_s"] / 60}
    (work / "results.json").write_text(json.dumps(summary, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(summary, indent=2))
    print(f"{results['default']['tokens_per_s'] / results['padded']['tokens_per_s']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
