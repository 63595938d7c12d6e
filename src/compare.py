"""Is A better than B? ``python -m src.compare --pred A.csv B.csv --ref R.csv`` (or ``--runs RUN_A RUN_B``).

Both files are scored exactly as ``python -m src.evaluate`` scores them (same scorer, tokenizer and
reference averaging: ``src.evaluation.score_frames``); the per-dialogue scores are then paired by
fname (``src.evaluation.pairing``, shared with the evaluate stage's comparison with the single decode). The
difference A - B of final (and of R1/R2/RL) is the mean of the per-dialogue differences; its 95% interval is a
percentile bootstrap over dialogues (``src.evaluation.paired``). ``p_a_better`` is the share of resamples where
A's mean is higher; ``split_agreement`` the share of random half splits (a public and a private board) where both
halves pick the same winner. The table comes first, then the dialogues where A and B differ most; the last stdout
line is one JSON object (final points as ``src.evaluate`` prints them). Problems: one ``error:`` line each on
stderr, exit code 2.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Collection, Optional

from src.utils.errors import UserError

TOKENIZER_CHOICES = ("mecab", "kiwi", "whitespace")  # mirrors src.evaluation.TOKENIZERS without importing pandas
ALL = "all"
LABELS = {"final": "final", "rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L"}
SHOWN_CHARS = 160  # of each text in the terminal's side-by-side view

log = logging.getLogger("src.compare")


def build_parser(prog: str = "python -m src.compare") -> argparse.ArgumentParser:
    """The command-line interface of the comparison."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Paired comparison of two prediction files on the same dialogues: the score of "
        "each (as src.evaluate), the difference A - B with a 95% bootstrap interval over dialogues, how often A "
        "wins, how often two half boards agree, and the dialogues where they differ most.")
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument("--pred", nargs=2, metavar=("A.csv", "B.csv"), help="two prediction CSVs (fname,summary)")
    given.add_argument("--runs", nargs=2, metavar=("RUN_A", "RUN_B"),
                       help="two runs' dev predictions, against run A's dev references, without either run's tuning rows")
    parser.add_argument("--ref", help="references CSV: fname and summary or summary1..summaryN (with --pred)")
    parser.add_argument("--output-dir", default="output", help="where the runs of --runs live (default ./output)")
    parser.add_argument("--tokenizer", choices=(*TOKENIZER_CHOICES, ALL), default="mecab",
                        help="as in src.evaluate: mecab (default, the leaderboard's), kiwi, whitespace, or all")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples and half splits (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the resamples and the splits (default 0)")
    parser.add_argument("--show", type=int, default=5, help="dialogues shown where A and B differ most (default 5)")
    parser.add_argument("--out", default=None, help="folder for compare.json, rows.csv and report.md "
                        "(with --tokenizer all: one subfolder per tokenizer)")
    return parser


def _excerpt(text: Any, limit: int = SHOWN_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit].rstrip() + " …"


def most_different(rows: Any, count: int) -> Any:
    """The ``count`` dialogues with the largest |final A - final B|, largest first (ties: the references' order)."""
    order = rows["final_diff"].abs().sort_values(ascending=False, kind="mergesort").index
    return rows.loc[order].head(max(0, count))


def render_table(result: dict, names: tuple[str, str], tokenizer: str) -> list[str]:
    """The human-readable summary: each metric's A, B, A - B, interval and share of resamples A wins."""
    lines = [f"A = {names[0]}", f"B = {names[1]}",
             f"{result['n']} dialogues, {tokenizer} tokens; paired bootstrap over dialogues, "
             f"{result['resamples']} resamples, seed {result['seed']} (ROUGE rows in F1 x 100)", "",
             f"{'metric':<8} {'A':>7} {'B':>7} {'A - B':>7}  {'95% interval':<17} {'A wins':>7}"]
    rows = [("final", result["final_a"], result["final_b"], result["diff"], result["ci_low"], result["ci_high"],
             result["p_a_better"])]
    rows += [(m, 100 * v["a"], 100 * v["b"], 100 * v["diff"], 100 * v["ci_low"], 100 * v["ci_high"], v["p_a_better"])
             for m, v in result["metrics"].items()]
    for metric, a, b, diff, low, high, wins in rows:
        lines.append(f"{LABELS[metric]:<8} {a:7.2f} {b:7.2f} {diff:+7.2f}  [{low:+6.2f}, {high:+6.2f}]  {wins:7.1%}")
    agreement = result["split_agreement"]
    lines += ["", "split agreement: " + (f"{agreement:.1%} of {result['resamples']} random splits into two half boards "
                                          "pick the same winner in both halves" if agreement is not None
                                          else "needs at least 2 dialogues"),
              f"verdict: {result['verdict']}"]
    return lines


def render_different(rows: Any, count: int) -> list[str]:
    """The dialogues where A and B differ most, each with its reference and both predictions."""
    shown = most_different(rows, count)
    if shown.empty:
        return []
    refs = [c for c in rows.columns if c.startswith("reference")]
    lines = ["", f"{len(shown)} dialogue(s) where A and B differ most (final per dialogue):"]
    for _, row in shown.iterrows():
        lines.append(f"- {row['fname']}: A {row['final_a']:.2f}, B {row['final_b']:.2f}, A - B {row['final_diff']:+.2f}")
        lines += [f"    {c}: {_excerpt(row[c])}" for c in refs]
        lines += [f"    A: {_excerpt(row['prediction_a'])}", f"    B: {_excerpt(row['prediction_b'])}"]
    return lines


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", "<br>")


def write_report(out: Path, result: dict, rows: Any, lines: list[str], count: int) -> list[str]:
    """compare.json, rows.csv (every dialogue, largest |A - B| first) and report.md in ``out``."""
    from src.utils.io import atomic_write_csv, atomic_write_text

    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is an existing file: give a folder path")
    out.mkdir(parents=True, exist_ok=True)
    ranked = most_different(rows, len(rows))
    atomic_write_csv(out / "rows.csv", ranked, for_spreadsheets=True)
    atomic_write_text(out / "compare.json", json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    refs = [c for c in rows.columns if c.startswith("reference")]
    table = ["| fname | A | B | A - B | reference | A | B |", "|---|---|---|---|---|---|---|"]
    for _, row in ranked.head(count).iterrows():
        ref = "<br>".join(_cell(row[c]) for c in refs)
        table.append(f"| {_cell(row['fname'])} | {row['final_a']:.2f} | {row['final_b']:.2f} | {row['final_diff']:+.2f} "
                     f"| {ref} | {_cell(row['prediction_a'])} | {_cell(row['prediction_b'])} |")
    report = ["# Paired comparison", "", "```", *lines, "```", "", "## Where A and B differ most", "", *table]
    atomic_write_text(out / "report.md", "\n".join(report) + "\n")
    return [str(out / name) for name in ("compare.json", "rows.csv", "report.md")]


def compare(pred_a: str, pred_b: str, ref: str, tokenizer: str, resamples: int, seed: int, show: int,
            out: Optional[str], exclude: Collection[str] = ()) -> tuple[dict, list[str]]:
    """Score, pair, bootstrap; (the JSON object, the lines printed before it); writes the report with ``out``."""
    from src.evaluation.pairing import score_pair, summarize_pair

    metrics_a, metrics_b, rows = score_pair(pred_a, pred_b, ref, tokenizer, exclude)
    result = summarize_pair(metrics_a, metrics_b, rows, resamples, seed)
    result.update(tokenizer=tokenizer, a=str(pred_a), b=str(pred_b), ref=str(ref))
    table = render_table(result, (str(pred_a), str(pred_b)), tokenizer)
    lines = table + render_different(rows, show)
    if out is not None:
        for path in write_report(Path(out), result, rows, table, show):
            log.info("wrote %s", path)
    return result, lines


def argument_problems(args: argparse.Namespace) -> list[str]:
    """Flag values that cannot work, one line each."""
    problems = []
    if args.pred and not args.ref:
        problems.append("--pred A.csv B.csv needs --ref R.csv (the references both are scored against)")
    if args.runs and args.ref:
        problems.append("--ref goes with --pred: --runs uses run A's dev references")
    if args.resamples < 1:
        problems.append(f"--resamples {args.resamples}: give a positive number, e.g. 2000")
    if args.show < 0:
        problems.append(f"--show {args.show}: give 0 or more dialogues to show")
    return problems


def main(argv: Optional[list[str]] = None, prog: str = "python -m src.compare") -> int:
    """Run the comparison; returns the exit code (2 on a problem the user can fix)."""
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    tokenizers = TOKENIZER_CHOICES if args.tokenizer == ALL else (args.tokenizer,)
    results, lines = {}, []
    try:
        problems = argument_problems(args)
        if problems:
            raise UserError(*problems)
        if args.runs:
            from src.runs import run_pair

            pred_a, pred_b, ref, exclude = run_pair(Path(args.output_dir), *args.runs)
        else:
            (pred_a, pred_b), ref, exclude = args.pred, args.ref, set()
        for tokenizer in tokenizers:
            out = str(Path(args.out) / tokenizer) if args.out and args.tokenizer == ALL else args.out
            results[tokenizer], found = compare(pred_a, pred_b, ref, tokenizer, args.resamples, args.seed, args.show,
                                                out, exclude)
            lines += ([f"== {tokenizer} =="] if args.tokenizer == ALL else []) + found + [""]
    except UserError as err:
        sys.stderr.write("".join(f"error: {problem}\n" for problem in err.problems))
        return 2
    sys.stdout.write("\n".join(lines) + "\n")
    last = results if args.tokenizer == ALL else results[args.tokenizer]
    sys.stdout.write(json.dumps(last, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
