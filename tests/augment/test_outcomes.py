"""Augmentation outcomes are explicit: a refused key stops at once, failures fail the stage, waits are logged,
no key means ``skipped`` (and --resume with a key runs it), never ``done`` with nothing augmented."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from src.augment.generate import augment
from src.config import ApiConfig, AugmentationConfig
from src.utils.errors import UserError
from tests.augment.fake_openai_server import FakeOpenAIServer
from tests.conftest import run_cli, tmp_paths

KEY = "up" + "-FAKE-outcome-key-19"


def rows(marker: str, n: int = 6) -> pd.DataFrame:
    """Train rows whose dialogues carry a fake-server marker (it scripts how the server answers them)."""
    return pd.DataFrame({"fname": [f"t{i}" for i in range(n)],
                         "dialogue": [f"#Person1#: 안녕 {i} {marker}\n#Person2#: 네, 반가워요." for i in range(n)],
                         "summary": ["두 사람이 인사한다."] * n, "topic": ["인사"] * n})


def config(server: FakeOpenAIServer, **api: object) -> AugmentationConfig:
    settings = {"base_url": server.base_url, "model": "fake-solar", "timeout": 5.0, "max_retries": 1,
                "max_concurrency": 1, **api}
    return AugmentationConfig(num_paraphrase=6, api=ApiConfig(**settings))  # type: ignore[arg-type]


def test_a_refused_key_stops_at_the_first_response_with_one_line(tmp_path: Path) -> None:
    with FakeOpenAIServer() as server:
        with pytest.raises(UserError) as err:
            augment(rows("[[fake:401]]"), [], config(server), KEY, tmp_path, seed=0, progress=False)
        sent, url = len(server.log), server.base_url
    (line,) = err.value.problems
    assert "HTTP 401" in line and "UPSTAGE_API_KEY" in line and url in line
    assert sent == 1, "nothing is sent after the first 401"
    assert KEY not in line


def test_too_many_failures_fail_the_stage_and_keep_the_journal(tmp_path: Path) -> None:
    train = pd.concat([rows("[[fake:500]]", 4), rows("", 2).assign(fname=["ok0", "ok1"])], ignore_index=True)
    train["dialogue"] = [d.replace("안녕", f"안녕{i}") for i, d in enumerate(train["dialogue"])]
    with FakeOpenAIServer() as server:
        with pytest.raises(UserError) as err:
            augment(train, [], config(server, max_retries=0), KEY, tmp_path, seed=0, progress=False)
    (line,) = err.value.problems
    assert "4 of 6 requests failed (http_500 4)" in line and "augmentation.max_failed_fraction=0.1" in line
    journal = [json.loads(x) for x in (tmp_path / "journal.jsonl").read_text().splitlines()]
    assert len(journal) == 2, "the two answers are kept: a rerun sends only the failed requests"


def test_the_deadline_bounds_the_batch(tmp_path: Path) -> None:
    with FakeOpenAIServer(hang_seconds=3.0) as server:
        with pytest.raises(UserError) as err:
            augment(rows("[[fake:hang]]", 4), [], config(server, timeout=10.0, deadline_s=1.0), KEY, tmp_path,
                    seed=0, progress=False)
    assert "deadline" in err.value.problems[0]


def test_long_waits_are_logged(tmp_path: Path, caplog) -> None:
    with FakeOpenAIServer(retry_after="5") as server, caplog.at_level(logging.INFO):
        result = augment(rows("[[fake:429*1]]", 1), [], config(server, max_retries=2), KEY, tmp_path, seed=0,
                         progress=False)
    assert "http_429 on request t0_para; waiting 5 s before retry 1 of 2" in caplog.text
    assert result.stats["ledger"]["succeeded"] == 1


@pytest.mark.slow
def test_no_key_records_the_stage_skipped_and_resume_with_a_key_runs_it(tmp_path: Path) -> None:
    with FakeOpenAIServer() as server:
        args = ["--debug-small", "--run-name", "aug", "--stages", "preprocess,augment", "augmentation.backend=api",
                f"augmentation.api.base_url={server.base_url}", "augmentation.api.max_concurrency=2",
                "augmentation.num_synthetic=0", *tmp_paths(tmp_path)]
        first = run_cli(args, env={"UPSTAGE_API_KEY": ""})
        manifest = tmp_path / "output" / "aug" / "manifest.json"
        entry = json.loads(manifest.read_text())["stages"]["augment"]
        assert first.returncode == 0, first.stderr[-2000:]
        assert entry["status"] == "skipped" and "UPSTAGE_API_KEY" in entry["reason"]
        assert not server.log
        second = run_cli(["--run-name", "aug", "--resume", *tmp_paths(tmp_path)], env={"UPSTAGE_API_KEY": KEY})
    assert second.returncode == 0, second.stderr[-2000:]
    entry = json.loads(manifest.read_text())["stages"]["augment"]
    assert entry["status"] == "done" and entry["stats"]["requested"]["paraphrase"] == 4
    assert "preprocess: already done" in second.stderr.replace("stage preprocess", "preprocess")
