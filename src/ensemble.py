"""Cross-run ensembles: ``python -m src.ensemble --pred A.csv B.csv [...] --out OUT.csv``.

Every input has columns ``fname,summary`` and may hold several rows (candidates) per fname.
The pool of a fname is every candidate of every file, in file order then row order; the output
holds, per fname and in the first file's order, the candidate with the highest mean utility
(weighted ROUGE-1/2/L F1, ``src.evaluation.consensus``) against the rest of its pool; ties go
to the earliest file, then the earliest row. A single file with several candidates per fname is
plain MBR selection. The last stdout line is a JSON object of counts; messages go to stderr.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from src.utils.errors import UserError, printable
from src.utils.io import atomic_write_csv

TOKENIZER_CHOICES = ("mecab", "kiwi", "whitespace")  # mirrors src.evaluation.TOKENIZERS without importing pandas
COLUMNS = ("fname", "summary")
LISTED_AT_MOST = 10  # fnames named in one error line before "(+N more)"

log = logging.getLogger("src.ensemble")


def build_parser(prog: str = "python -m src.ensemble") -> argparse.ArgumentParser:
    """The command-line interface of the ensembler."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Pick, per fname, the candidate most similar (mean weighted ROUGE-1/2/L F1) to the other "
        "candidates of all the given prediction files.",
    )
    parser.add_argument("--pred", nargs="+", required=True, metavar="CSV",
                        help="prediction CSVs with columns fname,summary (several rows per fname allowed)")
    parser.add_argument("--out", required=True, help="output CSV (fname,summary), one row per fname")
    parser.add_argument("--tokenizer", choices=TOKENIZER_CHOICES, default="mecab",
                        help="units ROUGE is computed on (default mecab, the leaderboard's)")
    parser.add_argument("--weights", default="1,1,1", metavar="W1,W2,WL",
                        help="weights of ROUGE-1, ROUGE-2, ROUGE-L F1 in the utility (default 1,1,1)")
    return parser


def parse_weights(text: str) -> tuple[list[float], list[str]]:
    """The three weights of ``--weights``, or problems naming the flag and what to give instead."""
    from src.evaluation.consensus import check_weights

    hint = "give 3 comma-separated non-negative numbers with a positive sum, e.g. --weights 1,1,1"
    try:
        return list(check_weights([part.strip() for part in text.split(",")])), []
    except ValueError as err:
        return [], [f"--weights {text!r}: {err}: {hint}"]


def _listing(names: list[str]) -> str:
    hidden = len(names) - LISTED_AT_MOST
    shown = ", ".join(names[:LISTED_AT_MOST])
    return f"{shown} (+{hidden} more)" if hidden > 0 else shown


def read_candidates(path: str) -> tuple[Any, list[str]]:
    """``path`` as a frame of fname (stripped) and summary, or the problems found in it."""
    from src.evaluation.files import read_scored_csv
    from src.evaluation.morphemes import as_text

    try:
        frame = read_scored_csv(path, "--pred")
    except UserError as err:
        return None, err.problems
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        return None, [f"{path}: no column {', '.join(repr(c) for c in missing)} (found {list(frame.columns)}): "
                      "each --pred file needs columns fname,summary"]
    # Stray spaces around an id are a formatting accident, not a different dialogue.
    frame = frame[list(COLUMNS)].assign(fname=frame["fname"].map(as_text).str.strip()).reset_index(drop=True)
    blank = frame.index[frame["fname"] == ""].tolist()
    problems = [f"{path} data row {row + 1}: column 'fname' is blank: give every candidate its dialogue id"
                for row in blank[:LISTED_AT_MOST]]
    if len(blank) > LISTED_AT_MOST:
        problems.append(f"{path}: {len(blank) - LISTED_AT_MOST} more data row(s) with a blank 'fname'")
    if frame.empty:
        problems.append(f"{path}: no candidate rows: give a file with at least one fname,summary row")
    return frame, problems


def coverage_problems(frames: list[Any], paths: list[str]) -> list[str]:
    """Every file must hold candidates for exactly the first file's fnames."""
    first = list(dict.fromkeys(frames[0]["fname"]))
    wanted = set(first)
    problems = []
    for frame, path in zip(frames[1:], paths[1:]):
        have = list(dict.fromkeys(frame["fname"]))
        have_set = set(have)
        missing = [f for f in first if f not in have_set]
        extra = [f for f in have if f not in wanted]
        if missing:
            problems.append(f"{path}: no candidate for {len(missing)} fname(s) of {paths[0]}: {_listing(missing)}: "
                            "every --pred file must cover the same dialogues")
        if extra:
            problems.append(f"{path}: {len(extra)} fname(s) not in {paths[0]} (the first file): {_listing(extra)}: "
                            "ensemble predictions of the same split")
    return problems


def build_pools(frames: list[Any]) -> tuple[list[str], list[list[str]], list[list[int]]]:
    """fnames in the first file's order, their candidate texts and each candidate's file index."""
    from src.evaluation.morphemes import as_text

    order = list(dict.fromkeys(frames[0]["fname"]))
    texts: dict[str, list[str]] = {f: [] for f in order}
    sources: dict[str, list[int]] = {f: [] for f in order}
    for k, frame in enumerate(frames):
        for fname, summary in zip(frame["fname"], frame["summary"]):
            texts[fname].append(as_text(summary))
            sources[fname].append(k)
    return order, [texts[f] for f in order], [sources[f] for f in order]


def select_files(paths: Sequence[Any], tokenizer: str, weights: Sequence[float]) -> tuple[Any, dict]:
    """Validate the files and pick each fname's consensus candidate; (``fname,summary`` frame, counts)."""
    paths = [str(p) for p in paths]
    frames, problems = [], []
    for path in paths:
        frame, found = read_candidates(path)
        frames.append(frame)
        problems += found
    if frames[0] is not None:
        # Coverage of the files that could be read, so one run lists every problem there is.
        loaded = [(frame[frame["fname"] != ""], path) for frame, path in zip(frames, paths) if frame is not None]
        problems += coverage_problems([f for f, _ in loaded], [p for _, p in loaded])
    if problems:
        raise UserError(*problems)
    import pandas as pd

    from src.evaluation.consensus import consensus_picks

    if len(set(paths)) < len(paths):
        log.warning("a --pred file is given more than once: its candidates count that many times")
    order, pools, sources = build_pools(frames)
    blank = sum(not text.strip() for pool in pools for text in pool)
    if blank:
        log.warning("%d blank candidate(s): they score 0 against everything and win only an all-blank pool", blank)
    picks, scores = consensus_picks(pools, tokenizer, weights)
    chosen = pd.DataFrame({"fname": order, "summary": [pool[k] for pool, k in zip(pools, picks)]})
    per_file = [{"file": path, "candidates": len(frame),
                 "picks": sum(src[k] == i for src, k in zip(sources, picks))}
                for i, (path, frame) in enumerate(zip(paths, frames))]
    counts = {"fnames": len(order), "candidates": sum(len(p) for p in pools), "files": len(paths),
              "per_file": per_file, "tokenizer": tokenizer, "weights": list(weights),
              "mean_pick_utility": sum(float(s[k]) for s, k in zip(scores, picks)) / len(picks)}
    return chosen, counts


def ensemble(paths: list[str], out: str, tokenizer: str, weights_text: str) -> dict:
    """Validate everything, select per fname, write ``out`` atomically; returns the counts."""
    weights, problems = parse_weights(weights_text)
    if Path(out).is_dir():
        problems.append(f"--out {out} is a folder: give the path of the CSV file to write")
    if problems:  # the files are checked too, so one run lists every problem there is
        try:
            select_files(paths, "whitespace", (1.0, 1.0, 1.0))
        except UserError as err:
            problems += err.problems
        raise UserError(*problems)
    chosen, counts = select_files(paths, tokenizer, weights)
    try:
        atomic_write_csv(Path(out), chosen)
    except OSError as err:
        raise UserError(f"--out {out}: cannot write it ({err.strerror}): give a writable file path") from None
    log.info("wrote %s: %d fname(s), %s tokens, weights %s", out, counts["fnames"], tokenizer, weights)
    return {**counts, "out": out}


def main(argv: Optional[list[str]] = None, prog: str = "python -m src.ensemble") -> int:
    """Run the ensembler; returns the exit code (2 on a problem the user can fix)."""
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        counts = ensemble(args.pred, args.out, args.tokenizer, args.weights)
    except UserError as err:
        sys.stderr.write("".join(f"error: {printable(problem)}\n" for problem in err.problems))
        return 2
    sys.stdout.write(json.dumps(counts, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
