"""Train stage: fine-tune the model (SFT for causal, Seq2SeqTrainer for seq2seq)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

from src.config import Config, resolve_path

log = logging.getLogger(__name__)

required = ("train",)


def outputs(ctx: Any) -> dict[str, Path]:
    """The final adapter/model folder."""
    return {"checkpoint": ctx.model_dir / "final_checkpoint"}


def fallback(ctx: Any) -> dict[str, Optional[Path]]:
    """Skipped training: ``inference.checkpoint`` if set, else this run's final_checkpoint."""
    ckpt = ctx.cfg.inference.checkpoint
    return {"checkpoint": resolve_path(ckpt) if ckpt else ctx.model_dir / "final_checkpoint"}


def inputs(ctx: Any) -> dict[str, Optional[Path]]:
    """The merged training set and the dev set (eval loss / ROUGE during training)."""
    return {"train": ctx.upstream("merge", "train"), "dev": ctx.upstream("preprocess", "dev")}


def config_parts(cfg: Config) -> dict[str, Any]:
    """Settings this stage depends on."""
    return {"model": cfg.model, "training": cfg.training, "prompt": cfg.prompt, "seed": cfg.seed,
            "seq2seq": cfg.seq2seq if cfg.model.type == "seq2seq" else None}


def run(ctx: Any) -> dict[str, Any]:
    """Train and save ``final_checkpoint``; return global_step, resumed_from, world_size and counts."""
    from src.data.loading import load_split

    ins = inputs(ctx)
    train_df = load_split(ins["train"], "train")
    dev_df = load_split(ins["dev"], "dev") if ins["dev"] is not None else None
    ctx.model_dir.mkdir(parents=True, exist_ok=True)
    if ctx.cfg.model.type == "seq2seq":
        from src.train.seq2seq import train_seq2seq as train_fn
    else:
        from src.train.sft import train_causal as train_fn
    return train_fn(ctx.cfg, ctx.extras["model_path"], train_df, dev_df, ctx.model_dir, ctx.resume)
