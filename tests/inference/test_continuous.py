"""The continuous engine against ``model.generate`` on a trained tiny Llama: same ids for every decoding rule."""
from __future__ import annotations

import pytest

from src.config import InferenceConfig
from src.inference.continuous import ContinuousEngine
from src.inference.engine import TransformersEngine
from src.inference.vocab import data_ids


@pytest.fixture(scope="module")
def prompts(tiny_trained: dict) -> list[list[int]]:
    """Trained-on dialogues (outputs stop early) and unseen ones (outputs run to the cap), longest first."""
    builder = tiny_trained["builder"]
    texts = tiny_trained["train"]["dialogue"].head(8).tolist() + tiny_trained["dev"]["dialogue"].head(6).tolist()
    encoded = [builder.encode_prompt(t, []).input_ids for t in texts]
    return sorted(encoded, key=len, reverse=True)


def run(engine, prompts: list[list[int]], gen: InferenceConfig, stops: list[int], banned=()) -> list:
    return engine.generate(prompts, gen, stops, banned)


def reference(tiny_trained: dict, prompts: list[list[int]], gen: InferenceConfig, banned=()) -> list:
    tok = tiny_trained["tokenizer"]
    engine = TransformersEngine(tiny_trained["model"], tok.pad_token_id, "cpu")
    stops = tiny_trained["builder"].stop_token_ids
    return [engine.generate([p], gen, stops, banned)[0] for p in prompts]  # one at a time: no padding


def training_ids(tiny_trained: dict) -> list[int]:
    """What the train stage stores with a checkpoint: the ids of the training rows' dialogues and summaries."""
    tok, df = tiny_trained["tokenizer"], tiny_trained["train"]
    return data_ids(tok(t, add_special_tokens=False)["input_ids"] for t in [*df["dialogue"], *df["summary"]])


def continuous(tiny_trained: dict, **kw) -> ContinuousEngine:
    tok = tiny_trained["tokenizer"]
    return ContinuousEngine(tiny_trained["model"], tok, tok.pad_token_id, **kw)


@pytest.mark.parametrize("settings", [
    dict(),
    dict(repetition_penalty=1.3),
    dict(no_repeat_ngram_size=3),
    dict(num_beams=3),
    dict(num_beams=3, length_penalty=0.6, repetition_penalty=1.15),
    dict(num_beams=2, no_repeat_ngram_size=4),
], ids=["greedy", "repetition", "ngram", "beam3", "beam3-penalties", "beam2-ngram"])
def test_same_ids_as_generate(tiny_trained: dict, prompts: list[list[int]], settings: dict) -> None:
    gen = InferenceConfig(max_new_tokens=40, **settings)
    want = reference(tiny_trained, prompts, gen)
    got = run(continuous(tiny_trained, slots=6, output_vocab="full"), prompts, gen,
              tiny_trained["builder"].stop_token_ids)
    assert got == want
    assert 0 < sum(stopped for _, stopped in want) < len(want), "some stop, some reach the cap"


def test_without_prefix_sharing_the_same_ids(tiny_trained: dict, prompts: list[list[int]]) -> None:
    gen = InferenceConfig(max_new_tokens=30)
    stops = tiny_trained["builder"].stop_token_ids
    shared = run(continuous(tiny_trained, slots=4, output_vocab="full"), prompts, gen, stops)
    whole = run(continuous(tiny_trained, slots=4, output_vocab="full", share_prefixes=False), prompts, gen, stops)
    assert whole == shared == reference(tiny_trained, prompts, gen)


def test_slots_fewer_than_prompts_refill_and_compact(tiny_trained: dict, prompts: list[list[int]]) -> None:
    gen = InferenceConfig(max_new_tokens=40)
    want = reference(tiny_trained, prompts, gen)
    for slots in (1, 3, 32):
        engine = continuous(tiny_trained, slots=slots, output_vocab="full", prefill_tokens=64)
        assert run(engine, prompts, gen, tiny_trained["builder"].stop_token_ids) == want, slots


def test_trimmed_vocabulary_keeps_what_the_model_says(tiny_trained: dict, prompts: list[list[int]]) -> None:
    """Kept: the training rows' ids, the prompts' own and the rule set; greedy picks the same ids."""
    gen = InferenceConfig(max_new_tokens=40)
    want = reference(tiny_trained, prompts, gen)
    engine = continuous(tiny_trained, slots=4, output_vocab="trimmed", check_every=1,
                        stored_vocab=training_ids(tiny_trained))
    assert run(engine, prompts, gen, tiny_trained["builder"].stop_token_ids) == want
    assert engine.counts["vocab_checks"] > 0 and engine.counts["vocab_escapes"] == 0
    assert engine.counts["kept_vocab"] < tiny_trained["model"].get_output_embeddings().weight.shape[0]


def test_banned_ids_are_never_generated(tiny_trained: dict, prompts: list[list[int]]) -> None:
    gen = InferenceConfig(max_new_tokens=40)
    free = run(continuous(tiny_trained, slots=4, output_vocab="full"), prompts, gen,
               tiny_trained["builder"].stop_token_ids)
    common = max({t for ids, _ in free for t in ids}, key=lambda t: sum(ids.count(t) for ids, _ in free))
    for vocab in ("full", "trimmed"):
        got = run(continuous(tiny_trained, slots=4, output_vocab=vocab, stored_vocab=training_ids(tiny_trained)),
                  prompts, gen,
                  tiny_trained["builder"].stop_token_ids, banned=(common,))
        assert all(common not in ids for ids, _ in got), vocab
    assert got == reference(tiny_trained, prompts, gen, banned=(common,))


def test_sampling_is_seeded_and_differs_from_greedy(tiny_trained: dict, prompts: list[list[int]]) -> None:
    import torch

    gen = InferenceConfig(max_new_tokens=40, do_sample=True, temperature=1.5, top_p=0.9)
    engine = continuous(tiny_trained, slots=4, output_vocab="full")
    stops = tiny_trained["builder"].stop_token_ids
    torch.manual_seed(3)
    first = run(engine, prompts, gen, stops)
    torch.manual_seed(3)
    assert run(engine, prompts, gen, stops) == first
    assert first != run(engine, prompts, InferenceConfig(max_new_tokens=40), stops)
