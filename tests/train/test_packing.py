"""Padding-free packing must not let examples see each other: same per-example loss as alone."""
from __future__ import annotations

import pytest
import torch

from src.config import PromptConfig
from src.prompting.builder import PromptBuilder


def examples(synthetic: dict, tokenizer, n: int = 3) -> list[dict]:
    builder = PromptBuilder(tokenizer, PromptConfig(num_fewshot=0))
    df = synthetic["frames"]["train"].head(n)
    return [{k: v for k, v in builder.encode_example(d, s).items() if k in ("input_ids", "labels")}
            for d, s in zip(df["dialogue"], df["summary"])]


def per_example_loss(logits: torch.Tensor, labels: torch.Tensor, bounds: list[tuple[int, int]]) -> list[float]:
    """Mean next-token loss of each [start, end) span of a flattened sequence."""
    nll = torch.nn.functional.cross_entropy(logits[0, :-1], labels[0, 1:], ignore_index=-100, reduction="none")
    out = []
    for start, end in bounds:
        mask = labels[0, start + 1:end] != -100
        out.append(float(nll[start:end - 1][mask].mean()))
    return out


@pytest.fixture(scope="module")
def tiny(synthetic):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(synthetic["model"])


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_batch_gives_each_example_its_own_loss(synthetic, tiny, attn: str) -> None:
    from transformers import AutoModelForCausalLM
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    model = AutoModelForCausalLM.from_pretrained(synthetic["model"], attn_implementation=attn).eval()
    exs = examples(synthetic, tiny)
    with torch.no_grad():
        alone = [per_example_loss(model(input_ids=torch.tensor([e["input_ids"]])).logits,
                                  torch.tensor([e["labels"]]), [(0, len(e["input_ids"]))])[0] for e in exs]
        packed = DataCollatorForLanguageModeling(pad_token_id=tiny.pad_token_id, padding_free=True)(exs)
        assert "attention_mask" not in packed and packed["input_ids"].shape[0] == 1
        logits = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=False).logits
        ends = [sum(len(e["input_ids"]) for e in exs[:k + 1]) for k in range(len(exs))]
        bounds = list(zip([0] + ends[:-1], ends))
        together = per_example_loss(logits, packed["labels"], bounds)
        # transformers derives the block-diagonal mask from position ids only without a mask and without a
        # KV cache (TRL's compute_loss passes use_cache=False); control: without position ids it leaks
        leaky = per_example_loss(model(input_ids=packed["input_ids"], use_cache=False).logits, packed["labels"], bounds)
    assert together == pytest.approx(alone, abs=2e-5)
    assert max(abs(a - b) for a, b in zip(leaky[1:], alone[1:])) > 1e-3


def test_trainer_loss_is_the_same_for_every_collation(synthetic, tiny) -> None:
    """Padding-free, BFD-packed and padded batches of the same examples give SFTTrainer the same loss."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    exs = examples(synthetic, tiny, n=4)
    total = sum(len(e["input_ids"]) for e in exs)
    settings = {"padding_free": dict(padding_free=True, max_length=None, per_device_train_batch_size=4),
                "packed": dict(packing=True, packing_strategy="bfd", max_length=total, per_device_train_batch_size=1),
                "padded": dict(max_length=total, per_device_train_batch_size=4)}
    losses = {}
    for name, kwargs in settings.items():
        model = AutoModelForCausalLM.from_pretrained(synthetic["model"])
        args = SFTConfig(output_dir=str(synthetic["root"] / f"loss-{name}"), report_to=[], use_cpu=True,
                         save_strategy="no", shuffle_dataset=False, **kwargs)
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(exs), processing_class=tiny)
        batch = next(iter(trainer.get_train_dataloader()))
        assert ("attention_mask" in batch) == (name == "padded") and batch["input_ids"].numel() >= total
        with torch.no_grad():
            losses[name] = float(trainer.compute_loss(trainer.model.eval(), dict(batch)))
    assert losses["padding_free"] == pytest.approx(losses["padded"], abs=1e-4)
    assert losses["packed"] == pytest.approx(losses["padded"], abs=1e-4)
