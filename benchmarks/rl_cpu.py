"""GRPO on CPU: Gemma 3 270M fine-tuned (the quality benchmark's SFT checkpoint), then the rl stage, on held-out rows.

Usage: python -m benchmarks.rl_cpu [--steps 30] [--lr 2e-4] [--sft-steps 40] [--work output/rl_cpu]
                                   [--sft-work output/quality_cpu] [key.sub=value ...]

The split is ``benchmarks.quality_cpu``'s: the 499 rows of ``../shared/data/dialogsum-ko/dev.csv``
shuffled by seed 2026 into 370 training rows, 30 tuning rows and 99 held-out rows. The SFT checkpoint
is the quality benchmark's ``finetuned`` run (``--sft-work``): reused when it finished with
``--sft-steps`` steps, else trained there the way ``python -m benchmarks.quality_cpu`` trains it. Then
one ``python -m src.main`` run (stages preprocess, rl, infer, evaluate) with
``configs/models/gemma-3-270m.yaml`` starts GRPO from that checkpoint on the 370 training rows
(``rl.data=clean``) and scores the RL checkpoint's greedy summaries of the 99 held-out rows. Both runs
score with Kiwi (``evaluation.tokenizer=kiwi``, which the reward then uses too); ``rl_mecab`` is the
RL summaries on Mecab morphemes, the leaderboard's scorer. A killed benchmark picks up where it
stopped: the runs resume (``--resume``), GRPO from its last checkpoint.

The last line is one JSON object: sft_final, rl_final (Kiwi on the held-out rows), rl_mecab,
reward_start, reward_end (mean reward of the first and last three steps), mean_words_sft,
mean_words_rl, mean_words_references, steps, seconds_per_step, minutes, and the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

if __name__ == "__main__" and not __package__:  # run as a file: run again as the module, from the repo root
    os.chdir(Path(__file__).resolve().parents[1])
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks.rl_cpu", *sys.argv[1:]])

from benchmarks.quality_cpu import PRESET, pipeline, rouge_parts, scored_files, split  # noqa: E402
from src.config import REPO_ROOT  # noqa: E402

SFT_RUN = "finetuned"  # the quality benchmark's fine-tuned run
RL_RUN = "rl"


def machine(work: Path) -> dict[str, Any]:
    """CPU model, torch's CPU capability, the threads the RL run used, the load average now."""
    import torch

    model = ""
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout.splitlines()
        model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Model name")), "")
    except (OSError, subprocess.SubprocessError):
        pass
    log = work / "output" / RL_RUN / "logs" / "pipeline.log"
    threads = [ln.split("CPU threads: ", 1)[1].split(" ", 1)[0] for ln in
               (log.read_text(encoding="utf-8").splitlines() if log.is_file() else []) if "CPU threads: " in ln]
    return {"cpu": model, "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpus": os.cpu_count(),
            "threads": int(threads[-1]) if threads else None,
            "load_average": [round(x, 2) for x in os.getloadavg()], "torch": torch.__version__}


def sft_checkpoint(sft_work: Path, steps: int, overrides: list[str]) -> dict[str, Any]:
    """The quality benchmark's fine-tuned run: reused when it finished with ``steps`` steps, else trained there."""
    manifest = sft_work / "output" / SFT_RUN / "manifest.json"
    if manifest.is_file():
        stages = json.loads(manifest.read_text(encoding="utf-8"))["stages"]
        trained = stages.get("train", {}).get("global_step")
        if stages.get("evaluate", {}).get("status") == "done" and trained == steps:
            return json.loads(manifest.read_text(encoding="utf-8"))
        if trained not in (None, steps):
            raise SystemExit(f"{manifest.parent} was fine-tuned with {trained} steps, not --sft-steps {steps}: pass "
                             f"--sft-steps {trained} to reuse it, or another --sft-work")
    split(sft_work)
    return pipeline(sft_work, SFT_RUN, ["--skip-augmentation", "--skip-merge", "--skip-tune",
                                        f"training.max_steps={steps}", "training.save_steps=1000",
                                        "training.eval_steps=1000", *overrides])


def mean_words(table: Path, fnames: Optional[set[str]] = None) -> float:
    """Mean whitespace words of the summaries of a predictions or references file (of ``fnames`` only)."""
    import pandas as pd

    frame = pd.read_csv(table, dtype=str, keep_default_na=False)
    summaries = frame[frame["fname"].isin(fnames)]["summary"] if fnames is not None else frame["summary"]
    return round(float(summaries.str.split().str.len().mean()), 1)


def share_base_model(work: Path, sources: list[Path]) -> None:
    """Link ``work/model/embedded/gemma-3-270m`` to a finished conversion in one of the ``sources`` model folders,
    instead of converting the GGUF again for each work folder (minutes)."""
    from src.config import load_config
    from src.models.embedded import EMBEDDED, embedded_dir, is_built

    name = load_config(PRESET, []).model.name
    target = embedded_dir(work / "model", name)
    if target.exists() or target.is_symlink():
        return
    for folder in (embedded_dir(source, name) for source in sources):
        if is_built(folder, EMBEDDED[name]):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(folder.resolve(), target_is_directory=True)
            return


def scored(work: Path) -> tuple[Path, Path, set[str]]:
    """The RL run's dev predictions, the references its evaluate stage scored them against, and their fnames."""
    import pandas as pd

    predictions, references = scored_files(work, RL_RUN)
    return predictions, references, set(pd.read_csv(predictions, dtype=str)["fname"])


def main() -> None:
    """Run the benchmark and print its JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="GRPO optimizer steps (rl.max_steps); one step of "
                        "2 x 4 completions took 2-3 minutes on one busy core (docs/BENCHMARKS.md)")
    parser.add_argument("--lr", type=float, default=2e-4, help="rl.learning_rate (untuned: the schema's 5e-5 is meant "
                        "for longer runs and barely moves the adapter in 30 steps)")
    parser.add_argument("--sft-steps", type=int, default=40, help="SFT steps of the quality benchmark's checkpoint")
    parser.add_argument("--work", type=Path, default=REPO_ROOT / "output" / "rl_cpu")
    parser.add_argument("--sft-work", type=Path, default=REPO_ROOT / "output" / "quality_cpu")
    parser.add_argument("overrides", nargs="*", help="extra key.sub=value for both runs (e.g. rl.learning_rate=1e-4)")
    args = parser.parse_args()
    start = time.perf_counter()
    for work in (args.sft_work, args.work):
        share_base_model(work, [REPO_ROOT / "model", args.sft_work / "model"])
    sft = sft_checkpoint(args.sft_work, args.sft_steps, [o for o in args.overrides if not o.startswith("rl.")])
    split(args.work)
    init = args.sft_work / "model" / SFT_RUN / "final_checkpoint"
    rl = pipeline(args.work, RL_RUN, ["--stages", "preprocess,rl,infer,evaluate", f"rl.init_checkpoint={init}",
                                      f"rl.max_steps={args.steps}", f"rl.learning_rate={args.lr}", "rl.data=clean",
                                      "rl.eval_rows=0",
                                      *args.overrides])
    stage = rl["stages"]["rl"]
    predictions, references, fnames = scored(args.work)
    result: dict[str, Any] = {
        "sft_final": round(sft["stages"]["evaluate"]["metrics"]["final"], 2),
        "rl_final": round(rl["stages"]["evaluate"]["metrics"]["final"], 2),
        "rl_mecab": rouge_parts(predictions, references, "mecab")["final"],
        "reward_start": stage.get("reward_start"), "reward_end": stage.get("reward_end"),
        "rouge_start": stage.get("rouge_start"), "rouge_end": stage.get("rouge_end"), "kl_end": stage.get("kl_end"),
        "mean_words_sft": mean_words(args.sft_work / "output" / SFT_RUN / "dev_predictions.csv", fnames),
        "mean_words_rl": mean_words(predictions), "mean_words_references": mean_words(references, fnames),
        "steps": stage["global_step"], "rows": stage["rows"], "held_out_rows": rl["stages"]["evaluate"]["metrics"]["n"],
        "seconds_per_step": stage.get("seconds_per_step"),
        "rl_stage_minutes": round(stage["seconds"] / 60, 1),  # this invocation's: all of it unless resumed
        "audit": stage.get("audit"), "scorer": "kiwi",
        "sft_steps": args.sft_steps, "learning_rate": args.lr, "overrides": args.overrides,
        "minutes": round((time.perf_counter() - start) / 60, 1), "machine": machine(args.work)}
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
