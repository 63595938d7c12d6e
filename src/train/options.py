"""``training.*`` mapped onto the installed TRL / transformers / PEFT argument names.

transformers 5 renamed or removed several arguments (``warmup_ratio`` -> a float ``warmup_steps``,
``group_by_length`` -> ``train_sampling_strategy``, ``logging_dir`` -> the TensorBoard callback's
own default): every name used here is a field of the installed ``SFTConfig``, which the tests check.
"""
from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from src.config import Config, TrainingConfig
from src.train.trackers import trackers, wandb_mode
from src.utils.errors import UserError

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Collation:
    """How training examples become micro-batches: padding-free, packed rows, or padded batches."""

    mode: str  # "padding_free", "packed" or "padded"
    max_length: Optional[int]  # packed row length / longest example when padding; None: nothing to cut
    rows_per_batch: int  # the Trainer's per_device_train_batch_size (rows when packed)
    accumulation: int  # the Trainer's gradient_accumulation_steps
    examples_per_row: float = 1.0

    def describe(self, t: TrainingConfig) -> str:
        """One log line: what a micro-batch and an optimizer step hold."""
        per_step = self.rows_per_batch * self.examples_per_row * self.accumulation
        step = f"{self.accumulation} accumulation = ~{per_step:.1f} examples per optimizer step per device " \
               f"(asked {t.per_device_train_batch_size} x {t.gradient_accumulation_steps})"
        if self.mode == "padded":
            return f"padded batches of {self.rows_per_batch} examples x {step}"
        if self.mode == "padding_free":
            return f"padding-free: {self.rows_per_batch} example(s) per micro-batch, no padding, x {step}"
        return (f"padding-free packing: rows of <= {self.max_length} tokens holding {self.examples_per_row:.1f} "
                f"examples, {self.rows_per_batch} row(s) per micro-batch x {step}")


def bfd_rows(lengths: list[int], row_length: int) -> int:
    """How many rows TRL's best-fit-decreasing packing (``trl.data_utils.pack_dataset``, what ``SFTTrainer``
    packs with) fills with examples of these lengths: asked of TRL itself, so the count cannot drift from it."""
    import numpy as np
    import pyarrow as pa
    from datasets import Dataset
    from datasets.utils.logging import disable_progress_bar, enable_progress_bar, is_progress_bar_enabled
    from trl.data_utils import pack_dataset

    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(np.zeros(int(offsets[-1]), dtype=np.int32)))
    was_on = is_progress_bar_enabled()
    disable_progress_bar()  # a count, not a step the user waits for
    try:
        packed = pack_dataset(Dataset(pa.table({"input_ids": ids})), seq_length=row_length, strategy="bfd",
                              map_kwargs={"keep_in_memory": True})
    finally:
        if was_on:
            enable_progress_bar()
    return len(packed)


def collation(t: TrainingConfig, lengths: list[int], device: str, eval_lengths: Sequence[int] = ()) -> Collation:
    """Padding-free micro-batches (default), BFD-packed rows, or padded batches; same examples per step.

    A padding-free or packed micro-batch is one flattened sequence, and sdpa/eager attention is
    dense over it (the block-diagonal mask still costs the full square), so on CPU a micro-batch
    is one example (padding-free) or one row (packed); on an accelerator it holds about
    ``per_device_train_batch_size`` examples. Gradient accumulation is rescaled so an optimizer step
    still sees about ``per_device_train_batch_size x gradient_accumulation_steps`` examples, the
    presets' effective batch; the loss is the token mean over the whole step either way.

    TRL cuts every row, eval rows included, to ``max_length``: it covers the longest eval row too,
    so no dev summary is cut and no long dev row is dropped from the eval loss.
    """
    batch, steps = t.per_device_train_batch_size, t.gradient_accumulation_steps
    longest = max([*lengths, *eval_lengths])
    if t.packing:
        per_row = len(lengths) / bfd_rows(lengths, longest)
        rows = 1 if device == "cpu" else max(1, round(batch / per_row))
        return Collation("packed", longest, rows, max(1, round(batch * steps / (rows * per_row))), per_row)
    if t.padding_free:
        return Collation("padding_free", None, 1, batch * steps) if device == "cpu" else \
            Collation("padding_free", None, batch, steps)
    return Collation("padded", longest, batch, steps)


def optimizer_name(t: TrainingConfig, device: str) -> str:
    """Paged 8-bit AdamW on CUDA; plain AdamW elsewhere (paged optimizers need CUDA)."""
    if t.optim == "auto":
        if device == "cuda":
            return "paged_adamw_8bit"
        log.info("optimizer: adamw_torch (paged 8-bit AdamW needs CUDA; device is %s)", device)
        return "adamw_torch"
    if t.optim.startswith("paged_") and device != "cuda":
        log.info("optimizer: adamw_torch instead of training.optim=%s (paged optimizers need CUDA)", t.optim)
        return "adamw_torch"
    return t.optim


def best_metric(t: TrainingConfig) -> str:
    """The metric that picks the best checkpoint: ``rouge_final`` with ROUGE eval on, else ``eval_loss``."""
    if t.metric_for_best_model == "auto":
        return "rouge_final" if t.eval_rouge_samples > 0 else "eval_loss"
    return t.metric_for_best_model  # a ROUGE metric without ROUGE samples is refused by src.config.checks


def eval_arguments(t: TrainingConfig, has_eval: bool) -> dict[str, Any]:
    """Eval every ``eval_steps`` (0: at every checkpoint), best checkpoint loaded at the end."""
    if not has_eval:
        if t.eval_rouge_samples or t.early_stopping_patience:
            log.warning("no dev set: training.eval_rouge_samples and training.early_stopping_patience are ignored")
        return {"eval_strategy": "no"}
    every = t.eval_steps or t.save_steps
    if t.save_steps % every:
        # the best checkpoint must exist on disk: evaluate where checkpoints are written
        log.warning("training.save_steps=%d is not a multiple of training.eval_steps=%d; evaluating every %d steps "
                    "so that each evaluation has a checkpoint to keep", t.save_steps, every, t.save_steps)
        every = t.save_steps
    metric = best_metric(t)
    return {"eval_strategy": "steps", "eval_steps": every, "load_best_model_at_end": True,
            "metric_for_best_model": metric, "greater_is_better": not metric.endswith("loss")}


def report_to(cfg: Config, out_dir: Path) -> list[str]:
    """The Trainer's tracking integrations (``training.report_to``); wandb logs into the run's tracked run
    (``src.tracking``), offline without a key or a reachable server, never failing the run."""
    found = []
    for tracker in trackers(cfg):
        try:
            __import__(tracker)
        except ImportError:
            log.warning("training.report_to names %s but it is not installed (pip install %s); not tracking there",
                        tracker, tracker)
            continue
        if tracker == "wandb" and wandb_mode(out_dir) == "disabled":
            continue
        if tracker == "wandb":  # where the Trainer's callback opens a run itself (no tracked run in this process)
            os.environ.setdefault("WANDB_PROJECT", cfg.training.wandb_project)
        found.append(tracker)
    return found


def check_extra(extra: dict[str, Any], config_class: Any = None, where: str = "training.extra") -> None:
    """``training.extra`` keys (or ``where``'s) must be installed SFTConfig (``config_class``) fields; name the
    closest one otherwise."""
    if config_class is None:
        from trl import SFTConfig as config_class

    fields = [f.name for f in dataclasses.fields(config_class)]
    problems = []
    for key in extra:
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(f"config key '{where}.{key}': not an argument of the installed "
                            f"{config_class.__name__}{hint}")
    if problems:
        raise UserError(*problems)


def _choice_problem(key: str, value: str, valid: list[str]) -> list[str]:
    if value in valid:
        return []
    close = difflib.get_close_matches(value, valid, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return [f"config key '{key}' = {value!r}: not known to the installed transformers{hint}; "
            f"valid: {', '.join(sorted(valid))}"]


def check_trainer_options(cfg: Config, device: str) -> list[str]:
    """Before any stage runs: optimizer, scheduler, precision and ``training.extra`` against what is installed."""
    from transformers.trainer_utils import SchedulerType
    from transformers.training_args import OptimizerNames

    t = cfg.training
    problems = [] if t.optim == "auto" else _choice_problem("training.optim", t.optim, [o.value for o in OptimizerNames])
    problems += _choice_problem("training.lr_scheduler_type", t.lr_scheduler_type, [s.value for s in SchedulerType])
    if t.compute_dtype == "float16" and device != "cuda":
        problems.append(f"config key 'training.compute_dtype' = float16: fp16 mixed precision needs CUDA (device is "
                        f"{device}); use auto or float32")
    if t.compute_dtype == "bfloat16" and device == "cuda":
        import torch

        if not torch.cuda.is_bf16_supported():
            problems.append("config key 'training.compute_dtype' = bfloat16: this GPU has no bf16; use auto (fp16)")
    try:
        check_extra(t.extra)
    except UserError as exc:
        problems += exc.problems
    return problems


def sft_arguments(cfg: Config, out_dir: Path, device: str, dtype: Any, has_eval: bool, coll: Collation) -> dict[str, Any]:
    """SFTConfig keyword arguments (every key an installed field), ``training.extra`` applied last."""
    import torch

    t = cfg.training
    sampling = "random"
    if t.group_by_length:
        sampling = "group_by_length" if coll.mode == "padded" else "random"
        if coll.mode != "padded":
            log.info("training.group_by_length ignored: %s batches hold no padding to save", coll.mode)
    kwargs: dict[str, Any] = dict(
        output_dir=str(out_dir), run_name=Path(out_dir).name, num_train_epochs=t.num_train_epochs,
        max_steps=t.max_steps, learning_rate=t.learning_rate, per_device_train_batch_size=coll.rows_per_batch,
        per_device_eval_batch_size=t.per_device_eval_batch_size,
        gradient_accumulation_steps=coll.accumulation,
        warmup_steps=t.warmup_fraction,  # a float below 1 is a share of the total steps in transformers 5
        lr_scheduler_type=t.lr_scheduler_type, lr_scheduler_kwargs=dict(t.lr_scheduler_kwargs), weight_decay=t.weight_decay, max_grad_norm=t.max_grad_norm,
        optim=optimizer_name(t, device), logging_steps=t.logging_steps, logging_first_step=True,
        save_strategy="steps", save_steps=t.save_steps, save_total_limit=t.save_total_limit, seed=cfg.seed,
        report_to=report_to(cfg, Path(out_dir)), bf16=dtype == torch.bfloat16, fp16=dtype == torch.float16,
        use_cpu=device == "cpu", max_length=coll.max_length, packing=coll.mode == "packed", packing_strategy="bfd",
        padding_free=coll.mode == "padding_free",
        eval_packing=False, train_sampling_strategy=sampling, neftune_noise_alpha=t.neftune_noise_alpha,
        remove_unused_columns=True, **gradient_checkpointing(t, device), **eval_arguments(t, has_eval),
        disable_tqdm=not sys.stderr.isatty(),  # a bar in a redirected stderr is a wall of carriage returns
    )
    check_extra(t.extra)
    kwargs.update(t.extra)
    return kwargs


def checkpointing_arguments(on: bool) -> dict[str, Any]:
    """Trainer arguments that switch activation checkpointing, under the installed transformers' names:
    5.24 renamed ``gradient_checkpointing(_kwargs)`` to ``activation_checkpointing(_kwargs)`` and warns on the
    old ones; earlier 5.x releases know only the old names."""
    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    prefix = "activation" if "activation_checkpointing" in names else "gradient"
    return {f"{prefix}_checkpointing": on, f"{prefix}_checkpointing_kwargs": {"use_reentrant": False} if on else None}


def gradient_checkpointing(t: TrainingConfig, device: str) -> dict[str, Any]:
    """Checkpointing on accelerators only: on CPU memory is not the limit and it costs a third more time."""
    if t.gradient_checkpointing and device == "cpu":
        log.info("gradient checkpointing off on CPU (it saves accelerator memory at the cost of time)")
    return checkpointing_arguments(t.gradient_checkpointing and device != "cpu")


def peft_config(cfg: Config) -> Optional[Any]:
    """PEFT LoraConfig from training.lora, or None for full fine-tuning."""
    if not cfg.training.use_lora:
        return None
    from peft import LoraConfig

    lc = cfg.training.lora
    targets = lc.target_modules if lc.target_modules == "all-linear" else [m.strip() for m in lc.target_modules.split(",")]
    return LoraConfig(r=lc.r, lora_alpha=lc.alpha, lora_dropout=lc.dropout, target_modules=targets, bias=lc.bias,  # type: ignore[arg-type]  # one of the schema's choices
                      use_dora=lc.use_dora, use_rslora=lc.use_rslora, task_type="CAUSAL_LM",
                      modules_to_save=list(lc.modules_to_save) or None)
