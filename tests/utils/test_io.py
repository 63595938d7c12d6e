"""The one atomic writer: umask permissions, nothing half-written, spreadsheet-safe report cells."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from src.utils.io import (atomic_write_csv, atomic_write_text, follow_umask, sheet_safe, sheet_unsafe,
                          spreadsheet_safe)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_files_follow_the_umask(tmp_path: Path, umask_022) -> None:
    atomic_write_text(tmp_path / "a.txt", "x")
    atomic_write_csv(tmp_path / "b.csv", pd.DataFrame({"a": [1]}))
    assert {oct(p.stat().st_mode & 0o777) for p in tmp_path.iterdir()} == {"0o644"}


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "keep.csv"
    atomic_write_text(target, "old")

    class Broken(pd.DataFrame):
        def to_csv(self, *args, **kwargs):  # type: ignore[override]
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write_csv(target, Broken({"a": [1]}))
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["keep.csv"]


def test_owner_only_files_written_by_libraries_are_opened_up(tmp_path: Path, umask_022) -> None:
    (tmp_path / "w.safetensors").write_bytes(b"x")
    (tmp_path / "w.safetensors").chmod(0o600)
    follow_umask(tmp_path)
    assert oct((tmp_path / "w.safetensors").stat().st_mode & 0o777) == "0o644"


@pytest.mark.parametrize("text", ['=HYPERLINK("http://x","y")', "+1", "-2", "@SUM(A1)", "\tx"])
def test_formula_cells_are_neutralised_and_restored(text: str) -> None:
    safe = sheet_safe(text)
    assert safe == "'" + text and sheet_unsafe(safe) == text
    assert sheet_safe("#Person1#이 말한다.") == "#Person1#이 말한다." == sheet_unsafe("#Person1#이 말한다.")


def test_spreadsheet_safe_frames_touch_only_text(tmp_path: Path) -> None:
    df = pd.DataFrame({"fname": ["=cmd|' /C calc'!A0", "dev_1"], "final": [1.5, -2.0]})
    out = spreadsheet_safe(df)
    assert out["fname"].tolist() == ["'=cmd|' /C calc'!A0", "dev_1"] and out["final"].tolist() == [1.5, -2.0]
    assert df["fname"][0].startswith("="), "the input frame is not changed"


def test_one_hashing_primitive_keeps_every_existing_key_stable() -> None:
    """The augmentation journal keys paid responses by request_key: merging the hash helpers must not change it."""
    import hashlib
    import json

    from src.augment.journal import request_key
    from src.inference.tuning import setting_id
    from src.utils.io import json_digest

    messages = [{"role": "user", "content": "요약"}]
    blob = json.dumps({"model": "m", "messages": messages, "params": {"t": 0.7}}, ensure_ascii=False, sort_keys=True,
                      separators=(",", ":"))
    assert request_key("m", messages, {"t": 0.7}) == hashlib.sha256(blob.encode("utf-8")).hexdigest()
    setting = {"num_beams": 4, "length_penalty": 1.3}
    assert setting_id(setting) == hashlib.sha256(json.dumps(setting, sort_keys=True).encode()).hexdigest()[:10]
    assert json_digest({"b": 1, "a": 2}) == json_digest({"a": 2, "b": 1}) and len(json_digest([1])) == 16


def test_stale_temps_of_killed_writes_are_removed_and_nothing_else(tmp_path: Path) -> None:
    from src.utils.io import remove_stale_temps, temp_path

    half = temp_path(tmp_path / "submission.csv")
    half.write_text("fname,summary\ntest_0,반쪽")
    curves = temp_path(tmp_path / "logs" / "train_curves.png")
    curves.parent.mkdir()
    curves.write_bytes(b"\x89PNG")
    folder = temp_path(tmp_path / "final_checkpoint")
    (folder / "sub").mkdir(parents=True)
    kept = [tmp_path / ".notes.tmp", tmp_path / "plain.abcdefabcdef.tmp", tmp_path / "submission.csv"]
    for path in kept:
        path.write_text("mine")
    assert sorted(remove_stale_temps([tmp_path, tmp_path / "absent"])) == sorted([half, curves, folder])
    assert all(p.exists() for p in kept) and not half.exists() and not curves.exists() and not folder.exists()
