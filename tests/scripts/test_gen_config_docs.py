"""docs/CONFIG.md is generated from the live config classes and must be current."""
from __future__ import annotations

from scripts import gen_config_docs as gen
from src.config import all_keys
from tests.conftest import REPO

# every key the seed's model-compose components let a user set (datasets load/concat/select/filter/map,
# model-trainer component and SFT action); each must have a row in the mapping table
SEED_DATASET_KEYS = {"path", "name", "split", "revision", "token", "trust_remote_code", "data_files", "data_dir",
                     "streaming", "keep_in_memory", "cache_dir", "save_infos", "fraction", "shuffle"}
SEED_TRAINER_KEYS = {"model", "device", "precision", "peft_adapter", "quantization", "bnb_4bit_compute_dtype",
                     "bnb_4bit_use_double_quant", "dataset", "eval_dataset", "text_column", "prompt_column",
                     "response_column", "system_column", "max_seq_length", "packing", "completion_only_loss",
                     "learning_rate", "per_device_train_batch_size", "per_device_eval_batch_size", "num_epochs",
                     "optimizer", "lr_scheduler_type", "output_dir", "weight_decay", "warmup_steps", "max_grad_norm",
                     "gradient_accumulation_steps", "eval_steps", "save_steps", "logging_steps",
                     "gradient_checkpointing", "seed"}


def test_config_md_is_current() -> None:
    text = (REPO / "docs" / "CONFIG.md").read_text(encoding="utf-8")
    assert text == gen.render(), "docs/CONFIG.md is stale: run python -m scripts.gen_config_docs"


def test_every_key_has_a_row_with_default_and_meaning() -> None:
    rows = {line.split("|")[1].strip().strip("`"): line for line in gen.render().splitlines()
            if line.startswith("| `")}
    for key, (_, fld) in all_keys().items():
        assert key in rows, key
        assert fld.metadata["help"].split()[0] in rows[key], key


def test_seed_keys_are_all_mapped_to_existing_keys() -> None:
    assert gen.unknown_mapped_keys() == []
    theirs = {k.strip() for _, key, _, _ in gen.SEED_MAP for k in key.replace(":", "/").split("/")}
    assert SEED_DATASET_KEYS <= theirs and SEED_TRAINER_KEYS <= theirs
    for entry in gen.SEED_MAP:
        assert entry[2] or entry[3], f"{entry[1]}: no key and no reason"


def test_check_mode_reports_stale_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(gen, "OUT", tmp_path / "CONFIG.md")
    assert gen.main(["--check"]) == 1
    assert gen.main([]) == 0 and gen.main(["--check"]) == 0
