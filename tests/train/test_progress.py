"""Loss lines and curves; a NaN loss stops training with one line instead of reaching inference."""
from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from src.utils.errors import UserError
from src.train.progress import FiniteLoss, TrainingLog


def state(step: int) -> SimpleNamespace:
    return SimpleNamespace(global_step=step, max_steps=10, epoch=step / 10, is_world_process_zero=True)


def test_a_nan_loss_stops_training_naming_the_learning_rate() -> None:
    cb = FiniteLoss(learning_rate=3.0)
    cb.on_log(None, state(1), None, logs={"loss": 1.2})
    with pytest.raises(UserError) as err:
        cb.on_log(None, state(2), None, logs={"loss": float("nan")})
    assert "step 2" in err.value.problems[0] and "training.learning_rate (now 3)" in err.value.problems[0]


def test_loss_lines_and_curves(tmp_path: Path, caplog) -> None:
    cb = TrainingLog(tmp_path)
    with caplog.at_level(logging.INFO):
        for step in range(1, 6):
            cb.on_log(None, state(step), None, logs={"loss": 2.0 / step, "learning_rate": 1e-3, "grad_norm": 0.5})
        cb.on_log(None, state(5), None, logs={"eval_loss": 0.9})
        cb.on_train_end(None, state(5), None)
    assert "train step 3/10: loss 0.6667, lr 1.00e-03, grad_norm 0.500" in caplog.text
    assert "train step 5/10: eval_loss 0.9000" in caplog.text
    assert (tmp_path / "train_curves.png").stat().st_size > 1000
    assert (tmp_path / "train_log.csv").read_text().splitlines()[0].startswith("step,epoch")


def test_a_live_log_is_on_disk_after_every_step_and_a_checkpoint_writes_the_rest(tmp_path: Path) -> None:
    live, saved = tmp_path / "live", tmp_path / "saved"
    live.mkdir(), saved.mkdir()
    every = TrainingLog(live, live=True)
    every.on_log(None, state(1), None, logs={"loss": 2.0})
    assert (live / "train_log.csv").read_text().splitlines()[1].startswith("1,")  # a stopped run keeps its curve
    at_checkpoints = TrainingLog(saved)
    for step in (1, 2):
        at_checkpoints.on_log(None, state(step), None, logs={"loss": 2.0 / step})
    assert not (saved / "train_log.csv").exists()
    at_checkpoints.on_save(None, state(2), None)
    assert len((saved / "train_log.csv").read_text().splitlines()) == 3 and (saved / "train_curves.png").is_file()


def test_nothing_new_since_the_last_write_renders_nothing_again(tmp_path: Path) -> None:
    writes = []
    cb = TrainingLog(tmp_path, live=True, write=lambda rows, folder: writes.append(len(rows)))
    cb.on_log(None, state(1), None, logs={"loss": 2.0})
    cb.on_save(None, state(1), None)  # the checkpoint of the step just written
    cb.on_log(None, state(1), None, logs={"train_runtime": 9.0})
    cb.on_train_end(None, state(1), None)
    assert writes == [1, 2]
