"""A synthetic keyword -> summary task and tiny models built on it, for the training tests."""
from __future__ import annotations

import random
from pathlib import Path

import pandas as pd

# the summary is fully determined by which keyword the dialogue mentions (and starts with it)
RULES = {
    "병원": "병원 예약을 위해 #Person1#이 #Person2#에게 도움을 청한다.",
    "기차": "기차표 예매 방법을 #Person2#가 #Person1#에게 알려 준다.",
    "생일": "생일 파티를 두 사람이 함께 준비하기로 한다.",
    "이사": "이사할 새 집에 대해 #Person1#이 이야기한다.",
}
FILLER = ["안녕하세요.", "네, 좋아요.", "오늘 날씨가 정말 좋네요.", "잠깐만 기다려 주세요.", "그럼 그렇게 할게요.",
          "고마워요.", "무슨 일 있어요?", "저도 그렇게 생각해요.", "시간이 좀 걸릴 것 같아요.", "알겠습니다."]
KEY_LINES = ["{kw} 때문에 연락했어요.", "혹시 {kw} 관련해서 시간 있어요?", "{kw} 얘기를 좀 하고 싶어요."]


def synthetic_frame(n: int, seed: int, prefix: str) -> pd.DataFrame:
    """``n`` dialogues of 3-5 turns; one turn names a keyword, and the summary is that keyword's sentence."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        kw = rng.choice(list(RULES))
        turns = [rng.choice(FILLER) for _ in range(rng.randint(3, 5))]
        turns[rng.randrange(len(turns))] = rng.choice(KEY_LINES).format(kw=kw)
        dialogue = "\n".join(f"#Person{1 + k % 2}#: {t}" for k, t in enumerate(turns))
        rows.append({"fname": f"{prefix}_{i}", "dialogue": dialogue, "summary": RULES[kw]})
    return pd.DataFrame(rows)


def write_synthetic(data_dir: Path, n_train: int = 200, n_dev: int = 20, n_test: int = 10) -> dict[str, pd.DataFrame]:
    """train/dev/test CSVs of the synthetic task in ``data_dir``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    frames = {"train": synthetic_frame(n_train, 1, "train"), "dev": synthetic_frame(n_dev, 2, "dev"),
              "test": synthetic_frame(n_test, 3, "test").drop(columns=["summary"])}
    for split, df in frames.items():
        df.to_csv(data_dir / f"{split}.csv", index=False)
    return frames


def build_model(out_dir: Path, frames: dict[str, pd.DataFrame], hidden: int = 64, layers: int = 2) -> Path:
    """A tiny Llama whose tokenizer is trained on the synthetic text."""
    from src.models.debug import build_tiny_causal

    texts = [t for df in frames.values() for col in ("dialogue", "summary") if col in df for t in df[col]]
    return build_tiny_causal(out_dir, texts, hidden=hidden, layers=layers, vocab_size=400, seed=0)
