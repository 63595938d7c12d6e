"""Cross-validated quality: ``python -m benchmarks.quality_cpu --folds K`` (every Korean dev row held out once).

The 499 rows of ``../shared/data/dialogsum-ko/dev.csv`` are shuffled by ``--seed`` and cut into K folds
of near-equal size. Fold k holds out its own rows; the other rows are its training part, of which the first
30 (in the shuffled order) are its tuning rows (the training-time ROUGE eval and, with ``--decoding``, the
generation search) and the rest are fine-tuned on, one ``python -m src.main`` run per fold in
``<work>/fold<k>`` (the same recipe, the same overrides as ``benchmarks.quality_cpu``). The greedy
summaries of all folds are then scored together, so ``cv_final`` (Kiwi) and ``cv_mecab`` rest on all 499
rows, and ``cv_ci_low``/``cv_ci_high`` are the 95% bootstrap interval of the mean over dialogues
(``src.evaluation.paired``). ``<work>/cv_predictions.csv`` holds the summaries: two recipes run in two work
folders compare with ``python -m src.compare --pred A/cv_predictions.csv B/cv_predictions.csv --ref
<work>/data/dev.csv --tokenizer kiwi``, a paired difference over the same 499 rows.

``--decoding`` adds, per fold, the tune stage's search on the fold's 30 tuning rows and its rule
(``src.inference.tune_select``: the greedy baseline stays unless a setting beats it with confidence), then
MBR over the chosen setting and the next two (``inference.mbr.from_tune=2``'s candidates) on the held-out
rows: ``cv_tuned_predictions.csv`` and ``cv_mbr_predictions.csv``, and their paired differences over all rows.
A killed run resumes: finished fold runs are resumed by the pipeline, decoded summaries are cached per fold.
``--fold k`` runs fold k alone (no scores), so the folds of one recipe can run side by side as processes (two
1-thread processes on two cores: 1.38x the throughput of one 2-thread run); the run without ``--fold`` then
finds every fold finished and scores them together.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from benchmarks import quality_cpu as q
from src.config import REPO_ROOT

TUNE_ROWS = 30


def fold_splits(work: Path, folds: int, seed: int = q.SEED) -> list[Path]:
    """``work/fold<k>/data`` with train.csv, tune.csv, dev.csv (fold k's held-out rows) and a 2-row test.csv, for
    each fold; ``work/data/dev.csv`` holds all rows (the references of the scores over every fold)."""
    import numpy as np
    import pandas as pd

    from src.utils.io import atomic_write_csv

    df = pd.read_csv(q.DEV, dtype=str).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    if not 2 <= folds <= len(df) // (TUNE_ROWS + 2):
        raise SystemExit(f"--folds {folds}: give 2 to {len(df) // (TUNE_ROWS + 2)} folds for {len(df)} rows")
    (work / "data").mkdir(parents=True, exist_ok=True)
    atomic_write_csv(work / "data" / "dev.csv", df)  # atomic: --fold processes write the same files side by side
    folders = []
    for k, held in enumerate(np.array_split(np.arange(len(df)), folds)):
        rest = df.drop(index=held)
        parts = {"train": rest.iloc[TUNE_ROWS:], "tune": rest.iloc[:TUNE_ROWS], "dev": df.iloc[held]}
        data = work / f"fold{k}" / "data"
        data.mkdir(parents=True, exist_ok=True)
        for name, part in parts.items():
            atomic_write_csv(data / f"{name}.csv", part)
        atomic_write_csv(data / "test.csv", parts["dev"].head(2).drop(columns=["summary"]))
        folders.append(work / f"fold{k}")
    return folders


def fold_decoding(fold: Path, checkpoint: Path, overrides: list[str]) -> dict[str, Any]:
    """The tune stage's search and choice on the fold's tuning rows, then the chosen decode and MBR over it and
    the next two settings on its held-out rows (each decode cached in ``fold/decoding``)."""
    from functools import partial

    import pandas as pd

    from src.evaluation.consensus import select_consensus
    from src.inference.tune_select import (baseline_setting, choose, compare_with_baseline, row_scorer,
                                           score_baseline)
    from src.inference.tuning_run import reference_scorer

    cfg, predictor, tune_df, held, generate, trials = q.tuning_search(fold, checkpoint, overrides)
    rows, references = tune_df["fname"].tolist(), dict(zip(tune_df["fname"], tune_df["summary"]))
    trials, baseline = score_baseline(trials, baseline_setting(cfg, sorted(cfg.tune.space)), rows, generate,
                                      reference_scorer(references, "kiwi"))
    intervals = compare_with_baseline(trials, baseline, rows, generate, row_scorer(references, "kiwi"), cfg.seed)
    chosen, reason = choose(trials, baseline, intervals, "confident")
    names, dialogues = held["fname"].tolist(), held["dialogue"].tolist()
    greedy = pd.read_csv(fold / "output" / "finetuned" / "dev_predictions.csv", dtype=str,
                         keep_default_na=False).set_index("fname").loc[names, "summary"].tolist()
    tuned = greedy if chosen is baseline else q.cached(
        fold / "decoding", "tuned", partial(predictor.predict_batch, dialogues, names, **chosen.setting))
    others = [t.setting for t in trials if t is not chosen][:q.MBR_FROM_TUNE]  # tuning.csv's order after the choice
    extra = [q.cached(fold / "decoding", f"mbr{i + 1}", partial(predictor.predict_batch, dialogues, names, **s))
             for i, s in enumerate(others)]
    pools = [list(pool) for pool in zip(tuned, *extra)]
    picks = select_consensus(pools, tokenizer="kiwi", weights=tuple(cfg.inference.mbr.weights))
    return {"fnames": names, "tuned": tuned, "mbr": [pool[i] for pool, i in zip(pools, picks)],
            "chosen": "baseline" if chosen is baseline else chosen.setting, "reason": reason,
            "mbr_settings": others, "mbr_wins": [picks.count(i) for i in range(len(pools[0]))]}


def scored(predictions: Path, references: Path) -> dict[str, Any]:
    """Kiwi and Mecab ROUGE of the summaries over every row, with the Kiwi final's 95% interval over dialogues."""
    import pandas as pd

    from src.evaluation import score_frames
    from src.evaluation.paired import mean_interval

    pred, ref = (pd.read_csv(p, dtype=str, keep_default_na=False) for p in (predictions, references))
    found: dict[str, Any] = {}
    for tokenizer in ("kiwi", "mecab"):
        metrics, rows = score_frames(pred, ref, tokenizer, pred_name=str(predictions), ref_name=str(references))
        found[tokenizer] = {k: round(100 * metrics[k] if k != "final" else metrics[k], 2)
                            for k in ("rouge1", "rouge2", "rougeL", "final")}
        if tokenizer == "kiwi":
            finals = rows.set_index("fname").loc[ref["fname"].str.strip(), "final"]  # the references' order
            interval = mean_interval(finals.tolist(), seed=0)
            found["ci"] = (round(interval.low, 2), round(interval.high, 2))
    return found


def paired(a: Path, b: Path, references: Path) -> dict[str, Any]:
    """A - B over the same rows on Kiwi morphemes, as ``python -m src.compare`` reports it."""
    from src.compare import score_pair, summarize_pair

    metrics_a, metrics_b, rows = score_pair(str(a), str(b), str(references), "kiwi")
    got = summarize_pair(metrics_a, metrics_b, rows, 2000, 0)
    return {k: (round(got[k], 2) if isinstance(got[k], float) and k != "p_a_better" else got[k])
            for k in ("n", "final_a", "final_b", "diff", "ci_low", "ci_high", "p_a_better", "verdict")}


def write_predictions(path: Path, fnames: list[str], summaries: list[str]) -> Path:
    """``fname,summary`` written atomically."""
    import pandas as pd

    from src.utils.io import atomic_write_csv

    atomic_write_csv(path, pd.DataFrame({"fname": fnames, "summary": summaries}))
    return path


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every fold's run, the summaries of all folds scored together; the JSON object of the benchmark."""
    import pandas as pd

    start = time.perf_counter()
    work = args.work
    folders = fold_splits(work, args.folds, args.seed)
    from src.models.embedded import resolve_embedded

    resolve_embedded("gemma-3-270m", REPO_ROOT / "model")  # converted once here if it is not yet
    per_fold, greedy, decoded = [], [], []
    for k, fold in enumerate(folders):
        if args.fold is not None and k != args.fold:
            continue
        q.share_embedded(fold / "model", REPO_ROOT / "model")
        got = q.pipeline(fold, "finetuned", q.finetune_args(args.steps, args.overrides))
        train = got["stages"]["train"]
        per_fold.append({"fold": k, "held_out_rows": got["stages"]["evaluate"]["metrics"]["n"],
                         "train_rows": len(pd.read_csv(fold / "data" / "train.csv", dtype=str)),
                         "finetuned_final": round(got["stages"]["evaluate"]["metrics"]["final"], 2),
                         "steps": train.get("global_step"), "train_seconds": train["seconds"],
                         **q.tuning_scores(fold, "finetuned", train.get("best_checkpoint"))})
        greedy.append(pd.read_csv(fold / "output" / "finetuned" / "dev_predictions.csv", dtype=str,
                                  keep_default_na=False))
        if args.decoding:
            decoded.append(fold_decoding(fold, fold / "model" / "finetuned" / "final_checkpoint", args.overrides))
            per_fold[-1].update({key: decoded[-1][key] for key in ("chosen", "reason", "mbr_settings", "mbr_wins")})
        print(json.dumps({"fold_done": per_fold[-1]}, ensure_ascii=False), flush=True)
    if args.fold is not None:  # one fold only (folds run side by side as processes); a run without --fold scores all
        return {"folds": args.folds, "fold": args.fold, "per_fold": per_fold,
                "minutes": round((time.perf_counter() - start) / 60, 1)}
    references = work / "data" / "dev.csv"
    predictions = write_predictions(work / "cv_predictions.csv", *(pd.concat(greedy)[c].tolist()
                                                                  for c in ("fname", "summary")))
    found = scored(predictions, references)
    result: dict[str, Any] = {
        "folds": args.folds, "cv_final": found["kiwi"]["final"], "cv_ci_low": found["ci"][0],
        "cv_ci_high": found["ci"][1], "cv_mecab": found["mecab"]["final"],
        "cv_rouge": {"kiwi": found["kiwi"], "mecab": found["mecab"]}, "rows": sum(f["held_out_rows"] for f in per_fold),
        "per_fold": per_fold, "seed": args.seed, "recipe": q.recipe(folders[0], "finetuned"), "scorer": "kiwi",
        "predictions": str(predictions), "references": str(references)}
    if args.decoding:
        fnames = [f for d in decoded for f in d["fnames"]]
        files = {name: write_predictions(work / f"cv_{name}_predictions.csv", fnames,
                                         [s for d in decoded for s in d[name]]) for name in ("tuned", "mbr")}
        result.update({"cv_tuned_final": scored(files["tuned"], references)["kiwi"]["final"],
                       "cv_mbr_final": scored(files["mbr"], references)["kiwi"]["final"],
                       "mbr_vs_tuned": paired(files["mbr"], files["tuned"], references),
                       "mbr_vs_greedy": paired(files["mbr"], predictions, references),
                       "tuned_vs_greedy": paired(files["tuned"], predictions, references)})
    result["minutes"] = round((time.perf_counter() - start) / 60, 1)
    return result
