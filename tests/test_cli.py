"""Flags: the stage selection a command makes, and how a resuming command's flags go on top of the saved one."""
from __future__ import annotations

import pytest

from src.cli import StageChoice, parse_args, stage_choice
from src.utils.errors import UserError
from src.pipeline import STAGE_NAMES


def test_skip_flags_and_stages_make_the_selection_in_pipeline_order() -> None:
    choice = stage_choice(parse_args(["--stages", "infer,train,evaluation", "--skip-inference"]))
    assert choice.stages == ("train", "infer", "evaluate") and choice.skips == ("infer",)
    assert choice.selected() == ("train", "evaluate")
    assert choice.flags() == ["--stages train,infer,evaluate", "--skip-inference"]
    with pytest.raises(UserError, match="unknown stage 'trian'"):
        stage_choice(parse_args(["--stages", "trian"]))


def test_the_recorded_choice_round_trips_and_drops_unknown_stages() -> None:
    choice = StageChoice(None, ("augment",), True)
    assert StageChoice.from_dict(choice.as_dict()) == choice
    assert StageChoice.from_dict({"stages": ["train", "gone"], "skips": ["gone"]}) == StageChoice(("train",), ())


def test_a_resuming_command_adds_skips_and_a_new_stages_list_replaces_the_selection() -> None:
    saved = StageChoice(None, ("augment",), True)
    assert StageChoice().on_top_of(saved) == saved  # --resume alone: as the run began
    assert StageChoice(None, ("tune",)).on_top_of(saved).selected() == tuple(
        s for s in STAGE_NAMES if s not in ("augment", "tune"))
    again = StageChoice(("augment", "merge")).on_top_of(saved)
    assert again.selected() == ("augment", "merge") and again.debug_small


@pytest.mark.parametrize("value", ["", " ", ","])
def test_an_empty_stages_list_is_an_error_not_every_stage(value: str) -> None:
    with pytest.raises(UserError, match="--stages .* names no stage; name at least one of preprocess"):
        stage_choice(parse_args(["--stages", value]))
