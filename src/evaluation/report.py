"""Evaluation outputs: scores.csv, metrics.json, report.md and score_hist.png, each written atomically."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Union

import pandas as pd

from src.utils.errors import UserError
from src.utils.io import atomic_write, atomic_write_csv, atomic_write_text, sheet_safe

WORST_SHOWN = 10
EXCERPT_CHARS = 300  # enough of a dialogue to recall what it is about


def _write_histogram(path: Path, finals: pd.Series) -> None:
    # Figure without pyplot: no global backend switch, so a notebook's inline backend survives.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    ax.hist(finals, bins=range(0, 105, 5), color="#4c72b0", edgecolor="white")
    if len(finals):
        ax.axvline(finals.mean(), color="#c44e52", linestyle="--", label=f"mean {finals.mean():.2f}")
        ax.legend()
    ax.set_xlabel("per-row final score (100 x mean ROUGE-1/2/L F1)")
    ax.set_ylabel("dialogues")
    ax.set_xlim(0, 100)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))


def _cell(text: object, limit: int = 0) -> str:
    text = "" if text is None or (isinstance(text, float) and pd.isna(text)) else sheet_safe(str(text))
    if limit and len(text) > limit:
        text = text[:limit].rstrip() + " …"
    # A markdown table cell is one line and must not contain an unescaped pipe.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("|", "\\|").replace("\n", "<br>")


def _references_cell(row: pd.Series, columns: list[str]) -> str:
    if len(columns) == 1:
        return _cell(row[columns[0]])
    return "<br>".join(f"{i}) {_cell(row[c])}" for i, c in enumerate(columns, 1))


def _worst_table(per_row: pd.DataFrame) -> list[str]:
    refs = [c for c in per_row.columns if re.fullmatch(r"reference\d*", str(c))]
    has_dialogue = "dialogue" in per_row.columns
    header = ["fname", "final", "R1", "R2", "RL"] + (["dialogue (excerpt)"] if has_dialogue else []) + [
        "reference", "prediction"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in per_row.head(WORST_SHOWN).iterrows():
        cells = [_cell(row["fname"]), f"{row['final']:.2f}"] + [f"{100 * row[k]:.1f}" for k in ("rouge1", "rouge2",
                                                                                                "rougeL")]
        cells += [_cell(row["dialogue"], EXCERPT_CHARS)] if has_dialogue else []
        cells += [_references_cell(row, refs) if refs else "", _cell(row.get("prediction", ""))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _by_length(per_row: pd.DataFrame) -> list[str]:
    """Mean scores by dialogue length (quartiles of characters): do long dialogues score worse?"""
    if "dialogue" not in per_row.columns or len(per_row) < 8:
        return []
    chars = per_row["dialogue"].fillna("").astype(str).str.len()
    bins = pd.qcut(chars, 4, duplicates="drop")
    lines = ["## Score by dialogue length", "", "| dialogue characters | dialogues | final | R1 | R2 | RL |",
             "|---|---|---|---|---|---|"]
    for interval, group in per_row.groupby(bins, observed=True):
        lines.append(f"| {int(interval.left) + 1}-{int(interval.right)} | {len(group)} | {group['final'].mean():.2f} | "
                     + " | ".join(f"{100 * group[k].mean():.1f}" for k in ("rouge1", "rouge2", "rougeL")) + " |")
    return lines + [""]


SINGLE_LABELS = {"mbr": "MBR", "ensemble": "The ensemble", "mbr+ensemble": "MBR and the ensemble",
                 "unknown": "MBR or the ensemble"}  # what changed the dev predictions (src.inference.run.changed_by)


def single_line(found: dict) -> str:
    """One sentence from a ``vs_single`` entry: "MBR vs the single decode: +0.42 [-0.31, +1.20] on 90 dialogues: not
    sure" (or "better"/"worse" when the interval excludes 0)."""
    sure = "not sure" if found["not_sure"] else ("better" if found["ci_low"] > 0 else "worse")
    return (f"{SINGLE_LABELS.get(found['what'], found['what'])} vs the single decode: {found['diff']:+.2f} "
            f"[{found['ci_low']:+.2f}, {found['ci_high']:+.2f}] on {found['n']} dialogues: {sure}")


def render_report(metrics: dict, per_row: pd.DataFrame, hist_name: str) -> str:
    """The markdown report: title, metrics, histogram, scores by dialogue length, the worst rows side by side."""
    source = metrics.get("predictions")
    title = f"# Evaluation report: {_cell(Path(source).name)}" if source else "# Evaluation report"
    scorer = f" ({metrics['tokenizer']} tokens)" if metrics.get("tokenizer") else ""
    lines = [title, "", f"ROUGE F1 on {metrics.get('n', len(per_row))} dialogues{scorer}; final = 100 x the mean of "
             "ROUGE-1, ROUGE-2 and ROUGE-L, each averaged over a dialogue's references.", "",
             "| metric | value |", "|---|---|"]
    for key, label in (("rouge1", "ROUGE-1 F1"), ("rouge2", "ROUGE-2 F1"), ("rougeL", "ROUGE-L F1")):
        lines.append(f"| {label} | {metrics.get(key, float('nan')):.4f} |")
    lines.append(f"| final (100 x mean) | {metrics.get('final', float('nan')):.2f} |")
    lines.append(f"| dialogues | {metrics.get('n', len(per_row))} |")
    if metrics.get("vs_single"):
        lines += ["", single_line(metrics["vs_single"])]
    extras = {k: v for k, v in metrics.items() if k not in ("rouge1", "rouge2", "rougeL", "final", "n", "vs_single")}
    lines += [""] + [f"- {key}: `{value}`" for key, value in extras.items()]
    lines += ["", "## Per-row final scores", "", f"![histogram of per-row final scores]({hist_name})", ""]
    lines += _by_length(per_row)
    lines += [f"## {min(WORST_SHOWN, len(per_row))} worst rows", ""] + _worst_table(per_row)
    return "\n".join(lines) + "\n"


def write_report(out_dir: Union[str, os.PathLike], metrics: dict, per_row: pd.DataFrame) -> dict[str, str]:
    """Write ``scores.csv`` (worst first), ``metrics.json``, ``score_hist.png`` and ``report.md``.

    Returns ``{file name: path}``. Each file is written to a temp file and renamed into place.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"output folder {out} is an existing file: give a folder path for --out")
    out.mkdir(parents=True, exist_ok=True)
    if "final" in per_row.columns:
        per_row = per_row.sort_values("final", kind="mergesort").reset_index(drop=True)
    paths = {name: out / name for name in ("scores.csv", "metrics.json", "score_hist.png", "report.md")}
    atomic_write_csv(paths["scores.csv"], per_row, for_spreadsheets=True)
    atomic_write_text(paths["metrics.json"], json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    _write_histogram(paths["score_hist.png"], per_row.get("final", pd.Series(dtype=float)))
    atomic_write_text(paths["report.md"], render_report(metrics, per_row, "score_hist.png"))
    return {name: str(path) for name, path in paths.items()}
