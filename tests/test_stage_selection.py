"""Which stages a run selects: every stage by default except the opt-in ones (rl) its config leaves off."""
from __future__ import annotations

from src.cli import parse_args, selected_stages
from src.config import load_config
from src.pipeline import STAGE_NAMES, enable_named, is_on


def stages(argv: list[str], *overrides: str) -> tuple[str, ...]:
    cfg = load_config(None, list(overrides))
    return selected_stages(parse_args(argv), lambda stage: is_on(cfg, stage))


def test_rl_sits_between_train_and_tune() -> None:
    assert STAGE_NAMES.index("rl") == STAGE_NAMES.index("train") + 1 == STAGE_NAMES.index("tune") - 1


def test_rl_is_off_by_default_and_on_when_enabled_or_named() -> None:
    assert "rl" not in stages([]) and "train" in stages([])
    assert "rl" in stages([], "rl.enabled=true")
    assert stages(["--stages", "train,rl,infer"]) == ("train", "rl", "infer")
    assert stages(["--stages", "grpo"]) == ("rl",)
    assert "rl" not in stages(["--skip-rl"], "rl.enabled=true")


def test_naming_rl_writes_it_on_into_the_config_and_leaves_other_runs_alone() -> None:
    cfg = load_config(None, [])
    assert enable_named(cfg, ("train", "rl")).rl.enabled is True
    assert enable_named(cfg, ("train", "infer")) is cfg
