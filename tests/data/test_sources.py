"""Data sources: file lists, folders, globs, hub datasets, column mapping, weights, filters, sampling.

Unit tests on small files (some cut from ../shared/data/dialogsum-en), then CLI runs that train
the tiny model from those sources, and runs that must stop before any stage with one clear line.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from src.config import load_config
from src.data import sources
from src.data.sources import check_hub, load_split_sources, preflight_problems, resolve_sources
from src.utils.errors import UserError
from src.run import make_context
from src.stages import merge as merge_stage
from tests.conftest import SHARED_DATA, need_shared, run_cli, tmp_paths

EN = SHARED_DATA / "dialogsum-en"


@pytest.fixture(scope="module")
def en() -> dict[str, pd.DataFrame]:
    """The first 80 rows of each English DialogSum split."""
    need_shared(EN)
    return {s: pd.read_json(EN / f"{s}.jsonl", lines=True, nrows=80, dtype=False) for s in ("train", "dev", "test")}


def config(data_dir: Path, *overrides: str):
    return load_config(None, [f"paths.data_dir={data_dir}", *overrides], debug_small=True)


def jsonl(path: Path, df: pd.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_json(path, orient="records", lines=True, force_ascii=False)
    return path


def alpaca(df: pd.DataFrame) -> pd.DataFrame:
    """DialogSum rows in an instruction-set layout: id, input, output."""
    return df.rename(columns={"fname": "id", "dialogue": "input", "summary": "output"})[["id", "input", "output"]]


# ---------------------------------------------------------------- files and mapping


def test_shared_jsonl_through_the_mapping_seeded_subset(en) -> None:
    cfg = config(EN, "data.dev_file=dev.jsonl", "data.max_rows.dev=5")
    first = load_split_sources(cfg, "dev").frame
    assert list(first.columns) == ["fname", "dialogue", "summary", "topic", "source"]
    assert len(first) == 5 and set(first["source"]) == {"dev.jsonl"}
    order = pd.read_json(EN / "dev.jsonl", lines=True, dtype=False)["fname"].tolist()
    positions = [order.index(f) for f in first["fname"]]
    assert positions == sorted(positions), "the subset keeps file order"
    assert load_split_sources(cfg, "dev").frame.equals(first), "same seed, same rows"
    other = load_split_sources(config(EN, "data.dev_file=dev.jsonl", "data.max_rows.dev=5", "seed=7"), "dev").frame
    assert other["fname"].tolist() != first["fname"].tolist()


def test_english_test_file_as_dev_with_summary1(en) -> None:
    cfg = config(EN, "data.dev_file=test.jsonl", "data.columns.summary=summary1", "data.columns.topic=topic1",
                 "data.max_rows.dev=4")
    frame = load_split_sources(cfg, "dev").frame
    ref = pd.read_json(EN / "test.jsonl", lines=True, dtype=False).set_index("fname")
    assert frame["summary"].tolist() == ref.loc[frame["fname"], "summary1"].tolist()
    assert frame["topic"].tolist() == ref.loc[frame["fname"], "topic1"].tolist()


def test_mapped_columns_and_generated_ids(tmp_path: Path, en) -> None:
    jsonl(tmp_path / "alpaca.jsonl", alpaca(en["train"].head(3)))
    jsonl(tmp_path / "noid.jsonl", alpaca(en["train"].iloc[3:5]).drop(columns="id"))
    cfg = config(tmp_path, "data.train_file=[alpaca.jsonl,noid.jsonl]", "data.columns.fname=id",
                 "data.columns.dialogue=input", "data.columns.summary=output", "data.generate_ids=true")
    frame = load_split_sources(cfg, "train").frame
    assert frame["fname"].tolist() == [*en["train"]["fname"][:3], "train-1-0", "train-1-1"]
    assert frame["dialogue"].tolist() == en["train"]["dialogue"][:5].tolist()
    assert frame["summary"].tolist() == en["train"]["summary"][:5].tolist()
    assert frame["source"].tolist() == ["alpaca.jsonl"] * 3 + ["noid.jsonl"] * 2


def test_a_source_without_ids_is_an_error_unless_ids_are_asked_for(tmp_path: Path, en) -> None:
    jsonl(tmp_path / "noid.jsonl", alpaca(en["train"].head(3)).drop(columns="id"))
    cfg = config(tmp_path, "data.train_file=noid.jsonl", "data.columns.fname=id", "data.columns.dialogue=input",
                 "data.columns.summary=output")
    with pytest.raises(UserError) as err:
        load_split_sources(cfg, "train")
    (line,) = err.value.problems
    assert line.startswith(f"{tmp_path / 'noid.jsonl'}: missing column(s) id (data.columns.fname; or set "
                           "data.generate_ids=true")


def test_canonical_source_beside_a_mapped_one(tmp_path: Path, en) -> None:
    jsonl(tmp_path / "alpaca.jsonl", alpaca(en["train"].head(2)))
    en["train"].iloc[2:4].to_csv(tmp_path / "comp.csv", index=False)
    cfg = config(tmp_path, "data.train_file=[alpaca.jsonl,comp.csv]", "data.columns.fname=id",
                 "data.columns.dialogue=input", "data.columns.summary=output")
    assert load_split_sources(cfg, "train").frame["fname"].tolist() == en["train"]["fname"][:4].tolist()


def test_missing_mapped_column_and_empty_value_are_named(tmp_path: Path, en) -> None:
    rows = alpaca(en["train"].head(3)).rename(columns={"input": "text"})
    jsonl(tmp_path / "a.jsonl", rows)
    empty = alpaca(en["train"].head(3))
    empty.loc[1, "output"] = ""
    jsonl(tmp_path / "b.jsonl", empty)
    cfg = config(tmp_path, "data.train_file=[a.jsonl,b.jsonl]", "data.columns.fname=id",
                 "data.columns.dialogue=input", "data.columns.summary=output")
    with pytest.raises(UserError) as err:
        load_split_sources(cfg, "train")
    missing, blank = err.value.problems
    assert missing.startswith(f"{tmp_path / 'a.jsonl'}: missing column(s) input (data.columns.dialogue)")
    assert "found id, text, output" in missing
    assert blank.startswith(f"{tmp_path / 'b.jsonl'}: row 2 (fname {en['train']['fname'][1]}): column output is empty")


def test_parquet_round_trip(tmp_path: Path) -> None:
    df = pd.DataFrame({"fname": ["p0", "p1"], "dialogue": ["#Person1#: 안녕하세요\n#Person2#: 네", "#Person1#: 007"],
                       "summary": ["인사한다.", "숫자를 말한다."], "topic": ["인사", None]})
    df.to_parquet(tmp_path / "train.parquet")
    frame = load_split_sources(config(tmp_path, "data.train_file=train.parquet"), "train").frame
    assert frame.drop(columns="source").fillna("").to_dict("records") == df.fillna("").to_dict("records")


def test_folder_glob_and_list(tmp_path: Path, en) -> None:
    shards = tmp_path / "shards"
    shards.mkdir()
    en["train"].iloc[4:6].to_parquet(shards / "b.parquet")
    jsonl(shards / "a.jsonl", en["train"].iloc[:4])
    (shards / "notes.txt").write_text("not data")
    by_folder = load_split_sources(config(tmp_path, "data.train_file=shards"), "train").frame
    assert by_folder["fname"].tolist() == en["train"]["fname"][:6].tolist(), "files in name order, .txt ignored"
    by_glob = load_split_sources(config(tmp_path, "data.train_file=shards/*.parquet"), "train").frame
    assert by_glob["fname"].tolist() == en["train"]["fname"][4:6].tolist()
    empty = tmp_path / "empty"
    empty.mkdir()
    _, problems = resolve_sources(config(tmp_path, "data.train_file=[shards,empty,gone.csv]"), "train")
    assert problems == [f"data.train_file[1] = 'empty': folder {empty} has no .csv/.json/.jsonl/.parquet files",
                        f"{tmp_path / 'gone.csv'}: file not found (data.train_file[2] = 'gone.csv', relative to "
                        f"paths.data_dir {tmp_path})"]


def test_ids_must_be_unique_across_sources(tmp_path: Path, en) -> None:
    jsonl(tmp_path / "a.jsonl", en["train"].head(2))
    en["train"].iloc[1:3].to_parquet(tmp_path / "b.parquet")
    with pytest.raises(UserError) as err:
        load_split_sources(config(tmp_path, "data.train_file=[a.jsonl,b.parquet]"), "train")
    assert err.value.problems == [f"data.train: fname {en['train']['fname'][1]} appears in a.jsonl and b.parquet; "
                                  "ids must be unique across the train sources (rename them, or set "
                                  "data.generate_ids=true with data.columns.fname naming a column the files lack)"]


# ---------------------------------------------------------------- weights, filters, sampling


def test_weights_repeat_and_sample(tmp_path: Path, en) -> None:
    jsonl(tmp_path / "a.jsonl", en["train"].head(3))
    jsonl(tmp_path / "b.jsonl", en["train"].iloc[3:11])
    data = load_split_sources(config(tmp_path, "data.train_file=[a.jsonl,b.jsonl]", "data.train_weights=[2,0.5]"),
                              "train")
    assert data.rows_by_source == {"a.jsonl": 6, "b.jsonl": 4}
    a = data.frame[data.frame["source"] == "a.jsonl"]["fname"].tolist()
    assert a == [*en["train"]["fname"][:3], *(f + "~2" for f in en["train"]["fname"][:3])]
    assert data.frame["fname"].is_unique


def test_length_filters_keep_reasons(tmp_path: Path, en) -> None:
    rows = en["train"].head(20)
    jsonl(tmp_path / "a.jsonl", rows)
    lengths = rows["dialogue"].str.strip().str.len()
    low, high = int(lengths.quantile(0.25)), int(lengths.quantile(0.75))
    data = load_split_sources(config(tmp_path, "data.train_file=a.jsonl", f"data.min_dialogue_chars={low}",
                                     f"data.max_dialogue_chars={high}"), "train")
    assert data.frame["fname"].tolist() == rows["fname"][(lengths >= low) & (lengths <= high)].tolist()
    reasons = data.rejected.set_index("fname")["reason"]
    assert reasons.to_dict() == {**{f: "dialogue_too_short" for f in rows["fname"][lengths < low]},
                                 **{f: "dialogue_too_long" for f in rows["fname"][lengths > high]}}
    assert data.rejected["detail"].str.contains(r"data\.m(?:in|ax)_dialogue_chars=").all()


def test_fraction_then_max_rows(tmp_path: Path, en) -> None:
    jsonl(tmp_path / "t.jsonl", en["train"])
    half = load_split_sources(config(tmp_path, "data.train_file=t.jsonl", "data.fraction.train=0.5"), "train").frame
    assert len(half) == 40
    capped = load_split_sources(config(tmp_path, "data.train_file=t.jsonl", "data.fraction.train=0.5",
                                       "data.max_rows.train=10"), "train").frame
    assert len(capped) == 10


# ---------------------------------------------------------------- hub datasets (offline, local files)


def test_hub_block_reads_a_builder_and_a_dataset_folder(tmp_path: Path, en) -> None:
    jsonl(tmp_path / "raw" / "train.jsonl", en["train"].head(20))
    folder = tmp_path / "ds"
    folder.mkdir()
    en["dev"].head(6).to_parquet(folder / "validation.parquet")
    en["train"].head(2).to_parquet(folder / "train.parquet")
    cfg = config(tmp_path, "data.train_file=[]", "data.hub.train.path=json", "data.hub.train.data_files=raw/train.jsonl",
                 "data.hub.train.fraction=0.5", "data.hub.train.shuffle=true", f"data.hub.train.cache_dir={tmp_path}/c",
                 "data.dev_file=[]", f"data.hub.dev.path={folder}", f"data.hub.dev.cache_dir={tmp_path}/c")
    train = load_split_sources(cfg, "train").frame
    assert len(train) == 10 and set(train["source"]) == {"hub:json"}
    assert set(train["fname"]) < set(en["train"]["fname"][:20])
    assert train["fname"].tolist() != en["train"]["fname"][:10].tolist(), "shuffled before the fraction"
    dev = load_split_sources(cfg, "dev").frame
    assert dev["fname"].tolist() == en["dev"]["fname"][:6].tolist(), "hub.dev reads the 'validation' split"
    assert sources.collect(cfg, "train", read_hub=False)[1] == sources.collect(cfg, "dev", read_hub=False)[1] == []


def test_hub_streaming_reads_max_rows(tmp_path: Path, en) -> None:
    folder = tmp_path / "ds"
    folder.mkdir()
    en["train"].head(30).to_parquet(folder / "train.parquet")
    cfg = config(tmp_path, "data.train_file=[]", f"data.hub.train.path={folder}", "data.hub.train.streaming=true",
                 "data.max_rows.train=4", f"data.hub.train.cache_dir={tmp_path}/c")
    assert load_split_sources(cfg, "train").frame["fname"].tolist() == en["train"]["fname"][:4].tolist()


def test_hub_split_and_missing_dataset_are_one_line(tmp_path: Path, en) -> None:
    folder = tmp_path / "ds"
    folder.mkdir()
    en["dev"].head(2).to_parquet(folder / "train.parquet")
    cfg = config(tmp_path, f"data.hub.dev.path={folder}", "data.hub.dev.split=dev",
                 "data.train_file=[]", "data.hub.train.path=nobody-here/no-such-dataset")
    (src_train,), (src_dev,) = resolve_sources(cfg, "train")[0], resolve_sources(cfg, "dev")[0][1:]
    assert check_hub(src_dev, cfg) == ("data.hub.dev.split = 'dev': the dataset has split(s) train; "
                                       "set data.hub.dev.split to one of them")
    problem = check_hub(src_train, cfg)
    assert problem.startswith("data.hub.train.path = 'nobody-here/no-such-dataset': cannot be loaded")
    assert "\n" not in problem
    with pytest.raises(UserError) as err:
        load_split_sources(cfg, "train")
    (loaded,) = err.value.problems
    assert loaded.startswith("data.hub.train.path = 'nobody-here/no-such-dataset': cannot be loaded")


def test_hub_token_from_env_and_remote_code_only_when_set(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret_for_test")
    cfg = config(tmp_path, "data.hub.train.path=org/name", "data.hub.train.revision=v1")
    (src,) = resolve_sources(cfg, "train")[0][1:]
    kwargs = sources.hub_kwargs(cfg, src)
    assert kwargs["token"] == "hf_secret_for_test" and kwargs["revision"] == "v1" and kwargs["split"] == "train"
    assert "trust_remote_code" not in kwargs
    cfg = config(tmp_path, "data.hub.train.path=org/name", "data.trust_remote_code=true")
    assert sources.hub_kwargs(cfg, resolve_sources(cfg, "train")[0][1])["trust_remote_code"] is True


# ---------------------------------------------------------------- preflight and stage wiring


def test_preflight_decides_where_sources_are_read(tmp_path: Path) -> None:
    debug = Path(__file__).resolve().parents[2] / "data" / "debug"
    plain = config(debug)
    assert preflight_problems(plain, ("train",), preprocess_done=False) == []
    mapped = config(debug, "data.columns.dialogue=dialogue", "data.max_rows.dev=3")
    (line,) = preflight_problems(mapped, ("merge", "train"), preprocess_done=False)
    assert line.startswith("data.dev_file / data.hub.dev: the dev split is not one canonical CSV")
    assert "run preprocess" in line
    assert preflight_problems(mapped, ("train",), preprocess_done=True) == []
    repeat = config(debug, "data.train_weights=[2]")
    assert preflight_problems(repeat, ("preprocess", "merge"), False) == []
    (line,) = merge_stage.check(make_context(repeat, "r", False, ("preprocess", "merge")))
    assert "merge stage drops exact duplicates" in line and "'data.train_weights'" in line


def test_evaluate_scores_against_the_materialized_dev_references(tmp_path: Path) -> None:
    from src.run import make_context
    from src.stages import evaluate, preprocess

    debug = Path(__file__).resolve().parents[2] / "data" / "debug"
    cfg = config(debug, *tmp_paths(tmp_path))
    ctx = make_context(cfg, "r", False, ("preprocess", "infer", "evaluate"))
    assert evaluate.inputs(ctx)["dev"] == preprocess.outputs(ctx)["dev_references"]
    ctx = make_context(cfg, "r", False, ("evaluate",))
    assert evaluate.inputs(ctx)["dev"] == debug / "dev.csv", "a plain CSV is its own reference when preprocess is skipped"


# ---------------------------------------------------------------- the CLI: training from each kind of source


def manifest(root: Path, run: str) -> dict:
    return json.loads((root / "output" / run / "manifest.json").read_text())


FAST = ["training.max_steps=2", "training.eval_steps=0", "training.save_steps=100", "prompt.num_fewshot=0",
        "prompt.max_prompt_tokens=256", "data.max_rows.dev=6", "data.max_rows.test=6"]


@pytest.mark.slow
def test_trains_from_mapped_jsonl_parquet_and_folder(tmp_path: Path, en) -> None:
    data = tmp_path / "data"
    jsonl(data / "alpaca.jsonl", alpaca(en["train"].iloc[:30]))
    en["train"].iloc[30:50].to_parquet(data / "more.parquet")
    (data / "shards").mkdir()
    for i in (0, 1):
        en["train"].iloc[50 + 10 * i:60 + 10 * i].drop(columns="fname").to_parquet(data / "shards" / f"part-{i}.parquet")
    lengths = en["train"]["dialogue"][:70].str.strip().str.len()
    limit = int(lengths.quantile(0.9))
    res = run_cli(["--debug-small", "--stages", "preprocess,merge,train", "--run-name", "files", *tmp_paths(tmp_path),
                   f"paths.data_dir={data}", "data.train_file=[alpaca.jsonl,more.parquet,shards]",
                   "data.train_weights=[1,0.5,1]", "data.columns.fname=id", "data.columns.dialogue=input",
                   "data.columns.summary=output", f"data.max_dialogue_chars={limit}", "data.generate_ids=true",
                   f"data.dev_file={EN / 'dev.jsonl'}", f"data.test_file={EN / 'test.jsonl'}", *FAST], timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    clean = pd.read_csv(tmp_path / "clean" / "files" / "train.csv")
    keep = lengths <= limit
    expected = {"alpaca.jsonl": int(keep[:30].sum()), "more.parquet": round(int(keep[30:50].sum()) * 0.5),
                "shards": int(keep[50:70].sum())}
    assert clean["source"].value_counts().to_dict() == expected
    assert clean["fname"].str.startswith("train-2-").sum() == expected["shards"], "ids generated for the folder"
    stages = manifest(tmp_path, "files")["stages"]
    assert stages["preprocess"]["filtered"] == {"dialogue_too_long": int((~keep).sum())}
    merged = pd.read_csv(tmp_path / "augmented" / "files" / "train_merged.csv")
    assert stages["train"]["global_step"] == 2 and stages["train"]["examples"] == len(merged) >= len(clean) - 2


@pytest.mark.slow
def test_trains_from_a_hub_dataset_and_scores_the_mapped_dev(tmp_path: Path, en) -> None:
    folder = tmp_path / "hubds"
    folder.mkdir()
    en["train"].head(40).to_parquet(folder / "train.parquet")
    jsonl(tmp_path / "dev_alpaca.jsonl", alpaca(en["dev"].head(20)))
    res = run_cli(["--debug-small", "--stages", "preprocess,merge,train,infer,evaluate", "--run-name", "hub",
                   *tmp_paths(tmp_path), "data.train_file=[]", f"data.hub.train.path={folder}",
                   "data.hub.train.fraction=0.5", "data.hub.train.shuffle=true", f"data.hub.train.cache_dir={tmp_path}/c",
                   "data.fraction.train=0.5", f"data.dev_file={tmp_path / 'dev_alpaca.jsonl'}", "data.columns.fname=id",
                   "data.columns.dialogue=input", "data.columns.summary=output", f"data.test_file={EN / 'test.jsonl'}",
                   "evaluation.tokenizer=whitespace", "inference.max_new_tokens=8", *FAST], timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    stages = manifest(tmp_path, "hub")["stages"]
    assert stages["preprocess"]["sources"]["train"] == {f"hub:{folder}": 10}
    assert stages["train"]["examples"] == 10 and stages["train"]["global_step"] == 2
    refs = pd.read_csv(tmp_path / "clean" / "hub" / "dev_references.csv")
    assert len(refs) == 6, "data.max_rows.dev"
    assert refs["summary"].tolist() == en["dev"].set_index("fname").loc[refs["fname"], "summary"].tolist()
    assert stages["evaluate"]["metrics"]["n"] == 6


@pytest.mark.parametrize("flags, override, expected", [
    (["--skip-preprocess"], "data.train_file=train.jsonl",
     "error: data.train_file / data.hub.train: the train split is not one canonical CSV"),
    ([], "data.hub.train.path=nobody-here/no-such-dataset",
     "error: data.hub.train.path = 'nobody-here/no-such-dataset': cannot be loaded"),
])
@pytest.mark.slow
def test_bad_sources_stop_before_any_stage(tmp_path: Path, flags: list[str], override: str, expected: str) -> None:
    res = run_cli(["--debug-small", "--run-name", "bad", *flags, *tmp_paths(tmp_path), override], timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert [line for line in res.stderr.splitlines() if line.startswith("error:")][0].startswith(expected), res.stderr
    assert not (tmp_path / "output" / "bad").exists()
