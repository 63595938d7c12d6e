"""Merge original train rows with accepted augmented rows into one shuffled training set.

Order of the steps (each removal is recorded with a reason):
1. provenance: originals get ``source="original"`` and ``parent_fname=fname``;
2. ``missing_text``: empty dialogue or summary;
3. ``exact_duplicate``: same dialogue after whitespace normalisation (the first row wins, and
   originals come first, so an original is never dropped for an augmented copy); then
   ``duplicate_fname``: a different row reusing an earlier fname;
4. ``leak_exact`` / ``leak_near_duplicate`` / ``leak_parent``: a row whose dialogue is (nearly)
   a dev/test dialogue, or an augmented row derived from a dev/test row;
5. ``near_duplicate``: an augmented row nearly identical to an earlier augmented row (not to
   originals: a speaker swap is by design almost its parent);
6. ``cap``: rows beyond the per-source cap, chosen by a seeded permutation;
7. a deterministic shuffle by ``seed`` (optional).
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from src.utils.neardup import NearDupIndex
from src.utils.errors import UserError

log = logging.getLogger(__name__)

SOURCES = ("original", "paraphrase", "synthetic", "swap")
REQUIRED = ("fname", "dialogue", "summary")
OUTPUT_COLUMNS = ("fname", "dialogue", "summary", "topic", "source", "parent_fname", "data_source")


def normalize_whitespace(text: str) -> str:
    """Collapse every whitespace run (newlines included) to one space, for exact-dup checks."""
    return " ".join(str(text).split())


def _check_columns(df: pd.DataFrame, name: str, required: tuple[str, ...]) -> list[str]:
    """One problem line per required column missing from ``df``."""
    return [f"merge: {name} has no column '{col}' (columns: {', '.join(map(str, df.columns))})."
            for col in required if col not in df.columns]


def _with_provenance(originals: pd.DataFrame, augmented: pd.DataFrame | None) -> pd.DataFrame:
    """Stack originals and augmented rows with ``source``/``parent_fname``; validate inputs."""
    problems = _check_columns(originals, "originals", REQUIRED)
    if augmented is not None:
        problems += _check_columns(augmented, "augmented rows", (*REQUIRED, "source"))
    if problems:
        raise UserError(*problems)
    base = originals.copy()
    if "source" in base.columns:  # which input file/dataset a row came from (data.train_file entries)
        base["data_source"] = base["source"]
    base["source"], base["parent_fname"] = "original", base["fname"]
    frames = [base]
    if augmented is not None and len(augmented):
        extra = augmented.copy()
        unknown = sorted(set(extra["source"].astype(str)) - set(SOURCES[1:]))
        if unknown:
            raise UserError(f"merge: augmented rows have unknown source {unknown}; "
                            f"allowed: {', '.join(SOURCES[1:])}.")
        if "parent_fname" not in extra.columns:
            extra["parent_fname"] = ""
        if "topic" in base.columns and "topic" not in extra.columns:
            # Augmented rows inherit their parent's topic when the generator did not set one.
            extra["topic"] = extra["parent_fname"].map(dict(zip(base["fname"], base["topic"])))
        frames.append(extra)
    merged = pd.concat(frames, ignore_index=True)
    columns = [c for c in OUTPUT_COLUMNS if c in merged.columns]
    merged = merged[columns].copy()
    merged["parent_fname"] = merged["parent_fname"].fillna("").astype(str)
    merged["fname"] = merged["fname"].astype(str)
    return merged


def _split(
    df: pd.DataFrame, drop: pd.Series, reason: str, detail: pd.Series | str = ""
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(kept, removed)``; removed rows carry ``reason`` and ``detail`` columns."""
    removed = df[drop].copy()
    removed["reason"] = reason
    removed["detail"] = detail[drop] if isinstance(detail, pd.Series) else detail
    return df[~drop].copy(), removed


def _drop_missing(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drop rows with an empty or missing dialogue or summary."""
    empty = pd.Series(False, index=df.index)
    for column in ("dialogue", "summary"):
        empty |= df[column].isna() | (df[column].astype(str).str.strip() == "")
    return _split(df, empty, "missing_text", "empty dialogue or summary")


def _drop_duplicate_fnames(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drop rows reusing the fname of an earlier row (with a different dialogue)."""
    repeated = df["fname"].duplicated(keep="first")
    return _split(df, repeated, "duplicate_fname", "fname used by an earlier row")


def _drop_exact_duplicates(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drop rows whose whitespace-normalised dialogue equals an earlier row's."""
    norm = df["dialogue"].map(normalize_whitespace)
    first = dict(zip(norm[~norm.duplicated()], df["fname"][~norm.duplicated()]))
    detail = norm.map(lambda n: f"same dialogue as {first[n]}")
    return _split(df, norm.duplicated(keep="first"), "exact_duplicate", detail)


def _held_out_texts(held_out: list[pd.DataFrame]) -> tuple[list[str], list[str]]:
    """Dialogues and fnames of every held-out frame (fnames default to ``held_out[i]:row``)."""
    texts, keys = [], []
    for i, frame in enumerate(held_out):
        if "dialogue" not in frame.columns:
            raise UserError(f"merge: held-out frame {i} has no 'dialogue' column.")
        names = (frame["fname"].astype(str) if "fname" in frame.columns
                 else [f"held_out[{i}]:{r}" for r in range(len(frame))])
        for name, text in zip(names, frame["dialogue"]):
            if isinstance(text, str) and text.strip():
                texts.append(text)
                keys.append(name)
    return texts, keys


def _drop_leaks(df: pd.DataFrame, held_out: list[pd.DataFrame], threshold: float,
                ngram: int, unit: str) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """Drop rows whose dialogue is (nearly) a held-out dialogue or whose parent is held out."""
    texts, keys = _held_out_texts(held_out)
    if not texts:
        return df, []
    exact = {normalize_whitespace(t): k for t, k in zip(texts, keys)}
    norm = df["dialogue"].map(normalize_whitespace)
    detail = norm.map(lambda n: f"same as {exact.get(n)}")
    df, leak_exact = _split(df, norm.isin(exact), "leak_exact", detail)
    df, leak_parent = _split(
        df, (df["source"] != "original") & df["parent_fname"].isin(set(keys)), "leak_parent",
        "parent is a held-out row")
    index = NearDupIndex(ngram=ngram, unit=unit).add_many(texts, keys)
    best = [hits[0] if hits else (None, 0.0) for hits in index.query_many(df["dialogue"], threshold)]
    near = pd.Series([sim >= threshold for _, sim in best], index=df.index)
    detail = pd.Series([f"jaccard {sim:.2f} with {key}" for key, sim in best], index=df.index)
    df, leak_near = _split(df, near, "leak_near_duplicate", detail)
    return df, [leak_exact, leak_parent, leak_near]


def _drop_augmented_near_dups(df: pd.DataFrame, threshold: float, ngram: int,
                              unit: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drop augmented rows nearly identical to an earlier augmented row (first one wins)."""
    augmented = df["source"] != "original"
    if augmented.sum() < 2:
        return _split(df, pd.Series(False, index=df.index), "near_duplicate")
    rows = df[augmented]
    index = NearDupIndex(ngram=ngram, unit=unit)
    matches = index.add_distinct(rows["dialogue"], rows["fname"], threshold)
    drop = pd.Series(False, index=df.index)
    detail = pd.Series("", index=df.index)
    for row_index, (key, sim) in zip(rows.index, matches):
        if key is not None:
            drop[row_index], detail[row_index] = True, f"jaccard {sim:.2f} with {key}"
    return _split(df, drop, "near_duplicate", detail)


def _apply_caps(
    df: pd.DataFrame, caps: dict[str, int | None], seed: int | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep at most ``caps[source]`` rows per source (None: no cap).

    The kept rows are chosen by a permutation seeded with ``seed``; with ``seed=None`` the
    first rows in input order are kept, so the result is deterministic either way.
    """
    problems = [f"merge: caps has unknown source '{s}'; allowed: {', '.join(SOURCES)}."
                for s in caps if s not in SOURCES]
    problems += [f"merge: caps.{s} = {c!r} must be an integer >= 0 or null." for s, c in caps.items()
                 if c is not None and (isinstance(c, bool) or not isinstance(c, int) or c < 0)]
    if problems:
        raise UserError(*problems)
    drop = pd.Series(False, index=df.index)
    rng = np.random.default_rng(seed) if seed is not None else None
    for source in SOURCES:  # fixed order so the random stream does not depend on dict order
        cap = caps.get(source)
        rows = df.index[df["source"] == source]
        if cap is None or len(rows) <= cap:
            continue
        order = rng.permutation(len(rows)) if rng is not None else np.arange(len(rows))
        drop[rows[order[cap:]]] = True
    detail = df["source"].map(lambda s: f"more than caps.{s}={caps.get(s)} rows")
    return _split(df, drop, "cap", detail)


def merge_frames(
    originals: pd.DataFrame,
    augmented: pd.DataFrame | None,
    held_out: list[pd.DataFrame],
    caps: dict[str, int | None],
    seed: int | None,
    near_dup_threshold: float,
    ngram: int = 3,
    unit: str = "char",
    shuffle: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Merge originals and augmented rows; return ``(merged, removed, stats)``.

    ``merged`` has columns fname, dialogue, summary, topic (if present), source, parent_fname,
    shuffled deterministically by ``seed`` (``seed=None`` or ``shuffle=False`` keeps input
    order, originals first). ``removed`` has the same columns plus ``reason`` and ``detail``. ``stats`` has
    ``rows_in``/``rows_out``, per-source counts in ``in`` and ``out``, and per-reason counts
    in ``removed``. See the module docstring for the steps.
    """
    if not 0 < near_dup_threshold <= 1:
        raise UserError(f"merge: near_dup_threshold {near_dup_threshold} must be in (0, 1].")
    df = _with_provenance(originals, augmented)
    counts_in = df["source"].value_counts().to_dict()
    df, missing = _drop_missing(df)
    df, exact = _drop_exact_duplicates(df)
    df, dup_names = _drop_duplicate_fnames(df)
    df, leaks = _drop_leaks(df, held_out, near_dup_threshold, ngram, unit)
    df, near = _drop_augmented_near_dups(df, near_dup_threshold, ngram, unit)
    df, capped = _apply_caps(df, caps, seed)
    removed_df = pd.concat([missing, exact, dup_names, *leaks, near, capped], ignore_index=True)
    merged = df.sample(frac=1, random_state=seed) if shuffle and seed is not None else df
    merged = merged.reset_index(drop=True)
    stats = {
        "rows_in": int(sum(counts_in.values())),
        "rows_out": len(merged),
        "in": {s: int(n) for s, n in counts_in.items()},
        "out": {s: int(n) for s, n in merged["source"].value_counts().items()},
        "removed": {r: int(n) for r, n in removed_df["reason"].value_counts().items()},
    }
    log.info("merge: %d rows in, %d out, removed %s", stats["rows_in"], stats["rows_out"], stats["removed"])
    return merged, removed_df, stats
