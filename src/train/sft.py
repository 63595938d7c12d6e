"""Causal-LM fine-tuning: TRL SFTTrainer on prompt/completion examples, QLoRA or LoRA or full.

Examples are tokenized here with the shared prompt builder (prompt ids exactly as at inference,
labels -100 on the prompt, completion = summary + end-of-turn), so TRL only collates and trains.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from src.config import Config, to_dict
from src.data.prompt import PromptBuilder, ShotSelector
from src.errors import UserError
from src.models.loading import (compute_dtype, count_parameters, load_causal_model, load_tokenizer,
                                pick_device)

log = logging.getLogger(__name__)


@dataclass
class EncodedSet:
    """Tokenized examples plus what the length budget did."""

    rows: list[dict[str, Any]]
    trimmed: int
    dropped_shots: int
    long_summaries: int


def encode_frame(builder: PromptBuilder, selector: ShotSelector, df: pd.DataFrame, cfg: Config,
                 variants: bool) -> EncodedSet:
    """Render every (dialogue, summary) row; with ``variants`` once per instruction phrasing."""
    instructions = list(cfg.prompt.instruction_variants) if variants else [cfg.prompt.instruction]
    rows, trimmed, dropped, long_sum = [], 0, 0, 0
    for fname, dialogue, summary in zip(df["fname"].astype(str), df["dialogue"].astype(str), df["summary"].astype(str)):
        shots = selector.select(fname)
        for instruction in instructions:
            ex = builder.encode_example(dialogue, summary, shots, instruction)
            trimmed += ex["trimmed"]
            dropped += ex["dropped_shots"] > 0
            long_sum += len(ex["input_ids"]) - ex["prompt_len"] > cfg.prompt.max_summary_tokens
            rows.append({"input_ids": ex["input_ids"], "labels": ex["labels"]})
    return EncodedSet(rows, trimmed, dropped, long_sum)


def preflight(rows: list[dict[str, Any]], stop_ids: list[int], name: str) -> None:
    """Every example must train its stop token and have at least one label; fail clearly otherwise."""
    fully_masked = [i for i, r in enumerate(rows) if all(t == -100 for t in r["labels"])]
    no_stop = [i for i, r in enumerate(rows) if not any(t in stop_ids for t in r["labels"] if t != -100)]
    problems = []
    if fully_masked:
        problems.append(f"{name}: {len(fully_masked)} example(s) have no label at all (first: #{fully_masked[0]}); "
                        "raise prompt.max_prompt_tokens or check the summaries")
    if no_stop:
        problems.append(f"{name}: {len(no_stop)} example(s) never train the stop token {stop_ids} "
                        f"(first: #{no_stop[0]}); the model would not learn to stop: check the chat template's EOS")
    if problems:
        raise UserError(*problems)


def latest_checkpoint(model_dir: Path) -> Optional[Path]:
    """The newest ``checkpoint-N`` folder that holds trainer state, or None."""
    ckpts = [p for p in Path(model_dir).glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()
             and (p / "trainer_state.json").is_file()]
    return max(ckpts, key=lambda p: int(p.name.split("-")[-1])) if ckpts else None


def peft_config(cfg: Config) -> Any:
    """LoraConfig from training.lora, or None for full fine-tuning."""
    if not cfg.training.use_lora:
        return None
    from peft import LoraConfig

    lc = cfg.training.lora
    targets = lc.target_modules if lc.target_modules == "all-linear" else [m.strip() for m in lc.target_modules.split(",")]
    return LoraConfig(r=lc.r, lora_alpha=lc.alpha, lora_dropout=lc.dropout, target_modules=targets, bias=lc.bias,
                      use_dora=lc.use_dora, use_rslora=lc.use_rslora, task_type="CAUSAL_LM",
                      modules_to_save=list(lc.modules_to_save) or None)


def sft_config(cfg: Config, out_dir: Path, device: str, dtype: Any, has_eval: bool, max_length: int) -> Any:
    """SFTConfig mapped from training.* onto the installed TRL/transformers argument names."""
    import torch
    from trl import SFTConfig

    t = cfg.training
    optim = t.optim if t.optim != "auto" else ("paged_adamw_8bit" if device == "cuda" else "adamw_torch")
    if t.optim == "auto" and device != "cuda":
        log.info("optimizer: adamw_torch (paged 8-bit AdamW needs CUDA)")
    eval_every = t.eval_steps or None
    kwargs = dict(
        output_dir=str(out_dir), num_train_epochs=t.num_train_epochs, max_steps=t.max_steps,
        learning_rate=t.learning_rate, per_device_train_batch_size=t.per_device_train_batch_size,
        per_device_eval_batch_size=t.per_device_eval_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps, warmup_steps=t.warmup_fraction,
        lr_scheduler_type=t.lr_scheduler_type, weight_decay=t.weight_decay, max_grad_norm=t.max_grad_norm,
        optim=optim, logging_steps=t.logging_steps, save_strategy="steps", save_steps=t.save_steps,
        save_total_limit=t.save_total_limit, eval_strategy=("steps" if eval_every else "epoch") if has_eval else "no",
        eval_steps=eval_every, seed=cfg.seed, report_to=[] if t.report_to == "none" else [t.report_to],
        bf16=dtype == torch.bfloat16, fp16=dtype == torch.float16, use_cpu=device == "cpu",
        gradient_checkpointing=t.gradient_checkpointing and device != "cpu", max_length=max_length,
        packing=t.packing, neftune_noise_alpha=t.neftune_noise_alpha, dataset_num_proc=None,
        remove_unused_columns=True, logging_dir=None,
    )
    kwargs.pop("logging_dir")
    kwargs.update(t.extra)
    return SFTConfig(**kwargs)


def train_causal(cfg: Config, model_path: str, train_df: pd.DataFrame, dev_df: Optional[pd.DataFrame],
                 out_dir: Path, resume: bool) -> dict[str, Any]:
    """Fine-tune and save ``out_dir/final_checkpoint``; return the manifest fields."""
    from datasets import Dataset
    from trl import SFTTrainer

    device = pick_device(cfg.model.device)
    dtype = compute_dtype(cfg.training.compute_dtype, device)
    tokenizer = load_tokenizer(model_path, cfg)
    builder = PromptBuilder(tokenizer, cfg.prompt)
    selector = ShotSelector(train_df, cfg.prompt, cfg.seed)
    train_set = encode_frame(builder, selector, train_df, cfg, cfg.training.instruction_augmentation)
    preflight(train_set.rows, builder.stop_token_ids, "training set")
    log.info("training examples: %d (%d prompts trimmed, %d lost few-shot examples, %d summaries over %d tokens)",
             len(train_set.rows), train_set.trimmed, train_set.dropped_shots, train_set.long_summaries,
             cfg.prompt.max_summary_tokens)
    eval_ds = None
    if dev_df is not None and len(dev_df):
        eval_ds = Dataset.from_list(encode_frame(builder, selector, dev_df, cfg, False).rows)
    max_length = max(len(r["input_ids"]) for r in train_set.rows)
    model = load_causal_model(model_path, cfg, device, dtype, quantize=cfg.training.use_qlora)
    args = sft_config(cfg, out_dir, device, dtype, eval_ds is not None, max_length)
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(train_set.rows),
                         eval_dataset=eval_ds, processing_class=tokenizer, peft_config=peft_config(cfg))
    trainable, total = count_parameters(trainer.model)
    log.info("parameters: %s trainable of %s (%.2f%%), compute dtype %s, device %s",
             f"{trainable:,}", f"{total:,}", 100 * trainable / max(total, 1), str(dtype).split(".")[-1], device)
    ckpt = latest_checkpoint(out_dir) if resume else None
    if ckpt:
        log.info("resuming training from %s", ckpt)
    result = trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    final = save_final(trainer, tokenizer, cfg, out_dir)
    return {"global_step": trainer.state.global_step, "resumed_from": str(ckpt) if ckpt else None,
            "world_size": trainer.args.world_size, "train_loss": result.training_loss,
            "examples": len(train_set.rows), "trimmed_prompts": train_set.trimmed,
            "dropped_fewshot": train_set.dropped_shots, "trainable_params": trainable, "total_params": total,
            "final_checkpoint": str(final)}


def save_final(trainer: Any, tokenizer: Any, cfg: Config, out_dir: Path) -> Path:
    """Adapter (or full model), tokenizer and resolved config in ``final_checkpoint/``."""
    import yaml

    final = Path(out_dir) / "final_checkpoint"
    trainer.save_model(str(final))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(final))
        (final / "pipeline_config.yaml").write_text(
            yaml.safe_dump(to_dict(cfg), allow_unicode=True, sort_keys=False), encoding="utf-8")
    return final
