"""What the rl stage hands TRL's GRPOTrainer: prompts, generation settings, arguments, the policy to train.

- **Prompts** are the shared builder's token ids (``PromptBuilder.encode_prompt``, the ids SFT trained
  on and inference feeds). TRL tokenizes a text prompt itself (``tokenizer(text=...)``), so each
  prompt is given as the text that call turns back into exactly those ids; a row where no such text
  exists (a tokenizer that appends EOS, a decode that does not round-trip) is left out and counted.
- **Stopping**: the builder's stop ids become the model's ``generation_config.eos_token_id``, which
  TRL both generates with and masks the completion after; **banned ids** (``inference.block_scripts``)
  go in as ``bad_words_ids`` (transformers) or a logit bias (vLLM), as inference does.
- **Arguments**: every name is a field of the installed ``GRPOConfig`` (tests check it); the
  completions of one dialogue are one micro-batch, ``rl.prompts_per_step`` of them one optimizer step.
- **Policy**: the base loaded as the train stage loads it (4-bit under QLoRA), the SFT adapter on it
  trainable, so GRPO continues it; TRL keeps a frozen copy as the KL reference (``rl.beta`` > 0).
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import pandas as pd

from src.config import Config
from src.evaluation.scoring import reference_columns
from src.inference.vllm_engine import INSTALL_HINT, vllm_available
from src.models.loading import read_adapter_config
from src.models.device import pick_device
from src.prompting.builder import PromptBuilder
from src.train.options import check_extra, gradient_checkpointing, optimizer_name, peft_config, report_to
from src.train.sft import load_for_training
from src.utils.errors import UserError

log = logging.getLogger(__name__)



@dataclass
class RlJob:
    """Where GRPO writes, whether it resumes, the fingerprint of what decides it, where it starts."""

    out_dir: Path  # model/R/rl: checkpoint-N/ and final_checkpoint/
    resume: bool
    parts: dict[str, Any]
    init: Path  # the SFT checkpoint (or rl.init_checkpoint)
    model_path: Optional[str] = None  # model.name resolved: the base when the adapter does not name one
    report_dir: Optional[Path] = None  # the run folder: rl_log.csv and rl_curves.png go here
    pool: Optional[Path] = None  # the training rows file: the few-shot pool when the checkpoint's is gone
    checkpoint: Optional[Path] = None  # set on --resume: the checkpoint-N GRPO continues from


def use_vllm(cfg: Config, device: str) -> bool:
    """vLLM samples the completions when asked, or under ``auto`` when installed and training on CUDA."""
    return cfg.rl.generation == "vllm" or (cfg.rl.generation == "auto" and device == "cuda" and vllm_available())


def setup_problems(cfg: Config) -> list[str]:
    """vLLM asked for but not installed or without CUDA; ``rl.extra`` keys the installed GRPOConfig lacks."""
    problems = []
    if cfg.rl.generation == "vllm" and not (vllm_available() and pick_device(cfg.model.device) == "cuda"):
        problems.append(f"config key 'rl.generation' = 'vllm' needs vLLM ({INSTALL_HINT}) and a CUDA device; "
                        "set rl.generation=auto or transformers")
    try:
        check_grpo_extra(cfg.rl.extra)
    except UserError as exc:
        problems += exc.problems
    return problems


def check_grpo_extra(extra: dict[str, Any]) -> None:
    """``rl.extra`` keys must be fields of the installed GRPOConfig; name the closest one otherwise."""
    from trl import GRPOConfig

    check_extra(extra, GRPOConfig, "rl.extra")


# ---------------------------------------------------------------- prompts

def call_adds(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids a plain ``tokenizer(text)`` call puts before and after the text's own (BOS, EOS)."""
    plain = tokenizer("가", add_special_tokens=False)["input_ids"]
    full = tokenizer("가")["input_ids"]
    at = next((i for i in range(len(full) - len(plain) + 1) if full[i:i + len(plain)] == plain), 0)
    return full[:at], full[at + len(plain):]


def prompt_text(tokenizer: Any, ids: list[int], adds: tuple[list[int], list[int]]) -> Optional[str]:
    """The text ``tokenizer(text)`` encodes to exactly ``ids``, or None when there is none."""
    head, tail = adds
    if tail or ids[:len(head)] != head:
        return None
    text = tokenizer.decode(ids[len(head):], skip_special_tokens=False, clean_up_tokenization_spaces=False)
    return text if tokenizer(text)["input_ids"] == ids else None


def prompt_rows(builder: PromptBuilder, selector: Any, df: pd.DataFrame) -> tuple[list[dict[str, Any]], int]:
    """One GRPO row per dialogue (prompt text, references, fname) and how many could not be given exactly."""
    adds = call_adds(builder.tokenizer)
    refs = df[reference_columns(df)].fillna("").astype(str).values.tolist()
    rows, lost = [], 0
    for fname, dialogue, references in zip(df["fname"].astype(str), df["dialogue"].astype(str), refs):
        shots = selector.select(fname, dialogue) if selector is not None else []
        text = prompt_text(builder.tokenizer, builder.encode_prompt(dialogue, shots).input_ids, adds)
        if text is None:
            lost += 1
            continue
        rows.append({"prompt": text, "references": [r for r in references if r.strip()] or references[:1],
                     "fname": fname})
    return rows, lost


def sample_rows(df: pd.DataFrame, n: Optional[int], seed: int) -> pd.DataFrame:
    """At most ``n`` rows drawn by ``seed`` (all when ``n`` is None or covers them)."""
    return df if n is None or n >= len(df) else df.sample(n=n, random_state=seed).reset_index(drop=True)


# ---------------------------------------------------------------- generation and arguments

def generation_kwargs(stop_ids: Sequence[int], banned: Sequence[int], vllm: bool) -> Optional[dict[str, Any]]:
    """GRPOConfig.generation_kwargs: vLLM's stop ids and logit bias, or transformers' bad_words_ids."""
    if vllm:
        kw: dict[str, Any] = {"stop_token_ids": list(stop_ids)}
        if banned:
            kw["logit_bias"] = {int(i): -100.0 for i in banned}  # as src.inference.vllm_engine does
        return kw
    return {"bad_words_ids": [[int(i)] for i in banned]} if banned else None


def grpo_arguments(cfg: Config, out_dir: Path, device: str, dtype: Any, max_len: int,
                   gen_kwargs: Optional[dict[str, Any]], vllm: bool) -> dict[str, Any]:
    """GRPOConfig keyword arguments (every key an installed field), ``rl.extra`` applied last."""
    import torch

    r, t = cfg.rl, cfg.training
    kwargs: dict[str, Any] = dict(
        output_dir=str(out_dir), run_name=f"{Path(out_dir).parent.name}-rl", max_steps=r.max_steps,
        learning_rate=r.learning_rate, lr_scheduler_type="constant",  # few steps, each on fresh samples
        per_device_train_batch_size=r.num_generations, gradient_accumulation_steps=r.prompts_per_step,
        num_generations=r.num_generations, max_completion_length=max_len, temperature=r.temperature, beta=r.beta,
        optim=optimizer_name(t, device), max_grad_norm=t.max_grad_norm, logging_steps=r.logging_steps,
        logging_first_step=True, save_strategy="steps", save_steps=r.save_steps, save_total_limit=r.save_total_limit,
        seed=cfg.seed, report_to=report_to(cfg, Path(out_dir)), bf16=dtype == torch.bfloat16,
        fp16=dtype == torch.float16, use_cpu=device == "cpu", remove_unused_columns=False,  # rewards read references
        use_vllm=vllm, generation_kwargs=gen_kwargs, disable_tqdm=not sys.stderr.isatty(),
        **gradient_checkpointing(t, device))
    check_grpo_extra(r.extra)
    kwargs.update(r.extra)
    return kwargs


def load_policy(cfg: Config, job: RlJob, device: str, dtype: Any, stop_ids: list[int]) -> tuple[Any, Any]:
    """(model, peft_config): the SFT adapter trainable on its base, or a fresh LoRA (``training.lora``) on a
    full-weights starting checkpoint; the base generates until one of ``stop_ids``."""
    adapter = read_adapter_config(job.init)
    base_path = str(job.init) if adapter is None else adapter.get("base_model_name_or_path") or job.model_path
    if not base_path:
        raise UserError(f"{job.init / 'adapter_config.json'} names no base model; set base_model_name_or_path there")
    base = load_for_training(cfg, str(base_path), device, dtype)
    base.generation_config.eos_token_id = list(stop_ids)  # TRL stops and masks at the model's eos ids
    if adapter is None:
        log.info("rl: %s holds full weights: GRPO trains a new LoRA adapter on them (training.lora)", job.init)
        return base, peft_config(cfg)
    from peft import PeftModel

    return PeftModel.from_pretrained(base, str(job.init), is_trainable=True), None
