"""The runs of an output folder, best dev score first: ``python -m src.runs [--output-dir output] [--json]``.

One row per run folder (a folder with ``manifest.json``): ``run``; ``status`` (``running`` while a process
holds the run lock, ``failed`` when a stage's last attempt failed, ``done`` when every stage has an entry,
else ``incomplete``); ``model`` (``model.name`` of its config.yaml); ``dev_final`` with its 95% bootstrap
interval over the per-dialogue scores of the evaluate stage's ``scores.csv`` (``src.evaluation.paired``);
``minutes`` (the stages' recorded seconds, summed); ``changed``: the config keys whose value differs from
the preset the run started from (recorded in the manifest by ``src.main``; for older runs the nearest
shipped preset, marked guessed), with the run's values.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Optional

import yaml

from src.utils.errors import UserError

log = logging.getLogger("src.runs")

STATUSES = ("done", "failed", "running", "incomplete")
SEED = 0  # of the dev-score resamples: the same table every time
SHOWN_CHANGES = 6  # per run in the text table (--json has all)


def build_parser(prog: str = "python -m src.runs") -> argparse.ArgumentParser:
    """The command-line interface of the run table."""
    parser = argparse.ArgumentParser(prog=prog, description="One row per run: status, model, dev final with its 95% "
                                     "interval, minutes and the config keys changed from its preset; best first.")
    parser.add_argument("--output-dir", default="output", help="the folder holding the runs (default ./output)")
    parser.add_argument("--json", action="store_true", help="print the rows as one JSON list")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples of the dev interval")
    return parser


def _manifest(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and isinstance(data.get("stages", {}), dict) else {}


def is_running(folder: Path) -> bool:
    """True while a process holds the run's lock (``src.utils.lock``); the OS drops it when the holder dies."""
    from filelock import FileLock, Timeout

    from src.utils.lock import LOCK_NAME

    path = folder / LOCK_NAME
    if not path.is_file():
        return False
    lock = FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return True
    except OSError:
        return False
    lock.release()
    return False


def run_status(folder: Path, manifest: dict[str, Any]) -> str:
    """running, failed, done or incomplete (see the module docstring)."""
    from src.pipeline import STAGE_NAMES

    if is_running(folder):
        return "running"
    stages = manifest.get("stages", {})
    if any(isinstance(e, dict) and e.get("status") == "failed" for e in stages.values()):
        return "failed"
    return "done" if manifest and all(name in stages for name in STAGE_NAMES) else "incomplete"


def dev_score(folder: Path, manifest: dict[str, Any], resamples: int) -> dict[str, Any]:
    """dev_final, dev_ci_low, dev_ci_high, dev_rows from the evaluate stage's per-dialogue scores (None without)."""
    from src.evaluation import read_scored_csv
    from src.evaluation.paired import mean_interval

    empty: dict[str, Any] = {"dev_final": None, "dev_ci_low": None, "dev_ci_high": None, "dev_rows": None}
    entry = manifest.get("stages", {}).get("evaluate", {})
    path = Path(entry.get("outputs", {}).get("scores.csv") or folder / "scores.csv")
    if entry.get("status") != "done" or not path.is_file():
        return empty
    try:
        finals = read_scored_csv(path, "scores").get("final")
        values = [float(v) for v in finals] if finals is not None else []
    except (UserError, ValueError):
        log.warning("%s: unreadable per-dialogue scores; no dev score shown", path)
        return empty
    if not values:
        return empty
    interval = mean_interval(values, resamples, SEED)
    return {"dev_final": interval.mean, "dev_ci_low": interval.low, "dev_ci_high": interval.high,
            "dev_rows": len(values)}


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    from src.config.loading import _is_dict_leaf

    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and not _is_dict_leaf(f"{prefix}{key}"):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


_PRESETS: dict[tuple[str, bool], Optional[dict[str, Any]]] = {}


def preset_values(path: Optional[Path], debug_small: bool) -> Optional[dict[str, Any]]:
    """The flat resolved config of a preset file (None: the default config), with the debug overlay; None when it
    cannot be loaded."""
    from src.config import load_config, to_dict

    key = (str(path), debug_small)
    if key not in _PRESETS:
        try:
            _PRESETS[key] = _flat(to_dict(load_config(path, [], debug_small)))
        except UserError as err:
            log.warning("preset %s cannot be loaded (%s): no changed keys against it", path, err.problems[0])
            _PRESETS[key] = None
    return _PRESETS[key]


def _differences(values: dict[str, Any], preset: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in preset or preset[k] != v}


def _candidates() -> list[tuple[str, Optional[Path]]]:
    """The shipped presets a run may have started from: the default config, the model presets, the demo."""
    from src.config.resources import CONFIGS

    files: list[tuple[str, Optional[Path]]] = [("default", None)]
    files += [(p.stem, p) for p in sorted((CONFIGS / "models").glob("*.yaml"))]
    return files + [(p.stem, p) for p in sorted(CONFIGS.glob("*.yaml")) if p.stem not in ("default", "debug_small",
                                                                                             "base")]


def changed_keys(folder: Path, manifest: dict[str, Any]) -> tuple[Optional[str], bool, Optional[dict[str, Any]]]:
    """(preset name, guessed?, {key: the run's value} for every config key that differs from the preset)."""
    try:
        values = _flat(yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8")) or {})
    except (OSError, yaml.YAMLError):
        return None, False, None
    recorded = manifest.get("preset")
    debug_small = bool((manifest.get("command") or {}).get("debug_small"))
    if isinstance(recorded, dict):
        debug_small = bool(recorded.get("debug_small", debug_small))
        path = Path(recorded["path"]) if recorded.get("path") else None
        preset = preset_values(path, debug_small)
        name = recorded.get("config") or "default"
        return name, False, None if preset is None else _differences(values, preset)
    best: tuple[Optional[str], Optional[dict[str, Any]]] = (None, None)
    for name, path in _candidates():
        preset = preset_values(path, debug_small)
        if preset is not None:
            found = _differences(values, preset)
            if best[1] is None or len(found) < len(best[1]):
                best = (name, found)
    return best[0], True, best[1]


def describe_run(folder: Path, resamples: int = 2000) -> dict[str, Any]:
    """One row of the table (``run``, ``status``, ``model``, ``dev_final`` and its interval, ``minutes``,
    ``changed``, ``preset``, ``preset_guessed``)."""
    manifest = _manifest(folder)
    try:
        config = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        config = {}
    seconds = sum(float(e.get("seconds") or 0) for e in manifest.get("stages", {}).values() if isinstance(e, dict))
    preset, guessed, changed = changed_keys(folder, manifest)
    return {"run": folder.name, "status": run_status(folder, manifest),
            "model": (config.get("model") or {}).get("name"), **dev_score(folder, manifest, resamples),
            "minutes": round(seconds / 60, 1), "changed": changed, "preset": preset, "preset_guessed": guessed}


def list_runs(output_dir: Path, resamples: int = 2000) -> list[dict[str, Any]]:
    """Every run of ``output_dir``, best dev final first (runs without a dev score last, by name)."""
    if not output_dir.is_dir():
        raise UserError(f"--output-dir {output_dir}: no such folder; give the folder your runs are in "
                        "(paths.output_dir, default ./output)")
    folders = sorted(p.parent for p in output_dir.glob("*/manifest.json"))
    rows = [describe_run(folder, resamples) for folder in folders]
    return sorted(rows, key=lambda r: (r["dev_final"] is None, -(r["dev_final"] or 0.0), r["run"]))


def _changes_text(row: dict[str, Any]) -> str:
    changed = row["changed"]
    if changed is None:
        return "?"
    items = [f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in changed.items()]
    hidden = len(items) - SHOWN_CHANGES
    text = ", ".join(items[:SHOWN_CHANGES]) + (f" (+{hidden} more)" if hidden > 0 else "")
    where = f"vs {row['preset']}{' (guessed)' if row['preset_guessed'] else ''}"
    return f"{where}: {text or 'nothing'}"


def render(rows: list[dict[str, Any]]) -> list[str]:
    """The text table."""
    lines = [f"{'run':<24} {'status':<10} {'model':<22} {'dev final [95% interval]':<26} {'rows':>5} {'min':>6}  changed"]
    for row in rows:
        score = "-" if row["dev_final"] is None else \
            f"{row['dev_final']:.2f} [{row['dev_ci_low']:.2f}, {row['dev_ci_high']:.2f}]"
        lines.append(f"{row['run']:<24} {row['status']:<10} {str(row['model']):<22} {score:<26} "
                     f"{row['dev_rows'] or '-':>5} {row['minutes']:>6.1f}  {_changes_text(row)}")
    return lines


def run_pair(output_dir: Path, run_a: str, run_b: str) -> tuple[str, str, str, set[str]]:
    """(dev predictions of A, of B, A's dev references, the tuning rows of either) for ``compare --runs``."""
    found, problems = [], []
    for run in (run_a, run_b):
        folder = output_dir / run
        manifest = _manifest(folder)
        if not manifest:
            runs = ", ".join(sorted(p.parent.name for p in output_dir.glob("*/manifest.json"))) or "none"
            problems.append(f"--runs {run}: {folder} is not a run folder with a manifest.json (runs in {output_dir}: "
                            f"{runs})")
            continue
        stages = manifest.get("stages", {})
        pred = Path(stages.get("infer", {}).get("outputs", {}).get("dev_predictions") or folder / "dev_predictions.csv")
        refs = stages.get("preprocess", {}).get("outputs", {}).get("dev_references")
        tuning = stages.get("tune", {}).get("outputs", {}).get("rows") if stages.get("tune", {}).get("status") == \
            "done" else None
        if not pred.is_file():
            problems.append(f"--runs {run}: no dev predictions ({pred}); run its infer stage with "
                            "inference.predict_dev=true")
        if run == run_a and not (refs and Path(refs).is_file()):
            problems.append(f"--runs {run}: its dev references ({refs or 'not recorded'}) are gone; rerun its "
                            "preprocess stage")
        found.append((str(pred), refs, tuning))
    if problems:
        raise UserError(*problems)
    from src.inference.tuning_run import excluded_rows

    exclude = excluded_rows(Path(found[0][2]) if found[0][2] else None) | \
        excluded_rows(Path(found[1][2]) if found[1][2] else None)
    if exclude:
        log.info("left out %d tuning row(s) of the two runs (their dev scores never saw them either)", len(exclude))
    return found[0][0], found[1][0], str(found[0][1]), exclude


def main(argv: Optional[list[str]] = None, prog: str = "python -m src.runs") -> int:
    """Print the run table; returns the exit code (2 on a problem the user can fix)."""
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.resamples < 1:
            raise UserError(f"--resamples {args.resamples}: give a positive number, e.g. 2000")
        rows = list_runs(Path(args.output_dir), args.resamples)
    except UserError as err:
        sys.stderr.write("".join(f"error: {problem}\n" for problem in err.problems))
        return 2
    if args.json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, default=str) + "\n")
    else:
        sys.stdout.write("\n".join(render(rows) if rows else [f"no runs in {args.output_dir}"]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
