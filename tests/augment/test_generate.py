"""The augment stage: request builders, defensive parsers, and ``augment()`` end to end offline."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from src.augment.generate import COLUMNS, REJECTED_COLUMNS, augment
from src.augment.parsing import parse_paraphrase, parse_synthetic
from src.augment.requests import build_paraphrase_requests, build_synthetic_requests, resolve_count
from src.config import REPO_ROOT, ApiConfig, AugmentationConfig
from tests.augment.fake_openai_server import FakeOpenAIServer, demo_responder

SECRET = "up-SECRET-key-7f3a9c1e5b"
DEBUG_DATA = REPO_ROOT / "data" / "debug"


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return pd.read_csv(DEBUG_DATA / "train.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def references() -> list[str]:
    return pd.read_csv(DEBUG_DATA / "dev.csv", dtype=str)["dialogue"].tolist()


def aug_config(base_url: str, **overrides) -> AugmentationConfig:
    api = ApiConfig(base_url=base_url, model="fake-solar", timeout=2.0, max_retries=1, max_concurrency=4)
    settings = {"num_paraphrase": 12, "num_synthetic": 8, "num_speaker_swap": 0.1, "api": api}
    return AugmentationConfig(**{**settings, **overrides})


# ---------------------------------------------------------------- parsers

DIALOGUE = "#Person1#: 안녕하세요.\n#Person2#: 네, 반가워요."


@pytest.mark.parametrize("reply", [
    DIALOGUE,
    f"```\n{DIALOGUE}\n```",
    f"```text\n{DIALOGUE}\n```\n설명: 표현을 바꿨습니다.",
    f"다음은 다시 쓴 대화입니다:\n\n{DIALOGUE}\n\n도움이 되었길 바랍니다.",
    DIALOGUE.replace("\n", "\\n"),
    "**#Person1#**: 안녕하세요.\n\n**#Person2#** : 네, 반가워요.",
    json.dumps({"dialogue": DIALOGUE}, ensure_ascii=False),
    "  #Person1#:안녕하세요.  \n#Person2#：네, 반가워요.\n",
])
def test_parse_paraphrase_recovers_the_dialogue(reply: str) -> None:
    assert parse_paraphrase(reply) == DIALOGUE


@pytest.mark.parametrize("reply", [None, "", "   ", "```\n```"])
def test_parse_paraphrase_rejects_empty(reply) -> None:
    assert parse_paraphrase(reply) is None


def test_parse_paraphrase_keeps_untagged_text_for_the_validators() -> None:
    assert parse_paraphrase("그냥 문장입니다.") == "그냥 문장입니다."


SUMMARY = "#Person1#과 #Person2#가 인사한다."


@pytest.mark.parametrize("reply", [
    json.dumps({"dialogue": DIALOGUE, "summary": SUMMARY}, ensure_ascii=False),
    "```json\n" + json.dumps({"dialogue": DIALOGUE, "summary": SUMMARY}, ensure_ascii=False) + "\n```",
    "물론입니다! 결과는 다음과 같습니다.\n" + json.dumps({"Dialogue": DIALOGUE, "Summary": SUMMARY}, ensure_ascii=False),
    '{"dialogue": "#Person1#: 안녕하세요.\n#Person2#: 네, 반가워요.", "summary": "%s"}' % SUMMARY,  # raw newline
    '{"dialogue": "#Person1#: 안녕하세요.\\\\n#Person2#: 네, 반가워요.", "summary": "%s"}' % SUMMARY,  # double-escaped
    json.dumps({"dialogue": ["#Person1#: 안녕하세요.", "#Person2#: 네, 반가워요."], "summary": SUMMARY}, ensure_ascii=False),
    json.dumps({"dialogue": [{"speaker": "Person1", "text": "안녕하세요."}, {"role": "#Person2#", "utterance": "네, 반가워요."}],
                "summary": [SUMMARY]}, ensure_ascii=False),
    json.dumps({"dialogue": {"turns": [{"#Person1#": "안녕하세요."}, {"#Person2#": "네, 반가워요."}]},
                "summary": SUMMARY}, ensure_ascii=False),
    json.dumps({"대화": DIALOGUE, "요약": SUMMARY}, ensure_ascii=False),
    '{"dialogue": "#Person1#: 안녕하세요.\\n#Person2#: 네, 반가워요.", "summary": "%s",}' % SUMMARY,  # trailing comma
    "{'dialogue': '#Person1#: 안녕하세요.\\n#Person2#: 네, 반가워요.', 'summary': '%s'}" % SUMMARY,  # Python dict
])
def test_parse_synthetic_recovers_dialogue_and_summary(reply: str) -> None:
    assert parse_synthetic(reply) == (DIALOGUE, SUMMARY)


@pytest.mark.parametrize("reply", [
    None, "", "죄송하지만 만들 수 없습니다.", "{not json", '{"dialogue": "#Person1#: 안녕"}',
    '{"dialogue": "", "summary": "요약"}', '["dialogue", "summary"]', "대화:\n#Person1#: 안녕\n요약: 인사",
])
def test_parse_synthetic_returns_none_when_unusable(reply) -> None:
    assert parse_synthetic(reply) is None


# ---------------------------------------------------------------- counts and requests


@pytest.mark.parametrize(("value", "rows", "expected"), [(0, 100, 0), (0.1, 100, 10), (0.001, 100, 1),
                                                         (25, 100, 25), (250.0, 100, 250), (3, 0, 0)])
def test_resolve_count(value: float, rows: int, expected: int) -> None:
    assert resolve_count(value, rows) == expected


def test_paraphrase_requests_are_deterministic_and_name_masks(train: pd.DataFrame) -> None:
    first = build_paraphrase_requests(train, 10, 7, ApiConfig())
    assert first == build_paraphrase_requests(train, 10, 7, ApiConfig())
    assert len({r.id for r in first}) == 10 and all(r.id.endswith("_para") for r in first)
    assert all(r.response_format is None and r.metadata["kind"] == "paraphrase" for r in first)
    masked = train[train["dialogue"].str.contains("#PhoneNumber#")].iloc[:1]
    [request] = build_paraphrase_requests(masked, 1, 0, ApiConfig())
    assert "#PhoneNumber#" in request.messages[-1]["content"].split("대화:")[0]  # named in the rules
    assert len(build_paraphrase_requests(train, 10_000, 0, ApiConfig())) == len(train)


def test_synthetic_requests_ask_for_json_on_train_topics(train: pd.DataFrame) -> None:
    requests = build_synthetic_requests(train, 6, 3, ApiConfig())
    assert [r.id for r in requests] == [f"synth_{i}" for i in range(6)]
    for r in requests:
        assert r.response_format == {"type": "json_object"}
        assert r.metadata["topic"] in set(train["topic"]) and 1 <= len(r.metadata["examples"]) <= 2
        assert f"주제: {r.metadata['topic']}" in r.messages[-1]["content"] and '"dialogue"' in r.messages[-1]["content"]
    assert build_synthetic_requests(train.drop(columns=["topic"]), 3, 0, ApiConfig()) == []


# ---------------------------------------------------------------- the stage


def test_augment_writes_accepted_and_rejected_rows_and_never_the_key(
        tmp_path: Path, train: pd.DataFrame, references: list[str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, the SDK's and httpx's included
    out = tmp_path / "augmented"
    with FakeOpenAIServer(responder=demo_responder) as server:
        result = augment(train, references, aug_config(server.base_url), SECRET, out, seed=1, progress=False)
        assert server.log and all(entry["auth"] == f"Bearer {SECRET}" for entry in server.log)
    augmented, rejected = pd.read_csv(out / "augmented.csv"), pd.read_csv(out / "rejected.csv")
    assert list(augmented.columns) == COLUMNS and list(rejected.columns) == REJECTED_COLUMNS
    stats = json.loads(json.dumps(result.stats))
    for kind in ("paraphrase", "synthetic"):
        assert stats["accepted"][kind] + sum(stats["rejected"][kind].values()) == stats["requested"][kind] > 0
        assert stats["accepted"][kind] > 0 and stats["rejected"][kind]
    assert augmented["source"].value_counts().to_dict() == {
        "paraphrase": stats["accepted"]["paraphrase"], "synthetic": stats["accepted"]["synthetic"], "swap": 5}
    para = augmented[augmented["source"] == "paraphrase"]
    assert (para["fname"] == para["parent_fname"] + "_para").all()
    assert set(para["summary"]) <= set(train["summary"])  # the original summary stays the label
    assert augmented[augmented["source"] == "synthetic"]["fname"].str.match(r"synth_\d+$").all()
    assert rejected["reason"].str.len().gt(0).all()
    assert stats["ledger"]["succeeded"] == 20 and stats["ledger"]["cost"] > 0
    assert set(result.outputs) == {"augmented", "rejected", "journal"}
    assert_no_secret(tmp_path, caplog.text)


def assert_no_secret(root: Path, log_text: str) -> None:
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files
    leaked = [str(p) for p in files if SECRET.encode() in p.read_bytes()]
    assert not leaked, f"API key written to {leaked}"
    assert SECRET not in log_text


def test_rerun_sends_nothing_and_writes_the_same_rows(tmp_path: Path, train: pd.DataFrame,
                                                      references: list[str]) -> None:
    with FakeOpenAIServer(responder=demo_responder) as server:
        cfg = aug_config(server.base_url)
        first = augment(train, references, cfg, SECRET, tmp_path, seed=1, progress=False)
        rows = pd.read_csv(tmp_path / "augmented.csv")
        sent = len(server.log)
        second = augment(train, references, cfg, SECRET, tmp_path, seed=1, progress=False)
        assert len(server.log) == sent
    assert second.stats["ledger"]["journal_hits"] == first.stats["ledger"]["succeeded"]
    assert second.stats["ledger"]["sent"] == 0 and second.stats["ledger"]["cost"] == 0
    pd.testing.assert_frame_equal(rows, pd.read_csv(tmp_path / "augmented.csv"))


def test_failed_requests_are_rejected_with_their_reason(tmp_path: Path, train: pd.DataFrame) -> None:
    def flaky(messages: list[dict], body: dict) -> str:
        return "" if "json_object" in json.dumps(body) else demo_responder(messages, body)

    with FakeOpenAIServer(responder=flaky) as server:
        cfg = aug_config(server.base_url, num_paraphrase=4, num_synthetic=2, num_speaker_swap=0,
                         api=ApiConfig(base_url=server.base_url, timeout=2.0, max_cost=1e-12, max_concurrency=1))
        result = augment(train, [], cfg, SECRET, tmp_path, seed=0, progress=False)
    rejected = pd.read_csv(tmp_path / "rejected.csv")
    assert result.stats["ledger"]["failures"] == {"cost_cap": 5}
    assert (rejected["reason"] == "request_failed: cost_cap").sum() == 5


def test_without_a_key_the_api_is_skipped_with_one_warning(tmp_path: Path, train: pd.DataFrame,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    cfg = aug_config("http://127.0.0.1:9/v1")  # nothing listens there; nothing may be sent
    result = augment(train, [], cfg, None, tmp_path, seed=0, progress=False)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "UPSTAGE_API_KEY" in warnings[0].getMessage()
    assert result.stats["skipped"] == "no_api_key" and result.stats["ledger"] is None
    augmented = pd.read_csv(tmp_path / "augmented.csv")
    assert len(augmented) == 5 and set(augmented["source"]) == {"swap"}
    assert pd.read_csv(tmp_path / "rejected.csv").empty


def test_transformers_backend_runs_offline_with_a_tiny_model(tmp_path: Path, train: pd.DataFrame) -> None:
    from src.models.debug import build_tiny_causal

    model = build_tiny_causal(tmp_path / "tiny", list(train["dialogue"]) + list(train["summary"]))
    cfg = AugmentationConfig(backend="transformers", num_paraphrase=3, num_synthetic=2,
                             api=ApiConfig(max_tokens=16, temperature=0.0))
    first = augment(train, [], cfg, None, tmp_path / "out", seed=0, local_model_path=str(model), progress=False)
    # A random model writes garbage: every row is generated, then rejected with a reason.
    assert first.stats["ledger"]["succeeded"] == 5 and first.stats["accepted"]["paraphrase"] == 0
    assert len(pd.read_csv(tmp_path / "out" / "rejected.csv")) == 5
    second = augment(train, [], cfg, None, tmp_path / "out", seed=0, local_model_path=str(model), progress=False)
    assert second.stats["ledger"]["journal_hits"] == 5 and second.stats["ledger"]["sent"] == 0


def test_transformers_backend_needs_a_model(tmp_path: Path, train: pd.DataFrame) -> None:
    from src.utils.errors import UserError

    with pytest.raises(UserError, match="augmentation.local_model"):
        augment(train, [], AugmentationConfig(backend="transformers", num_paraphrase=1), None, tmp_path, seed=0)
