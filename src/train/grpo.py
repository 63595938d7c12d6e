"""GRPO on the SFT adapter: TRL's GRPOTrainer composed from ``src.train.grpo_setup`` and ``src.train.rewards``.

The entry point reads top to bottom: the starting checkpoint's prompt settings (the prompts SFT
trained on), the rows as exact prompt ids, the reward, then either a finished checkpoint made final
(``--resume`` after the last step) or ``GRPOTrainer(...).train(resume_from_checkpoint=...)``. Every
checkpoint carries the fingerprint of what decides GRPO (``src.models.checkpoint``: a stale one is
set aside, a broken one skipped), and ``rl/final_checkpoint`` is written like the train stage's
(tokenizer, config, ``pipeline_inference.json`` copied from the starting checkpoint's, fingerprint),
so tune and infer load it as they load an SFT checkpoint. Last, the SFT and the RL checkpoint
summarise ``rl.eval_rows`` dev rows greedily through the inference code, for the manifest and report.

Generation is TRL's (``model.generate``, or vLLM on CUDA). A faster engine can come in through
``GRPOTrainer(rollout_func=...)``: it receives the prompts and must return prompt ids, completion ids and
log-probabilities; ``build_trainer`` is the one place to pass it.
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from src.config import Config
from src.data.loading import load_split
from src.evaluation import score_texts
from src.inference import constraints
from src.inference.factory import as_trained, load_predictor
from src.models.device import compute_dtype, pick_device
from src.models.loading import load_tokenizer
from src.prompting.builder import PromptBuilder
from src.prompting.fewshot import ShotSelector
from src.train.callbacks import RougeSample
from src.models.checkpoint import finalize, finish_from, finished, resume_checkpoint
from src.train.callbacks import CheckpointRecord
from src.train.grpo_setup import (RlJob, generation_kwargs, grpo_arguments, load_policy, prompt_rows, sample_rows,
                                  use_vllm)
from src.train.progress import RL_SHOWN, FiniteLoss, TrainingLog, write_rl_curves
from src.train.rewards import CompletionAudit, reward_functions, words
from src.train.sft import align_adapter_dtype, parameter_counts
from src.utils.errors import UserError
from src.utils.io import file_digest

log = logging.getLogger(__name__)

REFERENCE_ADAPTER = "ref"  # TRL's frozen copy of the starting adapter (the KL reference); not part of the result
CURVE_ENDS = 3  # logged steps averaged for reward_start / reward_end


@dataclass
class RlSetup:
    """What ``prepare`` found: the tokenizer, the exact prompt rows, the generation and reward settings."""

    tokenizer: Any
    rows: list[dict[str, Any]]
    lost: int  # rows whose exact prompt ids no text gives
    info: dict[str, Any]  # the starting checkpoint's pipeline_inference.json
    pool_path: Optional[Path]
    device: str
    dtype: Any
    stop_ids: list[int]
    banned: int  # how many ids inference.block_scripts bans
    vllm: bool
    gen_kwargs: Optional[dict[str, Any]]
    max_len: int
    audit: CompletionAudit
    rewards: tuple[list[Any], list[float]]


def build_trainer(cfg: Config, model: Any, peft: Any, tokenizer: Any, rows: list[dict[str, Any]],
                  args: dict[str, Any], rewards: tuple[list[Any], list[float]], callbacks: list[Any]) -> Any:
    """GRPOTrainer on the prompt rows with the weighted reward terms (``rollout_func`` would plug in here)."""
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    funcs, weights = rewards
    trainer = GRPOTrainer(model=model, reward_funcs=funcs, args=GRPOConfig(**{**args, "reward_weights": weights}),
                          train_dataset=Dataset.from_list(rows), processing_class=tokenizer, peft_config=peft,
                          callbacks=callbacks)
    align_adapter_dtype(trainer.model, cfg)
    if trainer.args.disable_tqdm:
        trainer.remove_callback(PrinterCallback)
    return trainer


def callbacks(cfg: Config, job: RlJob) -> list[Any]:
    """Checkpoint records, reward lines and curves (the whole history, resumed runs too), the NaN stop."""
    return [CheckpointRecord(job.parts), TrainingLog(job.report_dir, "rl", RL_SHOWN, write_rl_curves, history=True,
                                                       live=True),
            FiniteLoss(cfg.rl.learning_rate, key="rl.learning_rate")]


def curve_fields(history: list[dict[str, Any]], max_steps: int) -> dict[str, Any]:
    """Reward at the start and end (means of the first and last logged steps), last KL and completion length."""
    logged = [e for e in history if "reward" in e]

    def mean(entries: list[dict[str, Any]], key: str) -> Optional[float]:
        values = [float(e[key]) for e in entries if e.get(key) is not None]
        return round(sum(values) / len(values), 4) if values else None

    head, tail = logged[:CURVE_ENDS], logged[-CURVE_ENDS:]
    return {"reward_start": mean(head, "reward"), "reward_end": mean(tail, "reward"),
            "rouge_start": mean(head, "rewards/rouge/mean"), "rouge_end": mean(tail, "rewards/rouge/mean"),
            "kl_end": mean(tail, "kl"), "completion_tokens_end": mean(tail, "completions/mean_length"),
            "logged_steps": len(logged), "max_steps": max_steps,
            "seconds_per_step": mean(logged, "step_time")}  # TRL's: sampling, scoring, forward and backward


def drop_reference(folder: Path) -> None:
    """The final folder holds the trained adapter only (PEFT saves every adapter, TRL's reference copy too)."""
    shutil.rmtree(Path(folder) / REFERENCE_ADAPTER, ignore_errors=True)


def finished_run(cfg: Config, job: RlJob, final: Path) -> Optional[dict[str, Any]]:
    """With ``--resume``: the checkpoint to continue from (set on the job), or, when it holds every step, the
    fields of ``final`` made from it without another step (None: train)."""
    import json

    if not job.resume:
        return None
    job.checkpoint = resume_checkpoint(job.out_dir, job.parts)
    if job.checkpoint is None:
        log.info("no complete GRPO checkpoint of these settings in %s: GRPO starts from %s", job.out_dir, job.init)
        return None
    if not finished(job.checkpoint, cfg.rl.max_steps, 0.0):
        log.info("resuming GRPO from %s", job.checkpoint)
        return None
    log.info("%s already holds every GRPO step: %s is made from it", job.checkpoint, final)
    fields = finish_from(job.checkpoint, final)
    drop_reference(final)
    state = json.loads((job.checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    return {"global_step": fields["global_step"], **curve_fields(state.get("log_history", []), cfg.rl.max_steps)}


def run_trainer(cfg: Config, job: RlJob, setup: RlSetup, final: Path) -> dict[str, Any]:
    """Load the policy, train (resuming when a checkpoint fits), save ``final``; the trainer's fields."""
    model, peft = load_policy(cfg, job, setup.device, setup.dtype, setup.stop_ids)
    args = grpo_arguments(cfg, job.out_dir, setup.device, setup.dtype, setup.max_len, setup.gen_kwargs,
                          setup.vllm)
    trainer = build_trainer(cfg, model, peft, setup.tokenizer, setup.rows, args, setup.rewards,
                            callbacks(cfg, job))
    trainable, total = parameter_counts(trainer.model)
    log.info("rl: GRPO on %d dialogues, %d x %d completions per step, %d steps; %s trainable of %s parameters; "
             "completions sampled by %s", len(setup.rows), cfg.rl.prompts_per_step, cfg.rl.num_generations,
             cfg.rl.max_steps, f"{trainable:,}", f"{total:,}", "vLLM" if setup.vllm else "transformers")
    trainer.train(resume_from_checkpoint=str(job.checkpoint) if job.checkpoint else None)
    trainer.save_model(str(final))
    drop_reference(final)
    return {"global_step": trainer.state.global_step, "trainable_params": trainable,
            **curve_fields(trainer.state.log_history, cfg.rl.max_steps)}


def prepare(cfg: Config, rows_df: pd.DataFrame, job: RlJob) -> tuple[Config, RlSetup]:
    """The starting checkpoint's prompt settings, the exact prompts, stop and banned ids, the cap, the reward."""
    settings = as_trained(cfg, job.init, job.pool)  # the starting checkpoint's prompt and length cap, resolved once
    run_cfg, pool_path = settings.cfg, settings.pool
    tokenizer = load_tokenizer(str(job.init), run_cfg, padding_side="left")
    builder = PromptBuilder(tokenizer, run_cfg.prompt)
    pool = load_split(pool_path, "train") if pool_path is not None and run_cfg.prompt.num_fewshot else None
    selector = ShotSelector(pool, run_cfg.prompt, cfg.seed) if pool is not None else None
    rows, lost = prompt_rows(builder, selector, sample_rows(rows_df, cfg.rl.rows, cfg.seed))
    if not rows:
        raise UserError(f"rl: none of the {len(rows_df)} training prompts can be handed to TRL as text that encodes to "
                        "the prompt builder's ids (the tokenizer appends tokens of its own?); report it with the model")
    if lost:
        log.warning("rl: %d of %d prompts left out: no text encodes to the builder's ids exactly", lost, lost + len(rows))
    info, cap = settings.record, settings.gen.max_new_tokens
    device = pick_device(cfg.model.device)
    # through the module, where tests replace blocked_token_ids
    stop_ids, banned = builder.stop_token_ids, constraints.blocked_token_ids(tokenizer, cfg.inference.block_scripts)
    vllm = use_vllm(cfg, device)
    audit = CompletionAudit()
    max_len = cap if cfg.rl.max_completion_length == "auto" else cfg.rl.max_completion_length
    return run_cfg, RlSetup(tokenizer, rows, lost, info, pool_path, device, compute_dtype(cfg.training.compute_dtype,
                            device), stop_ids, len(banned), vllm, generation_kwargs(stop_ids, banned, vllm),
                            int(max_len), audit, reward_functions(cfg, stop_ids, banned, audit))


def finalize_rl(run_cfg: Config, job: RlJob, setup: RlSetup, final: Path) -> None:
    """Tokenizer, config, the starting checkpoint's inference record (prompts, pool, lengths) and fingerprint."""
    pool = setup.pool_path
    probe = [r["prompt"] for r in setup.rows[:3]]
    finalize(final, run_cfg, setup.tokenizer, probe, job.parts, pool, file_digest(pool) if pool else None,
             setup.info.get("completion_tokens") or {})


def train_grpo(cfg: Config, rows_df: pd.DataFrame, dev_df: Optional[pd.DataFrame], job: RlJob) -> dict[str, Any]:
    """GRPO from ``job.init``, ``rl/final_checkpoint``, the SFT-vs-RL comparison; return the manifest fields."""
    final = job.out_dir / "final_checkpoint"
    run_cfg, setup = prepare(cfg, rows_df, job)
    fields = finished_run(cfg, job, final)
    if fields is None:
        fields = run_trainer(run_cfg, job, setup, final)
    finalize_rl(run_cfg, job, setup, final)
    r = cfg.rl
    fields.update(init_checkpoint=str(job.init), final_checkpoint=str(final), resumed_from=str(job.checkpoint)
                  if job.checkpoint else None, rows=len(setup.rows), prompts_left_out=setup.lost,
                  max_completion_length=setup.max_len, generation="vllm" if setup.vllm else "transformers",
                  banned_ids=setup.banned, audit=setup.audit.as_dict(),
                  reward_weights={"rouge": r.rouge_weight, "length": r.length_weight, "stop": r.no_stop_weight,
                                  "fluency": r.fluency_weight})
    audit = setup.audit
    if audit.stop_before_end or audit.banned_tokens:
        log.warning("rl: %d completions went on past a stop token, %d banned tokens were generated: the generation "
                    "settings did not reach TRL", audit.stop_before_end, audit.banned_tokens)
    if dev_df is not None and r.eval_rows:
        fields["dev"] = compare_on_dev(cfg, {"sft": job.init, "rl": final}, dev_df, setup.pool_path)
    return fields


def compare_on_dev(cfg: Config, checkpoints: dict[str, Path], dev: pd.DataFrame, pool_path: Optional[Path]) -> dict:
    """Greedy summaries of ``rl.eval_rows`` dev rows from each checkpoint, by the inference code; their scores."""
    sample = RougeSample.from_frame(dev, cfg.rl.eval_rows, cfg.seed, cfg.evaluation.tokenizer)
    out: dict[str, Any] = {"rows": len(sample.fnames), "scorer": sample.tokenizer}
    for name, checkpoint in checkpoints.items():
        settings = as_trained(cfg, checkpoint, pool_path)
        pool = load_split(settings.pool, "train") if settings.pool is not None and settings.cfg.prompt.num_fewshot \
            else None
        summaries = load_predictor(settings, pool).predict_batch(sample.dialogues, sample.fnames)
        scores = score_texts(summaries, [[ref] for ref in sample.references], tokenizer=sample.tokenizer)
        out[name] = {"final": round(scores["final"], 2), "mean_words": round(
            sum(map(words, summaries)) / max(1, len(summaries)), 1)}
    out["reference_mean_words"] = round(sum(map(words, sample.references)) / max(1, len(sample.references)), 1)
    log.info("rl: dev final on %d rows (%s): SFT %.2f -> RL %.2f; mean words %.1f -> %.1f (references %.1f)",
             out["rows"], out["scorer"], out["sft"]["final"], out["rl"]["final"], out["sft"]["mean_words"],
             out["rl"]["mean_words"], out["reference_mean_words"])
    return out
