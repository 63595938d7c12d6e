"""Tests of merge_frames: provenance, caps, determinism, duplicate and leak removal."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from src.augment.swap import swap_frame
from src.data.merge import merge_frames
from src.utils.errors import UserError

REPO = Path(__file__).resolve().parents[2]
DEBUG = REPO / "data" / "debug"


@pytest.fixture(scope="module")
def splits() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return tuple(pd.read_csv(DEBUG / f"{name}.csv") for name in ("train", "dev", "test"))


def _row(fname: str, dialogue: str, source: str, parent: str, summary: str = "#Person1#은 무언가를 합니다.") -> dict:
    return {"fname": fname, "dialogue": dialogue, "summary": summary, "source": source, "parent_fname": parent}


def _paraphrase(train: pd.DataFrame, i: int) -> str:
    """A cheap 'paraphrase' that changes enough characters to stay below 0.8 Jaccard."""
    return "\n".join(line.split(": ", 1)[0] + ": 음, 그러니까 말하자면 " + line.split(": ", 1)[1][::-1]
                     for line in train["dialogue"][i].split("\n"))


def test_originals_only_get_provenance(splits) -> None:
    train, dev, test = splits
    merged, removed, stats = merge_frames(train, None, [dev, test], {}, seed=0, near_dup_threshold=0.8)
    assert list(merged.columns) == ["fname", "dialogue", "summary", "topic", "source", "parent_fname"]
    assert len(merged) == 48 and removed.empty
    assert (merged["source"] == "original").all() and (merged["parent_fname"] == merged["fname"]).all()
    assert stats == {"rows_in": 48, "rows_out": 48, "in": {"original": 48}, "out": {"original": 48}, "removed": {}}
    assert list(merged["fname"]) != list(train["fname"])  # shuffled
    unshuffled, _, _ = merge_frames(train, None, [], {}, seed=0, near_dup_threshold=0.8, shuffle=False)
    assert list(unshuffled["fname"]) == list(train["fname"])
    no_seed, _, _ = merge_frames(train, None, [], {}, seed=None, near_dup_threshold=0.8)
    assert list(no_seed["fname"]) == list(train["fname"])


def test_deterministic_order_by_seed(splits) -> None:
    train, dev, test = splits
    swaps = swap_frame(train, 20, seed=1)
    runs = [merge_frames(train, swaps, [dev, test], {}, seed=s, near_dup_threshold=0.8)[0] for s in (3, 3, 4)]
    assert runs[0].equals(runs[1])
    assert list(runs[0]["fname"]) != list(runs[2]["fname"])
    assert sorted(runs[0]["fname"]) == sorted(runs[2]["fname"])


def test_caps_per_source(splits) -> None:
    train, dev, test = splits
    swaps = swap_frame(train, 20, seed=1)
    paraphrases = pd.DataFrame([_row(f"para_{i}", _paraphrase(train, i), "paraphrase", f"train_{i}") for i in range(6)])
    augmented = pd.concat([swaps, paraphrases], ignore_index=True)
    merged, removed, stats = merge_frames(train, augmented, [dev, test], {"swap": 5, "paraphrase": None}, 0, 0.8)
    assert stats["out"] == {"original": 48, "swap": 5, "paraphrase": 6}
    assert stats["removed"] == {"cap": 15}
    assert set(removed["source"]) == {"swap"} and (removed["reason"] == "cap").all()
    again = merge_frames(train, augmented, [dev, test], {"swap": 5}, 0, 0.8)[0]
    assert sorted(again["fname"]) == sorted(merged["fname"])  # the capped subset depends only on the seed
    unseeded = merge_frames(train, augmented, [dev, test], {"swap": 5}, None, 0.8)[0]
    assert list(unseeded["fname"][48:53]) == list(swaps["fname"][:5])  # no seed: first rows, input order


def test_topic_is_inherited_from_parent(splits) -> None:
    train, _, _ = splits
    augmented = pd.DataFrame([_row("para_2", _paraphrase(train, 2), "paraphrase", "train_2")])
    merged, _, _ = merge_frames(train, augmented, [], {}, 0, 0.8)
    assert merged.set_index("fname").loc["para_2", "topic"] == train["topic"][2]


def test_exact_and_near_duplicates(splits) -> None:
    train, _, _ = splits
    text = _paraphrase(train, 0)
    augmented = pd.DataFrame([
        _row("para_0", text, "paraphrase", "train_0"),
        _row("para_0b", text.replace("\n", "\n  ") + "  ", "paraphrase", "train_0"),  # whitespace only
        _row("para_0c", text.replace("음, 그러니까", "음, 그러니까요"), "paraphrase", "train_0"),  # near
        _row("copy_3", train["dialogue"][3], "synthetic", ""),  # a copy of an original
        _row("train_5", _paraphrase(train, 7), "synthetic", ""),  # fname clash with an original
    ])
    merged, removed, stats = merge_frames(train, augmented, [], {}, 0, 0.8)
    reasons = dict(zip(removed["fname"], removed["reason"]))
    assert reasons == {"para_0b": "exact_duplicate", "copy_3": "exact_duplicate",
                       "para_0c": "near_duplicate", "train_5": "duplicate_fname"}
    assert "para_0" in set(merged["fname"]) and "train_3" in set(merged["fname"])
    assert stats["removed"] == {"exact_duplicate": 2, "near_duplicate": 1, "duplicate_fname": 1}
    assert {"reason", "detail"} <= set(removed.columns)


def test_swap_rows_are_not_near_duplicates_of_their_parents(splits) -> None:
    train, _, _ = splits
    merged, removed, _ = merge_frames(train, swap_frame(train, 48, seed=0), [], {}, 0, 0.8)
    assert len(merged) == 96 and removed.empty


def test_leaks_into_train_are_removed(splits) -> None:
    train, dev, test = splits
    originals = pd.concat([train, dev.iloc[[0]].assign(fname="train_dev0")], ignore_index=True)
    near_test = test["dialogue"][1].replace("겨울이라", "겨울이니까")
    augmented = pd.DataFrame([
        _row("syn_leak", near_test, "synthetic", ""),
        _row("para_dev", _paraphrase(dev, 2), "paraphrase", "dev_2"),
        _row("para_ok", _paraphrase(train, 4), "paraphrase", "train_4"),
    ])
    merged, removed, stats = merge_frames(originals, augmented, [dev, test], {}, 0, 0.8)
    reasons = dict(zip(removed["fname"], removed["reason"]))
    assert reasons == {"train_dev0": "leak_exact", "syn_leak": "leak_near_duplicate", "para_dev": "leak_parent"}
    assert "test_1" in removed.set_index("fname").loc["syn_leak", "detail"]
    assert "para_ok" in set(merged["fname"])
    held_out = {" ".join(d.split()) for d in pd.concat([dev, test])["dialogue"]}
    assert not any(" ".join(d.split()) in held_out for d in merged["dialogue"])


def test_missing_text_rows_are_removed(splits) -> None:
    train, _, _ = splits
    augmented = pd.DataFrame([_row("syn_empty", "  ", "synthetic", ""), _row("syn_nosum", _paraphrase(train, 1), "synthetic", "", summary=None)])
    _, removed, _ = merge_frames(train, augmented, [], {}, 0, 0.8)
    assert list(removed["reason"]) == ["missing_text", "missing_text"]


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"caps": {"swaps": 3}}, "unknown source 'swaps'"),
    ({"caps": {"swap": -1}}, "caps.swap"),
    ({"near_dup_threshold": 0.0}, "near_dup_threshold"),
    ({"augmented": pd.DataFrame([_row("x", "#Person1#: 네.", "backtranslation", "")])}, "unknown source"),
    ({"augmented": pd.DataFrame({"fname": ["x"], "dialogue": ["#Person1#: 네."], "summary": ["s"]})}, "'source'"),
    ({"originals": pd.DataFrame({"fname": ["x"], "dialogue": ["#Person1#: 네."]})}, "no column 'summary'"),
])
def test_user_errors(splits, kwargs: dict, fragment: str) -> None:
    train, dev, _ = splits
    args = {"originals": train, "augmented": None, "held_out": [dev], "caps": {}, "seed": 0,
            "near_dup_threshold": 0.8, **kwargs}
    with pytest.raises(UserError, match=fragment):
        merge_frames(**args)


def test_input_provenance_is_kept_as_data_source() -> None:
    import pandas as pd

    from src.data.merge import merge_frames

    originals = pd.DataFrame({"fname": ["a", "b"], "dialogue": ["#Person1#: 가나다라\n#Person2#: 마바사", "#Person1#: 아자차\n#Person2#: 카타파하"],
                              "summary": ["요약 하나", "요약 둘"], "source": ["train.csv", "extra.jsonl"]})
    merged, _, _ = merge_frames(originals, None, [], {}, 0, 0.9)
    assert set(merged["source"]) == {"original"}
    assert dict(zip(merged["fname"], merged["data_source"])) == {"a": "train.csv", "b": "extra.jsonl"}
