"""``RunContext``: everything a stage needs besides its config section: the run's folders, manifest and model.

A stage reads what an earlier stage wrote through ``ctx.upstream(stage, key)``: the planned
output when that stage runs now, else what the manifest recorded when it finished earlier, else
the stage's fallback (what stands in for a skipped stage that never ran).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Protocol

from src.config import Config
from src.manifest import Manifest
from src.utils.lock import RunLock


class Producer(Protocol):
    """What a stage offers the stages after it (the full stage protocol is ``src.pipeline.Stage``)."""

    def outputs(self, ctx: "RunContext") -> dict[str, Path]:
        """Paths the stage writes when it runs."""
        ...

    def fallback(self, ctx: "RunContext") -> dict[str, Optional[Path]]:
        """What stands in for the outputs when the stage is skipped and never ran."""
        ...


def present(paths: Mapping[str, Optional[Path]], key: str) -> Path:
    """A required input of a stage (``src.pipeline.check_inputs`` has made sure it exists before the stage runs)."""
    path = paths.get(key)
    if path is None:
        raise RuntimeError(f"input {key!r} is unset: src.pipeline.check_inputs should have stopped the run")
    return path


@dataclass
class RunContext:
    """One run: config, names and folders, manifest, the selected stages and the resolved model."""

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
    model_path: Optional[str] = None  # model.name resolved to a loadable path (set before the stages run)
    producers: Mapping[str, Producer] = field(default_factory=dict)  # stage name -> stage, set by src.pipeline
    lock: Optional[RunLock] = None  # held by the main process while the run writes its folders
    run_name_given: bool = True  # False when the run got a timestamp name (inference-only looks for a checkpoint)
    explicit: frozenset[str] = frozenset()  # keys set on the command line (this and earlier invocations): they win

    def upstream(self, stage: str, key: str) -> Optional[Path]:
        """Path ``key`` written by ``stage``: planned if it runs now, else from the manifest, else its fallback."""
        producer = self.producers[stage]
        if stage in self.selected:
            return producer.outputs(self).get(key)
        entry = self.manifest.entry(stage)
        if entry.get("status") == "done" and entry.get("outputs", {}).get(key):
            return Path(entry["outputs"][key])
        path = producer.fallback(self).get(key)
        return Path(path) if path else None

    def require_model_path(self) -> str:
        """The resolved model path; the pipeline sets it before any stage that loads a model runs."""
        if self.model_path is None:
            raise RuntimeError("RunContext.model_path is unset: src.run.prepare_run resolves model.name first")
        return self.model_path
