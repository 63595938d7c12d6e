"""Tracking: report_to as a list, wandb's mode (key in the environment or ~/.netrc, server reachable), the tables."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from src import tracking
from src.train import trackers
from src.config import load_config
from src.utils.errors import UserError
from src.tracking_tables import final_metrics, interval_scalars, ledger_table, predictions_table


def test_report_to_takes_a_list_or_one_name_as_old_configs_do() -> None:
    assert load_config(None, ["training.report_to=wandb"]).training.report_to == ("wandb",)
    both = load_config(None, ["training.report_to=[wandb, tensorboard]"])
    assert trackers.trackers(both) == ("wandb", "tensorboard")
    assert trackers.trackers(load_config(None, ["training.report_to=none"])) == ()
    assert trackers.trackers(load_config(None, [])) == () and load_config(None, []).training.wandb_project == "dialsum"
    with pytest.raises(UserError, match="'training.report_to'.*must be a list of none, tensorboard, wandb"):
        load_config(None, ["training.report_to=wandb,mlflow"])


@pytest.fixture
def no_wandb_env(monkeypatch, tmp_path: Path) -> Path:
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    return tmp_path / "netrc"


def test_wandb_is_online_after_wandb_login_and_offline_without_a_key_or_server(no_wandb_env: Path, monkeypatch) -> None:
    monkeypatch.setattr(trackers, "reachable", lambda url, timeout=3.0: True)
    assert trackers.wandb_mode(no_wandb_env.parent) == "offline"  # no key anywhere
    monkeypatch.delenv("WANDB_MODE")
    no_wandb_env.write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    no_wandb_env.chmod(0o600)
    assert trackers.wandb_key_present() and trackers.wandb_mode(no_wandb_env.parent) == "online"
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.setattr(trackers, "reachable", lambda url, timeout=3.0: False)
    assert trackers.wandb_mode(no_wandb_env.parent) == "offline"  # a key but no network


def test_a_mode_set_by_the_user_wins(no_wandb_env: Path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert trackers.wandb_mode(no_wandb_env.parent) == "disabled"


def test_a_broken_tracker_is_dropped_with_a_warning_and_the_others_go_on(caplog) -> None:
    class Broken:
        def scalars(self, values: dict) -> None:
            raise RuntimeError("network down")

    class Kept:
        seen: list = []

        def scalars(self, values: dict) -> None:
            self.seen.append(values)

    tracker = tracking.RunTracker([Broken(), Kept()])
    tracker.stage("train", {"status": "done", "seconds": 2.5})
    tracker.stage("infer", {"status": "failed", "seconds": 1})
    assert len(tracker.backends) == 1 and "network down" in caplog.text
    assert Kept.seen[-1] == {"stage/infer/seconds": 1.0, "stage/infer/done": 0.0}


def test_the_final_records_come_from_the_run_files(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").write_text(json.dumps({"rouge1": 0.5, "rouge2": 0.25, "rougeL": 0.4, "final": 38.3,
                                                       "n": 3}))
    assert final_metrics(tmp_path) == {"dev/rouge1": 0.5, "dev/rouge2": 0.25, "dev/rougeL": 0.4, "dev/final": 38.3}
    pd.DataFrame({"fname": ["a", "b"], "summary": ["'=요약", "둘"]}).to_csv(tmp_path / "pred.csv", index=False)
    pd.DataFrame({"fname": ["b", "a"], "dialogue": ["d2", "d1"], "summary": ["r2", "r1"]}).to_csv(tmp_path / "ref.csv",
                                                                                               index=False)
    table = predictions_table(tmp_path / "pred.csv", tmp_path / "ref.csv", 10)
    assert table is not None and table.to_dict("records") == [
        {"fname": "a", "dialogue": "d1", "prediction": "=요약", "reference": "r1"},
        {"fname": "b", "dialogue": "d2", "prediction": "둘", "reference": "r2"}]
    ledger = ledger_table({"stats": {"accepted": 3, "ledger": {"requests": 4, "cost": 0.01}}})
    assert ledger is not None and dict(zip(ledger["key"], ledger["value"])) == {
        "accepted": "3", "ledger.requests": "4", "ledger.cost": "0.01"}
    assert ledger_table({}) is None and predictions_table(tmp_path / "none.csv", None, 5) is None


def test_the_dev_interval_and_the_tune_choice_are_tracked(tmp_path: Path) -> None:
    """Issue 30: the dev final's bootstrap interval (from scores.csv) and the tune stage's interval vs its baseline."""
    import numpy as np

    assert interval_scalars(tmp_path, {}) == {}
    finals = [10.0, 30.0, 20.0, 40.0]
    pd.DataFrame({"fname": list("abcd"), "final": finals}).to_csv(tmp_path / "scores.csv", index=False)
    found = interval_scalars(tmp_path, {"chosen_is_baseline": False, "diff": 1.5, "ci_low": 0.5, "ci_high": 2.5})
    means = np.asarray(finals)[np.random.default_rng(0).integers(0, 4, size=(2000, 4))].mean(axis=1)
    assert found["dev/final_ci_low"] == pytest.approx(np.percentile(means, 2.5))
    assert found["dev/final_ci_high"] == pytest.approx(np.percentile(means, 97.5))
    assert {k: v for k, v in found.items() if k.startswith("tune/")} == {
        "tune/chose_baseline": 0.0, "tune/diff": 1.5, "tune/ci_low": 0.5, "tune/ci_high": 2.5}


def test_the_tensorboard_backend_writes_config_scalars_and_tables(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    backend = tracking.TensorboardBackend(SummaryWriter(log_dir=str(tmp_path)))
    tracker = tracking.RunTracker([backend])
    tracker._each("config", {"seed": 1})
    tracker.stage("train", {"status": "done", "seconds": 1.5})
    tracker._each("table", "predictions", pd.DataFrame({"fname": ["a"], "prediction": ["x|y"]}))
    tracker._each("close", True)
    assert tracker.backends == [backend] and list(tmp_path.glob("events.out.tfevents.*"))


def _open_with_fake_wandb(monkeypatch, run_dir: Path) -> dict:
    import sys
    from types import SimpleNamespace

    seen: dict = {}
    fake = SimpleNamespace(init=lambda **kwargs: seen.update(kwargs) or SimpleNamespace())
    monkeypatch.setitem(sys.modules, "wandb", fake)
    manifest = SimpleNamespace(data={}, save=lambda: None)
    cfg = load_config(None, ["training.report_to=wandb"])
    ctx = SimpleNamespace(run_dir=run_dir, run_name=run_dir.name, manifest=manifest, cfg=cfg)
    tracking._open_wandb(ctx)  # type: ignore[arg-type]
    return seen


def test_a_users_wandb_dir_is_respected_and_the_run_folder_is_the_default(no_wandb_env: Path, monkeypatch,
                                                                           tmp_path: Path) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    mine = tmp_path / "my-wandb"
    monkeypatch.setenv("WANDB_DIR", str(mine))
    assert _open_with_fake_wandb(monkeypatch, tmp_path / "run1")["dir"] == str(mine)
    assert os.environ["WANDB_DIR"] == str(mine)
    monkeypatch.delenv("WANDB_DIR")
    assert _open_with_fake_wandb(monkeypatch, tmp_path / "run2")["dir"] == str(tmp_path / "run2")
    assert _open_with_fake_wandb(monkeypatch, tmp_path / "run3")["dir"] == str(tmp_path / "run3")  # not run2's
