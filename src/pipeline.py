"""Runs the stages in order with skip, resume and fail-fast checks around them.

A stage module exposes ``outputs(ctx)`` (paths it writes), ``inputs(ctx)`` (paths it reads, from
upstream stages), ``required`` (input names that must exist), ``fallback(ctx)`` (what stands in
for its outputs when it is skipped and never ran), ``config_parts(cfg)`` (the settings it depends
on) and ``run(ctx) -> dict`` (extra manifest fields).
"""
from __future__ import annotations

import importlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Optional

from src.config import Config
from src.errors import UserError
from src.manifest import STAGES, Manifest
from src.utils.io import fingerprint

log = logging.getLogger(__name__)


def stage_module(name: str) -> ModuleType:
    """The module implementing stage ``name`` (imported lazily: heavy imports live inside)."""
    return importlib.import_module(f"src.stages.{name}")


@dataclass
class RunContext:
    """Everything a stage needs besides its config: the run's folders and manifest."""

    cfg: Config
    run_name: str
    run_dir: Path
    model_dir: Path
    clean_dir: Path
    aug_dir: Path
    manifest: Manifest
    selected: tuple[str, ...]
    resume: bool = False
    world_size: int = 1
    is_main: bool = True
    extras: dict[str, Any] = field(default_factory=dict)

    def upstream(self, stage: str, key: str) -> Optional[Path]:
        """Path ``key`` written by ``stage``: planned if it runs now, else from the manifest, else its fallback."""
        mod = stage_module(stage)
        if stage in self.selected:
            return mod.outputs(self).get(key)
        entry = self.manifest.entry(stage)
        if entry.get("status") == "done" and entry.get("outputs", {}).get(key):
            return Path(entry["outputs"][key])
        path = mod.fallback(self).get(key)
        return Path(path) if path else None


def check_inputs(ctx: RunContext) -> list[str]:
    """Before anything runs: every required input of a selected stage exists or will be produced."""
    problems = []
    for name in ctx.selected:
        mod = stage_module(name)
        inputs = mod.inputs(ctx)
        for key in mod.required:
            path = inputs.get(key)
            producer = _producer(name, path, ctx)
            if path is None or (not path.exists() and producer not in ctx.selected):
                producer = producer or STAGES[STAGES.index(name) - 1]
                problems.append(f"stage '{name}' needs {key} ({path or 'no path'}), which does not exist: "
                                f"run the '{producer}' stage first (drop --skip-{producer}) or point the config at it")
    return problems


def _producer(consumer: str, path: Optional[Path], ctx: RunContext) -> Optional[str]:
    """The nearest earlier stage whose planned outputs include ``path`` (None: no stage writes it)."""
    for stage in reversed(STAGES[: STAGES.index(consumer)]):
        if path is not None and path in stage_module(stage).outputs(ctx).values():
            return stage
    return None


def run_stages(ctx: RunContext) -> None:
    """Run or skip each stage in order, recording the manifest after every one."""
    for name in STAGES:
        mod = stage_module(name)
        if name not in ctx.selected:
            _record_skip(ctx, name, mod)
            continue
        inputs = [p for p in mod.inputs(ctx).values() if p is not None]
        fp = fingerprint(mod.config_parts(ctx.cfg), inputs)
        if ctx.resume and ctx.manifest.is_done(name, fp):
            log.info("stage %s: already done with the same inputs and config, skipped", name)
            continue
        _run_one(ctx, name, mod, fp)


def _record_skip(ctx: RunContext, name: str, mod: ModuleType) -> None:
    if ctx.manifest.entry(name).get("status") == "done":
        log.info("stage %s: skipped (keeping the outputs of its earlier run)", name)
        return
    outputs = {k: str(v) for k, v in mod.fallback(ctx).items() if v is not None}
    log.info("stage %s: skipped", name)
    if ctx.is_main:
        ctx.manifest.record(name, status="skipped", seconds=0.0, outputs=outputs)


def _run_one(ctx: RunContext, name: str, mod: ModuleType, fp: str) -> None:
    log.info("stage %s: running", name)
    start = time.perf_counter()
    try:
        extra = mod.run(ctx) or {}
    except BaseException as exc:
        if ctx.is_main:
            reason = exc.problems[0] if isinstance(exc, UserError) and exc.problems else f"{type(exc).__name__}: {exc}"
            ctx.manifest.record(name, status="failed", seconds=round(time.perf_counter() - start, 2),
                                error=reason[:500], fingerprint=fp)
        raise
    seconds = round(time.perf_counter() - start, 2)
    outputs = {k: str(v) for k, v in mod.outputs(ctx).items() if v is not None and Path(v).exists()}
    if ctx.is_main:
        ctx.manifest.record(name, status="done", seconds=seconds, outputs=outputs, fingerprint=fp, **extra)
    log.info("stage %s: done in %.1fs", name, seconds)
