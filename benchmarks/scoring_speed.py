"""Scoring and near-duplicate search at competition scale: the timing goals that unit tests do not assert.

Usage: python -m benchmarks.scoring_speed [--dev ../shared/data/dialogsum-ko/dev.csv]

1. ``python -m src.evaluate`` on the 499 Korean dev dialogues (whole process, the analyser's load
   included; goal under 10 s with Mecab, 30 s with Kiwi, on 2 cores), the first turn as the prediction.
2. ``NearDupIndex``: 15,000 reference dialogues recombined from real dev turns, then 998 queries
   (goal: build under 20 s, queries under 10 s).
The last line is one JSON object with the seconds measured and the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from src.config import REPO_ROOT


def machine() -> str:
    """One line naming the machine the figures come from."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{platform.node()} | {platform.platform()} | {os.cpu_count()} CPUs (load average {load})"


def evaluate_seconds(dev: Path, tokenizer: str) -> float:
    """Wall time of one ``python -m src.evaluate`` process over the dev set."""
    import pandas as pd

    df = pd.read_csv(dev)
    with tempfile.TemporaryDirectory() as tmp:
        pred = Path(tmp) / "pred.csv"
        first_turns = df["dialogue"].astype(str).str.split("\n").str[0]
        pd.DataFrame({"fname": df["fname"], "summary": first_turns}).to_csv(pred, index=False)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "src.evaluate", "--pred", str(pred), "--ref", str(dev),
                        "--tokenizer", tokenizer], cwd=REPO_ROOT, check=True, capture_output=True)
        return time.perf_counter() - start


def neardup_seconds(dev: Path) -> tuple[float, float]:
    """(build, query) seconds of the near-duplicate index at competition scale."""
    import pandas as pd

    from src.utils.neardup import NearDupIndex

    texts = pd.read_csv(dev)["dialogue"].astype(str).tolist()
    turns = [line for d in texts for line in d.split("\n")]
    rng = random.Random(0)
    references = ["\n".join(rng.sample(turns, rng.randint(4, 14))) for _ in range(15_000)]
    start = time.perf_counter()
    index = NearDupIndex().add_many(references)
    built = time.perf_counter() - start
    start = time.perf_counter()
    index.max_similarity_many(texts * 2)
    return built, time.perf_counter() - start


def main() -> None:
    """Run both measurements and print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", type=Path, default=REPO_ROOT.parent / "shared" / "data" / "dialogsum-ko" / "dev.csv")
    parser.add_argument("--tokenizer", default="mecab", choices=("mecab", "kiwi", "whitespace"))
    args = parser.parse_args()
    evaluate_s = evaluate_seconds(args.dev, args.tokenizer)
    built, queried = neardup_seconds(args.dev)
    print(json.dumps({"evaluate_499_seconds": round(evaluate_s, 2), "tokenizer": args.tokenizer,
                      "neardup_build_15k_seconds": round(built, 2), "neardup_query_998_seconds": round(queried, 2),
                      "machine": machine()}))


if __name__ == "__main__":
    main()
