"""Real quality on CPU: Gemma 3 270M zero-shot vs fine-tuned through the pipeline, on held-out Korean dev rows.

Usage: python -m benchmarks.quality_cpu [--steps N] [--seed 2026] [--no-zero-shot] [--decoding] [--folds K]
                                        [--work output/quality_cpu] [key.sub=value ...]

The 499 rows of ``../shared/data/dialogsum-ko/dev.csv`` are shuffled by ``--seed`` (2026) into 400 training
rows (370 to fine-tune on, 30 kept apart for the generation search) and 99 held-out rows. Two runs of
``python -m src.main`` with ``configs/models/gemma-3-270m.yaml`` and the same prompt: the base model
zero-shot (stages infer, evaluate; inference.checkpoint = the converted base) and LoRA fine-tuned
(stages preprocess, train, infer, evaluate). Both score the 99 held-out rows with Kiwi
(``evaluation.tokenizer=kiwi``, so the figure does not move when the default scorer changes).

``--decoding`` then takes the fine-tuned checkpoint and compares, on the same 99 rows (which the
search never sees): greedy (the fine-tuned run's own predictions), the best setting of a search on the
30 tuning rows (``src.inference.tuning``: 8 settings, successive halving), and MBR over that setting's
summary and those of the next two settings of the search (``inference.mbr.from_tune=2``; the selection
``src.inference.mbr`` makes with ``src.evaluation.consensus``);
raw_* measure the post-processing (cut_unfinished, block_scripts) on a decode without it.
``--no-zero-shot`` leaves the zero-shot run out (``zero_shot_final`` null). Another ``--seed`` works in its
own folder (``output/quality_cpu-seed<N>`` unless ``--work`` is given). The last line is one JSON object:
zero_shot_final, finetuned_final, finetuned_mecab (the same summaries on Mecab morphemes, the leaderboard's
scorer), train_tokens_per_s, minutes, seed, recipe (the fine-tuned run's training, LoRA and prompt
settings as its saved config holds them), and with ``--decoding`` greedy_final, tuned_final, mbr_final,
tokenizer.

``--folds K`` cross-validates instead (``benchmarks.quality_cv``): every one of the 499 rows held out once, each
fold fine-tuned on the rest (30 of them its tuning rows), all folds' greedy summaries scored together; the JSON
then has folds, cv_final (Kiwi), cv_ci_low, cv_ci_high (its 95% interval over dialogues), cv_mecab, per_fold
(default work folder ``output/quality_cpu-cv<K>``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from functools import partial
from typing import Any, Callable, NamedTuple, Optional

if __name__ == "__main__" and not __package__:  # run as a file: run again as the module, from the repo root
    os.chdir(Path(__file__).resolve().parents[1])
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks.quality_cpu", *sys.argv[1:]])

from src.config import REPO_ROOT  # noqa: E402
from src.utils.io import atomic_write_text  # noqa: E402

DEV = REPO_ROOT.parent / "shared" / "data" / "dialogsum-ko" / "dev.csv"
PRESET = REPO_ROOT / "configs" / "models" / "gemma-3-270m.yaml"
SEED = 2026
MBR_FROM_TUNE = 2  # MBR candidates besides the best setting: the next-best settings of the search


def machine() -> str:
    """One line naming the machine and its load."""
    import torch

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{platform.node()} | {platform.platform()} | {os.cpu_count()} CPUs (load average {load}) | "
            f"torch {torch.__version__}")


def split(work: Path, seed: int = SEED) -> Path:
    """train.csv (370), tune.csv (30), dev.csv (the 99 held-out) and a 2-row test.csv in ``work/data``."""
    import pandas as pd

    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    df = pd.read_csv(DEV, dtype=str).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    parts = {"train": df.iloc[:370], "tune": df.iloc[370:400], "dev": df.iloc[400:]}
    for name, part in parts.items():
        part.to_csv(data / f"{name}.csv", index=False)
    parts["dev"].head(2).drop(columns=["summary"]).to_csv(data / "test.csv", index=False)  # the pipeline needs one
    return data


def pipeline(work: Path, run: str, args: list[str]) -> dict[str, Any]:
    """One ``python -m src.main`` run under ``work``; its manifest (a finished run is resumed, not redone)."""
    paths = [f"paths.{k}={work / v}" for k, v in (("output_dir", "output"), ("model_dir", "model"),
                                                     ("clean_dir", "clean"), ("augmented_dir", "augmented"))]
    manifest = work / "output" / run / "manifest.json"
    cmd = [sys.executable, "-m", "src.main", "--config", str(PRESET), "--run-name", run, *args,
           f"paths.data_dir={work / 'data'}", "evaluation.tokenizer=kiwi", *paths]
    if manifest.is_file():
        cmd.append("--resume")
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO_ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, text=True,
                          capture_output=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"{run} failed (exit {done.returncode})")
    result = json.loads(manifest.read_text(encoding="utf-8"))
    result["wall_seconds"] = time.perf_counter() - start
    return result


def finetune_args(steps: Optional[int], overrides: list[str]) -> list[str]:
    """The fine-tuned run's command line: preprocess, train, infer, evaluate; the training-time eval (loss, ROUGE
    callback, best checkpoint) reads the 30 tuning rows, so the held-out rows never take part in a choice; one
    eval at the end unless an override asks for more (overrides come last and win)."""
    return ["--skip-augmentation", "--skip-merge", "--skip-tune", *([f"training.max_steps={steps}"] if steps else []),
            "training.save_steps=1000", "training.eval_steps=1000", "training.eval_file=tune.csv",
            "training.eval_rouge_samples=30", *overrides]


def train_tokens_per_s(work: Path, run: str) -> float:
    """Tokens through the model per second of training (TRL's num_tokens over the train runtime)."""
    import pandas as pd

    log = pd.read_csv(work / "output" / run / "train_log.csv")
    tokens = log["num_tokens"].dropna().iloc[-1]
    return float(tokens) / float(log["train_runtime"].dropna().iloc[-1])


def length_cap(data: Path, overrides: tuple[str, ...] = ()) -> int:
    """What ``inference.max_new_tokens: auto`` gives the fine-tuned run, computed here for the zero-shot run too,
    so both generate under the same cap (the base model has no recorded summary lengths). The embedded model is
    converted first when it is not yet (a UserError naming the pip command when its package is missing)."""
    import pandas as pd

    from src.config import load_config
    from src.models.loading import load_tokenizer, resolve_model
    from src.prompting.builder import PromptBuilder
    from src.models.checkpoint import summary_lengths

    cfg = load_config(PRESET, list(overrides))
    builder = PromptBuilder(load_tokenizer(resolve_model(cfg, lambda: []), cfg), cfg.prompt)
    summaries = pd.read_csv(data / "train.csv", dtype=str)["summary"]
    return int(summary_lengths([len(builder.completion_ids(s)) for s in summaries])["auto_max_new_tokens"])


def cached(folder: Path, name: str, make: Callable[[], list[str]]) -> list[str]:
    """The summaries of one decoding run, from ``folder/name.json`` when an earlier (killed) run finished it."""
    path = folder / f"{name}.json"
    if path.is_file():
        return list(json.loads(path.read_text(encoding="utf-8")))
    out = make()
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(out, ensure_ascii=False))
    return out


# the generation search of --decoding on the tuning rows: 8 settings, successive halving
TUNE_OVERRIDES = ("tune.min_rows=10", "tune.budget=220",
                  "tune.space={num_beams: [1, 3], repetition_penalty: [1.0, 1.15], no_repeat_ngram_size: [0, 3]}")


class TuningSearch(NamedTuple):
    """The fine-tuned checkpoint's predictor and the search on the tuning rows of ``work/data`` (journaled in
    ``work/tune.journal.jsonl``, so a killed benchmark resumes)."""

    cfg: Any
    predictor: Any
    tune: Any  # the tuning rows (DataFrame)
    held: Any  # the held-out rows (DataFrame)
    generate: Callable[[dict[str, Any], list[str]], list[str]]
    trials: list[Any]  # ranked as src.inference.tuning.search ranks them


def tuning_search(work: Path, checkpoint: Path, overrides: list[str]) -> TuningSearch:
    """Load the checkpoint as trained and run the search of ``TUNE_OVERRIDES`` on ``work/data/tune.csv``."""
    import pandas as pd

    from src.config import load_config
    from src.inference.factory import as_trained, load_predictor
    from src.inference.tuning import candidates, search
    from src.inference.tuning_run import _generator, journal_key, reference_scorer
    from src.utils.journal import JsonlJournal

    settings = as_trained(load_config(PRESET, ["evaluation.tokenizer=kiwi", *TUNE_OVERRIDES, *overrides]),
                          checkpoint, None)
    cfg = settings.cfg
    predictor = load_predictor(settings, None)
    tune_df, held = (pd.read_csv(work / "data" / f"{n}.csv", dtype=str) for n in ("tune", "dev"))
    generate = _generator(cfg, predictor, tune_df, JsonlJournal(work / "tune.journal.jsonl"),
                          journal_key(settings, work / "data" / "tune.csv"))
    trials = search(candidates(cfg.tune, cfg.seed), tune_df["fname"].tolist(), cfg.tune, generate,
                    reference_scorer(dict(zip(tune_df["fname"], tune_df["summary"])), "kiwi"))
    return TuningSearch(cfg, predictor, tune_df, held, generate, trials)


def decoding(work: Path, checkpoint: Path, overrides: list[str]) -> dict[str, Any]:
    """Greedy vs tuned vs tuned + MBR on the held-out rows, the search on the tuning rows (in process).

    Greedy is the fine-tuned run's own dev predictions (the preset's decoding); each other run's summaries
    are kept under ``work/decoding/`` so a killed benchmark resumes where it stopped.
    """
    import pandas as pd

    from src.evaluation import score_texts
    from src.evaluation.consensus import select_consensus
    from src.utils.patterns import script_pattern
    from src.inference.postprocess import drop_unfinished

    cfg, predictor, tune_df, held, _, trials = tuning_search(work, checkpoint, overrides)
    runs_dir = work / "decoding"

    def score(summaries: list[str], refs: list[str]) -> float:
        return score_texts(summaries, [[r] for r in refs], tokenizer="kiwi")["final"]

    best = trials[0].setting
    dialogues, names, gold = held["dialogue"].tolist(), held["fname"].tolist(), held["summary"].tolist()
    pipeline_out = pd.read_csv(work / "output" / "finetuned" / "dev_predictions.csv", dtype=str, keep_default_na=False)
    greedy = pipeline_out.set_index("fname").loc[names, "summary"].tolist()
    raw = cached(runs_dir, "raw", lambda: predictor.predict_batch(dialogues, names, cut_unfinished=False,
                                                                  block_scripts=()))
    tuned = cached(runs_dir, "tuned", lambda: predictor.predict_batch(dialogues, names, **best))

    # MBR as inference.mbr.from_tune builds it: the best setting's summary and one per next-best setting (similar
    # quality; sampled candidates lost 3.4 here on 2026-12-02)
    others = [t.setting for t in trials[1:1 + MBR_FROM_TUNE]]
    extra = [cached(runs_dir, f"tune{i + 2}", partial(predictor.predict_batch, dialogues, names, **setting))
             for i, setting in enumerate(others)]
    pools = [list(pool) for pool in zip(tuned, *extra)]
    picks = select_consensus(pools, tokenizer="kiwi", weights=(1.0, 1.0, 1.0))
    mbr = [pool[i] for pool, i in zip(pools, picks)]
    pattern = script_pattern(cfg.inference.block_scripts)  # what the preset's decoding blocks
    post = {"raw_final": round(score(raw, gold), 2),
            "raw_cut_unfinished_final": round(score([drop_unfinished(t) for t in raw], gold), 2),
            "raw_outputs_with_foreign_script": sum(bool(pattern.search(t)) for t in raw),
            "raw_outputs_cut": sum(drop_unfinished(t) != t for t in raw)}
    return {**post, "greedy_final": round(score(greedy, gold), 2), "tuned_final": round(score(tuned, gold), 2),
            "mbr_candidate_finals": [round(score(c, gold), 2) for c in extra], "mbr_settings": others,
            "mbr_final": round(score(mbr, gold), 2), "mbr_wins": [picks.count(i) for i in range(len(pools[0]))],
            "tokenizer": "kiwi", "tuned_setting": best, "tuning_rows": len(tune_df),
            "tuning": [{"setting": t.setting, "rows": t.rows, "final": round(t.scores.get("final", -1.0), 2),
                        "seconds": round(t.seconds, 1)} for t in trials],
            "mbr_candidates": len(pools[0])}


RECIPE_KEYS = {"training": ("max_steps", "num_train_epochs", "learning_rate", "lr_scheduler_type", "warmup_fraction",
                             "per_device_train_batch_size", "gradient_accumulation_steps", "neftune_noise_alpha",
                             "padding_free", "label_logits_only"),
               "lora": ("r", "alpha", "dropout", "target_modules", "use_rslora", "use_dora"),
               "prompt": ("num_fewshot", "use_chat_template", "max_prompt_tokens", "instruction")}


def recipe(work: Path, run: str) -> dict[str, Any]:
    """The run's training, LoRA and prompt settings, as its saved config holds them (what it really trained with)."""
    from src.config import load_config
    from src.run import SAVED_CONFIG

    cfg = load_config(work / "output" / run / SAVED_CONFIG, [])
    sections = {"training": cfg.training, "lora": cfg.training.lora, "prompt": cfg.prompt}
    return {f"{part}.{key}": getattr(sections[part], key) for part, keys in RECIPE_KEYS.items() for key in keys}


def share_embedded(model_dir: Path, converted_in: Path) -> None:
    """The runs under ``model_dir`` find the model converted in ``converted_in`` (a link to its embedded/ folder)
    instead of converting the GGUF again for every work folder (44 s each)."""
    link, target = model_dir / "embedded", (converted_in / "embedded").resolve()
    if link.exists() or link.is_symlink():
        return
    model_dir.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target, target_is_directory=True)


def tuning_scores(work: Path, run: str, best_checkpoint: Optional[str]) -> dict[str, Any]:
    """What choices are made on: Kiwi ROUGE of greedy summaries of the 30 tuning rows at each training-time eval
    (the ROUGE callback), and ``tune_final`` at the checkpoint the trainer kept (``best_checkpoint`` of the
    train stage's manifest entry; the last eval when it names none)."""
    import pandas as pd

    log = pd.read_csv(work / "output" / run / "train_log.csv")
    if "eval_rouge_final" not in log:
        return {"tune_final": None, "tune_finals": {}}
    evals = log.dropna(subset=["eval_rouge_final"])
    finals = {int(step): round(float(v), 2) for step, v in zip(evals["step"], evals["eval_rouge_final"])}
    kept = int(Path(best_checkpoint).name.rsplit("-", 1)[1]) if best_checkpoint else max(finals, default=None)
    return {"tune_final": finals.get(kept) if kept is not None else None, "tune_finals": finals}


def rouge_parts(predictions: Path, references: Path, tokenizer: str) -> dict[str, float]:
    """ROUGE-1/2/L F1 (x100) and final (their mean x100) of the summaries on one tokenizer's morphemes."""
    from src.evaluation import evaluate_files

    got = evaluate_files(predictions, references, tokenizer=tokenizer)
    return {key: round(100 * got[key] if key != "final" else got[key], 2) for key in ("rouge1", "rouge2", "rougeL",
                                                                                      "final")}


def scored_files(work: Path, run: str) -> tuple[Path, Path]:
    """A run's held-out predictions and the references its evaluate stage scored them against."""
    folder = work / "output" / run
    return folder / "dev_predictions.csv", Path(json.loads((folder / "metrics.json").read_text(
        encoding="utf-8"))["references"])


def main() -> None:
    """Run the benchmark and print its JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps of 4 examples (default: the "
                        "preset's recipe, training.num_train_epochs over the 370 rows)")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the 370/30/99 split")
    parser.add_argument("--no-zero-shot", action="store_true", help="skip the zero-shot run")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default output/quality_cpu, "
                        "output/quality_cpu-seed<N> for another --seed)")
    parser.add_argument("--decoding", action="store_true", help="also greedy vs tuned vs tuned + MBR")
    parser.add_argument("--folds", type=int, default=None, help="cross-validate over all 499 rows: K folds, each "
                        "held out once, each fine-tuned on the rest (benchmarks.quality_cv; no zero-shot run)")
    parser.add_argument("--fold", type=int, default=None, help="with --folds: run this fold only (0-based; folds "
                        "can run as parallel processes), then a run without --fold scores all")
    parser.add_argument("overrides", nargs="*", help="extra key.sub=value for both runs")
    args = parser.parse_args()
    if args.work is None:
        name = "quality_cpu" + (f"-cv{args.folds}" if args.folds else "") + (f"-seed{args.seed}" if args.seed != SEED else "")
        args.work = REPO_ROOT / "output" / name
    if args.fold is not None and not (args.folds and 0 <= args.fold < args.folds):
        parser.error(f"--fold {args.fold}: give --folds K and a fold from 0 to K-1")
    if args.folds is not None:
        from benchmarks.quality_cv import run

        result = run(args)
        result["machine"] = machine()
        print(json.dumps(result, ensure_ascii=False))
        return
    start = time.perf_counter()
    data = split(args.work, args.seed)
    from src.models.embedded import resolve_embedded

    base = resolve_embedded("gemma-3-270m", REPO_ROOT / "model")  # converted once here if it is not yet
    share_embedded(args.work / "model", REPO_ROOT / "model")
    cap = length_cap(data)
    zero = None if args.no_zero_shot else pipeline(
        args.work, "zero-shot", ["--stages", "infer,evaluate", f"inference.checkpoint={base}",
                                 f"inference.max_new_tokens={cap}", *args.overrides])
    tuned = pipeline(args.work, "finetuned", finetune_args(args.steps, args.overrides))
    kiwi, mecab = (rouge_parts(*scored_files(args.work, "finetuned"), tokenizer=t) for t in ("kiwi", "mecab"))
    result: dict[str, Any] = {
        "zero_shot_final": round(zero["stages"]["evaluate"]["metrics"]["final"], 2) if zero else None,
        "finetuned_final": round(tuned["stages"]["evaluate"]["metrics"]["final"], 2),
        "finetuned_mecab": mecab["final"], "finetuned_rouge": {"kiwi": kiwi, "mecab": mecab}, "seed": args.seed,
        "recipe": recipe(args.work, "finetuned"), **tuning_scores(args.work, "finetuned", tuned["stages"]["train"].get("best_checkpoint")),
        "held_out_rows": tuned["stages"]["evaluate"]["metrics"]["n"], "train_rows": 370,
        "steps": tuned["stages"]["train"].get("global_step", args.steps),
        "train_seconds": tuned["stages"]["train"]["seconds"], "train_tokens_per_s": round(
            train_tokens_per_s(args.work, "finetuned"), 1),
        "zero_shot_infer_seconds": zero["stages"]["infer"]["seconds"] if zero else None,
        "finetuned_infer_seconds": tuned["stages"]["infer"]["seconds"], "max_new_tokens": cap, "scorer": "kiwi",
        "data": str(data)}
    if args.decoding:
        result.update(decoding(args.work, args.work / "model" / "finetuned" / "final_checkpoint", args.overrides))
    result["minutes"] = round((time.perf_counter() - start) / 60, 1)
    result["machine"] = machine()
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    from src.utils.errors import UserError

    try:
        main()
    except UserError as err:  # e.g. the model package is missing: one line saying what to run, no traceback
        sys.exit("".join(f"error: {problem}\n" for problem in err.problems).rstrip("\n"))
