"""Train stage: fine-tune the model (SFT for causal, Seq2SeqTrainer for seq2seq)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

from src.config import Config, resolve_input, resolve_path
from src.context import RunContext, present
from src.data.loading import load_split
from src.models.checkpoint import newest_final, training_parts
from src.models.device import device_problems, pick_device
from src.models.loading import check_model_reachable, load_tokenizer
from src.prompting.builder import prompt_problems
from src.train.final import TrainJob
from src.train.options import check_trainer_options
from src.train.seq2seq import train_seq2seq
from src.train.sft import train_causal
from src.utils.io import file_digest
from src.utils.secrets import get_secret

log = logging.getLogger(__name__)

name = "train"
required: tuple[str, ...] = ("train",)
command_line: tuple[str, ...] = ()  # sections whose command-line keys win (src.pipeline.fingerprint)


def outputs(ctx: RunContext) -> dict[str, Path]:
    """The final adapter/model folder."""
    return {"checkpoint": ctx.model_dir / "final_checkpoint"}


def fallback(ctx: RunContext) -> dict[str, Optional[Path]]:
    """Skipped training: ``inference.checkpoint`` if set, else this run's final_checkpoint; in a run without
    ``--run-name`` that has none, the newest complete final_checkpoint trained with the same model."""
    ckpt = ctx.cfg.inference.checkpoint
    own = ctx.model_dir / "final_checkpoint"
    if ckpt:
        return {"checkpoint": resolve_path(ckpt)}
    if own.is_dir() or ctx.run_name_given:
        return {"checkpoint": own}

    return {"checkpoint": newest_final(ctx.model_dir.parent, ctx.cfg) or own}


def inputs(ctx: RunContext) -> dict[str, Optional[Path]]:
    """The merged training set and the rows of the training-time eval (loss, ROUGE callback, best checkpoint):
    ``training.eval_file`` when set, else the dev split."""
    eval_file = ctx.cfg.training.eval_file
    dev = (resolve_path(eval_file, resolve_input(ctx.cfg.paths.data_dir)) if eval_file
           else ctx.upstream("preprocess", "dev"))
    return {"train": ctx.upstream("merge", "train"), "dev": dev}


def config_parts(cfg: Config) -> dict[str, Any]:
    """Settings this stage depends on."""
    return {"model": cfg.model, "training": cfg.training, "prompt": cfg.prompt, "seed": cfg.seed,
            "seq2seq": cfg.seq2seq if cfg.model.type == "seq2seq" else None}


def check(ctx: RunContext) -> list[str]:
    """The model can be loaded; trainer options exist in the installed transformers; the prompt fits its budget."""


    cfg = ctx.cfg
    eval_path = inputs(ctx)["dev"] if cfg.training.eval_file else None
    if eval_path is not None and not eval_path.is_file():
        return [f"training.eval_file: {eval_path} does not exist (relative to paths.data_dir "
                f"{cfg.paths.data_dir}): point it at a CSV with fname,dialogue,summary or leave it empty"]
    problem = check_model_reachable(cfg.model.name, cfg.model.revision, get_secret("HF_TOKEN"), cfg.paths.model_dir)
    problems = ([problem] if problem else []) + device_problems(cfg, training=True)
    if problems or cfg.model.type != "causal":
        return problems

    return check_trainer_options(cfg, pick_device(cfg.model.device)) + _prompt_problems(ctx)


def _prompt_problems(ctx: RunContext) -> list[str]:
    """Prompt-builder problems with the model's tokenizer, when it is on disk already (a fresh debug model is not)."""
    path = ctx.model_path
    if path is None or not Path(path).is_dir():
        return []  # a hub model in the cache or a model built later: the builder checks again before training

    return prompt_problems(load_tokenizer(path, ctx.cfg), ctx.cfg.prompt)


def job(ctx: RunContext) -> Any:
    """The ``TrainJob``: output folder, resume, the fingerprint of what decides training, the few-shot pool."""
    ins, model_path = inputs(ctx), ctx.require_model_path()
    digests = {k: file_digest(p) if p is not None else None for k, p in ins.items()}
    model_files = [Path(model_path) / n for n in ("config.json", "BUILD_INFO.json")]
    digests["model"] = ",".join(file_digest(p) for p in model_files if p.is_file()) or None
    train = present(ins, "train")
    return TrainJob(ctx.model_dir, ctx.resume, training_parts(ctx.cfg, digests, model_path), train, digests["train"],
                    report_dir=ctx.run_dir if ctx.is_main else None, explicit=ctx.explicit)


def run(ctx: RunContext) -> dict[str, Any]:
    """Train and save ``final_checkpoint``; return global_step, resumed_from, world_size and counts."""
    ins = inputs(ctx)
    train_df = load_split(present(ins, "train"), "train")
    dev_df = load_split(ins["dev"], "dev") if ins["dev"] is not None else None
    ctx.model_dir.mkdir(parents=True, exist_ok=True)
    train_fn = train_seq2seq if ctx.cfg.model.type == "seq2seq" else train_causal
    return train_fn(ctx.cfg, ctx.require_model_path(), train_df, dev_df, job(ctx))
