"""Consensus selection (MBR / ensembles) over the real dev dialogues: seconds for 499 x 16 candidates.

Usage: python -m benchmarks.consensus_throughput [--data ../shared/data/dialogsum-ko/dev.csv]
       [--candidates 16] [--tokenizer mecab] [--verify 40]

Pools are made from the real dev rows (there are no model outputs on this machine): per
dialogue the reference summary, word-dropped, word-swapped and cut-short copies of it, its first
sentence, the dialogue's first turn and a neighbouring dialogue's summary -- near-duplicates of
one another, as sampled or beam candidates are. The timing covers tokenisation (the tagger's
load included) and selection. ``--verify N`` then recomputes every ordered pair of the first N
pools with ``rouge_compat.rouge_f1`` (the package's semantics, one pair at a time) and reports
how many utilities and picks differ. The last line is the selection time in seconds.
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def variant(summary: str, dialogue: str, neighbour: str, kind: int, rng: random.Random) -> str:
    """One synthetic candidate of ``kind`` (cycled), deterministic given ``rng``."""
    words = summary.split()
    if kind >= 8:  # past the first cycle, only the random kinds, so nearly every candidate is distinct
        kind = rng.randint(1, 4)
    if kind == 0:
        return summary
    if kind in (1, 2):
        keep = 0.9 if kind == 1 else 0.7
        return " ".join(w for w in words if rng.random() < keep) or summary
    if kind == 3 and len(words) > 3:
        k = rng.randrange(len(words) - 1)
        words[k], words[k + 1] = words[k + 1], words[k]
        return " ".join(words)
    if kind == 4:
        return " ".join(words[: max(3, int(len(words) * rng.uniform(0.4, 0.8)))])
    if kind == 5:
        return summary.split(". ")[0].rstrip(".") + "."
    if kind == 6:
        return dialogue.split("\n")[0]
    return neighbour


def make_pools(summaries: list[str], dialogues: list[str], size: int, seed: int = 0) -> list[list[str]]:
    """``size`` candidates per dialogue: the eight kinds once, then random word-level variants."""
    rng = random.Random(seed)
    pools = []
    for k, (summary, dialogue) in enumerate(zip(summaries, dialogues)):
        neighbour = summaries[(k + 1) % len(summaries)]
        pools.append([variant(summary, dialogue, neighbour, kind, rng) for kind in range(size)])
    return pools


def verify(pools: list[list[str]], tokenizer: str, weights: tuple[float, float, float]) -> tuple[int, int, int]:
    """(pairs checked, pairs whose utility differs from rouge_f1's, pools whose pick differs)."""
    import numpy as np

    from src.evaluation.consensus import pairwise_f1
    from src.evaluation.morphemes import prepare_texts
    from src.evaluation.rouge_compat import rouge_f1

    pairs = [(a, b) for pool in pools for x, a in enumerate(pool) for y, b in enumerate(pool) if x != y]
    fast = pairwise_f1(pairs, tokenizer)
    prepared = dict(zip({t for p in pairs for t in p}, prepare_texts(list({t for p in pairs for t in p}), tokenizer)))
    slow = np.array([rouge_f1(prepared[a], prepared[b]) for a, b in pairs])
    differ = int((fast != slow).any(axis=1).sum())
    w = np.asarray(weights) / sum(weights)
    picks_differ, start = 0, 0
    for pool in pools:
        n = len(pool)
        count = n * (n - 1)
        means = []
        for scores in (fast, slow):
            utility = (scores[start:start + count] @ w).reshape(n, n - 1)
            means.append(np.sort(utility, axis=1).sum(axis=1))
        picks_differ += int(np.argmax(means[0]) != np.argmax(means[1]))
        start += count
    return len(pairs), differ, picks_differ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO_ROOT.parent / "shared" / "data" / "dialogsum-ko" / "dev.csv"))
    parser.add_argument("--candidates", type=int, default=16, help="candidates per dialogue")
    parser.add_argument("--tokenizer", default="mecab", choices=("mecab", "kiwi", "whitespace"))
    parser.add_argument("--verify", type=int, default=0, help="pools to recheck pair by pair with rouge_f1")
    args = parser.parse_args()
    import pandas as pd

    from src.evaluation.consensus import DEFAULT_WEIGHTS, select_consensus

    dev = pd.read_csv(args.data)
    pools = make_pools(dev["summary"].tolist(), dev["dialogue"].tolist(), args.candidates)
    print(f"machine: {platform.node()} | {platform.platform()} | {os.cpu_count()} CPUs | "
          f"Python {platform.python_version()}")
    distinct = len({t for pool in pools for t in pool})
    print(f"measured: select_consensus on {len(pools)} pools x {args.candidates} candidates ({distinct} distinct "
          f"texts), tokenizer {args.tokenizer}, weights {DEFAULT_WEIGHTS}, tokenizer load included")
    started = time.perf_counter()
    picks = select_consensus(pools, args.tokenizer)
    seconds = time.perf_counter() - started
    picked = pd.Series(picks).value_counts().sort_index().to_dict()
    print(f"picked positions (0 = the reference summary, 1-4 and 8+ its edited copies): {picked}")
    if args.verify:
        checked, differ, picks_differ = verify(pools[: args.verify], args.tokenizer, DEFAULT_WEIGHTS)
        print(f"verify: {checked} ordered pairs of {args.verify} pools vs rouge_f1: {differ} utilities differ, "
              f"{picks_differ} picks differ")
    print(f"{seconds:.2f} s")


if __name__ == "__main__":
    main()
