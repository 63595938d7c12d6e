"""RL stage: GRPO on the SFT adapter with the competition's score as the reward (``src.train.grpo``).

Off unless ``rl.enabled`` is true or ``--stages`` names it (``src.pipeline.OPT_IN``). It starts from
the train stage's ``final_checkpoint`` (or ``rl.init_checkpoint``) and writes
``model/R/rl/final_checkpoint``, which tune and infer then use; skipped, it stands aside and they use
the SFT checkpoint (its fallback is the train stage's checkpoint).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

from src.config import Config, resolve_path, to_dict
from src.context import RunContext, present
from src.data.loading import load_split
from src.models.checkpoint import content_digest
from src.models.device import device_problems
from src.models.loading import check_model_reachable
from src.train.grpo import train_grpo
from src.train.grpo_setup import RlJob, setup_problems
from src.utils.io import file_digest
from src.utils.secrets import get_secret

log = logging.getLogger(__name__)

name = "rl"
required: tuple[str, ...] = ("init", "train")
command_line: tuple[str, ...] = ()  # sections whose command-line keys win (src.pipeline.fingerprint)
# what changes how a run is logged or kept, or whether the stage runs, not what it trains
NOT_DECIDING = ("enabled", "logging_steps", "save_steps", "save_total_limit", "eval_rows")


def rl_dir(ctx: RunContext) -> Path:
    """``model/R/rl``: the GRPO checkpoints and the RL final checkpoint."""
    return ctx.model_dir / "rl"


def outputs(ctx: RunContext) -> dict[str, Path]:
    """The RL final adapter folder."""
    return {"checkpoint": rl_dir(ctx) / "final_checkpoint"}


def fallback(ctx: RunContext) -> dict[str, Optional[Path]]:
    """Skipped (or off): the SFT checkpoint stands in, so tune and infer use what the train stage gives them."""
    return {"checkpoint": ctx.upstream("train", "checkpoint")}


def inputs(ctx: RunContext) -> dict[str, Optional[Path]]:
    """The starting checkpoint, the training rows (``rl.data``) and dev (for the SFT-vs-RL comparison)."""
    rl = ctx.cfg.rl
    init = resolve_path(rl.init_checkpoint) if rl.init_checkpoint else ctx.upstream("train", "checkpoint")
    rows = ctx.upstream("merge", "train") if rl.data == "merged" else ctx.upstream("preprocess", "train")
    return {"init": init, "train": rows, "dev": ctx.upstream("preprocess", "dev") if rl.eval_rows else None}


def training_settings(cfg: Config) -> dict[str, Any]:
    """What decides the GRPO weights (hashed into the stage fingerprint and every checkpoint's)."""
    t = cfg.training
    return {"rl": {k: v for k, v in to_dict(cfg.rl).items() if k not in NOT_DECIDING},
            "training": {"use_qlora": t.use_qlora, "quantization": t.quantization, "compute_dtype": t.compute_dtype,
                         "optim": t.optim, "max_grad_norm": t.max_grad_norm, "lora": to_dict(t.lora)},
            "reward": {"scorer": cfg.evaluation.tokenizer, "cut_unfinished": cfg.inference.cut_unfinished},
            "block_scripts": list(cfg.inference.block_scripts)}


def config_parts(cfg: Config) -> dict[str, Any]:
    """Settings this stage depends on (the comparison's generation settings too)."""
    return {**training_settings(cfg), "eval_rows": cfg.rl.eval_rows, "model": cfg.model, "prompt": cfg.prompt,
            "inference": cfg.inference, "seed": cfg.seed}


def check(ctx: RunContext) -> list[str]:
    """A causal model; the generation engine and ``rl.extra`` exist here; the model and device (when train does
    not check them)."""
    cfg = ctx.cfg
    if cfg.model.type != "causal":
        return ["the rl stage trains causal models only (model.type=seq2seq): drop rl from --stages, or set "
                "model.type=causal"]
    problems = setup_problems(cfg)
    if "train" not in ctx.selected:
        reach = check_model_reachable(cfg.model.name, cfg.model.revision, get_secret("HF_TOKEN"), cfg.paths.model_dir)
        problems += ([reach] if reach else []) + device_problems(cfg, training=True)
    return problems


def job(ctx: RunContext) -> Any:
    """The ``RlJob``: folders, resume, the starting checkpoint and the fingerprint of what decides GRPO."""
    ins = inputs(ctx)
    init, rows = present(ins, "init"), present(ins, "train")
    digests = {"train": file_digest(rows), "init": content_digest(init)}
    parts = {**training_settings(ctx.cfg), "data": digests, "prompt": to_dict(ctx.cfg.prompt), "seed": ctx.cfg.seed}
    return RlJob(rl_dir(ctx), ctx.resume, parts, init, ctx.model_path, report_dir=ctx.run_dir if ctx.is_main else None,
                 pool=rows)


def run(ctx: RunContext) -> dict[str, Any]:
    """GRPO, then ``rl/final_checkpoint``; return steps, rewards, the completion audit and SFT vs RL dev scores."""
    ins = inputs(ctx)
    rows = load_split(present(ins, "train"), "train")
    dev = load_split(ins["dev"], "dev") if ins["dev"] is not None else None
    rl_dir(ctx).mkdir(parents=True, exist_ok=True)
    return train_grpo(ctx.cfg, rows, dev, job(ctx))
