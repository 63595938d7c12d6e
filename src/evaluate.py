"""Score predictions against references: ``python -m src.evaluate --pred P.csv --ref R.csv``.

The last stdout line is a JSON object {"rouge1", "rouge2", "rougeL", "final", "n"} (F1 values
in [0, 1], final = 100 x their mean); with ``--tokenizer all`` it is one object with a key per
tokenizer holding those metrics. Messages go to stderr through logging.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Optional

from src.utils.errors import UserError, printable

TOKENIZER_CHOICES = ("mecab", "kiwi", "whitespace")  # mirrors src.evaluation.TOKENIZERS without importing pandas
ALL = "all"


def build_parser(prog: str = "python -m src.evaluate") -> argparse.ArgumentParser:
    """The command-line interface of the evaluator."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="ROUGE-1/2/L F1 of predictions vs references, rows matched by fname; "
        "final = 100 x mean of the three, averaged over each dialogue's references.",
    )
    parser.add_argument("--pred", required=True, help="predictions CSV with columns fname,summary")
    parser.add_argument("--ref", required=True, help="references CSV: fname and summary or summary1..summaryN")
    parser.add_argument(
        "--tokenizer", choices=(*TOKENIZER_CHOICES, ALL), default="mecab",
        help="mecab: Mecab morphemes of the raw text, as the leaderboard scores (default); kiwi: Kiwi "
        "morphemes, speaker tags kept whole; whitespace: exactly the rouge 1.0.1 package on the raw text; "
        "all: the three side by side",
    )
    parser.add_argument("--out", default=None, help="folder for scores.csv, metrics.json, report.md, score_hist.png "
                        "(with --tokenizer all: one subfolder per tokenizer)")
    return parser


def main(argv: Optional[list[str]] = None, prog: str = "python -m src.evaluate") -> int:
    """Run the evaluator; returns the exit code (2 on a problem the user can fix)."""
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from src.evaluation import evaluate_files  # pandas, Mecab and Kiwi load only after --help

    tokenizers = TOKENIZER_CHOICES if args.tokenizer == ALL else (args.tokenizer,)
    results = {}
    try:
        for tokenizer in tokenizers:
            # Side by side, each tokenizer's report gets its own subfolder so none overwrites another.
            out_dir = os.path.join(args.out, tokenizer) if args.out and args.tokenizer == ALL else args.out
            results[tokenizer] = evaluate_files(args.pred, args.ref, tokenizer=tokenizer, out_dir=out_dir)
    except UserError as err:
        sys.stderr.write("".join(f"error: {printable(problem)}\n" for problem in err.problems))
        return 2
    sys.stdout.write(json.dumps(results if args.tokenizer == ALL else results[args.tokenizer]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
