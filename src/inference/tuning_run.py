"""The tune stage's work (``src.inference.tuning`` holds the search) and how infer and evaluate use its result."""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Optional

import pandas as pd
import yaml

from src.config import Config, all_keys, coerce, section_problems
from src.data.csvfile import read_csv_file
from src.data.loading import load_split
from src.evaluation import score_texts
from src.evaluation.paired import Interval
from src.inference.factory import load_predictor
from src.inference.journal import prediction_key
from src.inference.settings import InferenceSettings
from src.inference.tune_select import (MbrCheck, baseline_setting, choose, compare_with_baseline, mbr_check, row_scorer,
                                       score_baseline, table_columns, table_order)
from src.inference.tuning import Setting, TUNABLE, Trial, candidates, search, setting_id
from src.prompting.builder import PromptBuilder
from src.utils.errors import UserError
from src.utils.io import atomic_write, atomic_write_csv, atomic_write_text
from src.utils.journal import JsonlJournal

log = logging.getLogger(__name__)


def space_problems(cfg: Config) -> list[str]:
    """``tune.space`` keys and values the search could not use, one line each."""
    problems = []
    for key, values in cfg.tune.space.items():
        where = f"config key 'tune.space.{key}'"
        if key not in TUNABLE:
            problems.append(f"{where}: not a tunable key; use any of {', '.join(TUNABLE)}")
        elif not isinstance(values, list) or not values:
            problems.append(f"{where} = {values!r}: give a non-empty list of values, e.g. [1, 4]")
        elif key == "instruction":
            n = len(cfg.prompt.instruction_variants)
            bad = [v for v in values if not isinstance(v, int) or not 0 <= v < n]
            if bad or cfg.model.type != "causal":
                problems.append(f"{where} = {values}: indices into prompt.instruction_variants (0..{n - 1}), "
                                "causal models only")
        else:
            problems += _value_problems(cfg, key, values, where)
    if len(candidates(cfg.tune, cfg.seed)) > 1 and cfg.tune.budget < cfg.tune.min_rows * 2:
        problems.append(f"config key 'tune.budget' = {cfg.tune.budget}: too small to compare settings on "
                        f"tune.min_rows={cfg.tune.min_rows} rows; raise it")
    return problems


def _value_problems(cfg: Config, key: str, values: list, where: str) -> list[str]:
    """Each value coerced to the inference key's type and checked against its bounds."""
    tp = all_keys()[f"inference.{key}"][0]
    problems = []
    for value in values:
        try:
            typed = coerce(key, value, tp)
            problems += [f"{where}: {p.split(': ', 1)[1]}" for p in
                         section_problems(replace(cfg.inference, **{key: typed}), "inference") if f".{key}'" in p]
        except (ValueError, TypeError) as exc:
            problems.append(f"{where}: value {value!r}: {exc}")
    return problems


def tuning_rows(dev: pd.DataFrame, n: int, seed: int) -> list[str]:
    """The dev fnames set aside for tuning (seeded; at least one dev row is left for the reported score).

    ``tune.rows`` above what dev can spare is cut, with a warning that says what is searched and on how
    many rows the reported dev score then rests.
    """
    take = max(1, min(n, len(dev) - 1))
    if take < n:
        log.warning("tune.rows = %d but dev has %d rows: the search runs on %d of them and the reported dev score "
                    "rests on the %d row(s) left; set tune.rows to at most half of dev (%d) for a score worth reading",
                    n, len(dev), take, len(dev) - take, max(2, len(dev) // 2))
    return dev["fname"].astype(str).sample(n=take, random_state=seed).tolist()


def excluded_rows(path: Optional[Path]) -> set[str]:
    """The tuning fnames the evaluate stage leaves out (none when tune did not run)."""
    if path is None or not Path(path).is_file():
        return set()

    table = read_csv_file(Path(path), "tuning rows")
    if "fname" not in table.columns:
        raise UserError(f"{path}: line 1: no column 'fname' (found {', '.join(table.columns)}); rerun the tune stage "
                        "(drop --skip-tune) to write it again")
    return set(table["fname"].dropna().astype(str))


def _overrides(cfg: Config, setting: Setting) -> tuple[dict[str, Any], Optional[str]]:
    """(inference overrides, instruction text or None) of a setting."""
    inference = {k: v for k, v in setting.items() if k != "instruction"}
    index = setting.get("instruction")
    return inference, cfg.prompt.instruction_variants[index] if index is not None else None


def journal_key(settings: InferenceSettings, dev_path: Path) -> str:
    """What decides every summary in the tune journal besides its setting: the infer stage's prediction key (the
    checkpoint's content, the resolved settings, prompt and model, the few-shot pool, the dev file). A row written
    under another key is never reused."""
    assert settings.checkpoint is not None
    return prediction_key(settings.cfg, settings.checkpoint, dev_path, settings.pool)


def _generator(cfg: Config, predictor: Any, dev: pd.DataFrame, journal: JsonlJournal, key: str) -> Any:
    """generate(setting, fnames): journaled summaries, generating only the missing ones (rows of this ``key`` only)."""
    records, _ = journal.read()
    done = {(r["setting"], r["fname"]): r["summary"] for r in records
            if {"setting", "fname", "summary"} <= set(r) and r.get("key") == key}
    if len(done) < len(records):
        log.info("tune journal %s: %d row(s) of another checkpoint, settings or dev file dropped", journal.path,
                 len(records) - len(done))
        journal.rewrite([{"setting": s, "fname": f, "summary": text, "key": key} for (s, f), text in done.items()])
    dialogue = dict(zip(dev["fname"].astype(str), dev["dialogue"].astype(str)))
    builder = getattr(predictor, "builder", None)

    def generate(setting: Setting, rows: list[str]) -> list[str]:
        sid = setting_id(setting)
        todo = [f for f in rows if (sid, f) not in done]
        if todo:
            overrides, instruction = _overrides(cfg, setting)
            if instruction is not None:
                predictor.builder = PromptBuilder(predictor.tokenizer, replace(cfg.prompt, instruction=instruction))
            try:
                summaries = predictor.predict_batch([dialogue[f] for f in todo], todo, **overrides)
            finally:
                if builder is not None:
                    predictor.builder = builder
            journal.append([{"setting": sid, "fname": f, "summary": s, "key": key} for f, s in zip(todo, summaries)])
            done.update({(sid, f): s for f, s in zip(todo, summaries)})
        return [done[(sid, f)] for f in rows]

    return generate


def reference_scorer(references: dict[str, str], tokenizer: str) -> Callable[[list[str], list[str]], dict[str, float]]:
    """ROUGE-1/2/L and final of summaries against the references of their fnames (what the search ranks on)."""
    def score(summaries: list[str], fnames: list[str]) -> dict[str, float]:
        m = score_texts(summaries, [[references[f]] for f in fnames], tokenizer=tokenizer)
        return {k: m[k] for k in ("rouge1", "rouge2", "rougeL", "final")}

    return score


def tune_generation(cfg: Config, settings: InferenceSettings, dev_path: Path,
                    outputs: dict[str, Path]) -> dict[str, Any]:
    """Run the search from ``settings`` (resolved without a tune choice; each trial replaces only its own keys) and
    write tuning.csv, tuning.png, best_generation.yaml and tuning_rows.csv."""
    dev = load_split(dev_path, "dev")
    rows = tuning_rows(dev, cfg.tune.rows, cfg.seed)
    atomic_write_csv(outputs["rows"], pd.DataFrame({"fname": rows}))
    run_cfg, pool_file = settings.cfg, settings.pool
    pool = load_split(pool_file, "train") if pool_file is not None and run_cfg.prompt.num_fewshot else None
    predictor = load_predictor(settings, pool)
    references = dict(zip(dev["fname"].astype(str), dev["summary"].astype(str)))
    score = reference_scorer(references, cfg.evaluation.tokenizer)
    space = candidates(cfg.tune, cfg.seed)
    log.info("tune: %d setting(s) searched on %d tuning row(s) of dev's %d; the reported dev score is on the other %d",
             len(space), len(rows), len(dev), len(dev) - len(rows))
    generate = _generator(run_cfg, predictor, dev, JsonlJournal(outputs["journal"]), journal_key(settings, dev_path))
    trials = search(space, rows, cfg.tune, generate, score)
    trials, baseline = score_baseline(trials, baseline_setting(run_cfg, sorted(cfg.tune.space)), rows, generate, score)
    row_score = row_scorer(references, cfg.evaluation.tokenizer)
    intervals = compare_with_baseline(trials, baseline, rows, generate, row_score, cfg.seed)
    chosen, reason = choose(trials, baseline, intervals, cfg.tune.select)
    log.info("tune: chose %s: %s", "the baseline" if chosen is baseline else chosen.setting, reason)
    mbr = mbr_check(table_order(trials, chosen), rows, generate, row_score, run_cfg.inference.mbr,
                    cfg.evaluation.tokenizer, cfg.tune.select, cfg.seed)
    if mbr is not None:
        log.info("tune: MBR %s: %s", "on" if mbr.use else "off", mbr.reason)
    write_results(trials, run_cfg, outputs, baseline, chosen, intervals, reason, mbr)
    best, found = trials[0], intervals.get(setting_id(chosen.setting))
    return {"best": best.setting, "best_final": best.scores.get("final"), "best_rows": best.rows,
            **({"mbr": mbr.as_dict()} if mbr is not None else {}),
            "chosen": chosen.setting, "chosen_is_baseline": chosen is baseline, "chosen_final": chosen.scores["final"],
            "baseline": baseline.setting, "baseline_final": baseline.scores["final"], "select": cfg.tune.select,
            "reason": reason, **({"diff": found.mean, "ci_low": found.low, "ci_high": found.high} if found else {}),
            "settings": len(space), "tuning_rows": len(rows), "scorer": cfg.evaluation.tokenizer}


def write_results(trials: list[Trial], cfg: Config, outputs: dict[str, Path], baseline: Trial, chosen: Trial,
                  intervals: dict[str, Interval], reason: str, mbr: Optional[MbrCheck] = None) -> None:
    """tuning.csv (the chosen setting first, the main decode MBR builds on; then best first), tuning.png and
    best_generation.yaml (the chosen setting, and why; with ``mbr``, whether MBR stays on, and why)."""
    ordered = table_order(trials, chosen)
    table = pd.DataFrame([{**t.row(), **table_columns(t, baseline, chosen, intervals)} for t in ordered])
    atomic_write_csv(outputs["tuning"], table)
    overrides, instruction = _overrides(cfg, chosen.setting)
    found = intervals.get(setting_id(chosen.setting))
    best = {"inference": overrides, **({"prompt": {"instruction": instruction}} if instruction else {}),
            "score": chosen.scores, "rows": chosen.rows, "scorer": cfg.evaluation.tokenizer,
            "chosen": "baseline" if chosen is baseline else setting_id(chosen.setting), "select": cfg.tune.select,
            "reason": reason, "baseline_score": dict(baseline.scores),
            **({"diff": found.mean, "ci_low": found.low, "ci_high": found.high} if found else {}),
            **({"mbr": mbr.as_dict()} if mbr is not None else {})}
    atomic_write_text(outputs["best"], yaml.safe_dump(best, allow_unicode=True, sort_keys=False))
    _plot(table, outputs["plot"])


def _plot(table: pd.DataFrame, path: Path) -> None:
    from matplotlib.figure import Figure

    scored = table.dropna(subset=["final"]) if "final" in table else table.iloc[0:0]
    fig = Figure(figsize=(8, max(3, 0.3 * len(scored) + 1)), layout="constrained")
    ax = fig.subplots()
    labels = [", ".join(f"{c[6:]}={row[c]}" for c in table.columns if c.startswith("param_")) + f"  ({row['rows']} rows)"
              for _, row in scored.iterrows()]
    ax.barh(range(len(scored)), scored["final"] if len(scored) else [], color="#4c72b0")
    ax.set_yticks(range(len(scored)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("final (100 x mean ROUGE-1/2/L) on the tuning rows")
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
