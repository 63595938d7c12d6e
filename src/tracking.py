"""Run tracking (``training.report_to``: wandb, tensorboard, both or none): what a run logs besides the Trainer's curves.

One tracked run per pipeline run, opened before the first stage and closed after the last (also
when a stage fails): the resolved config; per stage its status and seconds; at the end the final
dev metrics (ROUGE-1/2/L and final, from ``metrics.json``), the tune stage's table (``tuning.csv``),
the augmentation ledger and a table of sample dev predictions beside their references. The
Trainer's own wandb callback finds the open run and logs its losses into it.

wandb runs online when a key is there (``WANDB_API_KEY``, or ``wandb login``'s entry in ~/.netrc)
and the server answers; otherwise offline under ``<run>/wandb`` (upload later with ``wandb sync``),
never failing the run. Its run id is kept in the manifest, so a resumed run logs into the same run.
A tracker that breaks logs one warning and is dropped: tracking never stops the pipeline.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol

import yaml

from src.config import to_dict
from src.context import RunContext
from src.tracking_tables import final_records
from src.train.trackers import trackers, wandb_folder, wandb_mode

log = logging.getLogger(__name__)

TRACKERS = ("wandb", "tensorboard")
SAMPLE_PREDICTIONS = 50  # dev rows in the predictions table


class Backend(Protocol):
    """One tracking service."""

    def config(self, values: dict[str, Any]) -> None:
        """Record the resolved config."""
        ...

    def scalars(self, values: dict[str, float]) -> None:
        """Record numbers under their names."""
        ...

    def table(self, name: str, frame: Any) -> None:
        """Record a table (a pandas frame)."""
        ...

    def close(self, ok: bool) -> None:
        """Flush and end the run."""
        ...


@dataclass
class WandbBackend:
    """A wandb run (``wandb.init``), resumed by id."""

    run: Any

    def config(self, values: dict[str, Any]) -> None:
        """The config as the run's config."""
        self.run.config.update(values, allow_val_change=True)

    def scalars(self, values: dict[str, float]) -> None:
        """Into the summary (final values, shown on the run page) and the history."""
        self.run.log(values)
        self.run.summary.update(values)

    def table(self, name: str, frame: Any) -> None:
        """A ``wandb.Table``."""
        import wandb

        self.run.log({name: wandb.Table(dataframe=frame.astype(str))})

    def close(self, ok: bool) -> None:
        """``finish`` with the run's exit code."""
        self.run.finish(exit_code=0 if ok else 1)


@dataclass
class TensorboardBackend:
    """A TensorBoard event file under ``<run>/tensorboard`` (config and tables as text)."""

    writer: Any

    def config(self, values: dict[str, Any]) -> None:
        """The config as YAML text."""
        self.writer.add_text("config", "```\n" + yaml.safe_dump(values, allow_unicode=True, sort_keys=False) + "```")

    def scalars(self, values: dict[str, float]) -> None:
        """One scalar each."""
        for key, value in values.items():
            self.writer.add_scalar(key, value)

    def table(self, name: str, frame: Any) -> None:
        """A markdown table."""
        rows = [list(map(str, frame.columns))] + frame.astype(str).values.tolist()
        lines = ["| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in r) + " |" for r in rows]
        lines.insert(1, "|" + "---|" * len(frame.columns))
        self.writer.add_text(name, "\n".join(lines))

    def close(self, ok: bool) -> None:
        """Flush the event file."""
        self.writer.close()


@dataclass
class RunTracker:
    """The run's tracking backends (none: every call is a no-op)."""

    backends: list[Any] = field(default_factory=list)

    def _each(self, what: str, *args: Any) -> None:
        for backend in list(self.backends):
            try:
                getattr(backend, what)(*args)
            except Exception as exc:  # noqa: BLE001 - tracking must never stop the pipeline
                log.warning("tracking: %s failed in %s (%s: %s); not tracking there any more", what,
                            type(backend).__name__, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
                self.backends.remove(backend)

    def stage(self, name: str, entry: dict[str, Any]) -> None:
        """A stage's status and seconds, as the manifest recorded them."""
        status = entry.get("status", "?")
        self._each("scalars", {f"stage/{name}/seconds": float(entry.get("seconds") or 0.0),
                               f"stage/{name}/done": float(status == "done")})

    def finish(self, ctx: RunContext, ok: bool) -> None:
        """Final metrics and the tables, then close every backend."""
        if ok:
            scalars, tables = final_records(ctx, SAMPLE_PREDICTIONS)
            if scalars:
                self._each("scalars", scalars)
            for name, frame in tables.items():
                self._each("table", name, frame)
        self._each("close", ok)


def start_tracking(ctx: RunContext) -> RunTracker:
    """Open the configured trackers for the run (main process only) and log the resolved config."""
    wanted = trackers(ctx.cfg)
    if not wanted or not ctx.is_main:
        return RunTracker()
    tracker = RunTracker([b for b in (_open(name, ctx) for name in wanted) if b is not None])
    tracker._each("config", to_dict(ctx.cfg))
    return tracker


def _open(name: str, ctx: RunContext) -> Optional[Any]:
    try:
        return _open_wandb(ctx) if name == "wandb" else _open_tensorboard(ctx)
    except ImportError as exc:
        log.warning("training.report_to names %s but it cannot be imported (%s); pip install %s", name, exc, name)
    except Exception as exc:  # noqa: BLE001 - a tracker that cannot start is dropped, the run goes on
        log.warning("tracking: %s could not start (%s: %s); the run goes on without it", name, type(exc).__name__,
                    str(exc).splitlines()[0] if str(exc) else "")
    return None


def _open_wandb(ctx: RunContext) -> Optional[WandbBackend]:
    import wandb

    folder = wandb_folder(ctx.run_dir)
    mode = wandb_mode(folder)
    if mode == "disabled":
        return None
    tracking = ctx.manifest.data.setdefault("tracking", {})
    run_id = tracking.get("wandb_run_id") or uuid.uuid4().hex[:12]
    tracking.update(wandb_run_id=run_id, wandb_project=ctx.cfg.training.wandb_project)
    ctx.manifest.save()
    run = wandb.init(project=ctx.cfg.training.wandb_project, entity=ctx.cfg.training.wandb_entity, id=run_id,
                     resume="allow", name=ctx.run_name, dir=str(folder), mode=mode, job_type="pipeline")  # type: ignore[arg-type]
    log.info("wandb: run %s in project %s (%s)", run_id, ctx.cfg.training.wandb_project, mode)
    return WandbBackend(run)


def _open_tensorboard(ctx: RunContext) -> TensorboardBackend:
    from torch.utils.tensorboard import SummaryWriter

    return TensorboardBackend(SummaryWriter(log_dir=str(ctx.run_dir / "tensorboard")))
