"""Command-line interface of ``python -m src.main`` (argparse; no heavy imports here, so ``--help`` is instant)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable, Optional

from src.config.resources import preset_names
from src.utils.errors import UserError
from src.stages import SKIP_FLAGS
from src.stages import STAGE_NAMES as STAGES

ALIASES = {"augmentation": "augment", "training": "train", "tuning": "tune", "inference": "infer", "evaluation": "evaluate",
           "prediction": "infer", "predict": "infer", "eval": "evaluate", "grpo": "rl"}
VALUE_FLAGS = {"num_paraphrase": "augmentation.num_paraphrase", "num_speaker_swap": "augmentation.num_speaker_swap",
               "num_synthetic": "augmentation.num_synthetic"}


def epilog(prog: str) -> str:
    """Where to find the config keys, the presets and the other commands."""
    evaluate = "dialsum evaluate" if prog == "dialsum" else "python -m src.evaluate"
    ensemble = "dialsum ensemble" if prog == "dialsum" else "python -m src.ensemble"
    doctor = "dialsum doctor" if prog == "dialsum" else "python -m src.doctor"
    return (
        "overrides: any number of key.sub=value, before or after the flags, e.g.\n"
        f"  {prog} --debug-small training.learning_rate=2e-4 --skip-augmentation prompt.num_fewshot=0\n"
        "every key, its default, allowed values and meaning: docs/CONFIG.md (or --print-config for this run's values)\n"
        f"model presets (--config NAME or --config configs/models/NAME.yaml): {', '.join(preset_names())}\n"
        "check a config and see the plan (and any paid API requests) without running anything: --dry-run\n"
        f"score a predictions file: {evaluate} --pred P.csv --ref R.csv\n"
        f"pick per dialogue the consensus of several prediction files: {ensemble} --pred A.csv B.csv --out OUT.csv\n"
        f"check a new machine for a run first (environment and a smoke run): {doctor} [--config NAME]\n"
        "how stages, skip and resume work: docs/LLM_Pipeline.md")


def build_parser(prog: str = "python -m src.main") -> argparse.ArgumentParser:
    """All flags, each with one line of help."""
    p = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description=f"Korean dialogue summarization: {' -> '.join(STAGES)}.", epilog=epilog(prog))
    p.add_argument("--config", default=None,
                   help="YAML config: a path (the working directory first, then the shipped configs/) or a preset "
                        "name (default: configs/default.yaml, the SOLAR QLoRA run)")
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


def parse_args(argv: Optional[list[str]] = None, prog: str = "python -m src.main") -> argparse.Namespace:
    """Flags and ``key=value`` overrides in any order (argparse's intermixed parsing)."""
    return build_parser(prog).parse_intermixed_args(argv)


def flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """Config values set by dedicated flags (applied before dotted overrides)."""
    values: dict[str, Any] = {key: getattr(args, flag) for flag, key in VALUE_FLAGS.items()
                              if getattr(args, flag) is not None}
    if args.use_instruction_augmentation:
        values["training.instruction_augmentation"] = True
    return values


@dataclass(frozen=True)
class StageChoice:
    """A command's stage selection: ``--stages`` (None: all), the ``--skip-*`` flags, ``--debug-small``.

    The manifest keeps it (``command``), so ``--resume`` alone runs what the first command ran.
    """

    stages: Optional[tuple[str, ...]] = None
    skips: tuple[str, ...] = ()
    debug_small: bool = False

    def selected(self, on: Callable[[str], bool] = lambda stage: True) -> tuple[str, ...]:
        """Stages to run, in pipeline order: ``stages`` (or every stage ``on`` accepts: opt-in stages are off
        unless their key is set) minus ``skips``."""
        return tuple(s for s in STAGES if (on(s) if self.stages is None else s in self.stages) and s not in self.skips)

    def flags(self) -> list[str]:
        """The choice as the command-line flags that make it."""
        out = [f"--stages {','.join(self.stages)}"] if self.stages is not None else []
        out += [SKIP_FLAGS[s] for s in STAGES if s in self.skips]
        return out + (["--debug-small"] if self.debug_small else [])

    def as_dict(self) -> dict[str, Any]:
        """What the manifest records."""
        return {"stages": list(self.stages) if self.stages is not None else None, "skips": list(self.skips),
                "debug_small": self.debug_small}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StageChoice":
        """A recorded choice; stages this version does not know are dropped."""
        stages = data.get("stages")
        return cls(tuple(s for s in stages if s in STAGES) if stages is not None else None,
                   tuple(s for s in data.get("skips") or () if s in STAGES), bool(data.get("debug_small")))

    def on_top_of(self, saved: "StageChoice") -> "StageChoice":
        """This (a resuming command's) choice over the saved one: a new ``--stages`` replaces the saved selection
        (skips included); new ``--skip-*`` flags add to it; ``--debug-small`` stays as the run began."""
        if self.stages is not None:
            return StageChoice(self.stages, self.skips, saved.debug_small)
        skips = tuple(s for s in STAGES if s in saved.skips or s in self.skips)
        return StageChoice(saved.stages, skips, saved.debug_small)


def stage_choice(args: argparse.Namespace) -> StageChoice:
    """The stage selection of the parsed flags (``--stages`` names checked, aliases allowed)."""
    chosen: Optional[list[str]] = None
    if args.stages is not None:
        if not args.stages.replace(",", "").strip():  # an empty "$VAR" must not mean every stage (and train)
            raise UserError(f"--stages {args.stages!r} names no stage; name at least one of {', '.join(STAGES)}, "
                            "or leave --stages out to run them all")
        chosen = []
        for raw in (r for r in args.stages.split(",") if r.strip()):
            name = ALIASES.get(raw.strip().lower(), raw.strip().lower())
            if name not in STAGES:
                raise UserError(f"--stages: unknown stage '{raw.strip()}'; choose from {', '.join(STAGES)}")
            chosen.append(name)
    stages = tuple(s for s in STAGES if s in chosen) if chosen is not None else None
    return StageChoice(stages, tuple(s for s in STAGES if getattr(args, f"skip_{s}")), bool(args.debug_small))


def selected_stages(args: argparse.Namespace, on: Callable[[str], bool] = lambda stage: True) -> tuple[str, ...]:
    """Stages to run, in pipeline order: --stages (or every stage ``on`` accepts) minus the --skip-* flags."""
    return stage_choice(args).selected(on)
