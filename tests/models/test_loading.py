"""Where model.name loads from, and the one-line problems when it cannot be loaded."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from src.config import Config
from src.models.loading import DEBUG_NAME, check_model_reachable, debug_model_dir, model_location


def with_model(name: str, **model: object) -> Config:
    cfg = Config()
    return replace(cfg, model=replace(cfg.model, name=name, **model))


def test_location_of_the_debug_model_follows_its_type(tmp_path: Path) -> None:
    cfg = replace(with_model(DEBUG_NAME), paths=replace(Config().paths, model_dir=str(tmp_path)))
    assert model_location(cfg) == str(tmp_path / "debug" / "tiny-llama") == str(debug_model_dir(cfg))
    seq = replace(cfg, model=replace(cfg.model, type="seq2seq"))
    assert model_location(seq).endswith("tiny-bart")


def test_location_of_a_folder_is_the_folder_and_of_a_hub_id_the_id(tmp_path: Path) -> None:
    assert model_location(with_model(str(tmp_path))) == str(tmp_path)
    assert model_location(with_model("org/some-model")) == "org/some-model"


def test_unreachable_models_are_one_line_naming_the_key(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "empty").mkdir()
    no_config = check_model_reachable(str(tmp_path / "empty"), None, None)
    assert no_config is not None and "'model.name'" in no_config and "config.json" in no_config
    offline = check_model_reachable("nobody-here/no-such-model", None, None)
    assert offline is not None and "HF_HUB_OFFLINE" in offline and "\n" not in offline
    assert check_model_reachable(DEBUG_NAME, None, None) is None
