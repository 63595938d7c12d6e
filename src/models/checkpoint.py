"""The checkpoint contract, in one place: what a folder the pipeline trained holds, how it is written, checked,
found and identified.

- **The record** ``pipeline_inference.json`` (``write_inference_info`` / ``read_inference_info``): model type and
  name, prompt settings, few-shot pool (path and digest), the training summaries' token lengths (what
  ``inference.max_new_tokens: auto`` resolves to) and, for causal models, the training data's token ids.
- **The training fingerprint** ``pipeline_fingerprint.json`` (``training_parts``, ``record``): the hash of what decides
  training, every file's size and sha256; written last, so it marks a checkpoint complete.
- **Integrity** (``content_problem``, ``verified_checkpoint``): files at their recorded sizes and sha256, weights
  readable; a damaged folder gives way to the newest intact ``checkpoint-N`` (``resume_checkpoint`` for training).
- **Identity** (``content_digest``): one digest of a checkpoint's content, used by the prediction and tune journals,
  the stage fingerprints and the rl stage's check of its starting checkpoint.
- **Finding one** (``newest_final``) and **finishing one** (``finalize``, ``finish_from``).

Loading the weights for inference is ``src.models.loading.load_inference_model``; what inference takes from the
record is decided in ``src.inference.settings``.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any, Optional

import yaml

from src.config import Config, to_dict
from src.config.deciding import GENERATION_KEYS
from src.models.loading import save_tokenizer
from src.utils.errors import UserError
from src.utils.io import atomic_write_json, atomic_write_text, file_digest, follow_umask, json_digest, sha256_file

log = logging.getLogger(__name__)

INFERENCE_INFO = "pipeline_inference.json"  # written by ``finalize``: what inference needs from training
DEFAULT_MAX_NEW_TOKENS = 128  # for a checkpoint trained elsewhere, without the training summaries' lengths
MARGIN_TOKENS = 8  # headroom above the 99.5th percentile of the training summaries' completion tokens
FINGERPRINT_FILE = "pipeline_fingerprint.json"
ASIDE = "set_aside"  # <model_dir>/set_aside/checkpoint-N.<why>-<time>/
# settings that change how often things are logged or kept, not what is trained
NOT_DECIDING = ("logging_steps", "report_to", "wandb_project", "wandb_entity", "save_total_limit")
# Trainer state files a finished model does not need
TRAINER_STATE_FILES = ("optimizer.pt", "scheduler.pt", "scaler.pt", "trainer_state.json", "training_args.bin",
                       FINGERPRINT_FILE)


# ---------------------------------------------------------------- the record (pipeline_inference.json)

def summary_lengths(lengths: list[int]) -> dict[str, Any]:
    """Percentiles of completion-token counts, the cap ``max_new_tokens: auto`` means, and the histogram."""
    ordered = sorted(lengths)
    if not ordered:
        return {"n": 0, "auto_max_new_tokens": 128, "histogram": {}}

    def pct(q: float) -> int:
        return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.999999))]

    p995 = pct(0.995)
    hist: dict[str, int] = {}
    for n in ordered:
        hist[str(n)] = hist.get(str(n), 0) + 1
    return {"n": len(ordered), "p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "p99_5": p995,
            "max": ordered[-1], "auto_max_new_tokens": p995 + max(MARGIN_TOKENS, round(0.1 * p995)), "histogram": hist}


def write_inference_info(folder: Path, cfg: Config, pool: Optional[Path], pool_digest: Optional[str],
                         lengths: dict[str, Any], output_ids: Optional[list[int]] = None) -> None:
    """What inference reads from the checkpoint to prompt exactly as training did (and, with ``output_ids``, the
    training examples' distinct ids: the trimmed output layer's base, ``src.inference.vocab``)."""
    info: dict[str, Any] = {
        "model_type": cfg.model.type, "model_name": cfg.model.name, "prompt": to_dict(cfg.prompt), "seed": cfg.seed,
        "fewshot_pool": {"path": str(pool) if pool else None, "digest": pool_digest},
        "completion_tokens": lengths}
    if output_ids is not None:
        info["output_vocab"] = output_ids
    atomic_write_json(Path(folder) / INFERENCE_INFO, info)


def read_inference_info(checkpoint: Path) -> dict[str, Any]:
    """The checkpoint's ``pipeline_inference.json`` ({} for a checkpoint this pipeline did not write)."""
    path = Path(checkpoint) / INFERENCE_INFO
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise UserError(f"{path}: unreadable; retrain, or delete the file to use the current config's prompt "
                        "settings") from None
    return info if isinstance(info, dict) else {}


def checkpoint_type(checkpoint: Path, info: dict[str, Any]) -> Optional[str]:
    """causal or seq2seq, as recorded or as the weights' config says; None when nothing tells."""
    if info.get("model_type"):
        return str(info["model_type"])
    config = Path(checkpoint) / "config.json"
    if config.is_file():
        try:
            encoder_decoder = bool(json.loads(config.read_text(encoding="utf-8")).get("is_encoder_decoder"))
        except (OSError, ValueError):
            return None
        return "seq2seq" if encoder_decoder else "causal"
    return "causal" if (Path(checkpoint) / "adapter_config.json").is_file() else None


def write_config(cfg: Config, folder: Path) -> None:
    """The resolved pipeline config next to the weights it produced."""
    atomic_write_text(Path(folder) / "pipeline_config.yaml", yaml.safe_dump(to_dict(cfg), allow_unicode=True,
                                                                             sort_keys=False))


def finalize(folder: Path, cfg: Config, tokenizer: Any, probe: list[str], parts: dict[str, Any],
             pool: Optional[Path], pool_digest: Optional[str], lengths: dict[str, Any],
             output_ids: Optional[list[int]] = None) -> Path:
    """Tokenizer (pinned, verified on ``probe``), config, inference info and fingerprint into a saved model folder."""
    save_tokenizer(tokenizer, folder, probe)
    write_config(cfg, folder)
    write_inference_info(folder, cfg, pool, pool_digest, lengths, output_ids)
    record(folder, parts)
    follow_umask(folder)
    return folder


def trained_with(folder: Path) -> dict[str, Any]:
    """The inference info of a complete final checkpoint ({} when it is not one)."""
    info = read_inference_info(folder) if (folder / "pipeline_fingerprint.json").is_file() else {}
    return info if info else {}


def newest_final(model_root: Path, cfg: Config) -> Optional[Path]:
    """The newest complete ``<run>/final_checkpoint`` trained with ``model.name`` and ``model.type``."""
    found = []
    for folder in Path(model_root).glob("*/final_checkpoint"):
        info = trained_with(folder)
        if info.get("model_name") == cfg.model.name and info.get("model_type") == cfg.model.type:
            found.append(folder)
    return max(found, key=lambda p: (p / "pipeline_fingerprint.json").stat().st_mtime) if found else None


# ---------------------------------------------------------------- the training fingerprint and integrity

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


def check_checkpoint(checkpoint: Path) -> None:
    """Fail clearly unless ``checkpoint`` holds an adapter or full model weights."""
    if not checkpoint.is_dir():
        raise UserError(f"inference checkpoint {checkpoint} does not exist; train first, or set inference.checkpoint "
                        "to a final_checkpoint/ or checkpoint-N/ folder")
    if not (checkpoint / "adapter_config.json").is_file() and not (checkpoint / "config.json").is_file():
        raise UserError(f"inference checkpoint {checkpoint} has neither adapter_config.json nor config.json; "
                        "point inference.checkpoint at a final_checkpoint/, checkpoint-N/ or final_merged/ folder")


def verified_checkpoint(checkpoint: Path) -> Path:
    """``checkpoint`` when its files match the sha256 recorded with it (or it records none: trained elsewhere);
    else, with a warning, the newest intact ``checkpoint-N`` of the same run; UserError when there is none."""
    checkpoint = Path(checkpoint)
    if not (checkpoint / FINGERPRINT_FILE).is_file():
        return checkpoint
    problem = content_problem(checkpoint, trainer_state=checkpoint.name.startswith("checkpoint-"))
    if problem is None:
        return checkpoint
    for other in checkpoints(checkpoint.parent):
        if other != checkpoint and problem_with(other) is None:
            log.warning("inference checkpoint %s is damaged (%s): using %s, the newest intact checkpoint of the run "
                        "(retrain with --resume to rebuild it)", checkpoint, problem, other)
            return other
    raise UserError(f"inference checkpoint {checkpoint}: {problem}, and the run has no intact checkpoint-N to use "
                    "instead; retrain (--resume continues from the last intact one) or set inference.checkpoint")


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


# ---------------------------------------------------------------- identity

_DIGESTS: dict[tuple[str, int, int, int], str] = {}  # (folder, files, bytes, newest mtime) -> digest, unrecorded folders


def content_digest(path: Path) -> str:
    """The one identity of a checkpoint's content (the journals, the stage fingerprints and the rl stage's start).

    A checkpoint this pipeline saved: the digest of the per-file sha256 recorded with it (checked on load by
    ``content_problem``). A folder recorded without checksums, or trained elsewhere: the digest of every file's
    own sha256 (a copy digests the same; computed once per process while the folder is unchanged). A file: its
    sha256; a missing path: ``missing``.
    """
    path = Path(path)
    if not path.exists():
        return "missing"
    if not path.is_dir():
        return file_digest(path)
    try:
        recorded = json.loads((path / FINGERPRINT_FILE).read_text(encoding="utf-8")).get("sha256") or {}
    except (OSError, ValueError):
        recorded = {}
    if recorded:
        return "ckpt:" + json_digest(recorded)
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name != FINGERPRINT_FILE)
    stats = [p.stat() for p in files]
    key = (str(path.resolve()), len(files), sum(st.st_size for st in stats), max((st.st_mtime_ns for st in stats),
                                                                                 default=0))
    if key not in _DIGESTS:
        _DIGESTS[key] = "ckpt:" + json_digest({str(p.relative_to(path)): sha256_file(p) for p in files})
    return _DIGESTS[key]
