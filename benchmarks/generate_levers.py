"""Each generation lever on its own: ``python -m benchmarks.generate_cpu --levers`` calls ``levers``.

Every lever is one engine (or one setting of an engine) over the same fine-tuned model and the same
prompts (the first ``--lever-rows`` held-out prompts, greedy, the checkpoint's settings), run once in
the order below; the default engine runs first and last, so the drift of this VM's speed over the run
shows in ``default`` against ``default_again``. Per lever: generated tokens per second, seconds, the
share of texts identical to the baseline's (today's transformers engine, from the main comparison)
and Kiwi ROUGE on the references.

- ``transformers``: today's engine (left-padded batches, full output layer, ``bad_words_ids``);
  ``transformers_static``: the same with transformers' static KV cache (``cache_implementation``);
  ``transformers_static_compile``: and ``torch.compile`` of the forward through transformers'
  ``CompileConfig`` (compile time included: each new batch shape compiles again);
  ``transformers_trimmed``: the kept-id output layer in place of the full one;
  ``transformers_unbanned``: no ``bad_words_ids`` (what banning costs there).
- ``default``: the continuous engine as ``inference.backend: auto`` builds it on a CPU;
  ``continuous_full_vocab``: the full 262,144-row output layer; ``continuous_no_prefix``: no shared
  prefix; ``continuous_unbanned``: no banned ids; ``continuous_slots_N``: N slots;
  ``continuous_bf16``: a bf16 copy of the model; ``continuous_int8``: a copy with dynamic int8 linears
  (``torch.ao.quantization.quantize_dynamic``).
"""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import replace
from typing import Any, Callable

log = logging.getLogger(__name__)


class _ExtraGenerate:
    """A model whose ``generate`` gets extra keyword arguments (everything else is the model's)."""

    def __init__(self, model: Any, **extra: Any) -> None:
        self._model, self._extra = model, extra

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def generate(self, **kwargs: Any) -> Any:
        return self._model.generate(**kwargs, **self._extra)


def transformers_levers(predictor: Any) -> dict[str, Callable[[], Any]]:
    """Builders of the transformers-engine levers (each returns ``(engine, banned ids or None for the run's)``)."""
    from transformers import CompileConfig

    from src.inference.engine import TransformersEngine

    model, tok, pad = predictor.model, predictor.tokenizer, predictor.tokenizer.pad_token_id
    stored = getattr(predictor.backend, "stored_vocab", None)
    compiled = CompileConfig(fullgraph=False, dynamic=None)
    compiled._compile_all_devices = True  # type: ignore[assignment]  # transformers compiles on accelerators only unless told

    return {
        "transformers": lambda: (TransformersEngine(model, pad, "cpu"), None),
        "transformers_static": lambda: (TransformersEngine(_ExtraGenerate(model, cache_implementation="static"),
                                                           pad, "cpu"), None),
        "transformers_static_compile": lambda: (TransformersEngine(_ExtraGenerate(
            model, cache_implementation="static", compile_config=compiled), pad, "cpu"), None),
        "transformers_trimmed": lambda: (TransformersEngine(model, pad, "cpu", tokenizer=tok, output_vocab="trimmed",
                                                            stored_vocab=stored), None),
        "transformers_unbanned": lambda: (TransformersEngine(model, pad, "cpu"), []),
    }


def continuous_levers(predictor: Any, slots: tuple[int, ...] = (8, 16, 64)) -> dict[str, Callable[[], Any]]:
    """Builders of the continuous-engine levers, each a variant of the predictor's own engine."""
    import torch

    base = predictor.backend

    def variant(**changes: Any) -> Callable[[], Any]:
        return lambda: (replace(base, counts={}, **changes), None)

    def int8() -> Any:
        model = copy.deepcopy(base.model)
        layers = {name for name, m in model.named_modules()  # not the output layer: tied to the embedding
                  if isinstance(m, torch.nn.Linear) and not name.endswith("lm_head")}
        quantized = torch.ao.quantization.quantize_dynamic(model, layers, dtype=torch.qint8)
        return replace(base, model=quantized, counts={}), None

    levers: dict[str, Callable[[], Any]] = {
        "default": variant(),
        "continuous_full_vocab": variant(output_vocab="full"),
        "continuous_no_prefix": variant(share_prefixes=False),
        "continuous_unbanned": lambda: (replace(base, counts={}), []),
        **{f"continuous_slots_{n}": variant(slots=n) for n in slots if n != base.slots},
        "continuous_bf16": lambda: (replace(base, model=copy.deepcopy(base.model).to(torch.bfloat16), counts={}),
                                    None),
        "continuous_int8": int8,
    }
    return levers


def levers(predictor: Any, prompts: list[list[int]], refs: list[str], banned: Any,
           baseline_outputs: list[tuple[list[int], bool]], names: Any = None) -> dict[str, dict[str, Any]]:
    """Each lever's figures on the prompts (see the module docstring); ``names``: only these levers."""
    from benchmarks.generate_cpu import kiwi, run_engine, texts

    gen, stops = predictor.gen, predictor.builder.stop_token_ids
    baseline_text = texts(predictor, baseline_outputs)
    builders = {**continuous_levers(predictor), **transformers_levers(predictor)}
    builders["default_again"] = builders["default"]
    if names is not None:
        builders = {n: b for n, b in builders.items() if n in names}
    out: dict[str, dict[str, Any]] = {}
    for name, build in builders.items():
        try:
            engine, own_banned = build()
            start = time.perf_counter()
            outputs = run_engine(engine, prompts, gen, stops, banned if own_banned is None else own_banned)
            seconds = time.perf_counter() - start
        except Exception as err:  # a lever this torch or CPU cannot run is reported, not fatal
            log.warning("lever %s failed: %s", name, err)
            out[name] = {"error": f"{type(err).__name__}: {err}"[:300]}
            continue
        summaries = texts(predictor, outputs)
        tokens = sum(len(ids) + stopped for ids, stopped in outputs)
        out[name] = {"tokens_per_s": round(tokens / seconds, 1), "seconds": round(seconds, 1), "tokens": tokens,
                     "identical_share": round(sum(a == b for a, b in zip(baseline_text, summaries)) / len(prompts), 3),
                     "final": kiwi(summaries, refs)}
        log.info("lever %s: %s", name, out[name])
        del engine
    return out
