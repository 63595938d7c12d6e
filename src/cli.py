"""Command-line interface of ``python -m src.main`` (argparse; no heavy imports here, so ``--help`` is instant)."""
from __future__ import annotations

import argparse
from typing import Any, Callable, Optional

from src.config import REPO_ROOT
from src.errors import UserError
from src.pipeline import SKIP_FLAGS
from src.pipeline import STAGE_NAMES as STAGES

ALIASES = {"augmentation": "augment", "training": "train", "tuning": "tune", "inference": "infer", "evaluation": "evaluate",
           "prediction": "infer", "predict": "infer", "eval": "evaluate", "grpo": "rl"}
VALUE_FLAGS = {"num_paraphrase": "augmentation.num_paraphrase", "num_speaker_swap": "augmentation.num_speaker_swap",
               "num_synthetic": "augmentation.num_synthetic"}


def epilog() -> str:
    """Where to find the config keys, the presets and the other commands."""
    presets = ", ".join(sorted(p.stem for p in (REPO_ROOT / "configs" / "models").glob("*.yaml")))
    return (
        "overrides: any number of key.sub=value, before or after the flags, e.g.\n"
        "  python -m src.main --debug-small training.learning_rate=2e-4 --skip-augmentation prompt.num_fewshot=0\n"
        "every key, its default, allowed values and meaning: docs/CONFIG.md (or --print-config for this run's values)\n"
        f"model presets (--config configs/models/NAME.yaml): {presets}\n"
        "check a config and see the plan without running anything: --dry-run\n"
        "score a predictions file: python -m src.evaluate --pred P.csv --ref R.csv\n"
        "how stages, skip and resume work: docs/LLM_Pipeline.md")


def build_parser() -> argparse.ArgumentParser:
    """All flags, each with one line of help."""
    p = argparse.ArgumentParser(
        prog="python -m src.main", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Korean dialogue summarization: preprocess -> augment -> merge -> train -> infer -> evaluate.",
        epilog=epilog())
    p.add_argument("--config", default=None, help="YAML config (default: configs/default.yaml, the SOLAR QLoRA run)")
    p.add_argument("--debug-small", action="store_true",
                   help="tiny local model + bundled data/debug set, CPU, offline (about a minute on 2 cores)")
    p.add_argument("--resume", action="store_true",
                   help="continue a run from its saved config: skip stages already done, resume training")
    p.add_argument("--run-name", default=None, help="run folder name (default: a timestamp; with --resume, the newest run)")
    for stage, flag in SKIP_FLAGS.items():
        p.add_argument(flag, dest=f"skip_{stage}", action="store_true", help=f"do not run the {stage} stage")
    p.add_argument("--stages", default=None, help=f"run only these stages, comma-separated ({','.join(STAGES)})")
    p.add_argument("--num-paraphrase", type=float, default=None, help="paraphrases: count, or fraction of train if < 1")
    p.add_argument("--num-speaker-swap", type=float, default=None, help="speaker-swapped copies: count or fraction")
    p.add_argument("--num-synthetic", type=float, default=None, help="synthetic dialogues: count or fraction")
    p.add_argument("--use-instruction-augmentation", action="store_true",
                   help="render each training example with every prompt.instruction_variants phrasing")
    p.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    p.add_argument("--dry-run", action="store_true",
                   help="run every check, print which stages would run, skip or resume and why, and exit")
    p.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides (any order with the flags)")
    return p


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    """Flags and ``key=value`` overrides in any order (argparse's intermixed parsing)."""
    return build_parser().parse_intermixed_args(argv)


def flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """Config values set by dedicated flags (applied before dotted overrides)."""
    values: dict[str, Any] = {key: getattr(args, flag) for flag, key in VALUE_FLAGS.items()
                              if getattr(args, flag) is not None}
    if args.use_instruction_augmentation:
        values["training.instruction_augmentation"] = True
    return values


def selected_stages(args: argparse.Namespace, on: Callable[[str], bool] = lambda stage: True) -> tuple[str, ...]:
    """Stages to run, in pipeline order: --stages (or every stage ``on`` accepts) minus the --skip-* flags."""
    chosen: Optional[set[str]] = None
    if args.stages:
        chosen = set()
        for raw in args.stages.split(","):
            name = ALIASES.get(raw.strip().lower(), raw.strip().lower())
            if name not in STAGES:
                raise UserError(f"--stages: unknown stage '{raw.strip()}'; choose from {', '.join(STAGES)}")
            chosen.add(name)
    return tuple(s for s in STAGES if (on(s) if chosen is None else s in chosen) and not getattr(args, f"skip_{s}"))
