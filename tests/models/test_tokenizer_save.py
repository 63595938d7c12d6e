"""The tokenizer saved with a checkpoint encodes training prompts exactly as the training tokenizer (real SOLAR)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from src.config import load_config
from src.utils.errors import UserError
from src.models.loading import load_tokenizer, save_tokenizer
from src.prompting.builder import PromptBuilder
from src.prompting.fewshot import ShotSelector
from tests.conftest import SHARED_DATA, need_shared


@pytest.fixture(scope="module")
def solar_prompts(shared_tokenizers: Path):
    need_shared(SHARED_DATA / "dialogsum-ko" / "dev.csv")
    dev = pd.read_csv(SHARED_DATA / "dialogsum-ko" / "dev.csv", dtype=str)
    cfg = load_config(None, [f"model.name={shared_tokenizers / 'solar-10.7b-instruct'}"])
    tok = load_tokenizer(cfg.model.name, cfg)
    builder, selector = PromptBuilder(tok, cfg.prompt), ShotSelector(dev, cfg.prompt, cfg.seed)
    texts = [builder.render(d, selector.select(f, d)) for f, d in zip(dev["fname"], dev["dialogue"])]
    return tok, texts


@pytest.mark.slow
def test_solar_saved_tokenizer_reproduces_every_dev_prompt(solar_prompts, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tok, texts = solar_prompts
    save_tokenizer(tok, tmp_path, texts[:3])
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    same = sum(tok(t, add_special_tokens=False)["input_ids"] == reloaded(t, add_special_tokens=False)["input_ids"]
               for t in texts)
    assert same == len(texts) == 499


def test_without_pinning_the_reloaded_solar_tokenizer_differs(solar_prompts, tmp_path: Path) -> None:
    """The defect being fixed: transformers 5 does not save legacy=True, and the reload drops a token."""
    from transformers import AutoTokenizer

    tok, texts = solar_prompts
    tok.init_kwargs.pop("legacy", None)
    tok.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    differ = sum(tok(t, add_special_tokens=False)["input_ids"] != reloaded(t, add_special_tokens=False)["input_ids"]
                 for t in texts)
    assert differ > 400


def test_any_other_mismatch_fails_clearly(solar_prompts, shared_tokenizers: Path, tmp_path: Path,
                                        monkeypatch) -> None:
    """Whatever makes a reload split text differently (here: another vocabulary) stops training with one line."""
    from transformers import AutoTokenizer

    tok, texts = solar_prompts
    other = AutoTokenizer.from_pretrained(shared_tokenizers / "qwen2.5-instruct")
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", lambda *a, **k: other)
    with pytest.raises(UserError) as err:
        save_tokenizer(tok, tmp_path, texts[:3])
    assert "encodes a training prompt differently" in err.value.problems[0]
    assert "first difference at token 0" in err.value.problems[0]
