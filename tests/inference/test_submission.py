"""The submission check: ids, order, row count, empty summaries; an invalid frame never replaces a file."""
from __future__ import annotations

import pandas as pd
import pytest

from src.inference.submission import check_submission, write_submission

TEST = pd.DataFrame({"fname": ["t0", "t1", "t2"], "dialogue": ["a", "b", "c"]})


def test_valid_submission_is_written(tmp_path) -> None:
    pred = pd.DataFrame({"fname": ["t0", "t1", "t2"], "summary": ["x", "y", "z"]})
    assert check_submission(pred, TEST) == []
    path = write_submission(pred, TEST, tmp_path / "submission.csv")
    assert pd.read_csv(path).equals(pred)


@pytest.mark.parametrize("pred,problem", [
    (pd.DataFrame({"fname": ["t0", "t1"], "summary": ["x", "y"]}), "2 rows for 3 test dialogues"),
    (pd.DataFrame({"fname": ["t1", "t0", "t2"], "summary": ["x", "y", "z"]}), "out of order"),
    (pd.DataFrame({"fname": ["t0", "t1", "t2"], "summary": ["x", " ", None]}), "2 empty summaries (first fname t1)"),
    (pd.DataFrame({"id": ["t0", "t1", "t2"], "summary": ["x", "y", "z"]}), "columns are"),
])
def test_invalid_submission_keeps_old_file(tmp_path, pred: pd.DataFrame, problem: str) -> None:
    assert any(problem in p for p in check_submission(pred, TEST))
    path = tmp_path / "submission.csv"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="submission not written"):
        write_submission(pred, TEST, path)
    assert path.read_text() == "old"
