"""Which checkpoint --resume continues from: complete, same fingerprint; stale and broken ones set aside."""
from __future__ import annotations

import json
import logging
import shutil
import struct
from pathlib import Path

from src.config import load_config
from src.models.checkpoint import (ASIDE, FINGERPRINT_FILE, content_digest, finish_from, finished, problem_with, record,
                                   resume_checkpoint, training_parts)


def safetensors_file(path: Path, n_floats: int = 4) -> None:
    """A minimal valid safetensors file: header + data."""
    header = json.dumps({"w": {"dtype": "F32", "shape": [n_floats], "data_offsets": [0, 4 * n_floats]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * (4 * n_floats))


def checkpoint(root: Path, step: int, parts: dict, max_steps: int = 10) -> Path:
    folder = root / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    safetensors_file(folder / "adapter_model.safetensors")
    (folder / "optimizer.pt").write_bytes(b"x" * 100)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step, "epoch": step / max_steps,
                                                           "log_history": [{"loss": 1.0}, {"loss": 0.5}]}))
    record(folder, parts)
    return folder


PARTS = training_parts(load_config(None, [], debug_small=True), {"train": "aaaa", "dev": "bbbb"}, "/models/tiny")


def test_the_newest_complete_matching_checkpoint_is_chosen(tmp_path: Path) -> None:
    checkpoint(tmp_path, 5, PARTS)
    newest = checkpoint(tmp_path, 8, PARTS)
    assert resume_checkpoint(tmp_path, PARTS) == newest
    assert problem_with(newest) is None


def test_a_truncated_adapter_or_optimizer_falls_back_to_the_previous_checkpoint(tmp_path: Path, caplog) -> None:
    previous = checkpoint(tmp_path, 5, PARTS)
    broken = checkpoint(tmp_path, 8, PARTS)
    with (broken / "optimizer.pt").open("r+b") as fh:
        fh.truncate(10)
    with caplog.at_level(logging.WARNING):
        assert resume_checkpoint(tmp_path, PARTS) == previous
    assert "checkpoint-8 is incomplete or damaged (optimizer.pt is truncated)" in caplog.text
    assert not broken.exists() and len(list((tmp_path / ASIDE).glob("checkpoint-8.broken-*"))) == 1
    again = checkpoint(tmp_path, 9, PARTS)
    payload = again / "adapter_model.safetensors"
    payload.write_bytes(payload.read_bytes()[:-3])  # the weights cut short: recorded size no longer matches
    assert resume_checkpoint(tmp_path, PARTS) == previous, "a later --resume does not hit the broken one again"


def test_a_checkpoint_of_other_settings_is_set_aside_not_deleted(tmp_path: Path, caplog) -> None:
    old = checkpoint(tmp_path, 10, PARTS)
    changed = {**PARTS, "training": {**PARTS["training"], "learning_rate": 1.0}}
    with caplog.at_level(logging.INFO):
        assert resume_checkpoint(tmp_path, changed) is None
    assert "training.learning_rate changed" in caplog.text
    kept = list((tmp_path / ASIDE).glob("checkpoint-10.stale-*"))
    assert not old.exists() and len(kept) == 1 and (kept[0] / FINGERPRINT_FILE).is_file()


def test_data_and_prompt_changes_change_the_fingerprint(tmp_path: Path) -> None:
    checkpoint(tmp_path, 4, PARTS)
    other_data = {**PARTS, "data": {"train": "cccc", "dev": "bbbb"}}
    assert resume_checkpoint(tmp_path, other_data) is None
    checkpoint(tmp_path, 4, PARTS)
    fewshot = training_parts(load_config(None, ["prompt.num_fewshot=0"], debug_small=True),
                             {"train": "aaaa", "dev": "bbbb"}, "/models/tiny")
    assert resume_checkpoint(tmp_path, fewshot) is None


def test_a_finished_checkpoint_becomes_the_final_one_without_another_step(tmp_path: Path) -> None:
    last = checkpoint(tmp_path, 10, PARTS)
    assert finished(last, max_steps=10, num_epochs=3) and not finished(last, max_steps=20, num_epochs=3)
    fields = finish_from(last, tmp_path / "final_checkpoint")
    final = tmp_path / "final_checkpoint"
    assert fields["global_step"] == 10 and fields["train_loss"] == 0.75
    assert (final / "adapter_model.safetensors").is_file()
    assert not (final / "optimizer.pt").exists() and not (final / "trainer_state.json").exists()


def flip_a_bit(path: Path, offset: int = -1) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_bit_flipped_weight_file_is_not_resumed_the_previous_checkpoint_is(tmp_path: Path, caplog) -> None:
    """Issue 24: same size, readable header, one bit of a tensor changed after the save: caught by its sha256."""
    previous = checkpoint(tmp_path, 5, PARTS)
    damaged = checkpoint(tmp_path, 8, PARTS)
    assert set(json.loads((damaged / FINGERPRINT_FILE).read_text())["sha256"]) == {
        "adapter_model.safetensors", "optimizer.pt", "trainer_state.json"}
    flip_a_bit(damaged / "adapter_model.safetensors")
    with caplog.at_level(logging.WARNING):
        assert resume_checkpoint(tmp_path, PARTS) == previous
    assert "adapter_model.safetensors does not match its recorded sha256" in caplog.text


def test_a_safetensors_file_whose_header_promises_more_than_it_holds_is_unreadable(tmp_path: Path) -> None:
    from src.models.checkpoint import safetensors_readable

    good = tmp_path / "w.safetensors"
    safetensors_file(good)
    assert safetensors_readable(good)
    good.write_bytes(good.read_bytes()[:-4])
    assert not safetensors_readable(good)
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 20)
    assert not safetensors_readable(tmp_path / "junk.safetensors")


def test_inference_falls_back_from_a_damaged_final_checkpoint_and_refuses_when_nothing_is_intact(tmp_path: Path,
                                                                                                 caplog) -> None:
    import pytest

    from src.utils.errors import UserError
    from src.models.checkpoint import verified_checkpoint

    intact = checkpoint(tmp_path, 5, PARTS)
    final = tmp_path / "final_checkpoint"
    final.mkdir()
    safetensors_file(final / "adapter_model.safetensors")
    (final / "adapter_config.json").write_text("{}")
    record(final, PARTS)
    assert verified_checkpoint(final) == final
    flip_a_bit(final / "adapter_model.safetensors")
    with caplog.at_level(logging.WARNING):
        assert verified_checkpoint(final) == intact
    assert "final_checkpoint is damaged" in caplog.text and "checkpoint-5" in caplog.text
    flip_a_bit(intact / "optimizer.pt", 0)
    with pytest.raises(UserError, match="no intact checkpoint-N"):
        verified_checkpoint(final)
    elsewhere = tmp_path / "trained-elsewhere"
    elsewhere.mkdir()
    assert verified_checkpoint(elsewhere) == elsewhere, "a folder with no record has nothing to verify"


def test_content_digest_follows_contents_not_times(tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "adapter_model.safetensors").write_bytes(b"weights")
    (folder / "adapter_config.json").write_text("{}")
    (folder / "optimizer.pt").write_bytes(b"not part of the model")
    copy = Path(shutil.copytree(folder, tmp_path / "copy"))
    assert content_digest(folder) == content_digest(copy)
    (copy / "adapter_model.safetensors").write_bytes(b"weighs")
    assert content_digest(folder) != content_digest(copy)
    assert content_digest(tmp_path / "absent") == "missing"
    record(folder, {"parts": 1})
    recorded = content_digest(folder)
    assert recorded.startswith("ckpt:") and recorded == content_digest(folder)
    (folder / FINGERPRINT_FILE).write_text((folder / FINGERPRINT_FILE).read_text())
    assert content_digest(folder) == recorded, "the record's checksums, not its file times, are the identity"
