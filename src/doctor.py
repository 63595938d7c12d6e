"""Check a machine for a run: ``python -m src.doctor [--config X] [--debug-small] [key=value ...]`` (``dialsum doctor``).

One line per check (``pass``, ``skip`` with the reason, ``fail`` with the fix): Python, torch and the device
(CUDA runtime vs driver, GPU memory, bf16), the training libraries within the tested ranges of
``src/requirements.txt``, bitsandbytes 4-bit on the device, SDPA and flash attention, vLLM when the config
asks for it, Mecab and Kiwi, disk for the weights, where ``model.name`` loads from, the paid API key's
presence (never its value) and the config's own preflight. Then a functional smoke test: the pipeline
itself (``python -m src.main``) on the bundled debug set with a tiny model of the configured architecture,
loaded as the run would (4-bit under QLoRA), trained a few steps with the configured optimizer, dtype and
gradient checkpointing, saved, reloaded and generating through the configured engine. The last line is
one JSON object (``ok``, ``device``, ``checks``). Exit 0 when nothing fails, 1 when a check fails or the
config needs a GPU this machine lacks (one line), 2 on bad input.

Without ``--config`` the doctor checks the plain run (``configs/default.yaml``, SOLAR-10.7B QLoRA) on a
machine with a CUDA GPU, and the ``--debug-small`` CPU run on a machine without one.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from src.errors import UserError

PASS, SKIP, FAIL = "pass", "skip", "fail"
MIN_PYTHON = (3, 10)
TESTED = ("transformers", "peft", "trl", "bitsandbytes", "accelerate")  # ranges read from src/requirements.txt
REQUIREMENTS = Path(__file__).resolve().parent / "requirements.txt"
SMOKE_TIMEOUT_S = 150  # the whole doctor should finish in under 3 minutes
SMOKE_STAGES = "preprocess,merge,train,infer"
SMOKE_STEPS = 3
CHECKPOINT_MARGIN_GIB = 1.0  # adapters, optimizer state and outputs of a run, beside the base weights
SMALL_SHAPE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, head_dim=16)
# config.json keys that would make a stand-in inconsistent with its small shape, or load it as something else
DROP_KEYS = ("architectures", "auto_map", "_name_or_path", "torch_dtype", "dtype", "transformers_version", "model_type",
             "quantization_config", "layer_types", "max_window_layers", "num_experts", "rope_scaling")
SAMPLE = "#Person1#: 안녕하세요, 오늘 회의는 몇 시에 시작하나요? #Person2#: 오후 세 시에 시작합니다."
log = logging.getLogger("src.doctor")


@dataclass
class Check:
    """One line of the report."""

    name: str
    status: str
    detail: str
    seconds: float = 0.0

    def line(self) -> str:
        """``pass  torch            2.13.0 ...``"""
        return f"{self.status:<4}  {self.name:<16} {self.detail}"


Outcome = tuple[str, str]


def timed(name: str, probe: Callable[[], Outcome]) -> Check:
    """Run one probe; an exception is a ``fail`` naming it (the doctor never stops at one broken check)."""
    start = time.perf_counter()
    try:
        status, detail = probe()
    except Exception as exc:  # a probe of a broken install may raise anything; that is the finding
        status, detail = FAIL, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    return Check(name, status, detail, round(time.perf_counter() - start, 2))


def build_parser() -> argparse.ArgumentParser:
    """The doctor's flags (the pipeline's --config, --debug-small and key=value overrides)."""
    p = argparse.ArgumentParser(prog="python -m src.doctor", description=__doc__.splitlines()[0],
                                epilog="exit 0: nothing failed; 1: a check failed, or the config needs a GPU this "
                                       "machine lacks; 2: bad input (an unknown key, a missing --config)")
    p.add_argument("--config", default=None, help="the run to check: a YAML path or a preset name "
                   "(default: configs/default.yaml on a CUDA machine, the --debug-small run without one)")
    p.add_argument("--debug-small", action="store_true", help="check the --debug-small run (tiny model, CPU)")
    p.add_argument("--skip-smoke", action="store_true", help="only the environment checks, no functional smoke test")
    p.add_argument("--keep", default=None, metavar="DIR",
                   help="run the smoke test in DIR and keep it (default: a temporary folder, removed when it passes)")
    p.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides, as for python -m src.main")
    return p


def cuda_visible() -> bool:
    """torch sees a CUDA GPU."""
    import torch

    return bool(torch.cuda.is_available())


def choose_config(args: argparse.Namespace, has_gpu: bool) -> tuple[Any, bool, str]:
    """The config to check, whether it is the --debug-small run, and a line saying which it is."""
    from src.config import load_config
    from src.config.resources import find_config

    debug = args.debug_small or (args.config is None and not has_gpu)
    path = find_config(args.config) if args.config else None
    if path is not None and not path.is_file():
        raise UserError(f"--config {args.config}: no such file or preset")
    cfg = load_config(path, list(args.overrides), debug)
    if args.config:
        what = f"--config {args.config}" + (" --debug-small" if args.debug_small else "")
    elif args.debug_small:
        what = "--debug-small"
    elif debug:
        what = "--debug-small (no --config and no CUDA GPU here; --config NAME checks a preset)"
    else:
        what = "configs/default.yaml (the plain run)"
    return cfg, debug, f"{what}: model {cfg.model.name}, device {cfg.model.device}"


def gpu_refusal(cfg: Any, stages: tuple[str, ...]) -> Optional[str]:
    """One line when the config needs a GPU this machine lacks (SOLAR on a CPU), else None."""
    from src.models.device import device_problems

    needs = [p for p in device_problems(cfg, "train" in stages) if "'model.device'" in p]
    return needs[0] if needs else None


def run_stages_of(cfg: Any) -> tuple[str, ...]:
    """The stages the plain command would run with this config."""
    from src.cli import StageChoice
    from src.pipeline import is_on

    return StageChoice().selected(lambda stage: is_on(cfg, stage))


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

    from src.models.device import compute_dtype, pick_device

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

    from src.models.device import compute_dtype, pick_device

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

    from src.models.device import pick_device

    device = pick_device(cfg.model.device)
    q = torch.randn(1, 4, 8, 16, device=device)
    out = F.scaled_dot_product_attention(q, q, q, is_causal=True)
    if not bool(torch.isfinite(out).all()):
        return FAIL, f"scaled_dot_product_attention gave non-finite values on the {device}"
    return PASS, f"ran on the {device}; model.attn_implementation={cfg.model.attn_implementation}"


def check_flash(cfg: Any) -> Outcome:
    """flash-attn: required when the config names it, else optional (GPU only)."""
    import importlib.util

    from src.models.device import ATTENTION_PACKAGES

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
    from src.models.device import estimated_parameters, model_config
    from src.models.loading import DEBUG_NAME, model_location

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

    from src.config import resolve_path

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
    from src.models.loading import DEBUG_NAME, check_model_reachable, model_location
    from src.utils.secrets import get_secret

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
    from src.utils.secrets import get_secret

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


# ---- the functional smoke test -----------------------------------------------------------------------------


def architecture_config(cfg: Any) -> Optional[dict[str, Any]]:
    """``config.json`` of model.name (its folder or the Hugging Face cache), None when not on this machine."""
    from src.models.device import model_config
    from src.models.loading import model_location

    folder = Path(model_location(cfg))
    if (folder / "config.json").is_file():
        found = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        return found.get("text_config", found) if isinstance(found, dict) else None
    return model_config(cfg)


def build_stand_in(cfg: Any, folder: Path) -> tuple[Optional[str], str]:
    """A 2-layer random model of model.name's architecture with its real tokenizer, saved in ``folder``.

    Returns (the folder, what it is), or (None, why the tiny Llama stands in instead).
    """
    from src.models.loading import DEBUG_NAME, model_location

    if cfg.model.name == DEBUG_NAME or cfg.model.type != "causal":
        return None, "the tiny debug model"
    found = architecture_config(cfg)
    if not found or "model_type" not in found:
        return None, f"a tiny Llama ({cfg.model.name}'s config.json is not on this machine)"
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    shape = {k: v for k, v in found.items() if k not in DROP_KEYS}
    shape.update(SMALL_SHAPE)
    config = AutoConfig.for_model(found["model_type"], **shape)
    tokenizer = AutoTokenizer.from_pretrained(model_location(cfg), revision=cfg.model.revision, local_files_only=True,
                                              trust_remote_code=cfg.model.trust_remote_code)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    n = sum(p.numel() for p in model.parameters())
    return str(folder), f"a 2-layer {found['model_type']} ({n / 1e6:.1f}M parameters, {cfg.model.name}'s tokenizer)"


def smoke_overrides(work: Path, model_name: Optional[str]) -> list[str]:
    """What turns the checked run into a short one: bundled debug data, a few steps, a few test rows, all under ``work``."""
    from src.config.resources import shipped

    paths = [f"paths.{key}={work / key}" for key in ("output_dir", "model_dir", "clean_dir", "augmented_dir")]
    data = [f"paths.data_dir={shipped('data/debug')}", "data.train_file=[train.csv]", "data.dev_file=[dev.csv]",
            "data.test_file=[test.csv]", "data.hub.train.path=null", "data.hub.dev.path=null", "data.hub.test.path=null",
            "data.max_rows.train=16", "data.max_rows.dev=4", "data.max_rows.test=4"]
    steps = [f"training.max_steps={SMOKE_STEPS}", f"training.save_steps={SMOKE_STEPS}",
             f"training.eval_steps={SMOKE_STEPS}", "training.logging_steps=1", "training.report_to=none",
             "training.per_device_train_batch_size=2", "training.gradient_accumulation_steps=1"]
    model = [f"model.name={model_name}", "model.revision=null"] if model_name else []
    return [*paths, *data, *steps, *model, "inference.max_new_tokens=8", "inference.predict_dev=false",
            "inference.checkpoint=null", "log_level=WARNING"]


def smoke_command(args: argparse.Namespace, debug: bool, overrides: list[str]) -> list[str]:
    """``python -m src.main`` with the checked config, the user's overrides, then the smoke test's."""
    config = ["--config", args.config] if args.config else []
    return [sys.executable, "-m", "src.main", *config, *(["--debug-small"] if debug else []),
            "--stages", SMOKE_STAGES, "--run-name", "doctor", *args.overrides, *overrides]


def run_smoke(args: argparse.Namespace, cfg: Any, debug: bool, work: Path) -> Outcome:
    """The pipeline on the stand-in model: load, train, save, reload, generate; the manifest says what happened."""
    model_name, what = build_stand_in(cfg, work / "stand-in")
    cmd = smoke_command(args, debug, smoke_overrides(work, model_name))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    log_path = work / "smoke.log"
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=SMOKE_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired as exc:
        log_path.write_text(str(exc.stderr or ""), encoding="utf-8")
        return FAIL, f"the smoke run took over {SMOKE_TIMEOUT_S} s (log: {log_path}); rerun with --keep DIR to inspect it"
    log_path.write_text(proc.stdout + proc.stderr, encoding="utf-8")
    if proc.returncode != 0:
        return FAIL, f"python -m src.main exited {proc.returncode}: {last_error(proc.stderr)} (log: {log_path})"
    return smoke_result(cfg, work, what)


def last_error(stderr: str) -> str:
    """The line that says what went wrong: the first ``error:`` line, else the traceback's last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines[-1:] or ["no output"])[0]


def smoke_result(cfg: Any, work: Path, what: str) -> Outcome:
    """Read the smoke run's manifest: steps trained, the checkpoint, the summaries and the engine that wrote them."""
    from src.models.device import compute_dtype, pick_device
    from src.train.options import optimizer_name

    stages = json.loads((work / "output_dir" / "doctor" / "manifest.json").read_text(encoding="utf-8"))["stages"]
    train, infer = stages.get("train", {}), stages.get("infer", {})
    if train.get("status") != "done" or infer.get("status") != "done":
        return FAIL, f"train {train.get('status')}, infer {infer.get('status')} (log: {work / 'smoke.log'})"
    checkpoint = Path(train.get("final_checkpoint", ""))
    if not (checkpoint / "pipeline_fingerprint.json").is_file():
        return FAIL, f"no checkpoint at {checkpoint} after training (log: {work / 'smoke.log'})"
    t = cfg.training
    device = pick_device(cfg.model.device)
    dtype = str(compute_dtype(t.compute_dtype, device)).replace("torch.", "")
    dialogues = infer.get("throughput", {}).get("dialogues", 0)
    engine = infer.get("engine", {}).get("backend", "?")
    return PASS, (f"{what} on the {device}: {'4-bit' if t.use_qlora else 'full'} load, {train.get('global_step')} steps "
                  f"(optim {optimizer_name(t, device)}, {dtype}, gradient checkpointing {'on' if t.gradient_checkpointing else 'off'}), "
                  f"checkpoint saved and reloaded, {dialogues} summaries by {engine}")


def smoke_check(args: argparse.Namespace, cfg: Any, debug: bool) -> Check:
    """The smoke test in ``--keep DIR`` or a temporary folder (removed when it passes)."""
    work = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="dialsum-doctor-"))
    if args.keep and (work / "output_dir" / "doctor").exists():
        shutil.rmtree(work / "output_dir" / "doctor")
        shutil.rmtree(work / "model_dir" / "doctor", ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    check = timed("smoke", lambda: run_smoke(args, cfg, debug, work))
    if check.status == PASS and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return check


# ---- the report --------------------------------------------------------------------------------------------


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


def device_label(cfg: Any) -> str:
    """``cuda (NVIDIA H100 ...)`` or ``cpu`` (what the run would use)."""
    from src.models.device import pick_device

    device = pick_device(cfg.model.device)
    if device == "cuda":
        import torch

        return f"cuda ({torch.cuda.get_device_name(0)})"
    return device


def report(checks: list[Check], cfg: Any) -> dict[str, Any]:
    """The JSON object of the last line."""
    return {"ok": all(c.status != FAIL for c in checks), "device": device_label(cfg),
            "checks": [asdict(c) for c in checks]}


def emit(check: Check) -> Check:
    """Print one check's line as soon as it is known."""
    sys.stdout.write(check.line() + "\n")
    sys.stdout.flush()
    return check


def run_doctor(args: argparse.Namespace) -> int:
    """Every check, one line each, then the JSON line; 0 when nothing failed."""
    start = time.perf_counter()
    cfg, debug, what = choose_config(args, cuda_visible())
    stages = run_stages_of(cfg)
    refusal = gpu_refusal(cfg, stages)
    if refusal:
        sys.stdout.write(f"fail  doctor: this machine cannot run this config: {refusal}\n")
        return 1
    checks = [emit(Check("config", PASS, what, round(time.perf_counter() - start, 2)))]
    checks += [emit(timed(name, probe)) for name, probe in environment_checks(cfg, stages)]
    if args.skip_smoke:
        checks.append(emit(Check("smoke", SKIP, "--skip-smoke given")))
    else:
        checks.append(emit(smoke_check(args, cfg, debug)))
    sys.stdout.write(json.dumps(report(checks, cfg), ensure_ascii=False) + "\n")
    return 0 if all(c.status != FAIL for c in checks) else 1


def main(argv: Optional[list[str]] = None, prog: str = "python -m src.doctor") -> int:
    """``python -m src.doctor``: 0 when nothing fails, 1 when a check fails, 2 on bad input (one line, no traceback)."""
    parser = build_parser()
    parser.prog = prog
    args = parser.parse_intermixed_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        from src.utils.secrets import load_dotenv_once

        load_dotenv_once()
        return run_doctor(args)
    except UserError as exc:
        for problem in exc.problems:
            sys.stderr.write(f"error: {problem}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("doctor: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
