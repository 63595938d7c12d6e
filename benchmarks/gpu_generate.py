"""499 test summaries from a SOLAR-10.7B-shaped model (random weights) through the project's inference path.

    .venv/bin/python -m benchmarks.gpu_generate [--backend transformers|vllm|both] [--batch-size 64]
        [--max-new-tokens 128] [--n 499]
    .venv/bin/python -m benchmarks.gpu_generate --smoke     (2-layer model, CPU, 8 dialogues: checks the script)
    .venv/bin/python -m benchmarks.gpu_generate --precision both --model-dir DIR --out FILE.json

Llama architecture with SOLAR-10.7B's shape (hidden 4096, 48 layers, 32 heads, 8 KV heads,
intermediate 14336, vocab 32000) in bf16 with random weights: nothing is downloaded. Prompts come
from the project's PromptBuilder (SOLAR tokenizer from ../shared/tokenizers, default prompt
settings, one few-shot example from dev.csv) and generation from its Predictor, so the figures are
those of the infer stage. Random weights rarely emit EOS, so most outputs run to max_new_tokens:
an upper bound on the work a trained model does. Prints seconds and generated tokens/s per backend
(vLLM when installed, with its dummy weights). ``--precision`` picks bf16, the 4-bit base (nf4, loaded
the way inference loads a QLoRA base), or both; the 4-bit load reads a saved model folder (``--model-dir``,
e.g. the one benchmarks.gpu_train saved, else the shape is saved once under ``--work``). ``--out`` writes
the figures as JSON. Without a CUDA GPU it prints why and exits 0.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SHARED = Path(os.environ.get("DIALSUM_SHARED") or REPO.parent / "shared")  # tokenizers and data
DATA = SHARED / "data" / "dialogsum-ko"
TOKENIZER = SHARED / "tokenizers" / "solar-10.7b-instruct"
SOLAR_SHAPE = dict(hidden_size=4096, num_hidden_layers=48, num_attention_heads=32, num_key_value_heads=8,
                   intermediate_size=14336, vocab_size=32000)
SMOKE_SHAPE = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                   intermediate_size=128, vocab_size=32000)


def parse_args() -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=("transformers", "vllm", "both"), default="both",
                   help="both: transformers, then vLLM when it is installed")
    p.add_argument("--n", type=int, default=499, help="test dialogues to summarise")
    p.add_argument("--batch-size", type=int, default=64, help="prompts per generate() call (transformers)")
    p.add_argument("--max-new-tokens", type=int, default=128, help="generation cap")
    p.add_argument("--smoke", action="store_true", help="2-layer model on CPU, 8 dialogues: checks the script only")
    p.add_argument("--precision", choices=("bf16", "4bit", "both"), default="bf16",
                   help="transformers backend: bf16 weights, the 4-bit (nf4) base, or both")
    p.add_argument("--model-dir", default=None, help="a saved model of the shape (with the SOLAR tokenizer) to load")
    p.add_argument("--work", default="/tmp/gpu_generate_bench", help="where the shape is saved for the 4-bit load")
    p.add_argument("--out", default=None, help="also write the figures as JSON to this file")
    return p.parse_args()


def skip_reason(smoke: bool) -> str | None:
    """Why the benchmark cannot run here, or None."""
    missing = [str(p) for p in (DATA / "test.csv", DATA / "dev.csv", TOKENIZER) if not p.exists()]
    if missing:
        return f"missing {', '.join(missing)} (the shared data and tokenizers)"
    import torch

    if not smoke and not torch.cuda.is_available():
        return "no CUDA GPU visible (this benchmark needs one; --smoke checks the script on CPU)"
    return None


def llama_config(shape: dict):
    """A LlamaConfig with SOLAR-10.7B's special tokens and the given shape."""
    from transformers import LlamaConfig

    config = LlamaConfig(**shape, max_position_embeddings=4096, rms_norm_eps=1e-5, rope_theta=10000.0,
                         tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=2)
    config.architectures = ["LlamaForCausalLM"]  # vLLM picks its model class from this
    return config


def project_pieces(args: argparse.Namespace):
    """The config, tokenizer, prompt builder, few-shot selector and test frame the infer stage would use."""
    import pandas as pd

    from src.config import load_config
    from src.models.loading import load_tokenizer
    from src.prompting.builder import PromptBuilder
    from src.prompting.fewshot import ShotSelector

    cfg = load_config(None, [f"inference.batch_size={args.batch_size}", f"inference.max_new_tokens={args.max_new_tokens}"])
    tokenizer = load_tokenizer(str(TOKENIZER), cfg, padding_side="left")
    builder = PromptBuilder(tokenizer, cfg.prompt)
    dev = pd.read_csv(DATA / "dev.csv", dtype=str)
    selector = ShotSelector(dev, cfg.prompt, cfg.seed) if cfg.prompt.num_fewshot else None
    test = pd.read_csv(DATA / "test.csv", dtype=str).head(args.n)
    return cfg, tokenizer, builder, selector, test


def saved_model(args: argparse.Namespace, tokenizer) -> Path:
    """A folder holding the shape's weights: --model-dir, else the random model saved once under --work."""
    import torch
    from transformers import LlamaForCausalLM

    if args.model_dir:
        return Path(args.model_dir)
    folder = Path(args.work) / ("smoke" if args.smoke else "solar-10.7b")
    if (folder / "config.json").is_file():
        return folder
    torch.set_default_dtype(torch.float32 if args.smoke else torch.bfloat16)
    with torch.device("cpu" if args.smoke else "cuda"):  # a 10.7B init on the GPU: seconds, not minutes
        model = LlamaForCausalLM(llama_config(SMOKE_SHAPE if args.smoke else SOLAR_SHAPE))
    torch.set_default_dtype(torch.float32)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model
    gc.collect()
    return folder


def run_quantized(args: argparse.Namespace, pieces) -> dict:
    """The saved shape loaded as inference loads a QLoRA base (4-bit nf4 via src.models.loading), same Predictor."""
    import torch

    from src.inference.predictor import Predictor
    from src.models.loading import load_causal_model

    cfg, tokenizer, builder, selector, test = pieces
    device = "cpu" if args.smoke else "cuda"
    folder = saved_model(args, tokenizer)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    dtype = torch.float32 if args.smoke else torch.bfloat16
    model = load_causal_model(str(folder), cfg, device, dtype, quantize=True).eval()
    build_s = time.perf_counter() - start
    result = measure(Predictor(model, tokenizer, builder, selector, cfg.inference, device), test)
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    del model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return {**result, "model_build_s": round(build_s, 1), "peak_gib": peak}


def run_transformers(args: argparse.Namespace, pieces) -> dict:
    """Random-weight bf16 model built on the device, generated through the project's Predictor."""
    import torch
    from transformers import LlamaForCausalLM

    from src.inference.predictor import Predictor

    cfg, tokenizer, builder, selector, test = pieces
    device = "cpu" if args.smoke else "cuda"
    dtype = torch.float32 if args.smoke else torch.bfloat16
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    torch.set_default_dtype(dtype)
    with torch.device(device):
        model = LlamaForCausalLM(llama_config(SMOKE_SHAPE if args.smoke else SOLAR_SHAPE)).eval()
    torch.set_default_dtype(torch.float32)
    build_s = time.perf_counter() - start
    predictor = Predictor(model, tokenizer, builder, selector, cfg.inference, device)
    result = measure(predictor, test)
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    del model, predictor
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return {**result, "model_build_s": round(build_s, 1), "peak_gib": peak}


def run_vllm(args: argparse.Namespace, pieces) -> dict | None:
    """vLLM with dummy (random) weights of the same shape, through the Predictor's VllmEngine; None without vLLM."""
    from src.inference.predictor import Predictor
    from src.inference.vllm_engine import VllmEngine, vllm_available

    if not vllm_available():
        print("vllm: not installed, skipped (pip install vllm)")
        return None
    if args.smoke:
        print("vllm: needs a GPU, skipped in --smoke")
        return None
    from vllm import LLM

    cfg, tokenizer, builder, selector, test = pieces
    with tempfile.TemporaryDirectory() as tmp:
        llama_config(SOLAR_SHAPE).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        start = time.perf_counter()
        llm = LLM(model=tmp, load_format="dummy", dtype="bfloat16", seed=cfg.seed,
                  max_model_len=cfg.prompt.max_prompt_tokens + cfg.inference.max_new_tokens,
                  gpu_memory_utilization=cfg.inference.vllm_gpu_memory_utilization)
        build_s = time.perf_counter() - start
        predictor = Predictor(None, tokenizer, builder, selector, cfg.inference, "cuda", engine=VllmEngine(llm))
        result = measure(predictor, test)
    return {**result, "model_build_s": round(build_s, 1)}


def measure(predictor, test) -> dict:
    """Predict every test dialogue once; the Predictor's own counters give the figures."""
    predictor.predict_batch(test["dialogue"].head(2).tolist(), test["fname"].head(2).tolist())  # warm-up
    predictor.stats = type(predictor.stats)()
    start = time.perf_counter()
    out = predictor.predict_dataframe(test)
    seconds = time.perf_counter() - start
    s = predictor.stats
    assert len(out) == len(test)
    return {"dialogues": len(test), "seconds": round(seconds, 2), "generated_tokens": s.generated_tokens,
            "generated_tokens_per_s": round(s.generated_tokens / seconds, 1), "dialogues_per_s": round(len(test) / seconds, 2),
            "hit_max_new_tokens": s.hit_max_new_tokens, "batches": s.batches, "trimmed_prompts": s.trimmed_prompts}


def main() -> int:
    """Run the selected backends and print one line per backend (and a JSON summary)."""
    args = parse_args()
    if args.smoke:
        args.n = min(args.n, 8)
    reason = skip_reason(args.smoke)
    if reason:
        print(f"skipped: {reason}")
        return 0
    import torch

    pieces = project_pieces(args)
    device = "CPU (smoke)" if args.smoke else torch.cuda.get_device_name(0)
    shape = "2-layer smoke model" if args.smoke else "SOLAR-10.7B shape, bf16, random weights"
    print(f"{device}; {shape}; {args.n} test dialogues; batch_size {args.batch_size}; max_new_tokens {args.max_new_tokens}")
    results = {}
    if args.backend in ("transformers", "both") and args.precision in ("bf16", "both"):
        results["transformers"] = run_transformers(args, pieces)
    if args.backend in ("transformers", "both") and args.precision in ("4bit", "both"):
        results["transformers_4bit"] = run_quantized(args, pieces)
    if args.backend in ("vllm", "both"):
        results["vllm"] = run_vllm(args, pieces)
    for name, r in results.items():
        if r is not None:
            print(f"{name}: {r['dialogues']} summaries in {r['seconds']:.1f} s, {r['generated_tokens']} generated tokens "
                  f"({r['generated_tokens_per_s']:.0f} tokens/s), {r['hit_max_new_tokens']} hit max_new_tokens")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"machine": device, "shape": shape, "n": args.n, "batch_size": args.batch_size,
                                              "max_new_tokens": args.max_new_tokens, "results": results}, indent=2))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
