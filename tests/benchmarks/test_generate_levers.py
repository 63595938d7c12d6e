"""The lever runner of ``benchmarks.generate_cpu --levers`` on the tiny model: every lever runs and reports."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from benchmarks.generate_levers import levers
from src.config import InferenceConfig
from src.inference.continuous import ContinuousEngine
from src.inference.engine import TransformersEngine
from tests.inference.conftest import tiny_trained  # noqa: F401  (the session fixture)

FAST = ("default", "continuous_full_vocab", "continuous_no_prefix", "continuous_unbanned", "continuous_slots_8",
        "continuous_bf16", "continuous_int8", "transformers", "transformers_static", "transformers_trimmed",
        "transformers_unbanned", "default_again")


@pytest.mark.slow  # builds its own copy of the session's tiny trained model (~40 s)
@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")  # the int8 lever's torch.ao, on purpose
def test_each_lever_runs_and_greedy_levers_match_the_baseline(tiny_trained: dict) -> None:  # noqa: F811
    tok, builder = tiny_trained["tokenizer"], tiny_trained["builder"]
    gen = InferenceConfig(max_new_tokens=12)
    engine = ContinuousEngine(tiny_trained["model"], tok, tok.pad_token_id, slots=4, output_vocab="full")
    predictor = SimpleNamespace(model=tiny_trained["model"], tokenizer=tok, builder=builder, gen=gen, backend=engine)
    prompts = [builder.encode_prompt(t, []).input_ids for t in tiny_trained["dev"]["dialogue"].head(5)]
    refs = tiny_trained["dev"]["summary"].head(5).tolist()
    stops = builder.stop_token_ids
    baseline = TransformersEngine(tiny_trained["model"], tok.pad_token_id, "cpu").generate(prompts, gen, stops, [])
    got = levers(predictor, prompts, refs, [], baseline, names=FAST)
    assert set(got) == set(FAST)
    assert not [n for n, r in got.items() if "error" in r], got
    for name in ("default", "continuous_no_prefix", "continuous_slots_8", "transformers", "transformers_static",
                 "default_again"):
        assert got[name]["identical_share"] == 1.0, name  # exact levers: the same greedy texts
    assert all(r["tokens"] > 0 and r["tokens_per_s"] > 0 for r in got.values())
