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
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from src.config import load_config
from src.config.resources import find_config, shipped
from src.doctor_checks import FAIL, Outcome, PASS, SKIP, cuda_visible, environment_checks
from src.models.device import compute_dtype, device_problems, model_config, pick_device
from src.models.loading import DEBUG_NAME, model_location
from src.utils.errors import UserError
from src.utils.secrets import load_dotenv_once

SMOKE_TIMEOUT_S = 150  # the whole doctor should finish in under 3 minutes
SMOKE_STAGES = "preprocess,merge,train,infer"
SMOKE_STEPS = 3
SMALL_SHAPE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, head_dim=16)
# config.json keys that would make a stand-in inconsistent with its small shape, or load it as something else
DROP_KEYS = ("architectures", "auto_map", "_name_or_path", "torch_dtype", "dtype", "transformers_version", "model_type",
             "quantization_config", "layer_types", "max_window_layers", "num_experts", "rope_scaling")


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


def choose_config(args: argparse.Namespace, has_gpu: bool) -> tuple[Any, bool, str]:
    """The config to check, whether it is the --debug-small run, and a line saying which it is."""
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
    needs = [p for p in device_problems(cfg, "train" in stages) if "'model.device'" in p]
    return needs[0] if needs else None


def run_stages_of(cfg: Any) -> tuple[str, ...]:
    """The stages the plain command would run with this config."""
    from src.cli import StageChoice
    from src.pipeline import is_on

    return StageChoice().selected(lambda stage: is_on(cfg, stage))


# ---- the functional smoke test -----------------------------------------------------------------------------


def architecture_config(cfg: Any) -> Optional[dict[str, Any]]:
    """``config.json`` of model.name (its folder or the Hugging Face cache), None when not on this machine."""
    folder = Path(model_location(cfg))
    if (folder / "config.json").is_file():
        found = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        return found.get("text_config", found) if isinstance(found, dict) else None
    return model_config(cfg)


def build_stand_in(cfg: Any, folder: Path) -> tuple[str, str]:
    """A 2-layer random model of model.name's architecture with its real tokenizer, saved in ``folder``.

    Returns (the model.name the smoke run uses, what it is): the folder, or ``tiny-debug`` (a tiny Llama, or a
    tiny BART for model.type=seq2seq) when model.name's config.json is not on this machine.
    """
    if cfg.model.name == DEBUG_NAME:
        return DEBUG_NAME, "the tiny debug model"
    if cfg.model.type != "causal":
        return DEBUG_NAME, "a tiny BART (the debug model of model.type=seq2seq)"
    found = architecture_config(cfg)
    if not found or "model_type" not in found:
        return DEBUG_NAME, f"a tiny Llama ({cfg.model.name}'s config.json is not on this machine)"
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


def smoke_overrides(work: Path, model_name: str) -> list[str]:
    """What turns the checked run into a short one: bundled debug data, a few steps, a few test rows, all under ``work``."""
    paths = [f"paths.{key}={work / key}" for key in ("output_dir", "model_dir", "clean_dir", "augmented_dir")]
    data = [f"paths.data_dir={shipped('data/debug')}", "data.train_file=[train.csv]", "data.dev_file=[dev.csv]",
            "data.test_file=[test.csv]", "data.hub.train.path=null", "data.hub.dev.path=null", "data.hub.test.path=null",
            "data.max_rows.train=16", "data.max_rows.dev=4", "data.max_rows.test=4"]
    steps = [f"training.max_steps={SMOKE_STEPS}", f"training.save_steps={SMOKE_STEPS}",
             f"training.eval_steps={SMOKE_STEPS}", "training.logging_steps=1", "training.report_to=none",
             "training.per_device_train_batch_size=2", "training.gradient_accumulation_steps=1"]
    model = [f"model.name={model_name}", "model.revision=null"]
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


def device_label(cfg: Any) -> str:
    """``cuda (NVIDIA H100 ...)`` or ``cpu`` (what the run would use)."""
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
