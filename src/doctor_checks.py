"""The doctor's environment checks (``python -m src.doctor``): each probe returns ``(status, detail)``.

The machine: Python, torch and the device (CUDA runtime vs driver, GPU memory, bf16), the training libraries
within the tested ranges of ``src/requirements.txt``, bitsandbytes 4-bit on the device, SDPA and flash
attention, vLLM when the config asks for it, Mecab and Kiwi. The run: disk for the weights and checkpoints,
where ``model.name`` loads from, the paid API key's presence (never its value), the run's own preflight.
A probe never prints; ``src.doctor`` times it, turns an exception into a ``fail`` and prints the line.
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Optional

from src.config import resolve_path
from src.models.device import ATTENTION_PACKAGES, compute_dtype, estimated_parameters, model_config, pick_device
from src.models.loading import DEBUG_NAME, check_model_reachable, model_location
from src.utils.errors import UserError
from src.utils.secrets import get_secret

PASS, SKIP, FAIL = "pass", "skip", "fail"
Outcome = tuple[str, str]
MIN_PYTHON = (3, 10)
TESTED = ("transformers", "peft", "trl", "bitsandbytes", "accelerate")  # ranges read from src/requirements.txt
REQUIREMENTS = Path(__file__).resolve().parent / "requirements.txt"
CHECKPOINT_MARGIN_GIB = 1.0  # adapters, optimizer state and outputs of a run, beside the base weights
SAMPLE = "#Person1#: 안녕하세요, 오늘 회의는 몇 시에 시작하나요? #Person2#: 오후 세 시에 시작합니다."


def cuda_visible() -> bool:
    """torch sees a CUDA GPU."""
    import torch

    return bool(torch.cuda.is_available())


# ---- the machine -------------------------------------------------------------------------------------------


def check_python() -> Outcome:
    """Python 3.10 or newer."""
    version = platform.python_version()
    if sys.version_info[:2] < MIN_PYTHON:
        return FAIL, f"Python {version}; the pipeline needs {MIN_PYTHON[0]}.{MIN_PYTHON[1]}+: install a newer Python"
    return PASS, f"Python {version} ({sys.executable})"


def nvidia_smi_cuda() -> Optional[str]:
    """The CUDA version the driver supports (``nvidia-smi``'s header), or None without nvidia-smi."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for part in out.split("|"):
        if "CUDA Version:" in part:
            return part.split("CUDA Version:", 1)[1].split()[0]
    return None


def check_torch(spec: str = "") -> Outcome:
    """torch within the tested range; a CUDA build on a machine with an NVIDIA driver, or the CPU."""
    import torch

    status, detail = check_package("torch", spec)
    if status == FAIL:
        return status, detail
    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU build"
    build += f" (tested {spec})" if spec else ""
    if torch.cuda.is_available():
        return PASS, f"torch {torch.__version__}, {build}, {torch.cuda.device_count()} GPU(s) visible"
    driver = nvidia_smi_cuda()
    if driver and not torch.version.cuda:
        return FAIL, (f"torch {torch.__version__} is a CPU build but this machine has an NVIDIA driver (CUDA {driver}): "
                      "pip install the CUDA build of the pinned torch (plain PyPI on Linux serves it)")
    if driver:
        return FAIL, (f"torch {torch.__version__} ({build}) sees no GPU though nvidia-smi reports one (driver CUDA "
                      f"{driver}): check CUDA_VISIBLE_DEVICES and that the driver supports CUDA {torch.version.cuda}")
    return PASS, f"torch {torch.__version__}, {build}, no GPU: the run uses the CPU ({os.cpu_count()} cores)"


def version_tuple(text: str) -> tuple[int, ...]:
    """``12.8`` -> (12, 8); non-numeric parts end it."""
    parts = []
    for piece in text.split("."):
        if not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts)


def check_cuda() -> Outcome:
    """CUDA runtime vs driver, the GPU's name and memory, and a matmul on it."""
    import torch

    if not torch.cuda.is_available():
        return SKIP, "no CUDA GPU visible (torch.cuda.is_available() is False): runtime, driver and GPU memory apply on a GPU machine"
    driver = nvidia_smi_cuda()
    runtime = torch.version.cuda or "?"
    if driver and version_tuple(driver) < version_tuple(runtime)[:2]:
        return FAIL, (f"torch's CUDA runtime {runtime} is newer than the driver supports (CUDA {driver}): update the "
                      "NVIDIA driver, or install a torch build for an older CUDA")
    free, total = torch.cuda.mem_get_info()
    x = torch.randn(256, 256, device="cuda")
    ok = bool(torch.isfinite(x @ x).all())
    name = torch.cuda.get_device_name(0)
    detail = (f"{name}, {total / 2**30:.1f} GiB ({free / 2**30:.1f} GiB free), runtime {runtime}, "
              f"driver CUDA {driver or 'unknown (no nvidia-smi)'}")
    return (PASS, detail) if ok else (FAIL, f"{detail}: a matmul gave non-finite values; check the GPU and driver")


def check_bf16(cfg: Any) -> Outcome:
    """bf16 on the GPU; the dtype training.compute_dtype resolves to."""
    import torch


    device = pick_device(cfg.model.device)
    dtype = str(compute_dtype(cfg.training.compute_dtype, device)).replace("torch.", "")
    if device != "cuda":
        return SKIP, (f"bf16 is a GPU check; on the {device} training.compute_dtype={cfg.training.compute_dtype} "
                      f"means {dtype}")
    supported = torch.cuda.is_bf16_supported()
    if cfg.training.compute_dtype == "bfloat16" and not supported:
        return FAIL, "training.compute_dtype=bfloat16 but this GPU has no bf16: set training.compute_dtype=auto (fp16)"
    return PASS, f"bf16 {'supported' if supported else 'not supported (auto uses fp16)'}; compute dtype {dtype}"


def tested_ranges(path: Path = REQUIREMENTS) -> dict[str, str]:
    """``name -> specifier`` of the pinned packages in ``src/requirements.txt``."""
    from packaging.requirements import InvalidRequirement, Requirement

    ranges = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        ranges[req.name.lower()] = str(req.specifier)
    return ranges


def check_package(name: str, spec: str) -> Outcome:
    """``name`` is installed at a version within ``spec``."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.specifiers import SpecifierSet

    wanted = f"{name}{spec}"
    try:
        found = version(name)
    except PackageNotFoundError:
        return FAIL, f"not installed: pip install '{wanted}'"
    if spec and not SpecifierSet(spec).contains(found, prereleases=True):
        return FAIL, f"{found} is outside the tested range {spec}: pip install '{wanted}'"
    return PASS, f"{found} (tested {spec or 'any'})"


def check_4bit(cfg: Any) -> Outcome:
    """A bitsandbytes 4-bit layer (the config's quant type) quantized on the run's device and run forward."""
    if not cfg.training.use_qlora and cfg.inference.quantize != "4bit":
        return SKIP, "the run loads no 4-bit weights (training.use_qlora=false, inference.quantize not 4bit)"
    quant = cfg.training.quantization if cfg.training.quantization in ("nf4", "fp4") else "nf4"
    import bitsandbytes as bnb
    import torch


    device = pick_device(cfg.model.device)
    dtype = compute_dtype(cfg.training.compute_dtype, device)
    layer = bnb.nn.Linear4bit(64, 64, bias=False, compute_dtype=dtype, quant_type=quant).to(device)
    out = layer(torch.randn(2, 64, dtype=dtype, device=device))
    if not bool(torch.isfinite(out).all()):
        return FAIL, f"bitsandbytes {bnb.__version__}: a 4-bit layer gave non-finite values on the {device}"
    return PASS, f"bitsandbytes {bnb.__version__}: a {quant} 4-bit layer quantized and ran on the {device}"


def check_sdpa(cfg: Any) -> Outcome:
    """torch's scaled-dot-product attention runs on the device (what transformers picks without flash attention)."""
    import torch
    import torch.nn.functional as F


    device = pick_device(cfg.model.device)
    q = torch.randn(1, 4, 8, 16, device=device)
    out = F.scaled_dot_product_attention(q, q, q, is_causal=True)
    if not bool(torch.isfinite(out).all()):
        return FAIL, f"scaled_dot_product_attention gave non-finite values on the {device}"
    return PASS, f"ran on the {device}; model.attn_implementation={cfg.model.attn_implementation}"


def check_flash(cfg: Any) -> Outcome:
    """flash-attn: required when the config names it, else optional (GPU only)."""
    import importlib.util


    wanted = ATTENTION_PACKAGES.get(cfg.model.attn_implementation or "")
    installed = importlib.util.find_spec(wanted or "flash_attn") is not None
    if wanted is None:
        if not cuda_visible():
            return SKIP, "flash attention needs a CUDA GPU; the run uses sdpa (model.attn_implementation unset)"
        state = "installed" if installed else "not installed (pip install flash-attn to try it)"
        return SKIP, f"the config does not ask for it; flash_attn {state}"
    if not cuda_visible():
        return FAIL, (f"model.attn_implementation={cfg.model.attn_implementation} needs a CUDA GPU: run on one, or set "
                      "model.attn_implementation=sdpa")
    if not installed:
        return FAIL, (f"model.attn_implementation={cfg.model.attn_implementation} needs {wanted}: pip install "
                      f"{wanted.replace('_', '-')}, or set model.attn_implementation=sdpa")
    return PASS, f"{wanted} installed for model.attn_implementation={cfg.model.attn_implementation}"


def check_vllm(cfg: Any) -> Outcome:
    """vLLM importable in this environment when inference.backend=vllm (it lives in its own environment)."""
    from importlib.metadata import PackageNotFoundError, version

    from src.inference.vllm_engine import INSTALL_HINT, vllm_available

    if cfg.inference.backend != "vllm":
        return SKIP, (f"inference.backend={cfg.inference.backend}: the run does not use vLLM (to check it, run the "
                      "doctor from vLLM's own environment with inference.backend=vllm)")
    if not vllm_available():
        return FAIL, f"inference.backend=vllm but vLLM is not installed in {sys.prefix}: {INSTALL_HINT}"
    try:
        found = version("vllm")
    except PackageNotFoundError:
        found = "unknown version"
    return PASS, f"vllm {found} in {sys.prefix}"


def check_mecab() -> Outcome:
    """Mecab (the default scorer's morphemes) splits a Korean sentence."""
    from src.evaluation.morphemes import mecab_tokens

    morphs = mecab_tokens([SAMPLE])[0]
    if len(morphs) < 5:
        return FAIL, f"Mecab split a Korean sentence into {len(morphs)} morphemes: reinstall python-mecab-ko"
    return PASS, f"{len(morphs)} morphemes from a Korean sentence"


def check_kiwi() -> Outcome:
    """Kiwi (the other scorer) splits a Korean sentence."""
    from src.evaluation.morphemes import get_kiwi

    tokens = get_kiwi().tokenize(SAMPLE)
    if len(tokens) < 5:
        return FAIL, f"Kiwi split a Korean sentence into {len(tokens)} tokens: reinstall kiwipiepy and kiwipiepy-model"
    return PASS, f"{len(tokens)} tokens from a Korean sentence"


# ---- the run -----------------------------------------------------------------------------------------------


def existing_parent(path: Path) -> Path:
    """``path`` or its nearest existing ancestor (disk_usage needs a path that exists)."""
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def weights_needed(cfg: Any) -> tuple[float, str]:
    """Bytes the base weights still need on disk (bf16, 2 bytes a parameter), and where they are now."""
    if cfg.model.name == DEBUG_NAME:
        return 0.0, "the tiny model is built locally"
    if Path(model_location(cfg)).is_dir() or model_config(cfg) is not None:
        return 0.0, "the weights are on this machine"
    params = estimated_parameters(cfg)
    if params is None:
        return 0.0, "model size unknown (no config.json here, no size in the name)"
    return 2.0 * params, f"~{params / 1e9:.1f}B parameters to download"


def check_disk(cfg: Any) -> Outcome:
    """Free space for the weights (the Hugging Face cache) and the checkpoints (``paths.model_dir``)."""
    from huggingface_hub import constants


    weights, note = weights_needed(cfg)
    model_fs = existing_parent(resolve_path(cfg.paths.model_dir))
    cache_fs = existing_parent(Path(constants.HF_HUB_CACHE))
    needs = {model_fs: CHECKPOINT_MARGIN_GIB * 2**30}
    needs[cache_fs] = needs.get(cache_fs, 0.0) + weights
    short = []
    for path, need in needs.items():
        free = shutil.disk_usage(path).free
        if free < need:
            short.append(f"{path} has {free / 2**30:.1f} GiB free, needs ~{need / 2**30:.1f} GiB")
    if short:
        return FAIL, f"{'; '.join(short)} ({note}): free space there, or move paths.model_dir / HF_HOME"
    free_model = shutil.disk_usage(model_fs).free / 2**30
    return PASS, f"{free_model:.1f} GiB free for paths.model_dir={cfg.paths.model_dir} ({note})"


def check_model_source(cfg: Any) -> Outcome:
    """model.name loads here: a local folder, the Hugging Face cache, or the hub when online."""
    problem = check_model_reachable(cfg.model.name, cfg.model.revision, get_secret("HF_TOKEN"), cfg.paths.model_dir)
    if problem:
        return FAIL, problem
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    if cfg.model.name == DEBUG_NAME:
        return PASS, "tiny-debug is built locally on first use"
    where = model_location(cfg)
    if Path(where).is_dir():
        return PASS, f"{cfg.model.name}: loads from {where}"
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(cfg.model.name, "config.json", revision=cfg.model.revision), str):
        return PASS, f"{cfg.model.name}: in the Hugging Face cache{' (HF_HUB_OFFLINE set)' if offline else ''}"
    return PASS, f"{cfg.model.name}: reachable on the hub; the first run downloads it"


def check_api_key(cfg: Any, stages: tuple[str, ...]) -> Outcome:
    """The paid API's key is set when the run sends paid requests (its presence only, never its value)."""
    from src.augment.spend import sends_paid_requests

    aug = cfg.augmentation
    if "augment" not in stages or not sends_paid_requests(aug):
        return SKIP, "paid augmentation is off (no paraphrase or synthetic requests to an API)"
    if get_secret(aug.api.api_key_env) is None:
        return FAIL, (f"paid augmentation is on but {aug.api.api_key_env} is not set: export it or put it in .env, or "
                      "set augmentation.num_paraphrase=0 augmentation.num_synthetic=0")
    return PASS, f"{aug.api.api_key_env} is set (value not shown)"


def check_preflight(cfg: Any, stages: tuple[str, ...]) -> Outcome:
    """The run's own checks before any stage (data, columns, chat template, stage settings), as --dry-run makes them."""
    from src.run import prepare_run

    try:
        prepare_run(cfg, f"doctor-preflight-{os.getpid()}", False, stages, dry_run=True)
    except UserError as exc:
        return FAIL, " | ".join(exc.problems)
    return PASS, f"every check of stages {','.join(stages)} passed (as --dry-run)"


# ---- all of them -------------------------------------------------------------------------------------------


def environment_checks(cfg: Any, stages: tuple[str, ...]) -> list[tuple[str, Callable[[], Outcome]]]:
    """Every check but the smoke test, in the order they print."""
    ranges = tested_ranges()
    packages = [(name, lambda name=name: check_package(name, ranges.get(name, ""))) for name in TESTED]
    return [("python", check_python), ("torch", lambda: check_torch(ranges.get("torch", ""))), ("cuda", check_cuda),
            ("bf16", lambda: check_bf16(cfg)), *packages, ("bnb-4bit", lambda: check_4bit(cfg)), ("sdpa", lambda: check_sdpa(cfg)),
            ("flash-attention", lambda: check_flash(cfg)), ("vllm", lambda: check_vllm(cfg)),
            ("mecab", check_mecab), ("kiwi", check_kiwi), ("disk", lambda: check_disk(cfg)),
            ("model-source", lambda: check_model_source(cfg)), ("api-key", lambda: check_api_key(cfg, stages)),
            ("preflight", lambda: check_preflight(cfg, stages))]
