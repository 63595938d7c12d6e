"""The settings inference really uses, built in one place, each with where its value came from.

Layers, later wins: the run's config; the checkpoint's prompt settings (``pipeline_inference.json``,
unless ``inference.prompt_from_checkpoint=false``), with ``max_new_tokens: auto`` resolved to the cap
recorded there, and for seq2seq the ``seq2seq.*`` generation defaults; the tune stage's choice
(``best_generation.yaml``); and last the keys given on the command line, which neither the
checkpoint nor the tune stage overrides. The infer and tune stages build their predictor from
``InferenceSettings.cfg``; infer logs ``lines()`` and ``--dry-run`` prints them.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

import yaml

from src.config import Config, PromptConfig

log = logging.getLogger(__name__)

CONFIG, CHECKPOINT, TUNE, COMMAND_LINE, SEQ2SEQ = "config", "checkpoint", "tune", "command line", "seq2seq.*"
# what decides a summary (the rest of inference.* is how it is computed: batching, backend, output files)
SHOWN = ("max_new_tokens", "num_beams", "no_repeat_ngram_size", "length_penalty", "repetition_penalty", "do_sample",
         "temperature", "top_p", "cut_unfinished", "block_scripts", "empty_fallback", "backend", "quantize",
         "merge_lora")


@dataclass(frozen=True)
class InferenceSettings:
    """The config inference runs with, the checkpoint and few-shot pool, and the source of every shown value."""

    cfg: Config
    checkpoint: Optional[Path]
    pool: Optional[Path]
    sources: dict[str, str] = field(default_factory=dict)  # "inference.num_beams" -> "tune (best_generation.yaml)"

    def lines(self) -> list[str]:
        """``key = value  (source)`` for the generation keys and the prompt keys."""
        keys = [f"inference.{k}" for k in SHOWN] + [f"prompt.{f.name}" for f in dataclasses.fields(PromptConfig)]
        return [f"{key} = {_value(self.cfg, key)!r}  ({self.sources.get(key, CONFIG)})" for key in keys]

    def log(self) -> None:
        """One INFO line per setting (the infer stage, before it generates)."""
        log.info("inference settings (value, source) with checkpoint %s:", self.checkpoint)
        for line in self.lines():
            log.info("  %s", line)


def _value(cfg: Config, key: str) -> Any:
    section, name = key.split(".", 1)
    return getattr(getattr(cfg, section), name)


def _mark(before: Config, after: Config, sources: dict[str, str], source: str) -> None:
    """Record ``source`` for every inference.* and prompt.* value that differs between the two configs."""
    for section in ("inference", "prompt"):
        for f in dataclasses.fields(getattr(after, section)):
            key = f"{section}.{f.name}"
            if _value(before, key) != _value(after, key):
                sources[key] = source


def _keep_explicit(layered: Config, cfg: Config, explicit: frozenset[str]) -> Config:
    """``layered`` with every inference.*/prompt.* key given on the command line back at the config's value."""
    sections: dict[str, dict[str, Any]] = {"inference": {}, "prompt": {}}
    for key in explicit:
        section, _, name = key.partition(".")
        if section in sections and "." not in name and hasattr(getattr(cfg, section), name):
            sections[section][name] = _value(cfg, key)
    return replace(layered, inference=replace(layered.inference, **sections["inference"]),
                   prompt=replace(layered.prompt, **sections["prompt"]))


def tuned_choice(best: Optional[Path]) -> dict[str, dict[str, Any]]:
    """The tune stage's ``best_generation.yaml`` as {"inference": {...}, "prompt": {...}} ({} when it is absent)."""
    if best is None or not Path(best).is_file():
        return {}
    chosen = yaml.safe_load(Path(best).read_text(encoding="utf-8")) or {}
    return {s: dict(chosen.get(s) or {}) for s in ("inference", "prompt")}


def resolve_settings(cfg: Config, checkpoint: Optional[Path], current_pool: Optional[Path], tuned: Optional[Path],
                     explicit: frozenset[str] = frozenset(), verify: bool = True) -> InferenceSettings:
    """Config < checkpoint prompt settings (and its length cap) < tune's choice < command-line keys.

    ``checkpoint`` is checked against its recorded sha256 first (``verify``); a damaged one gives way
    to the newest intact ``checkpoint-N`` beside it. A checkpoint not written yet (``--dry-run``
    before training) contributes nothing.
    """
    from src.models.checkpoint import verified_checkpoint
    from src.models.provenance import fewshot_pool, read_inference_info, resolve_max_new_tokens, settings_for_inference

    folder = Path(checkpoint) if checkpoint is not None and Path(checkpoint).is_dir() else None
    if folder is not None and verify:
        folder = checkpoint = verified_checkpoint(folder)
    present = folder is not None
    info = read_inference_info(folder) if folder is not None else {}
    sources: dict[str, str] = {}
    layered = settings_for_inference(cfg, folder, info) if folder is not None else cfg
    _mark(cfg, layered, sources, f"{CHECKPOINT} {checkpoint}")
    layered = _seq2seq_defaults(layered, sources)  # before the cap: seq2seq.generation_max_length stands for auto
    if present:
        capped = replace(layered, inference=resolve_max_new_tokens(layered.inference, info))
        _mark(layered, capped, sources, f"{CHECKPOINT} {checkpoint} (auto: the training summaries' length)")
        layered = capped
    chosen = tuned_choice(tuned)
    after_tune = replace(layered, inference=replace(layered.inference, **chosen.get("inference", {})),
                         prompt=replace(layered.prompt, **chosen.get("prompt", {})))
    _mark(layered, after_tune, sources, f"{TUNE} {tuned}")
    final = _keep_explicit(after_tune, cfg, explicit)
    sources.update({k: COMMAND_LINE for k in explicit if k.split(".", 1)[0] in ("inference", "prompt")})
    pool = fewshot_pool(final, info, current_pool) if present else current_pool
    return InferenceSettings(final, Path(checkpoint) if checkpoint is not None else None, pool, sources)


def _seq2seq_defaults(cfg: Config, sources: dict[str, str]) -> Config:
    """For model.type=seq2seq: ``seq2seq.*`` generation defaults where inference.* was left at its default."""
    if cfg.model.type != "seq2seq":
        return cfg
    from src.models.seq2seq import generation_settings

    before = cfg
    after = replace(cfg, inference=generation_settings(cfg))
    _mark(before, after, sources, SEQ2SEQ)
    return after
