"""The run manifest: one JSON file per run recording each stage's status, outputs and fingerprint.

It is rewritten atomically after every stage, so a crash leaves the last finished state behind
and ``--resume`` can tell which stages to skip.
"""
from __future__ import annotations

import importlib.metadata
import json
import subprocess
import time
from pathlib import Path
from typing import Any, Optional

from src.config.resources import CHECKOUT
from src.utils.errors import UserError
from src.utils.io import atomic_write_json

KEY_PACKAGES = ("dialogue-summarization", "torch", "transformers", "trl", "peft", "bitsandbytes", "accelerate", "datasets",
                "openai", "pandas", "rouge", "kiwipiepy", "python-mecab-ko")


def git_commit() -> Optional[str]:
    """The source checkout's HEAD commit, or None for an installed copy or outside git (the package version is
    in ``packages`` then)."""
    if CHECKOUT is None:
        return None
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=CHECKOUT, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, Optional[str]]:
    """Installed versions of the packages that decide results (no imports needed)."""
    versions: dict[str, Optional[str]] = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _well_formed(data: Any) -> bool:
    """A JSON object whose ``stages`` (if present) maps names to objects."""
    if not isinstance(data, dict):
        return False
    stages = data.get("stages", {})
    return isinstance(stages, dict) and all(isinstance(v, dict) for v in stages.values())


class Manifest:
    """``manifest.json`` of one run; ``stages[name]`` holds status, seconds, outputs, fingerprint."""

    def __init__(self, path: Path, data: dict[str, Any], order: tuple[str, ...] = ()) -> None:
        self.path = Path(path)
        self.data = data
        self.order = order  # stage names in pipeline order: entries are saved in this order

    @classmethod
    def open(cls, path: Path, run_name: str, seed: int, order: tuple[str, ...] = ()) -> "Manifest":
        """Load an existing manifest or start a new one; ``order`` is the pipeline's stage order."""
        path = Path(path)
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise UserError(f"{path}: manifest is not valid JSON; delete the run folder or pick another --run-name") from None
            if not _well_formed(data):
                raise UserError(f"{path}: manifest is valid JSON but not a run manifest (an object whose 'stages' maps "
                                "stage names to objects); restore it, delete the run folder, or pick another --run-name")
        else:
            data = {"run_name": run_name, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "stages": {}}
        data.update(run_name=run_name, seed=seed, git_commit=git_commit(), packages=package_versions())
        data.setdefault("stages", {})
        return cls(path, data, order)

    def entry(self, stage: str) -> dict[str, Any]:
        """The stage's entry ({} when the stage never ran in this run)."""
        return self.data["stages"].get(stage, {})

    def is_done(self, stage: str, fingerprint: str) -> bool:
        """True when the stage finished with this fingerprint and its outputs still exist."""
        e = self.entry(stage)
        if e.get("status") != "done" or e.get("fingerprint") != fingerprint:
            return False
        return all(Path(p).exists() for p in e.get("outputs", {}).values() if p)

    def record(self, stage: str, **fields: Any) -> None:
        """Replace the stage's entry and save."""
        self.data["stages"][stage] = fields
        self.save()

    def save(self) -> None:
        """Write the manifest atomically, stages in pipeline order."""
        stages = self.data["stages"]
        ordered = [s for s in self.order if s in stages] + [s for s in stages if s not in self.order]
        self.data["stages"] = {s: stages[s] for s in ordered}
        self.data["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        atomic_write_json(self.path, self.data)
