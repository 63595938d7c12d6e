"""Generation speed on the CPU: today's engine (transformers ``generate``) vs the project's default, on real prompts.

Usage: python -m benchmarks.generate_cpu [--work output/quality_cpu] [--threads N] [--beam-rows 33] [--vllm]
                                         [--levers] [--llamacpp] [--rows N] [--checkpoint DIR] [key.sub=value ...]

The fine-tuned Gemma 3 270M checkpoint of ``python -m benchmarks.quality_cpu`` (trained here the same way
when its work folder has none) and the 99 held-out prompts of its seed-2026 split, built by the project's
predictor. One model in memory, two engines over it:

- baseline: ``inference.backend=transformers`` (left-padded batches of ``inference.batch_size``, the full
  262,144-row output layer, ``bad_words_ids`` for the blocked scripts): the engine of every earlier figure;
- default: what ``inference.backend: auto`` picks on a CPU (the continuous engine with the kept-id layer).

They run side by side in interleaved parts of the rows (baseline, default, default, baseline, ...), at
the same thread count, greedy on all rows and 3-beam on ``--beam-rows`` of them. Kiwi ROUGE of both greedy
outputs on the references; ``identical_share``: the share of greedy texts equal to the baseline's.

``bound_tokens_per_s``: the generated tokens over the least time this machine could take for the same work
at the sgemm rate measured in this run (the flops of every prefilled prompt token and every generated token
through the transformer layers and the full output layer), the memory bandwidth measured too
(``read_gb_per_s``). ``--vllm`` also runs the same prompts through ``inference.backend=vllm`` in the
environment ``make setup-vllm`` builds (``.venv-vllm``). ``--levers`` measures each lever on its own on the
first ``--lever-rows`` prompts. ``--llamacpp`` (run from ``.venv-llamacpp``, ``make setup-llamacpp``) converts the
checkpoint to GGUF at F32 and Q8_0 (``src.export``) and decodes the same prompt ids greedily with llama.cpp's
batched decoding, ``--llamacpp-parallel`` sequences (default: our engine's slots), the same threads
(``benchmarks.llamacpp_cpu``), after our two engines: ``llamacpp_<precision>_tokens_per_s``, ``_speedup`` (vs our
default engine), ``_identical_share`` (vs our default engine's texts), ``_final`` (Kiwi), ``_convert_seconds``.
``--checkpoint`` uses another final checkpoint than the quality benchmark's; ``--rows`` the first N held-out
prompts. The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

if __name__ == "__main__" and not __package__:  # run as a file: run again as the module, from the repo root
    os.chdir(Path(__file__).resolve().parents[1])
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks.generate_cpu", *sys.argv[1:]])

from benchmarks import quality_cpu  # noqa: E402
from src.config import REPO_ROOT  # noqa: E402

VLLM_PYTHON = REPO_ROOT / ".venv-vllm" / "bin" / "python"
Outputs = list[tuple[list[int], bool]]


def cpu_line() -> dict[str, Any]:
    """The CPU: its model name, what torch's kernels use, threads, load."""
    import torch

    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), platform.processor())
    flags = next((ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")), "")
    return {"cpu": torch.backends.cpu.get_cpu_capability(), "cpu_model": model,
            "avx512_bf16": "avx512_bf16" in flags, "amx": "amx_tile" in flags, "threads": torch.get_num_threads(),
            "load_average": [round(x, 2) for x in os.getloadavg()], "torch": torch.__version__}


def peaks(seconds: float = 2.0) -> dict[str, float]:
    """Measured fp32 sgemm GFLOP/s on the model's shapes (M=512 tokens, 640 x 2048) and a sequential read in GB/s."""
    import torch

    a, b = torch.randn(512, 640), torch.randn(640, 2048)
    for _ in range(5):
        a @ b
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    gflops = 2 * 512 * 640 * 2048 * n / (time.perf_counter() - start) / 1e9
    buf = torch.ones(64 * 1024 * 1024)  # 256 MB, far past the caches
    buf.sum()
    start = time.perf_counter()
    for _ in range(5):
        buf.sum()
    return {"sgemm_gflops": round(gflops, 1), "read_gb_per_s": round(5 * buf.numel() * 4 / (time.perf_counter() -
                                                                                               start) / 1e9, 1)}


def model_flops(model: Any) -> tuple[float, float]:
    """(FLOPs per token through the transformer layers, FLOPs per token of the full output layer)."""
    embed = model.get_output_embeddings().weight
    total = sum(p.numel() for p in model.parameters())
    layers = total - embed.numel()  # the tied embedding is a lookup on the way in
    return 2.0 * layers, 2.0 * embed.numel()


def bound(prompts: list[list[int]], outputs: Outputs, model: Any, sgemm: float) -> float:
    """Generated tokens per second if every FLOP ran at the measured sgemm rate (attention left out: a lower bound
    on time, so an upper bound on speed)."""
    layer, head = model_flops(model)
    tokens = sum(len(ids) + stopped for ids, stopped in outputs)
    flops = layer * sum(map(len, prompts)) + head * len(prompts) + (layer + head) * tokens
    return tokens / (flops / (sgemm * 1e9))


def timed(fn: Callable[[], Outputs]) -> tuple[Outputs, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def interleaved(engines: dict[str, Any], prompts: list[list[int]], gen: Any, stops: list[int], banned: Any,
                parts: int = 2) -> dict[str, dict[str, Any]]:
    """Each engine over every part of the prompts, taking turns (ABBA...), so load from outside hits both alike."""
    names = list(engines)
    out: dict[str, dict[str, Any]] = {n: {"outputs": [None] * len(prompts), "seconds": 0.0} for n in names}
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))  # the predictor's order
    chunks = [order[k::parts] for k in range(parts)]
    for k, chunk in enumerate(chunks):
        for name in names if k % 2 == 0 else names[::-1]:
            engine = engines[name]
            result, seconds = timed(lambda: run_engine(engine, [prompts[i] for i in chunk], gen, stops, banned))
            out[name]["seconds"] += seconds
            for i, r in zip(chunk, result):
                out[name]["outputs"][i] = r
    for rec in out.values():
        rec["tokens"] = sum(len(ids) + stopped for ids, stopped in rec["outputs"])
        rec["tokens_per_s"] = rec["tokens"] / max(rec["seconds"], 1e-9)
    return out


def run_engine(engine: Any, prompts: list[list[int]], gen: Any, stops: list[int], banned: Any) -> Outputs:
    """The prompts through an engine in its own batches (longest first, as the predictor hands them)."""
    from src.inference.batching import length_batches, new_token_cap

    order = list(range(len(prompts)))
    if engine.chunk_size:
        batches = [order[k:k + engine.chunk_size] for k in range(0, len(order), engine.chunk_size)]
    else:
        widths = [len(p) + new_token_cap(gen) for p in prompts]
        batches = length_batches(order, widths, gen.batch_size, gen.max_batch_tokens)
    results: Outputs = [([], False)] * len(prompts)
    for batch in batches:
        for i, r in zip(batch, engine.generate([prompts[i] for i in batch], gen, stops, banned)):
            results[i] = r
    return results


def texts(predictor: Any, outputs: Outputs) -> list[str]:
    """The summaries the predictor makes of generated ids (decode + post-processing)."""
    from src.inference.postprocess import postprocess

    return [postprocess(predictor.tokenizer.decode(ids, skip_special_tokens=True), predictor.gen.cut_unfinished)
            for ids, _ in outputs]


def kiwi(summaries: list[str], refs: list[str]) -> float:
    from src.evaluation import score_texts

    return round(score_texts(summaries, [[r] for r in refs], tokenizer="kiwi")["final"], 2)


def checkpoint(work: Path, steps: int, overrides: list[str]) -> Path:
    """The quality benchmark's fine-tuned checkpoint, trained here (same run, same settings) when missing."""
    final = work / "model" / "finetuned" / "final_checkpoint"
    if not final.is_dir():
        quality_cpu.pipeline(work, "finetuned", ["--skip-augmentation", "--skip-merge", "--skip-tune", "--stages",
                                                 "preprocess,train", f"training.max_steps={steps}",
                                                 "training.save_steps=1000", "training.eval_steps=1000", *overrides])
    return final


def load(work: Path, final: Path, threads: int, overrides: list[str]) -> tuple[Any, Any, Any]:
    """(config, predictor over the checkpoint with the default engine, the held-out rows)."""
    import pandas as pd
    import torch

    from src.config import load_config
    from src.inference.factory import as_trained, load_predictor

    cfg = load_config(quality_cpu.PRESET, [f"model.cpu_threads={threads}", *overrides])
    settings = as_trained(cfg, final, None)
    cfg = settings.cfg
    predictor = load_predictor(settings, None)
    torch.set_num_threads(threads)
    held = pd.read_csv(work / "data" / "dev.csv", dtype=str)
    return cfg, predictor, held


def engines(predictor: Any, gen: Any) -> dict[str, Any]:
    """Baseline (today's transformers engine) and the default engine, over the same loaded model."""
    from src.inference.engine import TransformersEngine

    base = TransformersEngine(predictor.model, predictor.tokenizer.pad_token_id, "cpu")
    return {"baseline": base, "default": predictor.backend}


def compare(predictor: Any, prompts: list[list[int]], refs: list[str], gen: Any, banned: Any) -> dict[str, Any]:
    """Greedy or beam figures of the two engines on the same prompts."""
    stops = predictor.builder.stop_token_ids
    runs = interleaved(engines(predictor, gen), prompts, gen, stops, banned)
    base, new = runs["baseline"], runs["default"]
    base_text, new_text = texts(predictor, base["outputs"]), texts(predictor, new["outputs"])
    return {"baseline_tokens_per_s": round(base["tokens_per_s"], 1), "tokens_per_s": round(new["tokens_per_s"], 1),
            "speedup": round(new["tokens_per_s"] / base["tokens_per_s"], 2),
            "baseline_seconds": round(base["seconds"], 1), "seconds": round(new["seconds"], 1),
            "identical_share": round(sum(a == b for a, b in zip(base_text, new_text)) / len(prompts), 3),
            "identical_ids_share": round(sum(a[0] == b[0] for a, b in zip(base["outputs"], new["outputs"])) /
                                         len(prompts), 3),
            "baseline_final": kiwi(base_text, refs), "final": kiwi(new_text, refs), "rows": len(prompts),
            "_outputs": new["outputs"], "_baseline_outputs": base["outputs"], "_texts": base_text}


def vllm_run(work: Path, final: Path, threads: int, prompts: list[list[int]], sample_rows: int) -> dict[str, Any]:
    """The prompts through ``inference.backend=vllm`` in ``.venv-vllm`` (benchmarks.vllm_worker); its outputs and time."""
    if not VLLM_PYTHON.is_file():
        raise SystemExit(f"--vllm needs {VLLM_PYTHON}: run `make setup-vllm` first")
    job = work / "vllm_job.json"
    job.write_text(json.dumps({"checkpoint": str(final), "threads": threads, "prompts": prompts,
                                "sample_rows": sample_rows}), encoding="utf-8")
    out = work / "vllm_result.json"
    out.unlink(missing_ok=True)
    done = subprocess.run([str(VLLM_PYTHON), "-m", "benchmarks.vllm_worker", str(job), str(out)], cwd=REPO_ROOT, text=True,
                          capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode != 0 or not out.is_file():
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"vllm worker failed (exit {done.returncode})")
    return json.loads(out.read_text(encoding="utf-8"))


def main() -> None:
    """Run the benchmark and print its JSON line."""
    import torch

    from src.inference.constraints import blocked_token_ids

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=REPO_ROOT / "output" / "quality_cpu")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--steps", type=int, default=40, help="fine-tuning steps when the checkpoint is trained here")
    parser.add_argument("--beam-rows", type=int, default=33, help="held-out prompts decoded with 3 beams (0: none)")
    parser.add_argument("--vllm", action="store_true", help="also inference.backend=vllm in .venv-vllm")
    parser.add_argument("--vllm-sample-rows", type=int, default=33, help="held-out prompts sampled 4 times on vLLM "
                        "(MBR's candidates), with and without the banned-token logit bias")
    parser.add_argument("--levers", action="store_true", help="also each lever on its own (benchmarks.generate_levers)")
    parser.add_argument("--lever-rows", type=int, default=32)
    parser.add_argument("--llamacpp", action="store_true", help="also llama.cpp (F32, Q8_0 GGUF); run from .venv-llamacpp")
    parser.add_argument("--llamacpp-parallel", type=int, default=0, help="llama.cpp sequences at once (0: our slots)")
    parser.add_argument("--rows", type=int, default=0, help="only the first N held-out prompts (0: all 99)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="a final_checkpoint to use instead of the "
                        "quality benchmark's (trained here when missing)")
    parser.add_argument("overrides", nargs="*", help="key.sub=value for the predictor")
    args = parser.parse_args()
    start = time.perf_counter()
    quality_cpu.split(args.work)
    final = args.checkpoint or checkpoint(args.work, args.steps, args.overrides)
    cfg, predictor, held = load(args.work, final, args.threads, args.overrides)
    held = held.head(args.rows) if args.rows else held
    prompts = [predictor._encode(d, f) for d, f in zip(held["dialogue"], held["fname"])]
    refs = held["summary"].tolist()
    banned = blocked_token_ids(predictor.tokenizer, predictor.gen.block_scripts)
    machine = {**cpu_line(), **peaks()}
    greedy = compare(predictor, prompts, refs, predictor.gen, banned)
    result: dict[str, Any] = {k: v for k, v in greedy.items() if not k.startswith("_")}
    if args.beam_rows:  # 0: greedy only
        beams = compare(predictor, prompts[:args.beam_rows], refs[:args.beam_rows], replace(predictor.gen, num_beams=3),
                        banned)
        result.update({f"beam3_{k}": beams[k] for k in ("speedup", "baseline_tokens_per_s", "tokens_per_s",
                                                        "identical_share", "baseline_final", "final", "rows")})
    result.update({"engine": type(predictor.backend).__name__,
                   "kept_vocab": predictor.backend.counts.get("kept_vocab"),
                   "vocab_checks": predictor.backend.counts.get("vocab_checks"),
                   "vocab_escapes": predictor.backend.counts.get("vocab_escapes"),
                   "max_new_tokens": predictor.gen.max_new_tokens, "baseline_batch_size": predictor.gen.batch_size,
                   "slots": predictor.gen.slots, **machine})
    result["bound_tokens_per_s"] = round(bound(prompts, greedy["_outputs"], predictor.model, machine["sgemm_gflops"]), 1)
    result["ratio_to_bound"] = round(result["tokens_per_s"] / result["bound_tokens_per_s"], 3)
    (args.work / "generate_cpu_partial.json").write_text(json.dumps(result), encoding="utf-8")  # kept if vLLM fails
    if args.vllm:
        result.update(vllm_figures(args, final, prompts, greedy, predictor))
    if args.llamacpp:
        result.update(llamacpp_figures(args, final, prompts, refs, greedy, predictor, banned))
    if args.levers:
        from benchmarks.generate_levers import levers

        result["levers"] = levers(predictor, prompts[:args.lever_rows], refs[:args.lever_rows], banned,
                                  greedy["_baseline_outputs"][:args.lever_rows])
    torch.set_num_threads(args.threads)
    result["minutes"] = round((time.perf_counter() - start) / 60, 1)
    print(json.dumps(result, ensure_ascii=False))


def vllm_figures(args: Any, final: Path, prompts: list[list[int]], greedy: dict[str, Any], predictor: Any) -> dict:
    """vllm_identical_share and vllm_speedup (vs the baseline) from the worker's run of the same prompts."""
    got = vllm_run(args.work, final, args.threads, prompts, args.vllm_sample_rows)
    outputs = [(ids, stopped) for ids, stopped in got["outputs"]]
    vllm_text = texts(predictor, outputs)
    tokens = sum(len(ids) + stopped for ids, stopped in outputs)
    return {"vllm_identical_share": round(sum(a == b for a, b in zip(greedy["_texts"], vllm_text)) / len(prompts), 3),
            "vllm_tokens_per_s": round(tokens / got["seconds"], 1),
            "vllm_speedup": round(tokens / got["seconds"] / greedy["baseline_tokens_per_s"], 2),
            "vllm_seconds": round(got["seconds"], 1), "vllm_load_seconds": got.get("load_seconds"),
            "vllm_version": got.get("vllm"),
            **{f"vllm_{k}": v for k, v in got.items() if k.startswith("sample")},
            **{f"vllm_{name}_tokens_per_s": round(got[f"{name}_tokens"] / got[f"{name}_seconds"], 1)
               for name in ("sample", "sample_unbanned") if got.get(f"{name}_seconds")}}


def llamacpp_figures(args: Any, final: Path, prompts: list[list[int]], refs: list[str], greedy: dict[str, Any],
                     predictor: Any, banned: Any) -> dict[str, Any]:
    """Each precision's llama.cpp figures (benchmarks.llamacpp_cpu) against our default engine's greedy run."""
    from benchmarks import llamacpp_cpu

    parallel = args.llamacpp_parallel or int(predictor.gen.slots)
    ours = texts(predictor, greedy["_outputs"])
    out: dict[str, Any] = {"llamacpp_parallel": parallel, "llamacpp_threads": args.threads}
    for quant in llamacpp_cpu.PRECISIONS:
        gguf, convert_seconds = llamacpp_cpu.gguf_file(final, quant, args.work)
        outputs, seconds = llamacpp_cpu.generate(gguf, prompts, int(predictor.gen.max_new_tokens),
                                                 predictor.builder.stop_token_ids, list(banned), args.threads, parallel)
        got = texts(predictor, outputs)
        out.update(llamacpp_cpu.figures(quant, outputs, seconds, got, ours, greedy["tokens_per_s"], kiwi(got, refs),
                                        convert_seconds))
    return out


if __name__ == "__main__":
    main()
