"""The stages in order, the protocol each one follows, and how a run checks, runs, skips or resumes them.

A stage is a module of ``src.stages`` with:

- ``name`` and ``required`` (the input names that must exist before it runs);
- ``outputs(ctx)`` (paths it writes), ``inputs(ctx)`` (paths it reads, mostly upstream outputs),
  ``fallback(ctx)`` (what stands in for its outputs when it is skipped and never ran);
- ``config_parts(cfg)`` (the settings its fingerprint hashes) and ``command_line`` (the config sections whose keys,
  when named on the command line, change its work: they win over what the stage would take from elsewhere, so
  their names are hashed too), ``check(ctx)`` (problems found
  without doing the work: one line each naming the key or file and the fix) and ``run(ctx)``
  (does the work and returns extra manifest fields).

Before the first stage runs, every selected stage's ``check`` runs and all problems are reported
together (``check_stages``); a stage whose inputs cannot exist stops the run too (``check_inputs``).
"""
from __future__ import annotations

import logging
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional, Protocol

from src.config import Config
from src.context import Producer, RunContext
from src.utils.errors import StageSkipped, UserError
from src.stages import OPT_IN, SKIP_FLAGS, STAGE_NAMES, augment, evaluate, infer, merge, preprocess, rl, train, tune
from src.models.checkpoint import FINGERPRINT_FILE, checkpoints, content_digest
from src.utils.disk import disk_full_line, is_disk_full, size_of, written_file
from src.utils.io import stage_fingerprint

log = logging.getLogger(__name__)


class Stage(Producer, Protocol):
    """One pipeline stage (each module of ``src.stages`` is one)."""

    name: str
    required: tuple[str, ...]
    command_line: tuple[str, ...]

    def inputs(self, ctx: RunContext) -> dict[str, Optional[Path]]:
        """Paths the stage reads (upstream outputs, rule tables, source files)."""
        ...

    def config_parts(self, cfg: Config) -> dict[str, Any]:
        """The settings the stage depends on (hashed into its fingerprint)."""
        ...

    def check(self, ctx: RunContext) -> list[str]:
        """Problems found before anything runs, one line each naming the key or file and the fix."""
        ...

    def run(self, ctx: RunContext) -> dict[str, Any]:
        """Do the work; return extra manifest fields."""
        ...


STAGES: tuple[Stage, ...] = (preprocess, augment, merge, train, rl, tune, infer, evaluate)
assert tuple(stage.name for stage in STAGES) == STAGE_NAMES, "src.stages declares the names, in this order"
BY_NAME: dict[str, Stage] = {stage.name: stage for stage in STAGES}


def is_on(cfg: Config, stage: str) -> bool:
    """False for an opt-in stage whose key is false (a run without --stages leaves it out)."""
    key = OPT_IN.get(stage)
    if key is None:
        return True
    section, field = key.split(".")
    return bool(getattr(getattr(cfg, section), field))


def enable_named(cfg: Config, stages: tuple[str, ...]) -> Config:
    """``cfg`` with the key of each opt-in stage in ``stages`` set true, so the run's config.yaml (and a later
    ``--resume`` without ``--stages``) keeps the stage on."""
    for stage in stages:
        if stage in OPT_IN and not is_on(cfg, stage):
            section, field = OPT_IN[stage].split(".")
            cfg = replace(cfg, **{section: replace(getattr(cfg, section), **{field: True})})
            log.info("stage %s: named in --stages, so %s=true for this run", stage, OPT_IN[stage])
    return cfg


def attach(ctx: RunContext) -> RunContext:
    """Give the context the stage table ``ctx.upstream`` looks outputs up in."""
    ctx.producers = BY_NAME
    return ctx


def check_inputs(ctx: RunContext) -> list[str]:
    """Every required input of a selected stage exists or will be produced by a stage that runs first."""
    problems = []
    for stage in selected(ctx):
        inputs = stage.inputs(ctx)
        for key in stage.required:
            path = inputs.get(key)
            producer = _producer(stage.name, path, ctx)
            if path is None or (not path.exists() and producer not in ctx.selected):
                producer = producer or STAGE_NAMES[STAGE_NAMES.index(stage.name) - 1]
                problems.append(f"stage '{stage.name}' needs {key} ({path or 'no path'}), which does not exist: "
                                f"run the '{producer}' stage first (drop {SKIP_FLAGS[producer]}) or point the config "
                                "at it")
    return problems


def _producer(consumer: str, path: Optional[Path], ctx: RunContext) -> Optional[str]:
    """The nearest earlier stage whose planned outputs include ``path`` (None: no stage writes it)."""
    for stage in reversed(STAGES[: STAGE_NAMES.index(consumer)]):
        if path is not None and path in stage.outputs(ctx).values():
            return stage.name
    return None


def check_stages(ctx: RunContext) -> list[str]:
    """Every selected stage's own checks, in pipeline order."""
    return [problem for stage in selected(ctx) for problem in stage.check(ctx)]


def selected(ctx: RunContext) -> list[Stage]:
    """The stages this run executes, in order."""
    return [stage for stage in STAGES if stage.name in ctx.selected]


def plan(ctx: RunContext) -> list[tuple[str, str, str]]:
    """(stage, run|reuse|skip, why) for every stage, as ``run_stages`` would decide now (``--dry-run``)."""
    rows: list[tuple[str, str, str]] = []
    first_run: Optional[str] = None
    for stage in STAGES:
        entry = ctx.manifest.entry(stage.name)
        if stage.name not in ctx.selected:
            kept = "keeps its earlier outputs" if entry.get("status") == "done" else "uses its fallback"
            why = f"not selected ({SKIP_FLAGS[stage.name]} or --stages)" if is_on(ctx.cfg, stage.name) else \
                f"off ({OPT_IN[stage.name]} is false and --stages does not name it)"
            rows.append((stage.name, "skip", f"{why}; {kept}"))
            continue
        fp = fingerprint(stage, ctx)
        if ctx.resume and first_run is None and ctx.manifest.is_done(stage.name, fp):
            rows.append((stage.name, "reuse", "done earlier with the same inputs and config (--resume)"))
            continue
        rows.append((stage.name, "run", _run_reason(ctx, entry, fp, first_run)))
        first_run = first_run or stage.name
    return rows


def fingerprint(stage: Stage, ctx: RunContext) -> str:
    """The hash of what decides the stage's work: its config parts, the command-line keys of its sections, its inputs."""
    parts = stage.config_parts(ctx.cfg)
    named = sorted(k for k in ctx.explicit if k.split(".", 1)[0] in stage.command_line)
    if named:
        parts = {**parts, "command_line": named}
    return stage_fingerprint(parts, [p for p in stage.inputs(ctx).values() if p is not None], content_digest)


def _run_reason(ctx: RunContext, entry: dict[str, Any], fp: str, first_run: Optional[str]) -> str:
    if first_run is not None and ctx.resume and entry.get("status") == "done":
        return f"after '{first_run}' runs (reused if its inputs come out the same)"
    if not entry:
        return "has not run in this run folder"
    if not ctx.resume:
        return "runs again (no --resume)"
    if entry.get("status") == "failed":
        return f"its last attempt failed: {entry.get('error', '?')}"
    if entry.get("status") == "skipped":
        return f"was skipped last time ({entry.get('reason', 'not selected')})"
    return "its config or inputs changed since it ran" if entry.get("fingerprint") != fp else "its outputs are missing"


def run_stages(ctx: RunContext) -> None:
    """Run or skip each stage in order, recording the manifest after every one; the trackers follow along."""
    from src.tracking import start_tracking

    tracker, ok = start_tracking(ctx), False
    try:
        for stage in STAGES:
            _run_or_skip(ctx, stage)
            tracker.stage(stage.name, ctx.manifest.entry(stage.name))
        ok = True
    finally:
        tracker.finish(ctx, ok)


def _run_or_skip(ctx: RunContext, stage: Stage) -> None:
    if stage.name not in ctx.selected:
        _record_skip(ctx, stage)
        return
    fp = fingerprint(stage, ctx)
    if ctx.resume and ctx.manifest.is_done(stage.name, fp):
        log.info("stage %s: already done with the same inputs and config, skipped", stage.name)
        return
    _run_one(ctx, stage, fp)


def _record_skip(ctx: RunContext, stage: Stage) -> None:
    if ctx.manifest.entry(stage.name).get("status") == "done":
        log.info("stage %s: skipped (keeping the outputs of its earlier run)", stage.name)
        return
    outputs = {k: str(v) for k, v in stage.fallback(ctx).items() if v is not None}
    off = {} if is_on(ctx.cfg, stage.name) else {"reason": f"off ({OPT_IN[stage.name]} is false)"}
    log.info("stage %s: skipped%s", stage.name, f" ({off['reason']})" if off else "")
    if ctx.is_main:
        ctx.manifest.record(stage.name, status="skipped", seconds=0.0, outputs=outputs, **off)


def _run_one(ctx: RunContext, stage: Stage, fp: str) -> None:
    log.info("stage %s: running", stage.name)
    start = time.perf_counter()
    status, extra = "done", {}
    try:
        extra = stage.run(ctx) or {}
    except StageSkipped as skip:
        status, extra = "skipped", {"reason": skip.reason, **skip.fields}
        log.warning("stage %s: skipped: %s; --resume runs it again once that is fixed", stage.name, skip.reason)
    except BaseException as exc:
        if is_disk_full(exc) and not isinstance(exc, UserError):  # tokenizers raises a plain Exception for ENOSPC
            full = disk_full_error(ctx, stage.name, exc)
            _record_failure(ctx, stage, full, fp, time.perf_counter() - start)
            raise full from None
        _record_failure(ctx, stage, exc, fp, time.perf_counter() - start)
        raise
    seconds = round(time.perf_counter() - start, 2)
    outputs = {k: str(v) for k, v in stage.outputs(ctx).items() if v is not None and Path(v).exists()}
    if ctx.is_main:
        ctx.manifest.record(stage.name, status=status, seconds=seconds, outputs=outputs, fingerprint=fp, **extra)
    if status == "done":
        log.info("stage %s: done in %.1fs", stage.name, seconds)


CHECKPOINT_STAGES = {"train": ("", "paths.model_dir"), "rl": ("rl", "paths.model_dir")}  # subfolder of model/<run>


def disk_full_error(ctx: RunContext, stage: str, exc: BaseException) -> UserError:
    """The one line of a full disk: a checkpointing stage names its checkpoint folder and the size of a checkpoint,
    any other the file it was writing (or its run folder). A save that never completed (``checkpoint-N`` without
    its record) is removed first: resume could never use it, and the manifest needs the room."""
    if stage not in CHECKPOINT_STAGES:
        where = written_file(exc) or ctx.run_dir
        keys = {ctx.model_dir: "paths.model_dir", ctx.clean_dir: "paths.clean_dir", ctx.aug_dir: "paths.augmented_dir"}
        key = next((k for folder, k in keys.items() if folder in where.parents), "paths.output_dir")
        return UserError(disk_full_line(stage, where, None, key))
    sub, key = CHECKPOINT_STAGES[stage]
    folder = ctx.model_dir / sub if sub else ctx.model_dir
    found = checkpoints(folder) if folder.is_dir() and ctx.is_main else []
    complete = [c for c in found if (c / FINGERPRINT_FILE).is_file()]
    unfinished = [c for c in found if not (c / FINGERPRINT_FILE).is_file()]
    needed = max([size_of(c) for c in complete[:1] + unfinished], default=0)
    for partial in unfinished:
        log.warning("removing %s: its save never completed (the disk filled up), so no resume could use it", partial)
        shutil.rmtree(partial, ignore_errors=True)
    return UserError(disk_full_line(stage, folder, needed or None, key))


def _record_failure(ctx: RunContext, stage: Stage, exc: BaseException, fp: str, seconds: float) -> None:
    """The failed entry (never ``done``); on a full disk the manifest may not be writable either."""
    if not ctx.is_main:
        return
    reason = exc.problems[0] if isinstance(exc, UserError) and exc.problems else f"{type(exc).__name__}: {exc}"
    try:
        ctx.manifest.record(stage.name, status="failed", seconds=round(seconds, 2), error=reason[:500], fingerprint=fp)
    except OSError as write_error:
        log.error("stage %s failed, and its manifest entry could not be written (%s)", stage.name,
                  write_error.strerror)
