"""Few-shot selection: BM25 over Kiwi morphemes ('similar'), never the example itself or its family."""
from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from src.config import PromptConfig
from src.prompting import fewshot
from src.prompting.fewshot import Bm25Index, ShotSelector, morphemes, similar_pool

POOL = pd.DataFrame({
    "fname": ["t0", "t1", "t2", "t3", "t3_swap", "t4"],
    "dialogue": [
        "#Person1#: 병원에 예약하고 싶어요.\n#Person2#: 성함이 어떻게 되세요?",
        "#Person1#: 기차표를 사려고 하는데요.\n#Person2#: 어디까지 가세요?",
        "#Person1#: 생일 파티에 올 거야?\n#Person2#: 당연하지, 케이크도 사 갈게.",
        "#Person1#: 이사 갈 집을 구했어요.\n#Person2#: 어디로 가세요?",
        "#Person2#: 이사 갈 집을 구했어요.\n#Person1#: 어디로 가세요?",
        "#Person1#: 병원은 몇 시에 문을 열어요?\n#Person2#: 아홉 시에 열어요.",
    ],
    "summary": ["병원 예약.", "기차표 구매.", "생일 파티.", "이사.", "이사.", "병원 시간."],
    "parent_fname": ["", "", "", "", "t3", ""],
})


def similar(n: int = 1) -> PromptConfig:
    return PromptConfig(num_fewshot=n, fewshot_selection="similar")


def test_bm25_ranks_by_rare_shared_terms_with_deterministic_ties() -> None:
    docs = [["a", "b"], ["a", "c", "c"], ["d"], ["a", "b"]]
    index = Bm25Index.build(docs)
    assert index.top(["c"], 1) == [1]
    assert index.top(["b"], 2) == [0, 3], "equal scores: earlier document first"
    assert index.top(["b"], 2, exclude=[0]) == [3, 1]
    assert index.top(["zzz"], 2) == [0, 1], "no shared term: all zero, still deterministic"
    assert index.top(["a"], 10, exclude=[0, 1, 2, 3]) == []


def test_morphemes_split_particles_so_inflected_forms_match() -> None:
    a, b = morphemes(["병원에 가요.", "병원은 어디예요?"])
    assert "병원" in a and "병원" in b and "." not in a
    assert "#Person1#" in morphemes(["#Person1#: 네."])[0]


def test_similar_picks_the_topical_neighbour_and_never_the_family() -> None:
    sel = ShotSelector(POOL, similar(), seed=0)
    assert sel.select("t0", POOL.dialogue[0]) == [(POOL.dialogue[5], "병원 시간.")]
    # t3 and its speaker swap are one family: neither is shown for the other
    assert sel.select("t3", POOL.dialogue[3])[0][1] != "이사."
    assert sel.select("t3_swap", POOL.dialogue[4])[0][1] != "이사."
    dev_dialogue = "#Person1#: 기차표 두 장 주세요."
    assert sel.select("dev_7", dev_dialogue) == [(POOL.dialogue[1], "기차표 구매.")]
    assert sel.select("dev_8", POOL.dialogue[1])[0][0] != POOL.dialogue[1], "a dialogue identical to a pool row skips it"


def test_similar_is_deterministic_and_the_index_is_built_once(monkeypatch) -> None:
    first = ShotSelector(POOL, similar(2), seed=0)
    picks = [first.select(f, d) for f, d in zip(POOL.fname, POOL.dialogue)]
    calls = []
    monkeypatch.setattr(fewshot, "morphemes", lambda texts: calls.append(len(texts)) or [[] for _ in texts])
    second = ShotSelector(POOL, similar(2), seed=99)
    assert [second.select(f, d) for f, d in zip(POOL.fname, POOL.dialogue)] == picks
    assert calls == [], "the pool's index and tokens come from the process cache"
    assert similar_pool(POOL.dialogue.tolist()) is similar_pool(list(POOL.dialogue))


def test_similar_needs_the_dialogue_of_an_unseen_example() -> None:
    with pytest.raises(ValueError, match="select\\(fname, dialogue\\)"):
        ShotSelector(POOL, similar(), seed=0).select("test_1")


@pytest.mark.parametrize("mode", ["fixed", "random", "similar"])
def test_no_mode_shows_an_example_its_own_family(mode: str) -> None:
    cfg = PromptConfig(num_fewshot=3, fewshot_selection=mode)
    sel = ShotSelector(POOL, cfg, seed=3)
    for fname, dialogue, summary in zip(POOL.fname, POOL.dialogue, POOL.summary):
        shots = sel.select(fname, dialogue)
        assert len(shots) == 3
        assert (dialogue, summary) not in shots
        if fname.startswith("t3"):
            assert all(s != "이사." for _, s in shots)
    assert ShotSelector(POOL, replace(cfg, num_fewshot=0), 3).select("t0", POOL.dialogue[0]) == []
