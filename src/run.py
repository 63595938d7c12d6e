"""Setting up a run: its config and name, every check before the first stage, the lock, folders, logging, manifest.

``configure`` decides the config: the given files and overrides, or, with ``--resume``, the run's
saved ``config.yaml`` with the command line's overrides on top. ``prepare_run`` checks everything
(``preflight``), then takes the run lock and writes the run folder, the resolved config and the
manifest, and resolves the model. ``describe_plan`` says what a run would do (``--dry-run``).
"""
from __future__ import annotations

import difflib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Optional

import yaml

from src.cli import StageChoice
from src.config import Config, load_config, resolve_path, to_dict
from src.config.loading import read_yaml
from src.config.resources import find_config
from src.context import RunContext
from src.data.sources import preflight_problems
from src.manifest import Manifest
from src.models.loading import debug_texts, model_location, resolve_model
from src.pipeline import STAGE_NAMES, attach, check_inputs, check_stages, plan
from src.stages.augment import spend_line
from src.stages.infer import settings_lines
from src.utils.errors import UserError
from src.utils.io import atomic_write_text, remove_stale_temps
from src.utils.lock import LOCK_FILES, RunLock
from src.utils.logging_setup import add_file_handler
from src.utils.threads import apply_threads

log = logging.getLogger(__name__)

MODEL_STAGES = ("augment", "train", "infer")  # the stages that may load model.name (augment: a local generator)
SAVED_CONFIG = "config.yaml"
OWNER_FILE = ".run_folder"  # in model/<run>, data/clean/<run>, data/augmented/<run>: the output folder of the run


def config_yaml(cfg: Config) -> str:
    """The resolved config as YAML (what ``config.yaml`` of a run holds and ``--print-config`` prints)."""
    return yaml.safe_dump(to_dict(cfg), allow_unicode=True, sort_keys=False)


def run_names(output_dir: Path) -> list[str]:
    """Runs in ``output_dir`` (folders with a manifest), oldest first."""
    return [p.parent.name for p in sorted(output_dir.glob("*/manifest.json"), key=lambda p: p.stat().st_mtime)]


def check_run_name(run_name: str) -> str:
    """``run_name`` if it is a safe folder name, else UserError."""
    if not run_name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise UserError(f"--run-name '{run_name}': use letters, digits, '-', '_' and '.' only")
    return run_name


def resume_target(output_dir: Path, run_name: Optional[str]) -> str:
    """The run ``--resume`` continues: the named one (which must exist), else the newest."""
    runs = run_names(output_dir)
    if run_name is None:
        if not runs:
            raise UserError(f"--resume: no earlier run in {output_dir}; start one without --resume")
        return runs[-1]
    check_run_name(run_name)
    if run_name in runs:
        return run_name
    near = difflib.get_close_matches(run_name, runs, n=3, cutoff=0.4) or runs[-3:][::-1]
    hint = f"; nearest: {', '.join(near)}" if near else f"; {output_dir} holds no run yet"
    raise UserError(f"--resume --run-name {run_name}: no such run in {output_dir}{hint} "
                    "(drop --resume to start a new run with this name)")


def configure(config_path: Optional[str], overrides: list[str], debug_small: bool, flags: dict[str, Any],
              run_name: Optional[str], resume: bool) -> tuple[Config, Optional[str]]:
    """The run's config and name: as given, or with ``--resume`` the saved config plus these overrides."""
    cfg = load_config(find_config(config_path) if config_path else None, overrides, debug_small, flags)
    if not resume:
        return cfg, check_run_name(run_name) if run_name else None
    output_dir = resolve_path(cfg.paths.output_dir)
    name = resume_target(output_dir, run_name)
    saved = output_dir / name / SAVED_CONFIG
    if not saved.is_file():
        log.warning("run %s has no %s: resuming with the config given on the command line", name, SAVED_CONFIG)
        return cfg, name
    if not read_yaml(saved):  # the run wrote every key: an empty file would resume as all defaults
        raise UserError(f"{saved}: the run's saved config is empty, so --resume cannot know how run {name} was "
                        "configured; restore the file from a copy, or start a new run without --resume")
    resumed = load_config(saved, overrides, False, flags)
    if ":***@" in resumed.augmentation.api.base_url:  # config.yaml is saved without a URL's password
        log.warning("--resume: augmentation.api.base_url was saved without its password; pass "
                    "augmentation.api.base_url=... again if this run still sends API requests")
    if config_path or debug_small:
        log.info("--resume: %s is the base; --config/--debug-small are not applied again", saved)
    changed = sorted(k.split("=", 1)[0] for k in overrides) + sorted(flags)
    log.info("resuming run %s from its saved config%s", name,
             f" with overrides: {', '.join(changed)}" if changed else " (no overrides)")
    return resumed, name


def restore_choice(cfg: Config, run_name: str, given: StageChoice) -> StageChoice:
    """With ``--resume``: the run's first stage selection (from its manifest) with the flags given now on top;
    one log line names what differs from the saved selection."""
    path = resolve_path(cfg.paths.output_dir) / run_name / "manifest.json"
    try:
        saved_data = json.loads(path.read_text(encoding="utf-8")).get("command")
    except (OSError, ValueError, AttributeError):
        saved_data = None
    if not isinstance(saved_data, dict):
        log.info("--resume: run %s recorded no stage selection (an older run): using this command's", run_name)
        return given
    saved = StageChoice.from_dict(saved_data)
    effective = given.on_top_of(saved)
    first = " ".join(saved.flags()) or "(all stages)"
    if effective == saved:
        log.info("--resume: the run's stage selection is restored: %s", first)
    else:
        log.info("--resume: the run's stage selection was %s; with this command's %s it is now %s (stages: %s)",
                 first, " ".join(given.flags()) or "flags", " ".join(effective.flags()) or "(all stages)",
                 ", ".join(effective.selected()) or "none")
    return effective


def make_context(cfg: Config, run_name: str, resume: bool, selected: tuple[str, ...]) -> RunContext:
    """The run's folders (not created yet), its manifest (loaded if it exists) and where the model loads from."""
    run_dir = resolve_path(cfg.paths.output_dir) / run_name
    rank = int(os.environ.get("RANK", "0"))
    return attach(RunContext(
        cfg=cfg, run_name=run_name, run_dir=run_dir, model_dir=resolve_path(cfg.paths.model_dir) / run_name,
        clean_dir=resolve_path(cfg.paths.clean_dir) / run_name, aug_dir=resolve_path(cfg.paths.augmented_dir) / run_name,
        manifest=Manifest.open(run_dir / "manifest.json", run_name, cfg.seed, STAGE_NAMES), selected=selected,
        resume=resume, world_size=int(os.environ.get("WORLD_SIZE", "1")), is_main=rank == 0,
        model_path=model_location(cfg)))


def preflight(ctx: RunContext) -> list[str]:
    """Every problem found before any stage runs: the data, the inputs of each stage, each stage's own checks."""
    if ctx.world_size > 1 and set(ctx.selected) - {"train"}:
        return [f"launched with {ctx.world_size} processes: run only the train stage this way (--stages train); "
                "run the other stages in a single process before and after"]
    preprocessed = ctx.manifest.entry("preprocess").get("status") == "done"
    problems = preflight_problems(ctx.cfg, ctx.selected, preprocessed)
    if problems:
        return problems + check_stages(ctx)  # inputs follow from the data; the stages' own checks do not
    return check_inputs(ctx) + check_stages(ctx)


def run_folders(ctx: RunContext) -> list[Path]:
    """Every folder this run writes: its output folder, its checkpoints, its cleaned and augmented data."""
    return [ctx.run_dir, ctx.model_dir, ctx.clean_dir, ctx.aug_dir]


def claim_folders(ctx: RunContext) -> None:
    """Mark the run's model and data folders as this run's (``.run_folder``: its output folder); UserError when one
    belongs to a run of the same name in another ``paths.output_dir`` that still exists (it would train into, or
    score, the other run's checkpoints). Called with every folder locked."""
    mine = str(ctx.run_dir.resolve())
    problems = []
    for folder in run_folders(ctx)[1:]:
        try:
            owner = (folder / OWNER_FILE).read_text(encoding="utf-8").strip()
        except OSError:
            owner = ""
        if owner and owner != mine and (Path(owner) / "manifest.json").is_file():
            problems.append(f"{folder} holds the files of run {owner} (the same --run-name in another "
                            "paths.output_dir); choose another --run-name, or give this run its own paths.model_dir, "
                            "paths.clean_dir and paths.augmented_dir")
    if problems:
        raise UserError(*problems)
    for folder in run_folders(ctx)[1:]:
        atomic_write_text(folder / OWNER_FILE, mine + "\n")


def _has_outputs(run_dir: Path) -> bool:
    return run_dir.is_dir() and any(p.name not in LOCK_FILES for p in run_dir.iterdir())


def prepare_run(cfg: Config, run_name: Optional[str], resume: bool, selected: tuple[str, ...],
                dry_run: bool = False, explicit: frozenset[str] = frozenset(),
                choice: Optional[StageChoice] = None) -> RunContext:
    """Check everything, then lock and create the run folder, log file, resolved config and manifest, and the model.

    ``explicit`` holds the keys set on the command line; with those of earlier invocations of the run
    (kept in the manifest) they win over what the tune stage chose.
    """
    name = run_name or time.strftime("run-%Y%m%d-%H%M%S")
    ctx = make_context(cfg, name, resume, selected)
    ctx.run_name_given = run_name is not None
    ctx.explicit = explicit | frozenset(ctx.manifest.data.get("cli_keys", []))
    if _has_outputs(ctx.run_dir) and not resume and ctx.is_main:
        raise UserError(f"run folder {ctx.run_dir} already exists; pass --resume to continue it, "
                        "or choose another --run-name")
    problems = preflight(ctx)
    if problems:
        raise UserError(*problems)
    if dry_run:
        return ctx
    if ctx.is_main:
        ctx.lock = RunLock(*run_folders(ctx)).acquire()  # the model and data folders too: they are named by run name only
        claim_folders(ctx)
    stale = remove_stale_temps(run_folders(ctx)) if resume and ctx.is_main else []
    (ctx.run_dir / "logs").mkdir(parents=True, exist_ok=True)
    add_file_handler(ctx.run_dir / "logs" / "pipeline.log")
    log.info("run %s: stages %s%s", name, ", ".join(selected) or "(none)", " (resume)" if resume else "")
    if stale:
        log.info("removed %d temp file(s) that interrupted writes of this run left: %s", len(stale),
                 ", ".join(str(p) for p in stale[:5]) + (f" (+{len(stale) - 5} more)" if len(stale) > 5 else ""))
    spend = spend_line(ctx)
    if spend:
        log.warning("%s", spend)
    if ctx.is_main:
        atomic_write_text(ctx.run_dir / SAVED_CONFIG, config_yaml(cfg))
        ctx.manifest.data["world_size"] = ctx.world_size
        ctx.manifest.data["cli_keys"] = sorted(ctx.explicit)
        ctx.manifest.data["command"] = (choice or StageChoice(stages=selected)).as_dict()
        ctx.manifest.save()
    apply_threads(cfg.model.cpu_threads)
    if any(s in selected for s in MODEL_STAGES):
        ctx.model_path = resolve_model(cfg, lambda: debug_texts(cfg))
    return ctx


def describe_plan(ctx: RunContext) -> str:
    """What the run would do, one line per stage with the reason (``--dry-run``)."""
    lines = [f"run {ctx.run_name} ({ctx.run_dir}): every check passed"]
    lines += [f"  {stage:<10} {action:<6} {reason}" for stage, action, reason in plan(ctx)]
    spend = spend_line(ctx)
    lines += [f"paid requests: {spend}"] if spend else []
    if "infer" in ctx.selected:
        lines += settings_lines(ctx)
    return "\n".join(lines) + "\n"
