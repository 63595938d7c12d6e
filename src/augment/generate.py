"""The augment stage's work: speaker swap, LLM paraphrases and synthetic dialogues, validated and written.

Requests (``src.augment.requests``) go through a journaled client (``src.augment.client`` for an
OpenAI-compatible API, ``src.augment.local`` for a local model), so a rerun never pays twice for
a completed request. Every reply goes through the parser (``src.augment.parsing``) and the
validators; each rejection is written to ``rejected.csv`` with its reason.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from src.augment.chat import BatchClient, ChatRequest, ChatResult, run_requests
from src.augment.client import LLMClient
from src.augment.local import LocalLLMClient
from src.augment.parsing import parse_paraphrase, parse_synthetic
from src.augment.requests import build_requests
from src.augment.swap import swap_frame
from src.augment.validators import ValidationSettings, build_index, reason_code, validate_paraphrase, validate_synthetic
from src.config import AugmentationConfig
from src.utils.errors import UserError
from src.utils.io import atomic_write_csv

logger = logging.getLogger(__name__)

COLUMNS = ["fname", "dialogue", "summary", "topic", "source", "parent_fname"]
REJECTED_COLUMNS = COLUMNS + ["reason"]


@dataclass(frozen=True)
class AugmentResult:
    """What the stage wrote (name -> path) and its counts for the manifest."""

    outputs: dict[str, str]
    stats: dict[str, Any]


def make_client(aug_cfg: AugmentationConfig, api_key: Optional[str], journal_path: Path,
                local_model_path: Optional[str] = None, seed: int = 0) -> Optional[BatchClient]:
    """The client for ``augmentation.backend``; None for the API backend without a key."""
    if aug_cfg.backend == "transformers":
        path = local_model_path or aug_cfg.local_model
        if not path:
            raise UserError("augmentation.backend=transformers needs a model: set augmentation.local_model "
                            "to a hub id or a local folder")
        return LocalLLMClient(path, aug_cfg.api, journal_path, seed=seed)
    if not api_key:
        return None
    return LLMClient(aug_cfg.api, api_key, journal_path, seed=seed)


def speaker_swap_rows(train_df: pd.DataFrame, amount: float, seed: int) -> pd.DataFrame:
    """Speaker-swapped copies from ``src.augment.swap`` (source ``swap``) in this stage's columns."""
    if amount <= 0 or train_df.empty:
        return pd.DataFrame(columns=COLUMNS)
    # swap_frame reads an int as a count and a float as a fraction; the config holds a float for both.
    swapped = swap_frame(train_df, int(amount) if amount >= 1 else float(amount), seed).copy()
    for col in COLUMNS:
        if col not in swapped.columns:
            swapped[col] = ""
    return swapped[COLUMNS].reset_index(drop=True)


def validation_settings(aug_cfg: AugmentationConfig) -> Any:
    """``validators.ValidationSettings`` filled from the augmentation config's thresholds."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(ValidationSettings)}
    return ValidationSettings(**{n: getattr(aug_cfg, n) for n in names if hasattr(aug_cfg, n)})


@dataclass
class Verdicts:
    """Accepted and rejected rows of one batch (dicts with ``COLUMNS``, rejected ones with ``reason``)."""

    accepted: list[dict[str, str]]
    rejected: list[dict[str, str]]


def _candidate(req: ChatRequest, res: ChatResult, parents: dict[str, dict]) -> tuple[dict[str, str], str]:
    """The row a result would add, and '' or the reason it cannot be judged (failed, unparseable)."""
    kind = req.metadata["kind"]
    parent = parents.get(req.metadata.get("parent_fname", ""), {})
    row = {"fname": req.id, "dialogue": "", "summary": str(parent.get("summary", "")),
           "topic": str(req.metadata.get("topic", parent.get("topic", "")) or ""), "source": kind,
           "parent_fname": req.metadata.get("parent_fname", "")}
    if not res.ok:
        return row, f"request_failed: {res.error}"
    if kind == "paraphrase":
        dialogue = parse_paraphrase(res.text)
        row["dialogue"] = dialogue or res.text[:2000]
        return row, "" if dialogue else "unparseable: empty reply"
    parsed = parse_synthetic(res.text)
    if parsed is None:
        row["dialogue"] = res.text[:2000]  # the raw reply, for the rejected file
        return row, "unparseable: no JSON object with dialogue and summary"
    row["dialogue"], row["summary"] = parsed
    return row, ""


def _validate(row: dict[str, str], parents: dict[str, dict], index: Any, settings: Any) -> str:
    """'' to keep a parsed row, else the validators' rejection reason."""
    if row["source"] == "paraphrase":
        original = str(parents[row["parent_fname"]]["dialogue"])
        keep, reason = validate_paraphrase(original, row["dialogue"], index, settings)
    else:
        keep, reason = validate_synthetic(row["dialogue"], row["summary"], index, settings)
    return "" if keep else (reason or "rejected")


def judge_results(train_df: pd.DataFrame, requests: list[ChatRequest], results: list[ChatResult],
                  reference_dialogues: list[str], aug_cfg: AugmentationConfig) -> Verdicts:
    """Parse and validate every result; accepted rows join the near-duplicate index as they pass."""
    settings = validation_settings(aug_cfg)
    # The train set (parents included: a near-copy of its parent adds nothing) plus the caller's references.
    texts = [str(d) for d in train_df["dialogue"]] + [str(d) for d in reference_dialogues]
    keys = [str(f) for f in train_df["fname"]] + [f"reference_{i}" for i in range(len(reference_dialogues))]
    index = build_index(texts, keys, settings=settings)
    parents = {str(r["fname"]): r for r in train_df.to_dict("records")}
    verdicts = Verdicts([], [])
    for req, res in zip(requests, results):
        row, reason = _candidate(req, res, parents)
        reason = reason or _validate(row, parents, index, settings)
        if reason:
            verdicts.rejected.append({**row, "reason": reason})
            continue
        index.add(row["fname"], row["dialogue"])  # later candidates must not copy accepted ones
        verdicts.accepted.append(row)
    return verdicts


def _write(out_dir: Path, augmented: pd.DataFrame, rejected: pd.DataFrame) -> dict[str, str]:
    return {"augmented": str(atomic_write_csv(out_dir / "augmented.csv", augmented[COLUMNS])),
            "rejected": str(atomic_write_csv(out_dir / "rejected.csv", rejected[REJECTED_COLUMNS]))}


def _stats(requests: list[ChatRequest], swapped: pd.DataFrame, verdicts: Verdicts, client: Optional[BatchClient],
           skipped: Optional[str], aug_cfg: AugmentationConfig) -> dict[str, Any]:
    kinds = ("paraphrase", "synthetic")
    requested = Counter(r.metadata["kind"] for r in requests)
    accepted = Counter(r["source"] for r in verdicts.accepted)
    rejected = {k: dict(Counter(reason_code(r["reason"]) for r in verdicts.rejected if r["source"] == k))
                for k in kinds}
    return {
        "backend": aug_cfg.backend,
        "requested": {**{k: requested[k] for k in kinds}, "speaker_swap": len(swapped)},
        "accepted": {**{k: accepted[k] for k in kinds}, "speaker_swap": len(swapped)},
        "rejected": rejected,
        "acceptance_rate": {k: round(accepted[k] / requested[k], 4) if requested[k] else None for k in kinds},
        "skipped": skipped,
        "ledger": client.ledger.to_dict() if client is not None else None,
    }


def check_failures(client: BatchClient, results: list[ChatResult], aug_cfg: AugmentationConfig) -> None:
    """Refused by the server, or too many requests failed: the stage fails (the journal keeps what completed)."""
    fatal = getattr(client, "fatal", None)
    if fatal:
        raise UserError(fatal)
    failed = [r for r in results if not r.ok and r.error != "cost_cap"]  # the spend cap is the user's own limit
    if results and len(failed) / len(results) > aug_cfg.max_failed_fraction:
        reasons = ", ".join(f"{k} {v}" for k, v in Counter(r.error for r in failed).most_common(4))
        raise UserError(f"augmentation: {len(failed)} of {len(results)} requests failed ({reasons}), more than "
                        f"augmentation.max_failed_fraction={aug_cfg.max_failed_fraction}; the {len(results) - len(failed)} "
                        "answers are kept in the journal: fix the cause and rerun with --resume (only the failed "
                        "requests are sent again)")


def augment(train_df: pd.DataFrame, reference_dialogues: list[str], aug_cfg: AugmentationConfig,
            api_key: Optional[str], out_dir: Path, seed: int, local_model_path: Optional[str] = None,
            progress: bool = True) -> AugmentResult:
    """Run speaker swap and the LLM augmenters; write augmented.csv and rejected.csv atomically.

    Augmented dialogues must not near-duplicate a train dialogue or any of ``reference_dialogues``
    (dev and test, typically). Without a key the API augmenters are skipped with one warning line. Responses
    are journaled in ``out_dir/journal.jsonl``: a rerun re-sends only what never completed.
    """
    started = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    swapped = speaker_swap_rows(train_df, aug_cfg.num_speaker_swap, seed)
    requests = build_requests(train_df, aug_cfg, seed)
    journal = out_dir / "journal.jsonl"
    journal.touch(exist_ok=True)  # always an output, even when nothing is requested
    client = make_client(aug_cfg, api_key, journal, local_model_path, seed) if requests else None
    verdicts, skipped = Verdicts([], []), None
    if requests and client is None:
        skipped = "no_api_key"
        logger.warning("augmentation: no API key in %s (environment or .env); skipping %d paraphrase/synthetic "
                       "requests, speaker swap still runs", aug_cfg.api.api_key_env, len(requests))
    elif client is not None:
        results = run_requests(client, requests, progress=progress)
        check_failures(client, results, aug_cfg)
        verdicts = judge_results(train_df, requests, results, reference_dialogues, aug_cfg)
    augmented = pd.concat([swapped, pd.DataFrame(verdicts.accepted, columns=COLUMNS)], ignore_index=True)
    outputs = {**_write(out_dir, augmented, pd.DataFrame(verdicts.rejected, columns=REJECTED_COLUMNS)),
               "journal": str(journal)}
    stats = _stats(requests, swapped, verdicts, client, skipped, aug_cfg)
    stats["seconds"] = round(time.monotonic() - started, 3)
    logger.info("augmentation: accepted %s, rejected %d (reasons in %s)", stats["accepted"],
                len(verdicts.rejected), outputs["rejected"])
    return AugmentResult(outputs=outputs, stats=stats)
