"""Predictor on a trained tiny Llama: batch-size invariance, order, overrides, stops, loading."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from src.config import InferenceConfig
from src.utils.errors import UserError
from src.inference.engine import TransformersEngine, cut_at_stop
from src.inference.predictor import Predictor
from tests.inference.conftest import tiny_config


@pytest.fixture(scope="module")
def predictor(tiny_trained: dict) -> Predictor:
    t = tiny_trained
    return Predictor(t["model"], t["tokenizer"], t["builder"], None, InferenceConfig(max_new_tokens=32, backend="transformers"),
                     "cpu")


@pytest.fixture(scope="module")
def dialogues(tiny_trained: dict) -> list[str]:
    """Trained-on dialogues (outputs stop early) mixed with unseen ones (outputs run long)."""
    return tiny_trained["train"]["dialogue"].head(10).tolist() + tiny_trained["dev"]["dialogue"].head(6).tolist()


@pytest.fixture(scope="module")
def by_batch_size(predictor: Predictor, dialogues: list[str]) -> dict:
    out = {}
    for bs in (1, 3, 8):
        predictor.stats = type(predictor.stats)()
        out[bs] = (predictor.predict_batch(dialogues, batch_size=bs), predictor.stats)
    return out


def test_greedy_identical_whatever_the_batch_size(by_batch_size: dict) -> None:
    one = by_batch_size[1][0]
    assert by_batch_size[3][0] == one
    assert by_batch_size[8][0] == one


def test_the_invariance_test_is_not_trivial(by_batch_size: dict, dialogues: list[str]) -> None:
    outputs, stats = by_batch_size[8]
    assert len(set(outputs)) > len(dialogues) // 2, "outputs differ between dialogues"
    assert 0 < stats.hit_max_new_tokens < len(dialogues), "some outputs stop at EOS, some run to the cap"
    assert stats.batches == 2 and by_batch_size[1][1].batches == len(dialogues)


def test_token_budget_gives_same_outputs(predictor: Predictor, dialogues: list[str], by_batch_size: dict) -> None:
    budget = (160 + 32) * 2  # at most two prompts of the longest length per batch
    assert predictor.predict_batch(dialogues, batch_size=16, max_batch_tokens=budget) == by_batch_size[1][0]


def test_results_in_input_order(predictor: Predictor, dialogues: list[str], by_batch_size: dict) -> None:
    reversed_out = predictor.predict_batch(dialogues[::-1], batch_size=4)
    assert reversed_out == by_batch_size[1][0][::-1]
    assert predictor.predict_single(dialogues[2]) == by_batch_size[1][0][2]


def test_batches_are_length_sorted_and_budgeted(predictor: Predictor) -> None:
    prompts = [[1] * n for n in (5, 50, 20, 40, 10)]
    order = sorted(range(5), key=lambda i: len(prompts[i]), reverse=True)
    gen = InferenceConfig(batch_size=3, max_batch_tokens=0, max_new_tokens=10)
    assert predictor._batches(order, prompts, gen) == [[1, 3, 2], [4, 0]]
    gen = replace(gen, max_batch_tokens=(50 + 10) * 2)
    assert predictor._batches(order, prompts, gen) == [[1, 3], [2, 4, 0]]


def test_overrides_apply_to_one_call_only(predictor: Predictor, dialogues: list[str]) -> None:
    predictor.stats = type(predictor.stats)()
    short = predictor.predict_batch(dialogues[:4], max_new_tokens=3)
    assert predictor.stats.generated_tokens <= 4 * 3 and all(len(s) < 40 for s in short)
    assert predictor.gen.max_new_tokens == 32
    with pytest.raises(ValueError, match="unknown generation setting"):
        predictor.predict_batch(dialogues[:1], max_length=5)
    with pytest.raises(ValueError, match="inference.num_beams"):
        predictor.predict_batch(dialogues[:1], num_beams=0)


def test_on_batch_reports_every_row_once(predictor: Predictor, tiny_trained: dict) -> None:
    df = tiny_trained["dev"].head(7)
    seen: list[tuple[str, str]] = []
    out = predictor.predict_dataframe(df, on_batch=lambda f, s: seen.extend(zip(f, s)), batch_size=3)
    assert sorted(seen) == sorted(zip(out["fname"], out["summary"]))
    assert out["fname"].tolist() == df["fname"].tolist()


class _FakeModel:
    """Records what generate() got and appends fixed new tokens."""

    def __init__(self, new: list[list[int]]) -> None:
        self.new, self.calls = new, []

    def generate(self, input_ids, attention_mask, **kw):
        import torch

        self.calls.append((input_ids.tolist(), attention_mask.tolist(), kw))
        return torch.cat([input_ids, torch.tensor(self.new)], dim=1)


def test_engine_left_pads_and_decodes_only_new_tokens() -> None:
    model = _FakeModel([[7, 8, 2, 9], [5, 0, 0, 0]])
    out = TransformersEngine(model, pad_id=0, device="cpu").generate([[4, 4, 4], [6]], InferenceConfig(max_new_tokens=4), [2])
    ids, mask, kw = model.calls[0]
    assert ids == [[4, 4, 4], [0, 0, 6]] and mask == [[1, 1, 1], [0, 0, 1]]
    assert kw["eos_token_id"] == [2] and kw["max_new_tokens"] == 4 and kw["temperature"] is None
    assert out == [([7, 8], True), ([5], False)]
    assert cut_at_stop([3, 2, 3], [2], None) == ([3], True)
    assert "bad_words_ids" not in kw


class _RecordingEngine:
    chunk_size = 0

    def __init__(self) -> None:
        self.banned: list[tuple[int, ...]] = []

    def generate(self, batch, gen, stop_ids, banned=()):
        self.banned.append(tuple(banned))
        return [([], True) for _ in batch]


def test_block_scripts_are_resolved_per_call(monkeypatch, tiny_trained: dict) -> None:
    """A per-call override of inference.block_scripts reaches the engine (tuning and benchmarks rely on it).

    The tiny tokenizer holds no Cyrillic, so the lookup is stood in for; test_constraints checks it on real ones.
    """
    import src.inference.predictor as predictor_module

    monkeypatch.setattr(predictor_module, "blocked_token_ids", lambda tok, scripts: (7, 8) if scripts else ())
    t = tiny_trained
    engine = _RecordingEngine()
    pred = Predictor(None, t["tokenizer"], t["builder"], None, InferenceConfig(block_scripts=("cyrillic",)), "cpu",
                     engine=engine)
    pred.predict_batch(["#Person1#: 안녕"])
    pred.predict_batch(["#Person1#: 안녕"], block_scripts=())
    assert engine.banned[0] == (7, 8)
    assert engine.banned[1] == ()
    model = _FakeModel([[5, 2]])
    TransformersEngine(model, pad_id=0, device="cpu").generate([[4]], InferenceConfig(max_new_tokens=2), [2], banned=(9,))
    assert model.calls[0][2]["bad_words_ids"] == [[9]]


def test_from_checkpoint_full_weights(tiny_trained: dict, by_batch_size: dict, dialogues: list[str]) -> None:
    loaded = Predictor.from_checkpoint(tiny_config(), tiny_trained["path"], pool=None)
    assert loaded.predict_batch(dialogues[:5], batch_size=5) == by_batch_size[1][0][:5]


@pytest.fixture(scope="module")
def adapter_dir(tiny_trained: dict, tmp_path_factory):
    """A LoRA adapter with non-zero B on the trained model, saved like the train stage saves it."""
    from peft import LoraConfig, get_peft_model

    out = tmp_path_factory.mktemp("adapter")
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(tiny_trained["path"]))
    peft = get_peft_model(base, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM"))
    peft.save_pretrained(str(out))
    tiny_trained["tokenizer"].save_pretrained(str(out))
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == str(tiny_trained["path"])
    return out


@pytest.mark.parametrize("quantize,merge,kind", [("none", True, "LlamaForCausalLM"), ("none", False, "PeftModelForCausalLM"),
                                                 ("4bit", True, "PeftModelForCausalLM")])
def test_from_checkpoint_adapter(adapter_dir, dialogues: list[str], quantize: str, merge: bool, kind: str) -> None:
    loaded = Predictor.from_checkpoint(tiny_config(quantize=quantize, merge_lora=merge, max_new_tokens=8),
                                       adapter_dir, pool=None)
    assert type(loaded.model).__name__ == kind
    assert all(s.strip() for s in loaded.predict_batch(dialogues[:2]))


def test_from_checkpoint_fails_clearly(tmp_path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        Predictor.from_checkpoint(tiny_config(), tmp_path / "nope", pool=None)
    with pytest.raises(UserError, match="neither adapter_config.json nor config.json"):
        Predictor.from_checkpoint(tiny_config(), tmp_path, pool=None)
    from src.inference.batching import checked_settings

    with pytest.raises(ValueError, match="inference.top_p"):  # per-call overrides meet the config's bounds
        checked_settings(tiny_config().inference, {"top_p": 0.0})


def test_the_engine_is_chosen_once_and_a_model_in_memory_never_reaches_vllm(tiny_trained: dict) -> None:
    """``auto`` on a CPU is the continuous engine; ``vllm`` loads its own weights, so a Predictor over a model already in
    memory (the training-time ROUGE callback) generates with transformers and says why."""
    t = tiny_trained
    auto = Predictor(t["model"], t["tokenizer"], t["builder"], None, InferenceConfig(max_new_tokens=4), "cpu")
    assert auto.choice is not None and auto.choice.name == "continuous"
    vllm = Predictor(t["model"], t["tokenizer"], t["builder"], None, InferenceConfig(max_new_tokens=4, backend="vllm"),
                     "cpu")
    assert vllm.choice is not None and vllm.choice.name == "transformers" and "own weights" in vllm.choice.why
    assert isinstance(vllm.engine, TransformersEngine)
