"""Secrets: a value with a control character is refused naming the variable only; escaped forms are redacted;
a URL's password never reaches printed or saved config."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from src.utils.errors import UserError
from src.utils.secrets import RedactSecrets, check_secrets, redact_url
from tests.conftest import run_cli, tmp_paths

EVIL = "up_x1234567\nX-Evil: 1"


def test_a_secret_with_a_newline_is_refused_naming_the_variable_not_the_value(monkeypatch) -> None:
    monkeypatch.setenv("UPSTAGE_API_KEY", EVIL)
    with pytest.raises(UserError) as err:
        check_secrets()
    assert "UPSTAGE_API_KEY: the value holds a control character" in str(err.value)
    assert "up_x" not in str(err.value) and "Evil" not in str(err.value)
    monkeypatch.setenv("UPSTAGE_API_KEY", "up_plain_key_123")
    check_secrets()


def test_the_run_stops_at_startup_with_exit_2(tmp_path: Path) -> None:
    res = run_cli(["--debug-small", "--dry-run", *tmp_paths(tmp_path)], env={"UPSTAGE_API_KEY": EVIL})
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "error: UPSTAGE_API_KEY: the value holds a control character" in res.stderr
    assert "up_x" not in res.stderr + res.stdout


@pytest.mark.parametrize("shown", [repr(EVIL), repr(EVIL.encode()), EVIL.encode("unicode_escape").decode(), EVIL])
def test_escaped_forms_of_a_secret_are_redacted(monkeypatch, shown: str) -> None:
    monkeypatch.setenv("UPSTAGE_API_KEY", EVIL)
    record = logging.LogRecord("httpcore", logging.DEBUG, __file__, 1, "Illegal header value %s", (shown,), None)
    RedactSecrets().filter(record)
    assert "up_x" not in record.getMessage() and "***" in record.getMessage()


def test_a_url_password_is_redacted() -> None:
    assert redact_url("https://me:s3cret@api.example.com:8443/v1") == "https://me:***@api.example.com:8443/v1"
    assert redact_url("https://api.upstage.ai/v1") == "https://api.upstage.ai/v1"
    assert redact_url("https://token@api.example.com/v1") == "https://token@api.example.com/v1"


def test_dry_run_and_the_saved_config_never_show_a_url_password(tmp_path: Path) -> None:
    url = "augmentation.api.base_url=https://me:s3cretpw@api.example.com/v1"
    res = run_cli(["--debug-small", "--dry-run", "augmentation.backend=api", url, *tmp_paths(tmp_path)],
                  env={"UPSTAGE_API_KEY": ""})
    assert res.returncode == 0, res.stderr[-2000:]
    assert "https://me:***@api.example.com/v1" in res.stdout and "s3cretpw" not in res.stdout + res.stderr
    printed = run_cli(["--debug-small", "--print-config", url, *tmp_paths(tmp_path)])
    assert "me:***@api.example.com" in printed.stdout and "s3cretpw" not in printed.stdout
    saved = run_cli(["--debug-small", "--run-name", "pw", "--stages", "preprocess", url, *tmp_paths(tmp_path)])
    assert saved.returncode == 0, saved.stderr[-2000:]
    text = (tmp_path / "output" / "pw" / "config.yaml").read_text()
    assert "me:***@api.example.com" in text and "s3cretpw" not in text
