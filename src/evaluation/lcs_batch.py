"""Many LCS back-traces at once with numpy, each choosing the LCS the ``rouge`` 1.0.1 package picks.

ROUGE-L in the package is a union of reconstructed LCS *tokens*, so the length alone (what a
bit-parallel LCS gives) is not enough: which of several equally long LCSs is traced decides the
union's size. This module computes the package's DP table and its exact back-trace for a batch
of (reference sentence, hypothesis sentence) pairs, vectorised across pairs:

* a table row is ``cummax(where(match, row_above[j-1] + 1, row_above[j]))`` -- the usual LCS
  recurrence unrolled along the row (neighbouring cells differ by at most 1, so a match cell
  equals ``above-left + 1`` and cummax reproduces ``max(up, left)`` elsewhere);
* the back-trace walks every pair of a batch one step per iteration with the package's rule:
  take a match diagonally, else move up only when the cell above is strictly larger.

``rouge_compat.lcs_tokens`` is the one-pair reference this must equal (tests check it).
"""
from __future__ import annotations

from itertools import chain
from typing import Sequence

import numpy as np

BUCKET = 8  # pairs are padded to lengths rounded up to this, so one batch has one shape
CELLS_PER_CHUNK = 1 << 23  # table cells per batch: 16 MiB of int16, small enough for 2 cores' caches
REF_PAD, HYP_PAD = -1, -2  # padding ids that match nothing, not even each other


def _rounded(length: int) -> int:
    return -(-length // BUCKET) * BUCKET


def _padded(rows: Sequence[Sequence[int]], width: int, pad: int) -> np.ndarray:
    lengths = np.fromiter((len(row) for row in rows), dtype=np.int64, count=len(rows))
    out = np.full((len(rows), width), pad, dtype=np.int64)
    # One flat copy into the leading cells of each row instead of a Python loop over rows.
    out[np.arange(width) < lengths[:, None]] = np.fromiter(chain.from_iterable(rows), dtype=np.int64,
                                                           count=int(lengths.sum()))
    return out


def _table(ref: np.ndarray, hyp: np.ndarray) -> np.ndarray:
    """The package's LCS table for each pair: shape (pairs, ref width + 1, hyp width + 1)."""
    pairs, n = ref.shape
    m = hyp.shape[1]
    dtype = np.int16 if max(n, m) < np.iinfo(np.int16).max else np.int32
    table = np.zeros((pairs, n + 1, m + 1), dtype=dtype)
    for i in range(1, n + 1):
        above = table[:, i - 1]
        candidate = np.where(ref[:, i - 1 : i] == hyp, above[:, :-1] + 1, above[:, 1:])
        np.maximum.accumulate(candidate, axis=1, out=table[:, i, 1:])
    return table


def _back_trace(table: np.ndarray, ref: np.ndarray, hyp: np.ndarray, n: np.ndarray, m: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """(pair index, token id) of every LCS token on each pair's package back-trace."""
    width = table.shape[2]
    flat = table.reshape(len(table), -1)
    i, j = n.astype(np.int64), m.astype(np.int64)
    live = np.flatnonzero(flat[np.arange(len(flat)), i * width + j] > 0)  # a 0 cell: nothing left to take
    found_pair, found_token = [], []
    while live.size:
        ii, jj = i[live], j[live]
        ref_token, hyp_token = ref[live, ii - 1], hyp[live, jj - 1]
        match = ref_token == hyp_token
        found_pair.append(live[match])
        found_token.append(ref_token[match])
        up = flat[live, (ii - 1) * width + jj] > flat[live, ii * width + jj - 1]
        ii, jj = ii - (match | up), jj - (match | ~up)
        i[live], j[live] = ii, jj
        alive = (ii > 0) & (jj > 0)
        alive[alive] = flat[live[alive], ii[alive] * width + jj[alive]] > 0
        live = live[alive]
    if not found_pair:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(found_pair), np.concatenate(found_token)


def _chunks(order: list[int], shapes: dict[int, tuple[int, int]]) -> list[list[int]]:
    # Consecutive pairs of one padded shape, cut so that one table stays under CELLS_PER_CHUNK.
    chunks: list[list[int]] = []
    for k in order:
        n, m = shapes[k]
        per_pair = (n + 1) * (m + 1)
        if chunks and shapes[chunks[-1][0]] == (n, m) and (len(chunks[-1]) + 1) * per_pair <= CELLS_PER_CHUNK:
            chunks[-1].append(k)
        else:
            chunks.append([k])
    return chunks


def _group(where: np.ndarray, tokens: np.ndarray, count: int) -> list[frozenset[int]]:
    # One sort instead of a Python loop over every traced token.
    order = np.lexsort((tokens, where))
    where, tokens = where[order], tokens[order]
    bounds = np.searchsorted(where, np.arange(count + 1))
    listed = tokens.tolist()
    return [frozenset(listed[bounds[k]:bounds[k + 1]]) for k in range(count)]


def lcs_token_sets(pairs: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[frozenset[int]]:
    """For each (reference ids, hypothesis ids) pair, the distinct tokens of the package's LCS.

    Equal to ``set(rouge_compat.lcs_tokens(ref, hyp))`` on the same token ids, pair by pair.
    Token ids must be non-negative. Pairs without a common token skip the table.
    """
    result: list[frozenset[int]] = [frozenset()] * len(pairs)
    pending = [k for k, (ref, hyp) in enumerate(pairs) if not set(ref).isdisjoint(hyp)]
    shapes = {k: (_rounded(len(pairs[k][0])), _rounded(len(pairs[k][1]))) for k in pending}
    order = sorted(pending, key=lambda k: shapes[k])
    for chunk in _chunks(order, shapes):
        n_pad, m_pad = shapes[chunk[0]]
        refs, hyps = [pairs[k][0] for k in chunk], [pairs[k][1] for k in chunk]
        ref, hyp = _padded(refs, n_pad, REF_PAD), _padded(hyps, m_pad, HYP_PAD)
        n = np.fromiter(map(len, refs), dtype=np.int64, count=len(chunk))
        m = np.fromiter(map(len, hyps), dtype=np.int64, count=len(chunk))
        where, tokens = _back_trace(_table(ref, hyp), ref, hyp, n, m)
        for k, found in zip(chunk, _group(where, tokens, len(chunk))):
            result[k] = found
    return result
