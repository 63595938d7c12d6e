"""Remove what ``make demo`` runs wrote, and nothing else: ``python -m scripts.clean_demo [--dry-run]``.

Demo runs are named ``demo-<time>``. Their run folders, checkpoints and cleaned data are removed;
in their augmented data every file but ``journal.jsonl`` is removed, because a journal holds
answers that were paid for (a demo pointed at a real API would lose them). Other runs are never touched.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

from src.config import load_config, resolve_path

log = logging.getLogger("clean_demo")
DEMO = "demo-*"
KEEP = "journal.jsonl"


def targets() -> tuple[list[Path], list[Path]]:
    """(folders to remove whole, augmented folders to empty except their journal)."""
    paths = load_config(None, []).paths
    whole = [p for root in (paths.output_dir, paths.model_dir, paths.clean_dir)
             for p in sorted(resolve_path(root).glob(DEMO)) if p.is_dir()]
    augmented = [p for p in sorted(resolve_path(paths.augmented_dir).glob(DEMO)) if p.is_dir()]
    return whole, augmented


def clean(dry_run: bool) -> int:
    """Remove the demo outputs; returns how many paths were (or would be) removed."""
    whole, augmented = targets()
    removed = 0
    for folder in whole:
        log.info("%s %s", "would remove" if dry_run else "removing", folder)
        removed += 1
        if not dry_run:
            shutil.rmtree(folder)
    for folder in augmented:
        for path in sorted(folder.iterdir()):
            if path.name == KEEP:
                log.info("keeping %s (paid API answers are never deleted)", path)
                continue
            removed += 1
            if not dry_run:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    return removed


def main(argv: list[str] | None = None) -> int:
    """Parse the flag and clean."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="list what would be removed")
    args = parser.parse_args(argv)
    log.info("%d demo path(s) %s", clean(args.dry_run), "to remove" if args.dry_run else "removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
