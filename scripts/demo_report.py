"""What ``make demo`` prints at the end: three dev dialogues with the generated and the reference summary,
then the dev scores (the configured scorer, and the other two for comparison).

    python -m scripts.demo_report --run demo-20261201-120000 [--examples 3]
"""
from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from src.config import REPO_ROOT, load_config, resolve_path


def block(title: str, text: str, width: int = 100) -> str:
    """A titled, indented paragraph."""
    body = "\n".join(textwrap.fill(line, width, initial_indent="    ", subsequent_indent="    ")
                     for line in str(text).splitlines() or [""])
    return f"  {title}:\n{body}"


def examples(run_dir: Path, n: int) -> list[str]:
    """The first ``n`` dev rows in the order of the references: dialogue, generated, reference."""
    import pandas as pd

    from src.data.csvfile import read_csv_file

    scores = read_csv_file(run_dir / "scores.csv", "scores")
    dev = pd.read_csv(resolve_path(load_config(run_dir / "config.yaml", []).paths.data_dir) / "dev.csv", dtype=str)
    rows = scores.set_index("fname")
    shown = []
    for fname, dialogue in zip(dev["fname"], dev["dialogue"]):
        if fname not in rows.index or len(shown) == n:
            continue
        row = rows.loc[fname]
        shown.append("\n".join([f"[{fname}]  final {float(row['final']):.1f}", block("dialogue", dialogue),
                                block("generated", row["prediction"]), block("reference", row["reference"])]))
    return shown


def scores(run_dir: Path) -> str:
    """The stage's metrics and the same predictions under the other scorers."""
    from src.evaluation import TOKENIZERS, evaluate_files

    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    lines = [f"dev scores on {metrics['n']} dialogues (final = 100 x mean of ROUGE-1/2/L F1):"]
    for tokenizer in TOKENIZERS:
        m = metrics if tokenizer == metrics.get("tokenizer") else evaluate_files(
            run_dir / "dev_predictions.csv", Path(metrics["references"]), tokenizer=tokenizer)
        mark = "  <- the configured scorer (evaluation.tokenizer)" if tokenizer == metrics.get("tokenizer") else ""
        lines.append(f"  {tokenizer:<10} final {m['final']:6.2f}   R1 {m['rouge1']:.4f}  R2 {m['rouge2']:.4f}  "
                     f"RL {m['rougeL']:.4f}{mark}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the examples and the scores of one run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="run name in output/")
    parser.add_argument("--examples", type=int, default=3)
    args = parser.parse_args(argv)
    run_dir = REPO_ROOT / "output" / args.run
    if not (run_dir / "metrics.json").is_file():
        sys.stderr.write(f"error: {run_dir} has no metrics.json: the run did not finish its evaluate stage\n")
        return 2
    sys.stdout.write("\n\n".join(["", *examples(run_dir, args.examples), scores(run_dir)]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
