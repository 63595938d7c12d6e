"""The vLLM half of ``python -m benchmarks.generate_cpu --vllm``, run by ``.venv-vllm/bin/python``.

Usage: .venv-vllm/bin/python -m benchmarks.vllm_worker JOB.json OUT.json

JOB.json holds ``checkpoint``, ``threads``, ``prompts`` (token ids built by the project's predictor
in the main environment) and ``sample_rows``. The prompts go through the project's own
``inference.backend=vllm`` path (``load_predictor``, the checkpoint's settings, greedy) in this separate
environment. Then the first ``sample_rows`` prompts are sampled the way MBR samples its candidates
(``inference.mbr``'s temperature and top_p, one call per candidate, 4 candidates), once with the banned
ids of ``inference.block_scripts`` as a logit bias and once without. OUT.json gets one JSON object with
the greedy outputs, the seconds each part took and the tokens it generated (a file: vLLM logs to stdout).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence


def main() -> None:
    """Load the checkpoint on the vLLM backend, generate the job's prompts greedily (then sampled), write OUT.json."""
    import torch

    from benchmarks.quality_cpu import PRESET
    from src.config import load_config
    from src.inference.constraints import blocked_token_ids
    from src.inference.factory import as_trained, load_predictor

    job = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    torch.set_num_threads(int(job["threads"]))
    checkpoint = Path(job["checkpoint"])
    cfg = load_config(PRESET, [f"model.cpu_threads={job['threads']}", "inference.backend=vllm"])
    settings = as_trained(cfg, checkpoint, None)
    cfg = settings.cfg
    start = time.perf_counter()
    predictor = load_predictor(settings, None)
    loaded = time.perf_counter() - start
    banned = blocked_token_ids(predictor.tokenizer, predictor.gen.block_scripts)
    start = time.perf_counter()
    outputs = predictor.backend.generate(job["prompts"], predictor.gen, predictor.builder.stop_token_ids, banned)
    seconds = time.perf_counter() - start
    import vllm

    result = {"outputs": outputs, "seconds": seconds, "load_seconds": round(loaded, 1), "vllm": vllm.__version__}
    rows = job["prompts"][:int(job.get("sample_rows", 0))]
    if rows:
        result.update(sampled(predictor, cfg, rows, banned, "sample"))
        result.update(sampled(predictor, cfg, rows, [], "sample_unbanned"))
    Path(sys.argv[2]).write_text(json.dumps(result), encoding="utf-8")


def sampled(predictor: Any, cfg: Any, prompts: list[list[int]], banned: Sequence[int], name: str,
            candidates: int = 4) -> dict[str, Any]:
    """MBR's sampled candidates (``src.inference.mbr.candidate_runs``' settings), one call each; seconds, tokens,
    stopped share."""
    from dataclasses import replace

    from src.inference.mbr import candidate_runs

    mbr = replace(cfg.inference.mbr, num_candidates=candidates + 1, from_tune=0)
    runs = candidate_runs(replace(cfg, inference=replace(cfg.inference, mbr=mbr)), None)[1:]  # [0]: the main decode
    start, tokens, stopped = time.perf_counter(), 0, 0
    for run in runs:
        gen = replace(predictor.gen, **{k: v for k, v in run.items() if k != "seed"})  # no per-request seed on a CPU
        for ids, stop in predictor.backend.generate(prompts, gen, predictor.builder.stop_token_ids, banned):
            tokens, stopped = tokens + len(ids), stopped + bool(stop)
    return {f"{name}_seconds": round(time.perf_counter() - start, 1), f"{name}_tokens": tokens,
            f"{name}_stopped_share": round(stopped / (candidates * len(prompts)), 3),
            f"{name}_sequences": candidates * len(prompts)}


if __name__ == "__main__":
    main()
