"""Which ``checkpoint-N`` a resumed run may continue from: complete, and trained under the same settings.

Every checkpoint the Trainer saves gets ``pipeline_fingerprint.json`` (written last, by the
``CheckpointRecord`` callback): the fingerprint of what decides training (data digests, model,
training and prompt settings, seed, and the settings that pick the best checkpoint: the evaluation
tokenizer and the ROUGE callback's generation settings) and the size of every file saved. On
``--resume`` the newest checkpoint that is complete (all files at their recorded sizes, the
trainer state and the weights' headers readable, every file's sha256 as recorded) and carries the run's
fingerprint is used. A
checkpoint trained under other settings is moved aside (never deleted) with one log line saying
why; a broken one is moved aside with a warning, and the previous complete one is used.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any, Optional

from transformers import TrainerCallback

from src.config import Config, to_dict
from src.config.deciding import GENERATION_KEYS
from src.utils.io import atomic_write_json, follow_umask, json_digest, sha256_file

log = logging.getLogger(__name__)

FINGERPRINT_FILE = "pipeline_fingerprint.json"
ASIDE = "set_aside"  # <model_dir>/set_aside/checkpoint-N.<why>-<time>/
# settings that change how often things are logged or kept, not what is trained
NOT_DECIDING = ("logging_steps", "report_to", "wandb_project", "wandb_entity", "save_total_limit")
# Trainer state files a finished model does not need
TRAINER_STATE_FILES = ("optimizer.pt", "scheduler.pt", "scaler.pt", "trainer_state.json", "training_args.bin",
                       FINGERPRINT_FILE)


def training_parts(cfg: Config, data_digests: dict[str, Optional[str]], model_path: str) -> dict[str, Any]:
    """What decides training, as plain data (hashed into the fingerprint and kept to say what changed)."""
    training = {k: v for k, v in to_dict(cfg.training).items() if k not in NOT_DECIDING}
    generation = {k: v for k, v in to_dict(cfg.inference).items() if k in GENERATION_KEYS}
    return {"data": data_digests, "model": {**to_dict(cfg.model), "path": model_path}, "training": training,
            "prompt": to_dict(cfg.prompt), "seed": cfg.seed, "seq2seq": to_dict(cfg.seq2seq),
            "evaluation_tokenizer": cfg.evaluation.tokenizer, "rouge_generation": generation}


def training_fingerprint(parts: dict[str, Any]) -> str:
    """The hash of ``training_parts`` (a checkpoint resumes only under the same one)."""
    return json_digest(parts)


def record(folder: Path, parts: dict[str, Any]) -> None:
    """Write the fingerprint, the file sizes and their sha256 into a saved checkpoint (last: it marks it complete)."""
    folder = Path(folder)
    saved = [p for p in sorted(folder.rglob("*")) if p.is_file() and p.name != FINGERPRINT_FILE]
    files = {str(p.relative_to(folder)): p.stat().st_size for p in saved}
    checksums = {str(p.relative_to(folder)): sha256_file(p) for p in saved}
    atomic_write_json(folder / FINGERPRINT_FILE, {"fingerprint": training_fingerprint(parts), "parts": parts, "files": files,
                                                  "sha256": checksums})
    follow_umask(folder)



class CheckpointRecord(TrainerCallback):
    """After each save: the fingerprint and file sizes into ``checkpoint-N``, and umask permissions."""

    def __init__(self, parts: dict[str, Any]) -> None:
        self.parts = parts

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Record the folder the Trainer has just written (main process only)."""
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir() and state.is_world_process_zero:
            record(folder, self.parts)


def step_of(folder: Path) -> int:
    """N of ``checkpoint-N``."""
    return int(folder.name.rsplit("-", 1)[-1])


def checkpoints(model_dir: Path) -> list[Path]:
    """The ``checkpoint-N`` folders of a run, newest first."""
    found = [p for p in Path(model_dir).glob("checkpoint-*") if p.is_dir() and p.name.rsplit("-", 1)[-1].isdigit()]
    return sorted(found, key=step_of, reverse=True)


def safetensors_readable(path: Path) -> bool:
    """``safetensors.safe_open`` reads the header and every tensor's offsets fit the file (a truncated copy fails)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as fh:
            fh.keys()
    except (OSError, ValueError, SafetensorError):
        return False
    return True


def content_problem(folder: Path, trainer_state: bool = True) -> Optional[str]:
    """Why the files of ``folder`` are not what its record says (missing, truncated, unreadable, another sha256),
    or None. A folder recorded before checksums were kept is checked by size and safetensors header only."""
    try:
        info = json.loads((folder / FINGERPRINT_FILE).read_text(encoding="utf-8"))
        if trainer_state:
            json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"unreadable state ({type(exc).__name__})"
    checksums = info.get("sha256") or {}
    for name, size in info.get("files", {}).items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != size:
            return f"{name} is {'missing' if not path.is_file() else 'truncated'}"
        if name.endswith(".safetensors") and not safetensors_readable(path):
            return f"{name} is unreadable"
        if name in checksums and sha256_file(path) != checksums[name]:
            return f"{name} does not match its recorded sha256 (changed or corrupted after it was saved)"
    return None


def problem_with(folder: Path) -> Optional[str]:
    """Why ``folder`` is not a complete, intact ``checkpoint-N``, or None."""
    return content_problem(folder, trainer_state=True)


def set_aside(folder: Path, why: str) -> Path:
    """Move a checkpoint out of the Trainer's way (kept, never deleted)."""
    target = folder.parent / ASIDE / f"{folder.name}.{why}-{time.strftime('%Y%m%d-%H%M%S')}"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(folder), str(target))
    return target


def _changed(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Top-level parts (and training or rl keys) that differ."""
    keys = [k for k in new if old.get(k) != new[k]]
    for part in ("training", "rl"):
        if part in keys and isinstance(old.get(part), dict) and isinstance(new[part], dict):
            keys += [f"{part}.{k}" for k in new[part] if old[part].get(k) != new[part][k]]
            keys.remove(part)
    return keys or ["unknown"]


def resume_checkpoint(model_dir: Path, parts: dict[str, Any]) -> Optional[Path]:
    """The newest complete checkpoint trained with ``parts``; stale and broken ones are moved aside."""
    wanted = training_fingerprint(parts)
    for folder in checkpoints(model_dir):
        problem = problem_with(folder)
        if problem is None:
            info = json.loads((folder / FINGERPRINT_FILE).read_text(encoding="utf-8"))
            if info.get("fingerprint") == wanted:
                return folder
            changed = ", ".join(_changed(info.get("parts", {}), parts))
            log.info("%s was trained under other settings (%s changed): moved to %s; training starts over",
                     folder.name, changed, set_aside(folder, "stale"))
        else:
            log.warning("%s is incomplete or damaged (%s): moved to %s; trying the previous checkpoint", folder.name, problem,
                        set_aside(folder, "broken"))
    return None


def finished(folder: Path, max_steps: int, num_epochs: float) -> bool:
    """True when a checkpoint already holds the whole run (training it further would add a step)."""
    state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    if max_steps > 0:
        return int(state.get("global_step", 0)) >= max_steps
    return float(state.get("epoch") or 0) >= num_epochs - 1e-6


def finish_from(folder: Path, final: Path) -> dict[str, Any]:
    """``final`` as the run's model from a finished checkpoint (its best one when the state names it)."""
    state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    best = state.get("best_model_checkpoint")
    source = Path(best) if best and Path(best).is_dir() and problem_with(Path(best)) is None else folder
    if final.exists():
        shutil.rmtree(final)
    shutil.copytree(source, final, ignore=shutil.ignore_patterns(*TRAINER_STATE_FILES, "rng_state*.pth"))
    losses = [e["loss"] for e in state.get("log_history", []) if "loss" in e]
    return {"global_step": int(state.get("global_step", 0)), "best_checkpoint": best,
            "best_metric": state.get("best_metric"), "train_loss": sum(losses) / len(losses) if losses else None,
            "finished_from": str(source)}
