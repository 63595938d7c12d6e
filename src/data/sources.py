"""Data sources: each split is the concatenation of files, folders, globs and a Hugging Face dataset.

The sources of split S are the entries of ``data.S_file`` in order, then ``data.hub.S`` when its
``path`` is set. Each source is read (``read_table`` or ``datasets.load_dataset``), its columns are
renamed by ``data.columns`` and checked like a competition CSV (every problem names the file, row
and column), it gets generated fnames when it has none and a ``source`` column naming it. Then:
ids must be unique across the split's sources; training rows are filtered by dialogue length
(dropped rows keep their reason) and weighted per source (``data.train_weights``); last,
``data.fraction.S`` and ``data.max_rows.S`` keep a seeded random subset, in file order.
"""
from __future__ import annotations

import glob
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

from src.config import SPLITS, ColumnMap, Config, HubSource, resolve_input, resolve_path
from src.data.formats import to_dialogue_columns
from src.data.loading import MAX_LISTED, REQUIRED, SUFFIXES, as_text, check_frame, first_row_number, read_table
from src.utils.errors import UserError
from src.utils.secrets import get_secret

log = logging.getLogger(__name__)

CANONICAL = ("fname", "dialogue", "summary", "topic")
HUB_SPLIT = {"train": "train", "dev": "validation", "test": "test"}
GLOB_CHARS = "*?["
REJECTED_COLUMNS = ["split", "fname", "source", "reason", "detail"]


@dataclass(frozen=True)
class Source:
    """One configured entry of a split: local files (a file, folder or glob) or a hub dataset."""

    split: str
    index: int
    label: str
    key: str
    files: tuple[Path, ...] = ()
    hub: Optional[HubSource] = None
    weight: float = 1.0


@dataclass
class SplitData:
    """One split's rows, the training rows the length filters dropped, and rows per source."""

    frame: pd.DataFrame
    rejected: pd.DataFrame
    rows_by_source: dict[str, int]


def file_entries(cfg: Config, split: str) -> tuple[str, ...]:
    """The ``data.<split>_file`` entries as configured."""
    return getattr(cfg.data, f"{split}_file")


def _expand(entry: str, base: Path, key: str, hub_set: bool) -> tuple[tuple[Path, ...], Optional[str]]:
    """The files behind one entry: a file, every supported file in a folder, or a glob's matches."""
    path = resolve_path(entry, base)
    if any(c in entry for c in GLOB_CHARS):
        files = tuple(Path(p) for p in sorted(glob.glob(str(path))) if Path(p).is_file())
        return files, None if files else f"{key} = '{entry}': no file matches {path}"
    if path.is_dir():
        files = tuple(sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES))
        return files, None if files else f"{key} = '{entry}': folder {path} has no {'/'.join(SUFFIXES)} files"
    if path.is_file():
        return (path,), None
    hint = f"; to read only data.hub, set {key.split('[')[0]}=[]" if hub_set else ""
    return (), f"{path}: file not found ({key} = '{entry}', relative to paths.data_dir {base}){hint}"


def resolve_sources(cfg: Config, split: str) -> tuple[list[Source], list[str]]:
    """The split's sources in order (file entries, then the hub block) and the problems finding them."""
    base, entries, hub = resolve_input(cfg.paths.data_dir), file_entries(cfg, split), getattr(cfg.data.hub, split)
    # a missing weight counts as 1 (src.config.checks reports a count that does not match the sources)
    weights = (list(cfg.data.train_weights) if split == "train" else []) + [1.0] * (len(entries) + 1)
    sources, problems = [], []
    for i, entry in enumerate(entries):
        key = f"data.{split}_file" + (f"[{i}]" if len(entries) > 1 else "")
        files, problem = _expand(entry, base, key, hub.path is not None)
        problems += [problem] if problem else []
        sources.append(Source(split, i, entry, key, files=files, weight=weights[i]))
    if hub.path is not None:
        i = len(entries)
        sources.append(Source(split, i, f"hub:{hub.path}", f"data.hub.{split}", hub=hub, weight=weights[i]))
    return sources, problems


def map_columns(df: pd.DataFrame, columns: ColumnMap, role: str, where: Any, first_row: int,
                fname_prefix: str, start: int = 0, max_chars: int = 0,
                generate_ids: bool = True) -> tuple[pd.DataFrame, list[str]]:
    """Rename the source's columns to fname/dialogue/summary/topic and check them like a CSV split.

    A source without an id column gets ``<fname_prefix><row>`` (rows counted from ``start``); a conversational
    or prompt/completion source is turned into dialogue and summary first (``src.data.formats``).
    """
    df, chat_problems = to_dialogue_columns(df, columns, where, first_row, "summary" in REQUIRED[role])
    if chat_problems:
        return df, chat_problems
    names, missing = {}, []
    for canon in CANONICAL:
        wanted = getattr(columns, canon)
        if wanted in df.columns:
            names[canon] = wanted
        elif canon in df.columns:
            names[canon] = canon
        elif canon in REQUIRED[role][1:]:
            missing.append(f"{wanted} (data.columns.{canon})")
    if "fname" not in names and not generate_ids:
        missing.insert(0, f"{columns.fname} (data.columns.fname; or set data.generate_ids=true to number the rows)")
    if missing:
        return df, [f"{where}: missing column(s) {', '.join(missing)} (the {role} split needs "
                    f"{', '.join(REQUIRED[role][1:])}; found {', '.join(map(str, df.columns))}); "
                    "set data.columns.* to this source's column names"]
    out = pd.DataFrame({canon: df[col].to_numpy() for canon, col in names.items()})
    if "fname" not in names:
        out.insert(0, "fname", [f"{fname_prefix}{start + i}" for i in range(len(out))])
    problems = check_frame(out, where, role, first_row, names, max_chars)
    out["fname"] = out["fname"].astype(str).str.strip()
    return out, problems


HELD_OUT_FLOOR = 20000  # characters: a dev/test dialogue this long is a broken file, whatever train is filtered to


def _held_out_cap(cfg: Config, split: str) -> int:
    """The dialogue length refused in dev and test: data.max_dialogue_chars, but never below HELD_OUT_FLOOR (a
    filter meant for training rows must not refuse real test rows); 0 turns it off. Train rows are dropped instead."""
    cap = cfg.data.max_dialogue_chars
    return max(cap, HELD_OUT_FLOOR) if cap and split != "train" else 0


def _prefix(src: Source) -> str:
    return f"{src.split}-{src.index}-"


def _read_files(src: Source, cfg: Config) -> tuple[Optional[pd.DataFrame], list[str]]:
    frames, problems, start = [], [], 0
    for path in src.files:
        try:
            raw = read_table(path)
        except UserError as exc:
            problems += exc.problems
            continue
        df, found = map_columns(raw, cfg.data.columns, src.split, path, first_row_number(path), _prefix(src), start,
                                _held_out_cap(cfg, src.split), cfg.data.generate_ids)
        problems += found
        frames.append(df)
        start += len(raw)
    if problems or not frames:
        return None, problems
    return pd.concat(frames, ignore_index=True), []


def _hub_of(src: Source) -> HubSource:
    """The hub block of a hub source (only hub sources reach the hub functions)."""
    assert src.hub is not None, f"{src.key} is not a hub source"
    return src.hub


def hub_kwargs(cfg: Config, src: Source) -> dict[str, Any]:
    """Arguments for ``datasets.load_dataset``; the token comes from HF_TOKEN (environment or .env)."""
    hub, base = _hub_of(src), resolve_input(cfg.paths.data_dir)
    local = resolve_path(str(hub.path), base)
    kwargs = {"path": str(local) if local.exists() else hub.path, "name": hub.name,
              "split": hub.split or HUB_SPLIT[src.split], "revision": hub.revision,
              "data_files": [str(resolve_path(f, base)) for f in hub.data_files] or None,
              "data_dir": hub.data_dir, "streaming": hub.streaming,
              "cache_dir": str(resolve_path(hub.cache_dir)) if hub.cache_dir else None,
              "token": get_secret("HF_TOKEN")}
    if cfg.data.trust_remote_code:
        kwargs["trust_remote_code"] = True
    return kwargs


def _hub_errors() -> tuple[type[BaseException], ...]:
    from datasets.exceptions import DatasetsError

    # hub and network failures are OSErrors (ConnectionError, HfHubHTTPError); bad names/splits ValueErrors
    return OSError, ValueError, DatasetsError


def _hub_problem(src: Source, exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return (f"{src.key}.path = '{_hub_of(src).path}': cannot be loaded ({type(exc).__name__}: {first}); check "
            f"{src.key}.path/name/split/revision, set HF_TOKEN for a private or gated dataset, and when offline "
            "(HF_HUB_OFFLINE=1) load it online once so it is cached")


def load_hub(src: Source, cfg: Config) -> pd.DataFrame:
    """Rows of one hub dataset split as text columns, after its shuffle and fraction."""
    import datasets

    hub = _hub_of(src)
    try:
        ds = datasets.load_dataset(**hub_kwargs(cfg, src))
        if hub.streaming:
            ds = ds.shuffle(seed=cfg.seed, buffer_size=10_000) if hub.shuffle else ds
            cap = getattr(cfg.data.max_rows, src.split)
            return as_text(pd.DataFrame(list(ds.take(cap) if cap else ds)))
        ds = ds.shuffle(seed=cfg.seed) if hub.shuffle else ds
        if hub.fraction < 1:
            ds = ds.select(range(keep_count(len(ds), hub.fraction)))
        return as_text(ds.to_pandas())
    except _hub_errors() as exc:
        raise UserError(_hub_problem(src, exc)) from None


def check_hub(src: Source, cfg: Config) -> Optional[str]:
    """Whether the hub dataset and its split resolve, without downloading the data (for preflight)."""
    import datasets

    kwargs = hub_kwargs(cfg, src)
    split = kwargs.pop("split")
    for key in ("streaming", "trust_remote_code"):
        kwargs.pop(key, None)
    try:
        builder = datasets.load_dataset_builder(**kwargs)
    except _hub_errors() as exc:
        return _hub_problem(src, exc)
    known = [str(s) for s in (builder.config.data_files or builder.info.splits or {})]
    wanted = [part.split("[")[0].strip() for part in str(split).split("+")]
    if known and any(w not in known for w in wanted):
        return (f"{src.key}.split = '{split}': the dataset has split(s) {', '.join(known)}; "
                f"set {src.key}.split to one of them")
    return None


def read_source(src: Source, cfg: Config) -> tuple[Optional[pd.DataFrame], list[str]]:
    """One source's rows in canonical columns plus ``source``, or None and the problems found."""
    if src.hub is None:
        df, problems = _read_files(src, cfg)
    else:
        where = f"{src.key} ({src.hub.path})"
        df, problems = map_columns(load_hub(src, cfg), cfg.data.columns, src.split, where, 1, _prefix(src),
                                   max_chars=_held_out_cap(cfg, src.split), generate_ids=cfg.data.generate_ids)
    if problems or df is None:
        return None, problems
    df["source"] = src.label
    return df, []


def duplicates_across(frames: list[pd.DataFrame], split: str) -> list[str]:
    """Ids used more than once in a split whose sources were each valid on their own."""
    both = pd.concat([f[["fname", "source"]] for f in frames], ignore_index=True)
    dup = both[both["fname"].duplicated(keep=False)]
    lines = []
    for name, where in list(dup.groupby("fname", sort=False)["source"].agg(lambda s: list(dict.fromkeys(s))).items()):
        places = " and ".join(where) if len(where) > 1 else f"more than once in {where[0]}"
        lines.append(f"data.{split}: fname {name} appears in {places}; ids must be unique across the {split} "
                     "sources (rename them, or set data.generate_ids=true with data.columns.fname naming a column "
                     "the files lack)")
    more = [f"data.{split}: ... {len(lines) - MAX_LISTED} more duplicate fnames"] if len(lines) > MAX_LISTED else []
    return lines[:MAX_LISTED] + more


def keep_count(n: int, fraction: float) -> int:
    """Rows kept of ``n`` for a fraction: rounded, at least one when there are any."""
    return n if fraction >= 1 or n == 0 else min(n, max(1, round(n * fraction)))


def subsample(df: pd.DataFrame, fraction: float, max_rows: Optional[int], seed: int) -> pd.DataFrame:
    """A seeded random subset of ``fraction`` of the rows, at most ``max_rows``, in the original order."""
    keep = keep_count(len(df), fraction)
    keep = keep if max_rows is None else min(keep, max_rows)
    if keep >= len(df):
        return df
    chosen = np.sort(np.random.default_rng(seed).permutation(len(df))[:keep])
    return df.iloc[chosen].reset_index(drop=True)


def weighted(df: pd.DataFrame, weight: float, seed: int) -> pd.DataFrame:
    """``weight`` times the rows: whole copies (fnames of copy k get ``~k``), plus a seeded share for the rest."""
    whole, part = int(weight), weight - int(weight)
    copies = [df if k == 1 else df.assign(fname=df["fname"] + f"~{k}") for k in range(1, whole + 1)]
    if part > 1e-9:
        extra = subsample(df, part, None, seed)
        copies.append(extra.assign(fname=extra["fname"] + f"~{whole + 1}") if whole else extra)
    return pd.concat(copies, ignore_index=True) if copies else df.iloc[0:0]


def length_filter(df: pd.DataFrame, min_chars: int, max_chars: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept, dropped): dialogues shorter than ``min_chars`` or longer than ``max_chars`` (0: no limit)."""
    n = df["dialogue"].astype(str).str.strip().str.len()
    reason, detail = pd.Series("", index=df.index), pd.Series("", index=df.index)
    off = pd.Series(False, index=df.index)
    short, long = (n < min_chars if min_chars else off), (n > max_chars if max_chars else off)
    reason[short], detail[short] = "dialogue_too_short", n[short].astype(str) + f" chars < data.min_dialogue_chars={min_chars}"
    reason[long], detail[long] = "dialogue_too_long", n[long].astype(str) + f" chars > data.max_dialogue_chars={max_chars}"
    drop = reason != ""
    dropped = df.loc[drop, ["fname", "source"]].assign(reason=reason[drop], detail=detail[drop])
    return df[~drop].reset_index(drop=True), dropped


def collect(cfg: Config, split: str, read_hub: bool = True) -> tuple[list[tuple[Source, pd.DataFrame]], list[str]]:
    """Every source of a split read and checked; with ``read_hub=False`` hub sources are only resolved."""
    sources, problems = resolve_sources(cfg, split)
    pairs = []
    for src in sources:
        if src.hub is not None and not read_hub:
            problem = check_hub(src, cfg)
            problems += [problem] if problem else []
            continue
        if src.hub is None and not src.files:
            continue
        try:
            df, found = read_source(src, cfg)
        except UserError as exc:
            df, found = None, exc.problems
        problems += found
        if df is not None:
            pairs.append((src, df))
    if not problems and len(pairs) > 0:
        problems += duplicates_across([df for _, df in pairs], split)
    return pairs, problems


def load_split_sources(cfg: Config, split: str) -> SplitData:
    """A split materialized from its sources: filtered, weighted and subsampled; UserError lists every problem."""
    pairs, problems = collect(cfg, split)
    if problems:
        raise UserError(*problems)
    kept, dropped = [], []
    for src, df in pairs:
        if split == "train":
            df, out = length_filter(df, cfg.data.min_dialogue_chars, cfg.data.max_dialogue_chars)
            dropped.append(out.assign(split=split))
            df = weighted(df, src.weight, cfg.seed + src.index)
        kept.append(df)
    frame = subsample(pd.concat(kept, ignore_index=True), getattr(cfg.data.fraction, split),
                      getattr(cfg.data.max_rows, split), cfg.seed)
    if frame.empty:
        raise UserError(f"data.{split}: no rows left after data.min_dialogue_chars/max_dialogue_chars, "
                        f"data.train_weights, data.fraction.{split} and data.max_rows.{split}; loosen them")
    if split == "test" and (cfg.data.fraction.test < 1 or cfg.data.max_rows.test is not None):
        log.warning("data: the test split is subsampled to %d rows; submission.csv will not cover the full test set",
                    len(frame))
    rejected = pd.concat([d for d in dropped if len(d)] or [pd.DataFrame(columns=REJECTED_COLUMNS)], ignore_index=True)
    frame = frame[[c for c in (*CANONICAL, "source") if c in frame.columns]]
    return SplitData(frame, rejected[REJECTED_COLUMNS], frame["source"].value_counts(sort=False).to_dict())


def check_sources(cfg: Config) -> list[str]:
    """Every problem with the configured sources of all splits (hub datasets resolved, not downloaded)."""
    problems = []
    for split in SPLITS:
        problems += collect(cfg, split, read_hub=False)[1]
    return problems


def is_plain(cfg: Config, split: str) -> bool:
    """Whether the split is one canonical CSV used as it is, so stages may read it without preprocessing."""
    d, entries = cfg.data, file_entries(cfg, split)
    one_csv = len(entries) == 1 and entries[0].lower().endswith(".csv") and not any(c in entries[0] for c in GLOB_CHARS)
    untouched = (getattr(d.hub, split).path is None and d.columns == ColumnMap()
                 and getattr(d.fraction, split) >= 1 and getattr(d.max_rows, split) is None)
    # the length cap is a sanity limit: it only drops rows nobody has on purpose (see data.max_dialogue_chars)
    unfiltered = split != "train" or (not d.min_dialogue_chars
                                      and all(w == 1 for w in d.train_weights))
    return one_csv and untouched and unfiltered


def plain_file(cfg: Config, split: str) -> Path:
    """The single CSV of a plain split."""
    return resolve_path(file_entries(cfg, split)[0], resolve_input(cfg.paths.data_dir))


def local_inputs(cfg: Config) -> dict[str, Path]:
    """Local files and folders the splits read, for the preprocess fingerprint (hub data is pinned by config)."""
    base, found = resolve_input(cfg.paths.data_dir), {}
    for split in SPLITS:
        for i, entry in enumerate(file_entries(cfg, split)):
            path = resolve_path(entry, base)
            globbed = any(c in entry for c in GLOB_CHARS)
            matches = [Path(p) for p in sorted(glob.glob(str(path)))] if globbed else [path]
            found.update({f"raw_{split}_{i}_{j}": p for j, p in enumerate(matches)})
        found.update({f"hub_{split}_{j}": resolve_path(f, base)
                      for j, f in enumerate(getattr(cfg.data.hub, split).data_files)})
    return found


def preflight_problems(cfg: Config, selected: tuple[str, ...], preprocess_done: bool) -> list[str]:
    """Data problems for a run of ``selected`` stages, checked only where the run will read the sources."""
    if "preprocess" in selected:
        return check_sources(cfg)
    if preprocess_done:
        return []
    problems = [f"data.{s}_file / data.hub.{s}: the {s} split is not one canonical CSV used as it is (it has several "
                "or non-CSV sources, a column mapping, or sampling or filter settings), so the preprocess stage must "
                "materialize it: run preprocess (to keep the text unchanged set preprocess.denoise=false "
                "preprocess.typo_fix=false)" for s in SPLITS if not is_plain(cfg, s)]
    return problems or check_sources(cfg)
