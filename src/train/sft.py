"""Causal-LM fine-tuning: TRL SFTTrainer on prompt/completion examples, QLoRA or LoRA or full.

Examples are tokenized here with the shared prompt builder (prompt ids exactly as at inference,
labels -100 on the prompt, completion = summary + end-of-turn), so TRL only collates and trains:
by default padding-free packed rows (position ids restart per example, so no example attends to
another), else padded batches. ``src.train.options`` maps ``training.*`` onto the installed
TRL/transformers argument names.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from src.config import Config, InferenceConfig
from src.inference.settings import training_time_settings
from src.utils.errors import UserError
from src.inference.vocab import data_ids
from src.models.device import compute_dtype, pick_device
from src.models.checkpoint import summary_lengths
from src.models.loading import count_parameters, load_causal_model, load_tokenizer
from src.prompting.builder import PromptBuilder
from src.prompting.fewshot import ShotSelector
from src.train.callbacks import RougeCallback, RougeSample, early_stopping
from src.train.final import TrainJob
from src.train.options import Collation, collation, peft_config, sft_arguments

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
        shots = selector.select(fname, dialogue)
        for instruction in instructions:
            ex = builder.encode_example(dialogue, summary, shots, instruction)
            trimmed += ex["trimmed"]
            dropped += ex["dropped_shots"] > 0
            long_sum += len(ex["input_ids"]) - ex["prompt_len"] > cfg.prompt.max_summary_tokens
            rows.append({"input_ids": ex["input_ids"], "labels": ex["labels"]})
    return EncodedSet(rows, trimmed, dropped, long_sum)


def check_training_rows(rows: list[dict[str, Any]], stop_ids: list[int], name: str) -> None:
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


def load_for_training(cfg: Config, model_path: str, device: str, dtype: Any) -> Any:
    """The base model: 4-bit for QLoRA; fp32 master weights for full fine-tuning under fp16 or bf16 autocast."""
    import torch

    if not cfg.training.use_lora and dtype in (torch.float16, torch.bfloat16) and cfg.model.torch_dtype == "auto":
        # fp16 AMP cannot step fp16 parameters (GradScaler refuses to unscale them), and AdamW on bf16 weights
        # drops every update below 1/256 of a weight (at lr 5e-5 most of them): mixed precision keeps fp32 weights
        # (model.torch_dtype=bfloat16 asks for pure bf16 training explicitly)
        cfg = replace(cfg, model=replace(cfg.model, torch_dtype="float32"))
    return load_causal_model(model_path, cfg, device, dtype, quantize=cfg.training.use_qlora)


def align_adapter_dtype(model: Any, cfg: Config) -> None:
    """LoRA weights in fp32: the master copy under bf16/fp16 autocast, whose compute dtype stays ``dtype``.

    TRL casts a quantized model's adapter to bf16 whatever the precision flag says: on a GPU
    without bf16 (fp16 autocast) that breaks, and bf16 storage drops updates smaller than 1/256.
    """
    import torch

    if not cfg.training.use_lora:
        return
    for param in model.parameters():
        if param.requires_grad and param.is_floating_point() and param.dtype != torch.float32:
            param.data = param.data.float()


def parameter_counts(model: Any) -> tuple[int, int]:
    """(trainable, total), counting 4-bit weights as the parameters they stand for."""
    if hasattr(model, "get_nb_trainable_parameters"):
        return model.get_nb_trainable_parameters()
    return count_parameters(model)


def build_trainer(cfg: Config, model: Any, tokenizer: Any, rows: list[dict], eval_rows: Optional[list[dict]],
                  out_dir: Path, device: str, dtype: Any, coll: Collation, callbacks: list[Any]) -> Any:
    """SFTTrainer composed from the mapped SFTConfig, the LoRA config and the callbacks."""
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(**sft_arguments(cfg, out_dir, device, dtype, eval_rows is not None, coll))
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                         eval_dataset=Dataset.from_list(eval_rows) if eval_rows is not None else None,
                         processing_class=tokenizer, peft_config=peft_config(cfg), callbacks=callbacks)
    align_adapter_dtype(trainer.model, cfg)
    if args.disable_tqdm:  # the Trainer then prints raw log dicts; src.train.progress logs them as lines instead
        trainer.remove_callback(PrinterCallback)
    if cfg.training.label_logits_only:
        from src.train.label_logits import install

        install(trainer.model)  # on top of TRL's fused head, which it patched in just now
    return trainer


def rouge_callback(gen: InferenceConfig, cfg: Config, dev_df: Optional[pd.DataFrame], tokenizer: Any,
                   builder: PromptBuilder, selector: ShotSelector, device: str,
                   stored_vocab: Optional[list[int]]) -> Optional[RougeCallback]:
    """ROUGE on generated dev summaries at each evaluation (when asked), generating with ``gen`` as inference will."""
    t = cfg.training
    if dev_df is None or not len(dev_df) or t.eval_rouge_samples <= 0:
        return None
    sample = RougeSample.from_frame(dev_df, t.eval_rouge_samples, cfg.seed, cfg.evaluation.tokenizer)
    shots = selector if cfg.prompt.num_fewshot else None
    return RougeCallback(gen, sample, tokenizer, builder, shots, device, stored_vocab)


def encode_sets(cfg: Config, builder: PromptBuilder, selector: ShotSelector, train_df: pd.DataFrame,
                dev_df: Optional[pd.DataFrame]) -> tuple[EncodedSet, Optional[list[dict]]]:
    """The rendered training set (checked by the pre-flight) and the dev set for eval loss."""
    train_set = encode_frame(builder, selector, train_df, cfg, cfg.training.instruction_augmentation)
    check_training_rows(train_set.rows, builder.stop_token_ids, "training set")
    log.info("training examples: %d (%d prompts trimmed, %d lost few-shot examples, %d summaries over %d tokens)",
             len(train_set.rows), train_set.trimmed, train_set.dropped_shots, train_set.long_summaries,
             cfg.prompt.max_summary_tokens)
    has_dev = dev_df is not None and len(dev_df)
    eval_rows = encode_frame(builder, selector, dev_df, cfg, False).rows if has_dev else None
    return train_set, eval_rows


def completion_lengths(rows: list[dict[str, Any]]) -> list[int]:
    """Labelled (completion) tokens of each training example: summary + end-of-turn."""
    return [sum(t != -100 for t in r["labels"]) for r in rows]


def probe_texts(builder: PromptBuilder, selector: ShotSelector, df: pd.DataFrame, n: int = 3) -> list[str]:
    """Rendered prompts with their completions, to check a saved tokenizer against the training one."""
    rows = df.head(n)
    return [builder.render(d, selector.select(f, d)) + builder.completion_prefix + str(s).strip() + builder.turn_end
            for f, d, s in zip(rows["fname"].astype(str), rows["dialogue"].astype(str), rows["summary"].astype(str))]


def train_causal(cfg: Config, model_path: str, train_df: pd.DataFrame, dev_df: Optional[pd.DataFrame],
                 job: TrainJob) -> dict[str, Any]:
    """The recipe, top to bottom: set up (device, tokenizer, examples, the settings the ROUGE callback generates
    with), continue or start (a checkpoint that holds the whole run ends here), train, save ``final_checkpoint``
    with what inference needs, and return the manifest fields."""
    # setup
    device = pick_device(cfg.model.device)
    dtype = compute_dtype(cfg.training.compute_dtype, device)
    tokenizer = load_tokenizer(model_path, cfg)
    builder = PromptBuilder(tokenizer, cfg.prompt)
    selector = ShotSelector(train_df, cfg.prompt, cfg.seed)
    train_set, eval_rows = encode_sets(cfg, builder, selector, train_df, dev_df)
    lengths = summary_lengths(completion_lengths(train_set.rows))
    output_ids = data_ids(r["input_ids"] for r in train_set.rows)
    probe = probe_texts(builder, selector, train_df)
    done = job.finish(cfg, tokenizer, probe, lengths, output_ids)
    if done is not None:
        return {**done, "examples": len(train_set.rows)}
    coll = collation(cfg.training, [len(r["input_ids"]) for r in train_set.rows], device,
                     [len(r["input_ids"]) for r in eval_rows or []])
    gen = training_time_settings(cfg, job.explicit, lengths).gen
    rouge = rouge_callback(gen, cfg, dev_df, tokenizer, builder, selector, device, output_ids)
    model = load_for_training(cfg, model_path, device, dtype)
    callbacks = [*([rouge] if rouge else []), *early_stopping(cfg.training.early_stopping_patience
                                                              if dev_df is not None and len(dev_df) else 0)]
    trainer = build_trainer(cfg, model, tokenizer, train_set.rows, eval_rows, job.out_dir, device, dtype, coll,
                            [*callbacks, *job.callbacks(cfg)])
    if rouge is not None:
        rouge.bind(trainer.log)
    trainable, total = parameter_counts(trainer.model)
    log.info("parameters: %s trainable of %s (%.2f%%), compute dtype %s, device %s; %s", f"{trainable:,}",
             f"{total:,}", 100 * trainable / max(total, 1), str(dtype).split(".")[-1], device,
             coll.describe(cfg.training))
    # train
    result = trainer.train(resume_from_checkpoint=str(job.checkpoint) if job.checkpoint else None)
    # save
    final = job.out_dir / "final_checkpoint"
    trainer.save_model(str(final))
    if trainer.is_world_process_zero():
        job.finalize(final, cfg, tokenizer, probe, lengths, output_ids)
    merged = merge_adapter(cfg, model_path, final, job, tokenizer, trainer, output_ids) \
        if cfg.training.merge_adapter else None
    # finish
    fields = manifest_fields(trainer, train_set, coll, eval_rows is not None)
    fields.update(resumed_from=str(job.checkpoint) if job.checkpoint else None, train_loss=result.training_loss,
                  trainable_params=trainable, total_params=total, final_checkpoint=str(final),
                  max_new_tokens_auto=lengths["auto_max_new_tokens"])
    if merged is not None:
        fields["final_merged"] = str(merged)
    return fields


def manifest_fields(trainer: Any, train_set: EncodedSet, coll: Collation, has_eval: bool) -> dict[str, Any]:
    """What the manifest records about training: steps, data counts, collation, best checkpoint."""
    return {"global_step": trainer.state.global_step, "world_size": trainer.args.world_size,
            "examples": len(train_set.rows), "trimmed_prompts": train_set.trimmed,
            "dropped_fewshot": train_set.dropped_shots, "long_summaries": train_set.long_summaries,
            "collation": {**dataclasses.asdict(coll), "train_rows": len(trainer.train_dataset)},
            "best_checkpoint": trainer.state.best_model_checkpoint, "best_metric": trainer.state.best_metric,
            "metric_for_best_model": trainer.args.metric_for_best_model if has_eval else None}


def merge_adapter(cfg: Config, model_path: str, final: Path, job: TrainJob, tokenizer: Any, trainer: Any,
                  output_ids: Optional[list[int]] = None) -> Optional[Path]:
    """Fold the adapter into an unquantized copy of the base (on CPU) and save ``final_merged/``."""
    if not cfg.training.use_lora:
        log.info("training.merge_adapter: full fine-tuning has no adapter; final_checkpoint holds the full model")
        return None
    from peft import PeftModel

    if not trainer.is_world_process_zero():
        return None
    # on CPU: the GPU still holds the training copy, and a merge is one pass of small matmuls
    base = load_causal_model(model_path, cfg, "cpu", compute_dtype(cfg.training.compute_dtype, "cuda")
                             if pick_device(cfg.model.device) == "cuda" else compute_dtype("auto", "cpu"), quantize=False)
    merged = PeftModel.from_pretrained(base, str(final)).merge_and_unload()
    target = job.out_dir / "final_merged"
    merged.save_pretrained(str(target))
    job.finalize(target, cfg, tokenizer, [], None, output_ids)
    log.info("merged weights written to %s", target)
    return target
