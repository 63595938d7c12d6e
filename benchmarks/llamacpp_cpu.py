"""llama.cpp beside our engine (``python -m benchmarks.generate_cpu --llamacpp``): the checkpoint as GGUF per
precision, and the same prompt token ids decoded greedily with llama.cpp's batched decoding.

The decoding here is continuous batching written on llama-cpp-python's low-level API (one ``llama_decode`` per
step: one token for every running sequence, plus the whole prompt of any sequence admitted into a free slot; a
finished sequence's cache is removed and its slot reused), ``parallel`` sequences at most (llama.cpp's
``n_parallel``), greedy by argmax of the logits with the blocked scripts' ids masked, as our engines do.
Run from ``.venv-llamacpp`` (``make setup-llamacpp``).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

from src.export import CONVERTER, convert, merge_to_folder

Outputs = list[tuple[list[int], bool]]
PRECISIONS = ("f32", "q8_0")


def gguf_file(final: Path, quant: str, work: Path) -> tuple[Path, float]:
    """The checkpoint merged and converted to ``work/gguf/<quant>.gguf`` (reused when the checkpoint's digest is
    the one recorded beside it); the conversion seconds (merge + convert) as measured when it was made."""
    import tempfile

    from src.models.checkpoint import content_digest

    out = work / "gguf" / f"{quant}.gguf"
    meta = out.with_name(out.name + ".json")
    digest = content_digest(final)
    if out.is_file() and meta.is_file():
        saved = json.loads(meta.read_text(encoding="utf-8"))
        if saved.get("digest") == digest:
            return out, float(saved["seconds"])
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gguf-") as tmp:
        convert(merge_to_folder(final, Path(tmp) / "merged"), out, quant, CONVERTER)
    seconds = time.perf_counter() - start
    meta.write_text(json.dumps({"digest": digest, "seconds": round(seconds, 1)}), encoding="utf-8")
    return out, seconds


def _context(gguf: Path, n_ctx: int, n_batch: int, parallel: int, threads: int) -> tuple[Any, Any, int]:
    """(model, context, vocabulary size) through llama.cpp's C API."""
    import llama_cpp as lc

    lc.llama_backend_init()
    model = lc.llama_model_load_from_file(str(gguf).encode(), lc.llama_model_default_params())
    if not model:
        raise RuntimeError(f"llama.cpp could not load {gguf}")
    params = lc.llama_context_default_params()
    params.n_ctx, params.n_batch, params.n_ubatch = n_ctx, n_batch, min(n_batch, 512)
    params.n_seq_max, params.n_threads, params.n_threads_batch = parallel, threads, threads
    params.kv_unified = True  # one cache shared by the sequences: n_ctx is the total, as our slots' cache
    ctx = lc.llama_init_from_model(model, params)
    return model, ctx, int(lc.llama_vocab_n_tokens(lc.llama_model_get_vocab(model)))


def generate(gguf: Path, prompts: Sequence[list[int]], max_new: int, stops: Sequence[int], banned: Sequence[int],
             threads: int, parallel: int) -> tuple[Outputs, float]:
    """Greedy outputs (ids without the stop token, whether a stop token ended it) in prompt order; seconds spent
    decoding (loading excluded, as for our engines)."""
    import llama_cpp as lc
    import numpy as np

    longest = max(map(len, prompts))
    n_batch = longest + parallel
    model, ctx, n_vocab = _context(gguf, parallel * (longest + max_new + 1), n_batch, parallel, threads)
    mem, batch = lc.llama_get_memory(ctx), lc.llama_batch_init(n_batch, 0, 1)
    mask = np.zeros(n_vocab, dtype=bool)
    mask[[i for i in banned if i < n_vocab]] = True
    stop_set = set(stops)
    queue = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))  # the predictor's order
    free, active = list(range(parallel))[::-1], {}  # seq id -> {row, pos, next, out}
    results: Outputs = [([], False)] * len(prompts)
    start = time.perf_counter()
    try:
        while queue or active:
            fed = list(active)
            entries = [(st["next"], st["pos"], seq, True) for seq, st in active.items()]
            while queue and free and len(entries) + len(prompts[queue[0]]) <= n_batch:
                row, seq = queue.pop(0), free.pop()
                ids = prompts[row]
                entries += [(tok, p, seq, p == len(ids) - 1) for p, tok in enumerate(ids)]
                active[seq] = {"row": row, "pos": len(ids), "next": None, "out": []}
            batch.n_tokens = len(entries)
            for k, (tok, pos, seq, logits) in enumerate(entries):
                batch.token[k], batch.pos[k], batch.n_seq_id[k] = tok, pos, 1
                batch.seq_id[k][0], batch.logits[k] = seq, logits
            if lc.llama_decode(ctx, batch) != 0:
                raise RuntimeError("llama_decode failed (the cache is too small?)")
            for seq in fed:  # their fed token is in the cache now: the next one goes one position further
                active[seq]["pos"] += 1
            for k, (_, _, seq, logits) in enumerate(entries):
                if not logits:
                    continue
                row_logits = np.ctypeslib.as_array(lc.llama_get_logits_ith(ctx, k), shape=(n_vocab,))
                token = int(np.argmax(np.where(mask, -np.inf, row_logits)))
                st = active[seq]
                stopped = token in stop_set
                if not stopped:
                    st["out"].append(token)
                if stopped or len(st["out"]) >= max_new:
                    results[st["row"]] = (st["out"], stopped)
                    lc.llama_memory_seq_rm(mem, seq, -1, -1)
                    free.append(seq)
                    del active[seq]
                else:
                    st["next"] = token
        return results, time.perf_counter() - start
    finally:
        lc.llama_batch_free(batch)
        lc.llama_free(ctx)
        lc.llama_model_free(model)


def figures(name: str, outputs: Outputs, seconds: float, texts: list[str], default_texts: list[str],
            default_tokens_per_s: float, final: float, convert_seconds: float) -> dict[str, Any]:
    """The JSON keys of one precision: ``llamacpp_<name>_tokens_per_s``, ``_speedup`` (vs our default engine),
    ``_identical_share`` (texts equal to our default engine's), ``_final`` (Kiwi), ``_convert_seconds``."""
    tokens = sum(len(ids) + stopped for ids, stopped in outputs)
    rate = tokens / max(seconds, 1e-9)
    same = sum(a == b for a, b in zip(texts, default_texts)) / max(len(texts), 1)
    return {f"llamacpp_{name}_tokens_per_s": round(rate, 1),
            f"llamacpp_{name}_speedup": round(rate / default_tokens_per_s, 2),
            f"llamacpp_{name}_identical_share": round(same, 3), f"llamacpp_{name}_final": final,
            f"llamacpp_{name}_seconds": round(seconds, 1), f"llamacpp_{name}_convert_seconds": round(convert_seconds, 1)}
