"""The bundled debug data (data/debug) has the competition format and the promised content."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from src.augment.validators import build_index, check_dialogue_format
from src.data.preprocess.denoise import denoise_frame, load_rules
from tests.conftest import need_shared

REPO = Path(__file__).resolve().parents[2]
DEBUG = REPO / "data" / "debug"
SHARED_DATA = REPO.parent / "shared" / "data" / "dialogsum-ko"
SPLITS = {"train": (48, ["fname", "dialogue", "summary", "topic"]),
          "dev": (12, ["fname", "dialogue", "summary", "topic"]),
          "test": (12, ["fname", "dialogue"])}


@pytest.mark.parametrize("split", SPLITS)
def test_shape_columns_and_names(split: str) -> None:
    rows, columns = SPLITS[split]
    df = pd.read_csv(DEBUG / f"{split}.csv")
    assert list(df.columns) == columns and len(df) == rows
    assert list(df["fname"]) == [f"{split}_{i}" for i in range(rows)]
    assert not df.isna().any().any()
    assert not (df.astype(str).apply(lambda col: col.str.strip() == "")).any().any()
    assert df["dialogue"].nunique() == rows


@pytest.mark.parametrize("split", SPLITS)
def test_dialogues_after_denoise_are_well_formed(split: str) -> None:
    df, _ = denoise_frame(pd.read_csv(DEBUG / f"{split}.csv"), load_rules())
    for dialogue in df["dialogue"]:
        assert check_dialogue_format(dialogue, 4) == (True, "")
        assert len(dialogue.split("\n")) <= 12


def test_content_covers_masks_third_speakers_and_summary_style() -> None:
    frames = [pd.read_csv(DEBUG / f"{split}.csv") for split in SPLITS]
    text = "\n".join(d for df in frames for d in df["dialogue"])
    for mask in ("#PhoneNumber#", "#Address#", "#DateAndTime#", "#PersonName#", "#Email#"):
        assert mask in text, mask
    assert sum("#Person3#" in d for df in frames for d in df["dialogue"]) >= 3
    summaries = pd.concat([frames[0]["summary"], frames[1]["summary"]])
    assert all(re.search(r"#Person\d#", s) for s in summaries)


def test_only_train_has_noise() -> None:
    rules = load_rules()
    _, train_counts = denoise_frame(pd.read_csv(DEBUG / "train.csv"), rules)
    assert sum(train_counts.values()) >= 10
    for split in ("dev", "test"):
        _, counts = denoise_frame(pd.read_csv(DEBUG / f"{split}.csv"), rules)
        assert counts == {}, split


def test_debug_data_is_not_copied_from_the_competition_data() -> None:
    need_shared(SHARED_DATA)
    real = [d for split in ("dev", "test") for d in pd.read_csv(SHARED_DATA / f"{split}.csv")["dialogue"]]
    index = build_index(real)
    ours = [d for split in SPLITS for d in pd.read_csv(DEBUG / f"{split}.csv")["dialogue"]]
    assert max(index.max_similarity_many(ours)) < 0.5
