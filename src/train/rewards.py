"""The rl stage's reward: the competition's score of each completion, and guards against gaming it.

Each term is one TRL reward function (TRL logs its mean and std as ``rewards/<name>/...``) weighted
by ``rl.<name>_weight``; the completion is post-processed as inference would post-process it
(``src.inference.postprocess``) before it is scored:

- ``rouge``: final / 100 (the mean of ROUGE-1/2/L F1, each averaged over the row's references) with
  ``evaluation.tokenizer``, the leaderboard's number divided by 100 (``src.evaluation.score_rows``);
- ``length``: 0 while the word count is within ``rl.length_tolerance`` of the references' mean,
  then minus the relative excess, at least -1 (GRPO on ROUGE alone drifts long or collapses short);
- ``stop``: -1 for a completion that ended without one of the prompt builder's stop tokens (the cap
  cut it), else 0;
- ``fluency``: Kiwi's log-probability per morpheme (``src.augment.fluency``) under
  ``rl.min_kiwi_score`` costs the gap, at least -1 (word salad that still shares morphemes).

``CompletionAudit`` counts, from the completion ids TRL hands the stop term, how many completions
stopped, how many hold a stop id before their end or a banned (``inference.block_scripts``) id:
the check that GRPO's generation respects the prompt builder's stop tokens and the banned ids.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, Callable, Optional, Sequence

from src.augment.fluency import score_per_morpheme
from src.config import Config
from src.evaluation import score_rows
from src.inference.postprocess import postprocess

Reward = Callable[..., list[float]]


@dataclass
class CompletionAudit:
    """What the generated completions held (counted since this process started)."""

    completions: int = 0
    stopped: int = 0
    stop_before_end: int = 0  # a stop id that is not the last id: generation went on past a stop
    banned_tokens: int = 0  # ids of inference.block_scripts that were generated anyway

    def add(self, ids: Sequence[int], stop_ids: frozenset[int], banned: frozenset[int]) -> None:
        """Count one completion's ids."""
        self.completions += 1
        self.stopped += bool(ids) and ids[-1] in stop_ids
        self.stop_before_end += any(t in stop_ids for t in ids[:-1])
        self.banned_tokens += sum(t in banned for t in ids)

    def as_dict(self) -> dict[str, int]:
        """The counts for the manifest."""
        return asdict(self)


def clean_texts(completions: Sequence[str], cut_unfinished: bool) -> list[str]:
    """The completions as inference would write them (before the empty-output fallback, which scores 0 here)."""
    return [postprocess(str(c), cut_unfinished) for c in completions]


def rouge(completions: Sequence[str], references: Sequence[Sequence[str]], tokenizer: str = "mecab",
          cut_unfinished: bool = True, **_: Any) -> list[float]:
    """final / 100 of each completion against its row's references (1 = identical to them)."""
    scores = score_rows(clean_texts(completions, cut_unfinished), [list(r) for r in references], tokenizer)
    return [sum(s) / 3 for s in scores]


def words(text: str) -> int:
    """Whitespace-separated words (the unit the length goal is stated in)."""
    return len(str(text).split())


def length(completions: Sequence[str], references: Sequence[Sequence[str]], tolerance: float = 0.2,
           cut_unfinished: bool = True, **_: Any) -> list[float]:
    """0 within ``tolerance`` of the references' mean word count, then minus the relative excess (at least -1)."""
    out = []
    for text, refs in zip(clean_texts(completions, cut_unfinished), references):
        target = max(1.0, sum(words(r) for r in refs) / max(1, len(refs)))
        gap = abs(words(text) / target - 1.0) - tolerance
        out.append(-min(1.0, max(0.0, gap)))
    return out


def stop(completions: Sequence[str], completion_ids: Sequence[Sequence[int]], stop_ids: frozenset[int] = frozenset(),
         banned: frozenset[int] = frozenset(), audit: Optional[CompletionAudit] = None, **_: Any) -> list[float]:
    """-1 for a completion whose last id is no stop id (it ran into the cap), else 0; audits the ids."""
    for ids in completion_ids:
        if audit is not None:
            audit.add(list(ids), stop_ids, banned)
    return [0.0 if ids and ids[-1] in stop_ids else -1.0 for ids in completion_ids]


def fluency(completions: Sequence[str], floor: float = -8.0, cut_unfinished: bool = True, **_: Any) -> list[float]:
    """0 at or above ``floor`` (Kiwi log-probability per morpheme), else minus the gap, at least -1; empty: -1."""
    out = []
    for text in clean_texts(completions, cut_unfinished):
        out.append(-min(1.0, max(0.0, floor - score_per_morpheme(text))) if text else -1.0)
    return out


def reward_functions(cfg: Config, stop_ids: Sequence[int], banned: Sequence[int],
                     audit: CompletionAudit) -> tuple[list[Reward], list[float]]:
    """The terms with a positive weight (TRL names each by its function) and their weights; ``stop`` always runs,
    weighted 0 when ``rl.no_stop_weight`` is 0, since it also audits the ids."""
    r, cut = cfg.rl, cfg.inference.cut_unfinished
    terms: list[tuple[Reward, float]] = [
        (partial(rouge, tokenizer=cfg.evaluation.tokenizer, cut_unfinished=cut), r.rouge_weight),
        (partial(length, tolerance=r.length_tolerance, cut_unfinished=cut), r.length_weight),
        (partial(fluency, floor=r.min_kiwi_score, cut_unfinished=cut), r.fluency_weight)]
    kept = [(f, w) for f, w in terms if w > 0]
    kept.append((partial(stop, stop_ids=frozenset(stop_ids), banned=frozenset(banned), audit=audit), r.no_stop_weight))
    return [f for f, _ in kept], [w for _, w in kept]
