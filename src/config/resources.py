"""Where the files the pipeline ships live, and how a relative path from a config or the command line is found.

The presets (``configs/``), the rule tables (``docs/*.csv``) and the bundled debug set (``data/debug/``)
sit at the top of a source checkout; an installed copy (``pip install .``) carries the same files
inside the package as ``src/_shipped/`` (``pyproject.toml``). ``SHIPPED`` is whichever of the two
this copy of ``src`` has.

Relative paths are relative to the working directory. An input (a ``--config`` file, a preset's
base, ``paths.data_dir``, a rule table) that does not exist there is looked up among the shipped
files, so ``dialsum --config configs/models/qwen2.5-7b-instruct.yaml`` and ``dialsum --debug-small``
work from any folder; outputs (runs, checkpoints, cleaned data) always go under the working directory.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the folder of the ``src`` package


def _checkout() -> Optional[Path]:
    """The source checkout this ``src`` is in (editable installs too), or None for an installed copy."""
    root = PACKAGE_DIR.parent
    return root if (root / "configs" / "default.yaml").is_file() and (root / "pyproject.toml").is_file() else None


CHECKOUT: Optional[Path] = _checkout()
SHIPPED: Path = CHECKOUT or PACKAGE_DIR / "_shipped"  # holds configs/, docs/*.csv and data/debug/
CONFIGS: Path = SHIPPED / "configs"
SHIPPED_ROOTS = ("configs", "docs", "data/debug")  # what pyproject.toml ships; only these fall back to SHIPPED


def shipped(relative: str | Path) -> Path:
    """A shipped file or folder, e.g. ``shipped("configs/default.yaml")``."""
    return SHIPPED / relative


def find_input(path: str | Path, base: Optional[Path] = None) -> Path:
    """An input path: absolute as given; relative to ``base`` (default: the working directory) when it exists
    there, else (under ``configs/``, ``docs/`` or ``data/debug/``) the shipped file of that name, else the path
    under ``base`` (so an error names the place the user meant)."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    here = (base or Path.cwd()) / p
    if here.exists() or not any(p.as_posix() == r or p.as_posix().startswith(r + "/") for r in SHIPPED_ROOTS):
        return here
    packaged = SHIPPED / p
    return packaged if packaged.exists() else here


def preset_names() -> list[str]:
    """The model presets shipped in ``configs/models/`` (what ``--config NAME`` also accepts)."""
    return sorted(p.stem for p in (CONFIGS / "models").glob("*.yaml"))


def find_config(given: str) -> Path:
    """A ``--config`` value: a path (working directory first, then the shipped configs) or a preset name."""
    path = find_input(given)
    if path.exists() or given.endswith((".yaml", ".yml")) or "/" in given:
        return path
    for candidate in (CONFIGS / "models" / f"{given}.yaml", CONFIGS / f"{given}.yaml"):
        if candidate.is_file():
            return candidate
    return path
