"""Encoder-decoder fine-tuning (KoBART baseline): Seq2SeqTrainer, ROUGE on generated dev summaries.

Every weight trains (124M parameters fit anywhere); the best checkpoint by dev ROUGE (``final``,
the competition score) becomes ``final_checkpoint``.
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import pandas as pd

from src.config import Config
from src.evaluation import score_texts
from src.inference.postprocess import postprocess
from src.inference.seq2seq import seq2seq_generate_kwargs
from src.inference.settings import resolve_settings
from src.models.device import pick_device
from src.models.loading import count_parameters
from src.models.seq2seq import decode_summary, encode_source, encode_target, load_seq2seq, special_tokens
from src.train.callbacks import early_stopping
from src.models.checkpoint import summary_lengths
from src.train.final import TrainJob
from src.train.options import checkpointing_arguments, report_to

log = logging.getLogger(__name__)


@dataclass
class EncodedPairs:
    """Tokenized (dialogue, summary) pairs plus how many were cut to the length limits."""

    rows: list[dict[str, list[int]]]
    long_dialogues: int
    long_summaries: int


def encode_pairs(tokenizer: Any, df: pd.DataFrame, cfg: Config) -> EncodedPairs:
    """Encoder ids ``<s> dialogue </s>`` and labels ``summary </s>`` for every row of ``df``."""
    s2s = cfg.seq2seq
    rows, long_dialogues, long_summaries = [], 0, 0
    for dialogue, summary in zip(df["dialogue"].astype(str), df["summary"].astype(str)):
        source, cut_source = encode_source(tokenizer, dialogue, s2s.encoder_max_len)
        labels, cut_labels = encode_target(tokenizer, summary, s2s.decoder_max_len)
        rows.append({"input_ids": source, "labels": labels})
        long_dialogues += cut_source
        long_summaries += cut_labels
    return EncodedPairs(rows, long_dialogues, long_summaries)


def mixed_precision(cfg: Config, device: str) -> dict[str, bool]:
    """bf16/fp16 flags: only on CUDA, bf16 only where the GPU supports it (weights stay fp32)."""
    import torch

    wanted = cfg.training.compute_dtype
    if device != "cuda":
        if wanted in ("bfloat16", "float16"):
            log.warning("training.compute_dtype=%s: mixed precision needs CUDA; training in float32 on %s",
                        wanted, device)
        return {"bf16": False, "fp16": False}
    bf16_ok = torch.cuda.is_bf16_supported()
    if wanted == "bfloat16" and not bf16_ok:
        log.warning("training.compute_dtype=bfloat16: this GPU lacks bf16; using fp16")
    bf16 = bf16_ok and wanted in ("auto", "native_bf16", "bfloat16")
    return {"bf16": bf16, "fp16": not bf16 and wanted != "float32"}


def schedule(cfg: Config, has_eval: bool) -> dict[str, Any]:
    """Eval and save strategies; saves fall on eval steps so the best checkpoint can be kept."""
    t = cfg.training
    if not has_eval:
        return {"eval_strategy": "no", "save_strategy": "steps", "save_steps": t.save_steps}
    if not t.eval_steps:
        return {"eval_strategy": "epoch", "save_strategy": "epoch"}
    save_steps = -(-t.save_steps // t.eval_steps) * t.eval_steps  # round up to a multiple of eval_steps
    if save_steps != t.save_steps:
        log.info("training.save_steps=%d rounded up to %d (a multiple of eval_steps=%d) to keep the best checkpoint",
                 t.save_steps, save_steps, t.eval_steps)
    return {"eval_strategy": "steps", "eval_steps": t.eval_steps, "save_strategy": "steps", "save_steps": save_steps}


def best_metric(cfg: Config) -> tuple[str, bool]:
    """(metric_for_best_model, greater_is_better); auto is ROUGE final."""
    name = cfg.training.metric_for_best_model
    name = "rouge_final" if name == "auto" else name.removeprefix("eval_")
    return name, not name.endswith("loss")


def seq2seq_args(cfg: Config, out_dir: Path, device: str, has_eval: bool) -> Any:
    """Seq2SeqTrainingArguments mapped from training.* (installed transformers argument names)."""
    from transformers import Seq2SeqTrainingArguments

    t = cfg.training
    metric, greater = best_metric(cfg)
    kwargs = dict(
        output_dir=str(out_dir), num_train_epochs=t.num_train_epochs, max_steps=t.max_steps,
        learning_rate=t.learning_rate, per_device_train_batch_size=t.per_device_train_batch_size,
        per_device_eval_batch_size=t.per_device_eval_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps, warmup_steps=t.warmup_fraction,
        lr_scheduler_type=t.lr_scheduler_type, weight_decay=t.weight_decay, max_grad_norm=t.max_grad_norm,
        optim="adamw_torch" if t.optim == "auto" else t.optim, logging_steps=t.logging_steps,
        save_total_limit=t.save_total_limit, seed=cfg.seed, report_to=report_to(cfg, out_dir),
        use_cpu=device == "cpu", **checkpointing_arguments(t.gradient_checkpointing and device == "cuda"),
        predict_with_generate=has_eval, load_best_model_at_end=has_eval,
        metric_for_best_model=metric if has_eval else None, greater_is_better=greater if has_eval else None,
        **schedule(cfg, has_eval), **mixed_precision(cfg, device),
        disable_tqdm=not sys.stderr.isatty(),  # a bar in a redirected stderr is a wall of carriage returns
    )
    kwargs.update(t.extra)
    return Seq2SeqTrainingArguments(**kwargs)


def rouge_metrics(tokenizer: Any, scorer: str) -> Callable[[Any], dict[str, float]]:
    """compute_metrics for Seq2SeqTrainer: the shared competition ROUGE on generated vs reference summaries."""
    def compute(pred: Any) -> dict[str, float]:
        predictions = [postprocess(decode_summary(tokenizer, row.tolist())) for row in pred.predictions]
        references = [[postprocess(decode_summary(tokenizer, row.tolist()))] for row in pred.label_ids]
        m = score_texts(predictions, references, tokenizer=scorer)
        return {"rouge1": m["rouge1"], "rouge2": m["rouge2"], "rougeL": m["rougeL"], "rouge_final": m["final"]}

    return compute


def eval_frame(cfg: Config, dev_df: Optional[pd.DataFrame]) -> Optional[pd.DataFrame]:
    """The dev rows scored at each evaluation (the first training.eval_rouge_samples, or all)."""
    if dev_df is None or not len(dev_df):
        log.warning("no dev set: no evaluation, best-model selection or early stopping")
        return None
    n = cfg.training.eval_rouge_samples
    return dev_df.head(n) if n > 0 else dev_df


def build_trainer(cfg: Config, model: Any, tokenizer: Any, train_rows: list[dict], dev: Optional[pd.DataFrame],
                  job: TrainJob, device: str) -> Any:
    """Seq2SeqTrainer with the collator (-100 label padding); ROUGE and early stopping when there is a dev set."""
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, PrinterCallback, Seq2SeqTrainer

    eval_ds = Dataset.from_list(encode_pairs(tokenizer, dev, cfg).rows) if dev is not None else None
    patience = cfg.training.early_stopping_patience if eval_ds is not None else 0
    callbacks = [*early_stopping(patience), *job.callbacks(cfg)]
    trainer = Seq2SeqTrainer(model=model, args=seq2seq_args(cfg, job.out_dir, device, eval_ds is not None),
                             train_dataset=Dataset.from_list(train_rows), eval_dataset=eval_ds,
                             processing_class=tokenizer,
                             data_collator=DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100),
                             compute_metrics=rouge_metrics(tokenizer, cfg.evaluation.tokenizer) if eval_ds else None,
                             callbacks=callbacks)
    if trainer.args.disable_tqdm:  # the Trainer then prints raw log dicts; src.train.progress logs lines instead
        trainer.remove_callback(PrinterCallback)
    return trainer


def train_seq2seq(cfg: Config, model_path: str, train_df: pd.DataFrame, dev_df: Optional[pd.DataFrame],
                  job: TrainJob) -> dict[str, Any]:
    """Fine-tune every weight, keep the best dev-ROUGE model as ``out_dir/final_checkpoint``; return manifest fields."""
    import torch

    if cfg.training.use_lora:
        log.info("model.type=seq2seq trains every weight; training.use_lora/use_qlora are ignored")
    device = pick_device(cfg.model.device)
    tokens = special_tokens(cfg, [*train_df["dialogue"].astype(str), *train_df["summary"].astype(str)])
    # fp32 weights: mixed precision (bf16/fp16 flags) is applied by the trainer where the device supports it
    model, tokenizer = load_seq2seq(model_path, cfg, device, torch.float32, tokens)
    decoding = resolve_settings(cfg, None, None, None, job.explicit).decoding()  # as inference will generate
    model.generation_config.update(**seq2seq_generate_kwargs(decoding, cfg.seq2seq.early_stopping))
    train_set = encode_pairs(tokenizer, train_df, cfg)
    log.info("training pairs: %d (%d dialogues cut to %d tokens, %d summaries cut to %d)", len(train_set.rows),
             train_set.long_dialogues, cfg.seq2seq.encoder_max_len, train_set.long_summaries,
             cfg.seq2seq.decoder_max_len)
    probe = list(train_df["dialogue"].astype(str).head(3)) + list(train_df["summary"].astype(str).head(3))
    lengths = summary_lengths([sum(t != -100 for t in r["labels"]) for r in train_set.rows])
    done = job.finish(cfg, tokenizer, probe, lengths)
    if done is not None:
        return {**done, "examples": len(train_set.rows), "special_tokens": tokens}
    trainer = build_trainer(cfg, model, tokenizer, train_set.rows, eval_frame(cfg, dev_df), job, device)
    result = trainer.train(resume_from_checkpoint=str(job.checkpoint) if job.checkpoint else None)
    final = job.out_dir / "final_checkpoint"
    trainer.save_model(str(final))
    if trainer.is_world_process_zero():
        job.finalize(final, cfg, tokenizer, probe, lengths)
    trainable, total = count_parameters(trainer.model)
    ckpt = job.checkpoint
    return {"global_step": trainer.state.global_step, "resumed_from": str(ckpt) if ckpt else None,
            "world_size": trainer.args.world_size, "train_loss": result.training_loss,
            "examples": len(train_set.rows), "long_dialogues": train_set.long_dialogues,
            "long_summaries": train_set.long_summaries, "special_tokens": tokens,
            "best_metric": trainer.state.best_metric, "best_checkpoint": trainer.state.best_model_checkpoint,
            "trainable_params": trainable, "total_params": total, "final_checkpoint": str(final)}
