"""The vLLM half of ``python -m benchmarks.generate_cpu --vllm``, run by ``.venv-vllm/bin/python``.

Usage: .venv-vllm/bin/python -m benchmarks.vllm_worker JOB.json

JOB.json holds ``checkpoint``, ``threads`` and ``prompts`` (token ids built by the project's predictor
in the main environment). The prompts go through the project's own ``inference.backend=vllm`` path
(``Predictor.from_checkpoint``, the checkpoint's settings, greedy) in this separate environment; the
last stdout line is one JSON object with the outputs and the seconds the generation took.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main() -> None:
    """Load the checkpoint on the vLLM backend, generate the job's prompts greedily, print the JSON line."""
    import torch

    from benchmarks.quality_cpu import PRESET
    from src.config import load_config
    from src.inference.constraints import blocked_token_ids
    from src.inference.factory import as_trained, load_predictor

    job = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    torch.set_num_threads(int(job["threads"]))
    checkpoint = Path(job["checkpoint"])
    cfg = load_config(PRESET, [f"model.cpu_threads={job['threads']}", "inference.backend=vllm"])
    cfg, _ = as_trained(cfg, checkpoint, None)
    start = time.perf_counter()
    predictor = load_predictor(cfg, checkpoint, None)
    loaded = time.perf_counter() - start
    banned = blocked_token_ids(predictor.tokenizer, predictor.gen.block_scripts)
    start = time.perf_counter()
    outputs = predictor.backend.generate(job["prompts"], predictor.gen, predictor.builder.stop_token_ids, banned)
    seconds = time.perf_counter() - start
    import vllm

    print(json.dumps({"outputs": outputs, "seconds": seconds, "load_seconds": round(loaded, 1),
                      "vllm": vllm.__version__}))


if __name__ == "__main__":
    main()
