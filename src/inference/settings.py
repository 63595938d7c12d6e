"""The settings inference really uses, built in one place, each with where its value came from.

Layers, later wins: the run's config; the checkpoint's prompt settings (``pipeline_inference.json``,
unless ``inference.prompt_from_checkpoint=false``); for seq2seq the ``seq2seq.*`` generation defaults
(where the config left an inference key at its causal default); the tune stage's choice
(``best_generation.yaml``: its ``inference`` and ``prompt`` keys, and ``mbr.use: false`` as
``inference.mbr.num_candidates=1``); and last the keys given on the command line (``inference.mbr.*`` too), which win
whatever their value.
Then ``max_new_tokens: auto`` is resolved (seq2seq: ``seq2seq.generation_max_length``; causal: the cap
recorded with the checkpoint). ``resolve_settings`` is the only place this happens: the infer and tune
stages, the predictors, MBR's candidates and ``--dry-run`` all take the frozen ``InferenceSettings`` it
returns (or values derived from it: ``decoding()`` for the engines, the manifest's settings through
``src.config.deciding.inference_values``), and none of them reads ``pipeline_inference.json`` or applies a default again.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Optional

import yaml

from src.config import Config, InferenceConfig, PromptConfig, build_config
from src.config.deciding import DECIDING_KEYS
from src.inference.decoding import DecodingParams
from src.models.checkpoint import (DEFAULT_MAX_NEW_TOKENS, checkpoint_type, read_inference_info,
                                   verified_checkpoint)
from src.utils.errors import UserError
from src.utils.io import file_digest

log = logging.getLogger(__name__)

CONFIG, CHECKPOINT, TUNE, COMMAND_LINE, SEQ2SEQ = "config", "checkpoint", "tune", "command line", "seq2seq.*"
# the keys the log and --dry-run show: every inference key that decides a summary except the sections
SHOWN = tuple(k for k in DECIDING_KEYS if k not in ("mbr",))
MBR_SHOWN = ("num_candidates",)  # of the mbr section: whether MBR is on (the tune stage may turn it off)
SEQ2SEQ_DEFAULTS = {"max_new_tokens": "generation_max_length", "num_beams": "num_beams",
                    "no_repeat_ngram_size": "no_repeat_ngram_size"}  # inference key -> the seq2seq.* key standing in


@dataclass(frozen=True)
class InferenceSettings:
    """The config inference runs with, the checkpoint and few-shot pool, the checkpoint's record, and the source of
    every shown value."""

    cfg: Config
    checkpoint: Optional[Path]
    pool: Optional[Path]
    sources: dict[str, str] = field(default_factory=dict)  # "inference.num_beams" -> "tune (best_generation.yaml)"
    record: dict[str, Any] = field(default_factory=dict)  # the checkpoint's pipeline_inference.json ({}: none)

    @property
    def gen(self) -> InferenceConfig:
        """The resolved ``inference.*`` section."""
        return self.cfg.inference

    def decoding(self) -> DecodingParams:
        """What the engines read."""
        return DecodingParams.of(self.gen)

    def lines(self) -> list[str]:
        """``key = value  (source)`` for the generation keys and the prompt keys."""
        keys = ([f"inference.{k}" for k in SHOWN] + [f"inference.mbr.{k}" for k in MBR_SHOWN]
                + [f"prompt.{f.name}" for f in dataclasses.fields(PromptConfig)])
        return [f"{key} = {_value(self.cfg, key)!r}  ({self.sources.get(key, CONFIG)})" for key in keys]

    def log(self) -> None:
        """One INFO line per setting (the infer stage, before it generates)."""
        log.info("inference settings (value, source) with checkpoint %s:", self.checkpoint)
        for line in self.lines():
            log.info("  %s", line)


def _value(cfg: Config, key: str) -> Any:
    """The value of a dotted key (``inference.num_beams``, ``inference.mbr.num_candidates``)."""
    found: Any = cfg
    for name in key.split("."):
        found = getattr(found, name)
    return found


def _keys(cfg: Config) -> list[str]:
    """Every inference.* and prompt.* key, the mbr section's one by one (``inference.mbr.num_candidates``)."""
    keys = [f"inference.mbr.{f.name}" for f in dataclasses.fields(cfg.inference.mbr)]
    for section in ("inference", "prompt"):
        keys += [f"{section}.{f.name}" for f in dataclasses.fields(getattr(cfg, section)) if f.name != "mbr"]
    return keys


def _mark(before: Config, after: Config, sources: dict[str, str], source: str) -> None:
    """Record ``source`` for every inference.* and prompt.* value that differs between the two configs."""
    for key in _keys(after):
        if _value(before, key) != _value(after, key):
            sources[key] = source


def _with(cfg: Config, values: dict[str, Any]) -> Config:
    """``cfg`` with ``values`` (dotted keys of ``_keys``) in place."""
    parts: dict[str, dict[str, Any]] = {"inference": {}, "prompt": {}, "mbr": {}}
    for key, value in values.items():
        *path, name = key.split(".")
        parts[path[-1]][name] = value
    inference = replace(cfg.inference, mbr=replace(cfg.inference.mbr, **parts["mbr"]), **parts["inference"])
    return replace(cfg, inference=inference, prompt=replace(cfg.prompt, **parts["prompt"]))


def _keep_explicit(layered: Config, cfg: Config, explicit: frozenset[str]) -> Config:
    """``layered`` with every inference.*/prompt.* key given on the command line (``inference.mbr.*`` too) back at
    the config's value."""
    named = {key for key in _keys(cfg) if key in explicit or key.rpartition(".")[0] in explicit}
    return _with(layered, {key: _value(cfg, key) for key in named})


def tuned_choice(best: Optional[Path]) -> dict[str, Any]:
    """The tune stage's ``best_generation.yaml`` as dotted keys ({} when it is absent): its ``inference`` and
    ``prompt`` keys, and ``inference.mbr.num_candidates = 1`` where its MBR check says ``use: false``."""
    if best is None or not Path(best).is_file():
        return {}
    chosen = yaml.safe_load(Path(best).read_text(encoding="utf-8")) or {}
    found = {f"{s}.{k}": v for s in ("inference", "prompt") for k, v in dict(chosen.get(s) or {}).items()}
    if (chosen.get("mbr") or {}).get("use") is False:
        found["inference.mbr.num_candidates"] = 1
    return found


def resolve_settings(cfg: Config, checkpoint: Optional[Path], current_pool: Optional[Path], tuned: Optional[Path],
                     explicit: frozenset[str] = frozenset(), verify: bool = True) -> InferenceSettings:
    """Config < checkpoint prompt settings < seq2seq defaults < tune's choice < command-line keys; then the length cap.

    ``checkpoint`` is checked against its recorded sha256 first (``verify``); a damaged one gives way
    to the newest intact ``checkpoint-N`` beside it. A checkpoint not written yet (``--dry-run``
    before training) contributes nothing.
    """
    folder = Path(checkpoint) if checkpoint is not None and Path(checkpoint).is_dir() else None
    if folder is not None and verify:
        folder = checkpoint = verified_checkpoint(folder)
    record = read_inference_info(folder) if folder is not None else {}
    return _layered(cfg, folder, record, checkpoint, current_pool, tuned, explicit)


def training_time_settings(cfg: Config, explicit: frozenset[str], lengths: dict[str, Any]) -> InferenceSettings:
    """The settings the training-time ROUGE callback generates with: the same layers as inference from the
    checkpoint about to be written (its record is the training summaries' ``lengths``), without a tune choice."""
    return _layered(cfg, None, {"completion_tokens": lengths}, None, None, None, explicit, capped=True)


def _layered(cfg: Config, folder: Optional[Path], record: dict[str, Any], checkpoint: Optional[Path],
             current_pool: Optional[Path], tuned: Optional[Path], explicit: frozenset[str],
             capped: bool = False) -> InferenceSettings:
    """The layers of ``resolve_settings`` over a checkpoint folder (or none) and its record."""
    sources: dict[str, str] = {}
    layered = settings_for_inference(cfg, folder, record) if folder is not None else cfg
    _mark(cfg, layered, sources, f"{CHECKPOINT} {checkpoint}")
    layered = _seq2seq_defaults(layered, sources, explicit)
    after_tune = _with(layered, tuned_choice(tuned))
    _mark(layered, after_tune, sources, f"{TUNE} {tuned}")
    final = _keep_explicit(after_tune, cfg, explicit)
    sources.update({k: COMMAND_LINE for k in explicit if k.split(".", 1)[0] in ("inference", "prompt")})
    final = _length_cap(final, record, folder is not None or capped, sources, checkpoint)
    pool = fewshot_pool(final, record, current_pool) if folder is not None else current_pool
    return InferenceSettings(final, Path(checkpoint) if checkpoint is not None else None, pool, sources, record)


def _seq2seq_defaults(cfg: Config, sources: dict[str, str], explicit: frozenset[str]) -> Config:
    """For model.type=seq2seq: the ``seq2seq.*`` generation defaults for each inference key the config left at its
    causal default and the command line did not name (a named key wins whatever its value)."""
    if cfg.model.type != "seq2seq":
        return cfg
    default = InferenceConfig()
    picks = {k: getattr(cfg.seq2seq, s2s) for k, s2s in SEQ2SEQ_DEFAULTS.items()
             if f"inference.{k}" not in explicit and getattr(cfg.inference, k) == getattr(default, k)}
    after = replace(cfg, inference=replace(cfg.inference, **picks))
    _mark(cfg, after, sources, SEQ2SEQ)
    return after


def _length_cap(cfg: Config, record: dict[str, Any], present: bool, sources: dict[str, str],
                checkpoint: Optional[Path]) -> Config:
    """``max_new_tokens: auto`` as a number: ``seq2seq.generation_max_length`` for seq2seq, else the cap recorded with
    the checkpoint (without a checkpoint yet it stays auto: the train stage has not run)."""
    gen = cfg.inference
    if cfg.model.type == "seq2seq" and gen.max_new_tokens == "auto":
        sources["inference.max_new_tokens"] = SEQ2SEQ
        gen = replace(gen, max_new_tokens=cfg.seq2seq.generation_max_length)
    if present:
        capped = resolve_max_new_tokens(gen, record)
        if capped.max_new_tokens != gen.max_new_tokens:
            sources["inference.max_new_tokens"] = f"{CHECKPOINT} {checkpoint} (auto: the training summaries' length)"
        gen = capped
    return replace(cfg, inference=gen)


# ---------------------------------------------------------------- what inference takes from the checkpoint's record

def settings_for_inference(cfg: Config, checkpoint: Path, info: dict[str, Any]) -> Config:
    """``cfg`` with the checkpoint's prompt settings; a checkpoint of the other model type is a UserError."""
    kind = checkpoint_type(checkpoint, info)
    if kind is not None and kind != cfg.model.type:
        raise UserError(f"inference checkpoint {checkpoint} holds a {kind} model but model.type={cfg.model.type}: "
                        f"set model.type={kind} (or point inference.checkpoint at a {cfg.model.type} checkpoint)")
    saved = info.get("prompt")
    if not saved or not cfg.inference.prompt_from_checkpoint:
        return cfg
    prompt = _prompt_from(saved)
    differ = [f"prompt.{f.name}" for f in fields(PromptConfig) if getattr(prompt, f.name) != getattr(cfg.prompt, f.name)]
    if differ:
        log.warning("inference prompts as the checkpoint was trained; these keys differ from the current config and "
                    "take the checkpoint's values: %s (set inference.prompt_from_checkpoint=false to use yours)",
                    ", ".join(differ))
    return replace(cfg, prompt=prompt)


def _prompt_from(saved: dict[str, Any]) -> PromptConfig:
    known = {f.name for f in fields(PromptConfig)}
    flat = {f"prompt.{k}": (v, "checkpoint") for k, v in saved.items() if k in known}
    return build_config(flat).prompt


def fewshot_pool(cfg: Config, info: dict[str, Any], current: Optional[Path]) -> Optional[Path]:
    """The training file the checkpoint drew few-shot examples from (checked by digest); else ``current``."""
    if not cfg.prompt.num_fewshot:
        return None
    recorded = info.get("fewshot_pool") or {}
    path, digest = recorded.get("path"), recorded.get("digest")
    if path and Path(path).is_file() and (digest is None or file_digest(Path(path)) == digest):
        return Path(path)
    if current is not None and digest is not None and current.is_file() and file_digest(current) == digest:
        return current
    if path:
        log.warning("the few-shot pool the checkpoint was trained with (%s) is gone or changed; using %s, so prompts "
                    "may differ from training", path, current)
    return current


def resolve_max_new_tokens(gen: InferenceConfig, info: dict[str, Any]) -> InferenceConfig:
    """``max_new_tokens: auto`` as the cap stored with the checkpoint (the training summaries' 99.5th percentile
    plus a margin); a number is kept, with a warning when it would cut more than 1% of the training summaries."""
    lengths = info.get("completion_tokens") or {}
    if gen.max_new_tokens == "auto":
        if "auto_max_new_tokens" not in lengths:
            log.warning("inference.max_new_tokens=auto but the checkpoint records no summary lengths (trained "
                        "elsewhere?): using %d", DEFAULT_MAX_NEW_TOKENS)
        return replace(gen, max_new_tokens=int(lengths.get("auto_max_new_tokens", DEFAULT_MAX_NEW_TOKENS)))
    hist = lengths.get("histogram") or {}
    total = sum(hist.values())
    cut = sum(c for n, c in hist.items() if int(n) > int(gen.max_new_tokens)) / total if total else 0.0
    if cut > 0.01:
        log.warning("inference.max_new_tokens=%s cuts %.1f%% of the training summaries (99.5th percentile %s "
                    "tokens): use inference.max_new_tokens=auto", gen.max_new_tokens, 100 * cut, lengths.get("p99_5"))
    return gen
