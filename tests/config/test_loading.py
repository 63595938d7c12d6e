"""Config tree: every shipped YAML loads, overrides are typed, bad keys and values name the key."""
from __future__ import annotations

from pathlib import Path

import pytest

from src.config import REPO_ROOT, all_keys, load_config, to_dict
from src.utils.errors import UserError

SHIPPED = sorted((REPO_ROOT / "configs").glob("*.yaml")) + sorted((REPO_ROOT / "configs" / "models").glob("*.yaml"))
CONTRACT_KEYS = ["paths.data_dir", "paths.model_dir", "paths.output_dir", "data.train_file", "data.dev_file",
                 "data.test_file", "model.name", "model.type", "training.max_steps", "training.num_train_epochs",
                 "training.save_steps", "training.learning_rate", "training.per_device_train_batch_size",
                 "training.use_lora", "training.use_qlora", "prompt.num_fewshot", "augmentation.api.base_url",
                 "augmentation.api.model", "augmentation.api.max_concurrency", "augmentation.api.timeout",
                 "inference.batch_size", "inference.max_new_tokens"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_yaml_loads(path: Path) -> None:
    cfg = load_config(path, [])
    assert cfg.model.type in ("causal", "seq2seq")


def test_contract_keys_exist() -> None:
    keys = all_keys()
    assert [k for k in CONTRACT_KEYS if k not in keys] == []


def test_presets_name_the_seed_models() -> None:
    names = {load_config(p, []).model.name for p in (REPO_ROOT / "configs" / "models").glob("*.yaml")}
    assert names == {"upstage/SOLAR-10.7B-Instruct-v1.0", "Bllossom/llama-3.2-Korean-Bllossom-3B",
                     "MLP-KTLim/llama-3-Korean-Bllossom-8B", "Qwen/Qwen2.5-7B-Instruct",
                     "Qwen/Qwen3-4B-Instruct-2507", "digit82/kobart-summarization", "gemma-3-270m"}
    assert load_config(None, []).model.name == "upstage/SOLAR-10.7B-Instruct-v1.0"


def test_overrides_are_typed() -> None:
    cfg = load_config(None, ["training.learning_rate=2e-4", "prompt.num_fewshot=0", "training.use_lora=true",
                             "training.use_qlora=false", "inference.checkpoint=null", "training.extra={seed: 3}",
                             "model.special_tokens=#A#,#B#"])
    assert cfg.training.learning_rate == pytest.approx(2e-4)
    assert cfg.prompt.num_fewshot == 0 and cfg.training.use_qlora is False
    assert cfg.inference.checkpoint is None and cfg.training.extra == {"seed": 3}
    assert cfg.model.special_tokens == ("#A#", "#B#")


def test_debug_overlay_applies_before_overrides() -> None:
    cfg = load_config(None, ["training.max_steps=7"], debug_small=True)
    assert cfg.model.name == "tiny-debug" and cfg.training.max_steps == 7
    assert cfg.paths.data_dir == "data/debug"


@pytest.mark.parametrize("override, fragment", [
    ("training.learning_rat=1e-4", "did you mean 'training.learning_rate'"),
    ("training.max_steps=abc", "'training.max_steps'"),
    ("model.type=decoder", "must be one of causal, seq2seq"),
    ("training.use_lora=maybe", "expected true or false"),
    ("num_fewshot=2", "did you mean 'prompt.num_fewshot'"),
    ("inference.batch_size=0", "'inference.batch_size' = 0: must be >= 1"),
])
def test_bad_override_names_the_key(override: str, fragment: str) -> None:
    with pytest.raises(UserError) as err:
        load_config(None, [override])
    assert fragment in str(err.value)
    assert len(err.value.problems) == 1


def test_unknown_key_in_yaml_names_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("training:\n  learning_rte: 1.0e-4\n")
    with pytest.raises(UserError) as err:
        load_config(bad, [])
    assert str(bad) in str(err.value) and "training.learning_rate" in str(err.value)


def test_bases_cycle_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("bases: [b.yaml]\n")
    (tmp_path / "b.yaml").write_text("bases: [a.yaml]\n")
    with pytest.raises(UserError, match="cycle"):
        load_config(tmp_path / "a.yaml", [])


def test_resolved_config_round_trips() -> None:
    import yaml

    cfg = load_config(None, [], debug_small=True)
    text = yaml.safe_dump(to_dict(cfg), allow_unicode=True)
    flat_again = load_config(None, [f"seed={cfg.seed}"], debug_small=True)
    assert yaml.safe_dump(to_dict(flat_again), allow_unicode=True) == text


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "configs" / "models").glob("*.yaml")), ids=lambda p: p.name)
def test_presets_hold_only_what_differs(path: Path) -> None:
    """Every key of a preset changes the value the preset would have without it (its bases, else the defaults)."""
    import yaml

    from src.config import build_config, read_yaml
    from src.config.loading import _flatten

    tree = yaml.safe_load(path.read_text(encoding="utf-8"))
    bases = tree.pop("bases", []) or []
    inherited: dict = {}
    for base in [bases] if isinstance(bases, str) else bases:
        inherited.update(read_yaml(path.parent / base))
    without = to_dict(build_config(inherited))
    for key, value in _flatten(tree).items():
        if key == "model.name":
            continue  # a preset names its model even where it is the default one
        section, *rest = key.split(".")
        before = without[section]
        for part in rest:
            before = before[part]
        assert before != value, f"{path.name}: {key} = {value!r} is what the preset inherits already"


def test_every_preset_has_the_same_base_and_the_plain_command_is_the_solar_preset() -> None:
    import yaml

    for path in sorted((REPO_ROOT / "configs" / "models").glob("*.yaml")):
        assert yaml.safe_load(path.read_text(encoding="utf-8"))["bases"] == ["../base.yaml"], path.name
    solar = load_config(REPO_ROOT / "configs" / "models" / "solar-10.7b-instruct.yaml", [])
    assert to_dict(load_config(None, [])) == to_dict(solar)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_no_shipped_config_sends_paid_requests_unasked(path: Path) -> None:
    from src.augment.spend import sends_paid_requests

    cfg = load_config(path, [])
    assert not sends_paid_requests(cfg.augmentation) and cfg.augmentation.api.max_cost > 0


def test_a_key_given_twice_names_the_key_and_both_lines(tmp_path: Path) -> None:
    bad = tmp_path / "twice.yaml"
    bad.write_text("training:\n  learning_rate: 1.0e-4\nseed: 3\ntraining:\n  max_steps: 5\n")
    with pytest.raises(UserError) as err:
        load_config(bad, [])
    assert str(err.value) == (f"{bad}: key 'training' is given twice (lines 1 and 4); the second would silently "
                              "replace the first: merge the two into one")


def test_a_nested_key_given_twice_is_an_error_too(tmp_path: Path) -> None:
    bad = tmp_path / "twice.yaml"
    bad.write_text("training:\n  learning_rate: 1.0e-4\n  learning_rate: 2.0e-4\n")
    with pytest.raises(UserError, match=r"key 'learning_rate' is given twice \(lines 2 and 3\)"):
        load_config(bad, [])


def test_a_yaml_tag_that_would_run_code_is_refused_not_run(tmp_path: Path) -> None:
    """Probe scenario that held: a python tag in a config is a syntax error naming the file, nothing runs."""
    marker = tmp_path / "ran"
    bad = tmp_path / "tag.yaml"
    bad.write_text(f"seed: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(UserError, match=f"{bad}: not valid YAML"):
        load_config(bad, [])
    assert not marker.exists()
