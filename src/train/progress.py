"""What a training run reports while it runs: loss lines in the log, a loss curve, and a stop on a broken loss.

``TrainingLog`` turns the Trainer's log records into one ``pipeline.log`` line each (loss, learning
rate, gradient norm; eval loss and ROUGE at evaluations) and writes ``train_log.csv`` (every logged
value) and ``train_curves.png`` into the run folder at every checkpoint and when training ends, so a
killed run keeps its curve up to its last checkpoint; the rl stage's GRPO run logs reward, KL and
completion length the same way into ``rl_log.csv`` and ``rl_curves.png`` (every step since the first,
a resumed run included: TRL's log history), rewritten after every logged step (``live``: a GRPO step
takes minutes on a CPU, and a stopped run is read from its curve). ``FiniteLoss``
stops training at the first logged loss that is NaN or infinite, with one line saying what to change,
so a diverged run never reaches inference (whose fallbacks would hide it).
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Callable, Optional

from transformers import TrainerCallback

from src.utils.errors import UserError
from src.utils.io import atomic_write, atomic_write_csv

log = logging.getLogger(__name__)

Shown = tuple[tuple[str, str, str], ...]  # (logged key, label in the line, format)
SHOWN: Shown = (("loss", "loss", "{:.4f}"), ("learning_rate", "lr", "{:.2e}"), ("grad_norm", "grad_norm", "{:.3f}"),
                ("eval_loss", "eval_loss", "{:.4f}"), ("eval_rouge_final", "eval_rouge_final", "{:.2f}"))
RL_SHOWN: Shown = (("reward", "reward", "{:.4f}"), ("reward_std", "std", "{:.4f}"),
                   ("rewards/rouge/mean", "rouge", "{:.4f}"), ("kl", "kl", "{:.4f}"),
                   ("completions/mean_length", "tokens", "{:.1f}"), ("completions/clipped_ratio", "cut", "{:.2f}"),
                   ("learning_rate", "lr", "{:.2e}"))


class FiniteLoss(TrainerCallback):
    """Raise UserError when a logged training or eval loss is NaN or infinite."""

    def __init__(self, learning_rate: float, key: str = "training.learning_rate") -> None:
        self.learning_rate, self.key = learning_rate, key

    def on_log(self, args: Any, state: Any, control: Any, logs: Optional[dict] = None, **kwargs: Any) -> None:
        """Check each logged loss."""
        for key in ("loss", "eval_loss"):
            value = (logs or {}).get(key)
            if isinstance(value, (int, float)) and not math.isfinite(value):
                raise UserError(f"training stopped at step {state.global_step}: the {key.replace('_', ' ')} became "
                                f"{value}; lower {self.key} (now {self.learning_rate:g}), keep "
                                "training.max_grad_norm > 0, or check the data for empty or huge rows")


class TrainingLog(TrainerCallback):
    """Loss lines in the pipeline log; ``train_log.csv`` and ``train_curves.png`` in ``report_dir`` at every
    checkpoint and at the end (``live``: after every logged step too).

    ``name``, ``shown`` and ``write`` make the rl stage's lines and files; ``history`` writes the trainer's
    whole log history (earlier runs of a resumed training too) instead of what this process logged.
    """

    def __init__(self, report_dir: Optional[Path], name: str = "train", shown: Shown = SHOWN,
                 write: Optional[Callable[[list[dict[str, Any]], Path], None]] = None, history: bool = False,
                 live: bool = False) -> None:
        self.report_dir, self.name, self.shown, self.history, self.live = report_dir, name, shown, history, live
        self.write = write or write_curves
        self.rows: list[dict[str, Any]] = []
        self.written = 0  # rows in the files on disk: a checkpoint or the end right after a live write adds none

    def on_log(self, args: Any, state: Any, control: Any, logs: Optional[dict] = None, **kwargs: Any) -> None:
        """One line per logged step (the main process only)."""
        logs = logs or {}
        if not state.is_world_process_zero:
            return
        values = {k: v for k, v in logs.items() if isinstance(v, (int, float))}
        if values:  # every logged value goes to train_log.csv (the end's train_runtime too)
            self.rows.append({"step": state.global_step, "epoch": logs.get("epoch", state.epoch), **values})
        shown = [f"{label} {fmt.format(logs[key])}" for key, label, fmt in self.shown if key in values]
        if shown:
            log.info("%s step %d/%d: %s", self.name, state.global_step, state.max_steps, ", ".join(shown))
        if self.live and values:
            self.flush(state)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """The files as far as the checkpoint just written (what a resumed run continues from)."""
        self.flush(state)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Write the logged values and the curves."""
        self.flush(state)

    def flush(self, state: Any) -> None:
        """(Re)write the log file and the curves from what is logged so far."""
        rows = [{k: v for k, v in e.items() if isinstance(v, (int, float))} for e in state.log_history] \
            if self.history else self.rows
        if self.report_dir is None or len(rows) == self.written or not state.is_world_process_zero:
            return
        self.write(rows, Path(self.report_dir))
        self.written = len(rows)


def write_curves(rows: list[dict[str, Any]], folder: Path) -> None:
    """``train_log.csv`` and ``train_curves.png`` (training and eval loss by step; learning rate below)."""
    import pandas as pd
    from matplotlib.figure import Figure

    df = pd.DataFrame(rows)
    atomic_write_csv(folder / "train_log.csv", df)
    fig = Figure(figsize=(7, 5), layout="constrained")
    loss_ax, lr_ax = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    for key, label in (("loss", "training loss"), ("eval_loss", "eval loss")):
        if key in df:
            part = df.dropna(subset=[key])
            loss_ax.plot(part["step"], part[key], marker="o" if key == "eval_loss" else None, label=label)
    loss_ax.set_ylabel("loss")
    loss_ax.legend()
    if "learning_rate" in df:
        part = df.dropna(subset=["learning_rate"])
        lr_ax.plot(part["step"], part["learning_rate"], color="#55a868")
    lr_ax.set_ylabel("learning rate")
    lr_ax.set_xlabel("optimizer step")
    atomic_write(folder / "train_curves.png", lambda tmp: fig.savefig(tmp, format="png", dpi=100))


def write_rl_curves(rows: list[dict[str, Any]], folder: Path) -> None:
    """``rl_log.csv`` and ``rl_curves.png``: reward mean and std (and the ROUGE term), KL, completion length by step."""
    import pandas as pd
    from matplotlib.figure import Figure

    df = pd.DataFrame(rows)
    first = [c for c in ("step", "epoch") if c in df]
    atomic_write_csv(folder / "rl_log.csv", df[first + [c for c in df.columns if c not in first]])
    df = df.dropna(subset=["reward"]) if "reward" in df else df.iloc[0:0]
    fig = Figure(figsize=(7, 6), layout="constrained")
    reward_ax, kl_ax, len_ax = fig.subplots(3, 1, sharex=True, height_ratios=(3, 1, 1))
    if len(df):
        reward_ax.plot(df["step"], df["reward"], label="reward (weighted sum)")
        if "reward_std" in df:
            reward_ax.fill_between(df["step"], df["reward"] - df["reward_std"], df["reward"] + df["reward_std"],
                                   alpha=0.2, label="± std within the step")
        if "rewards/rouge/mean" in df:
            reward_ax.plot(df["step"], df["rewards/rouge/mean"], label="ROUGE term (final / 100)")
        reward_ax.legend()
    reward_ax.set_ylabel("reward")
    for ax, key, label in ((kl_ax, "kl", "KL"), (len_ax, "completions/mean_length", "tokens")):
        if key in df:
            ax.plot(df["step"], df[key], color="#55a868")
        ax.set_ylabel(label)
    len_ax.set_xlabel("optimizer step")
    atomic_write(folder / "rl_curves.png", lambda tmp: fig.savefig(tmp, format="png", dpi=100))
