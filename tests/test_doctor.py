"""``python -m src.doctor``: the checks one by one on literal cases, the CPU run end to end, the SOLAR refusal,
bad input, and the stand-in model of the configured architecture."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from src import doctor
from src.config import load_config
from src.config.resources import find_config
from tests.conftest import SHARED_TOKENIZERS, need_shared, run_cli

NAMES = ["config", "python", "torch", "cuda", "bf16", "transformers", "peft", "trl", "bitsandbytes", "accelerate",
         "bnb-4bit", "sdpa", "flash-attention", "vllm", "mecab", "kiwi", "disk", "model-source", "api-key", "preflight",
         "smoke"]


def debug_cfg(*overrides: str):
    return load_config(None, list(overrides), debug_small=True)


def report_of(stdout: str) -> tuple[list[str], dict]:
    lines = stdout.strip().splitlines()
    return lines[:-1], json.loads(lines[-1])


# ---- end to end ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cpu_machine_passes_with_gpu_checks_skipped() -> None:
    res = run_cli([], module="src.doctor", timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    lines, report = report_of(res.stdout)
    assert report["ok"] is True and report["device"] == "cpu"
    assert [c["name"] for c in report["checks"]] == NAMES
    assert all(set(c) == {"name", "status", "detail", "seconds"} for c in report["checks"])
    by_name = {c["name"]: c for c in report["checks"]}
    assert all(c["status"] in ("pass", "skip") for c in report["checks"])
    for gpu_only in ("cuda", "bf16", "flash-attention"):
        assert by_name[gpu_only]["status"] == "skip" and "GPU" in by_name[gpu_only]["detail"]
    assert "--debug-small" in by_name["config"]["detail"]
    smoke = by_name["smoke"]["detail"]
    assert by_name["smoke"]["status"] == "pass"
    assert "4-bit load, 3 steps" in smoke and "adamw_torch" in smoke and "checkpoint saved and reloaded" in smoke
    assert "4 summaries by ContinuousEngine" in smoke
    # one printed line per check, in the same order, starting with its status
    assert [line.split()[:2] for line in lines] == [[c["status"], c["name"]] for c in report["checks"]]


def test_solar_preset_refused_on_cpu_in_one_line() -> None:
    res = run_cli(["--config", "solar-10.7b-instruct"], module="src.doctor", timeout=120)
    assert res.returncode == 1
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fail")
    assert "SOLAR-10.7B" in lines[0] and "GPU" in lines[0]
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("args, expected", [
    (["training.lerning_rate=1e-4"], "unknown config key 'training.lerning_rate'"),
    (["--config", "no-such-preset"], "--config no-such-preset"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], expected: str) -> None:
    res = run_cli(args, module="src.doctor", timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().startswith("error:") and expected in res.stderr
    assert "Traceback" not in res.stderr and res.stdout == ""


def test_dialsum_doctor_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    from src.main import entry_point

    with pytest.raises(SystemExit) as exit_info:
        entry_point(["doctor", "--help"])
    assert exit_info.value.code == 0
    assert "usage: dialsum doctor" in capsys.readouterr().out
    assert entry_point(["doctor", "--config", "no-such-preset"]) == 2


# ---- the parts --------------------------------------------------------------------------------------------------


def test_last_error() -> None:
    assert doctor.last_error("INFO x\nerror: the fix\nerror: two\n") == "error: the fix"
    assert doctor.last_error("Traceback\n  File x\nValueError: bad\n") == "ValueError: bad"
    assert doctor.last_error("") == "no output"


def test_probe_exception_is_a_fail_line() -> None:
    def broken():
        raise RuntimeError("kernel not found\nmore")

    check = doctor.timed("bnb-4bit", broken)
    assert (check.status, check.detail) == ("fail", "RuntimeError: kernel not found")
    assert check.line().startswith("fail  bnb-4bit")


def test_gpu_refusal_only_for_what_needs_one() -> None:
    solar = load_config(None, [])
    assert "10.7B" in (doctor.gpu_refusal(solar, ("train",)) or "")
    assert doctor.gpu_refusal(debug_cfg(), ("train",)) is None
    assert "model.device" in (doctor.gpu_refusal(debug_cfg("model.device=cuda"), ("infer",)) or "")


def test_smoke_overrides_keep_the_run_short_and_inside_work(tmp_path: Path) -> None:
    cfg = load_config(None, doctor.smoke_overrides(tmp_path, "some/folder"), debug_small=True)
    assert cfg.training.max_steps == doctor.SMOKE_STEPS and cfg.data.max_rows.test == 4
    assert cfg.model.name == "some/folder" and cfg.training.report_to in (("none",), ())
    assert all(str(getattr(cfg.paths, k)).startswith(str(tmp_path))
               for k in ("output_dir", "model_dir", "clean_dir", "augmented_dir"))


# ---- the stand-in model of the configured architecture ---------------------------------------------------------


@pytest.fixture
def qwen_folder(tmp_path: Path) -> Path:
    """A model folder with a Qwen2 config.json and the real Qwen2.5 tokenizer (no weights needed to build a stand-in)."""
    from transformers import Qwen2Config

    tok = need_shared(SHARED_TOKENIZERS / "qwen2.5-instruct")
    folder = tmp_path / "qwen"
    shutil.copytree(tok, folder)
    Qwen2Config(vocab_size=151665, hidden_size=128, intermediate_size=256, num_hidden_layers=3, num_attention_heads=4,
                num_key_value_heads=2, tie_word_embeddings=True).save_pretrained(folder)
    return folder


def test_stand_in_has_the_configured_architecture(tmp_path: Path, qwen_folder: Path) -> None:
    from transformers import AutoModelForCausalLM

    cfg = debug_cfg(f"model.name={qwen_folder}")
    name, what = doctor.build_stand_in(cfg, tmp_path / "stand-in")
    assert name == str(tmp_path / "stand-in") and "2-layer qwen2" in what
    model = AutoModelForCausalLM.from_pretrained(name)
    assert model.config.model_type == "qwen2" and model.config.num_hidden_layers == 2
    assert model.config.vocab_size == 151665


def test_stand_in_falls_back_to_the_debug_model(tmp_path: Path) -> None:
    assert doctor.build_stand_in(debug_cfg(), tmp_path)[0] == "tiny-debug"
    name, what = doctor.build_stand_in(debug_cfg("model.name=nobody/not-here"), tmp_path)
    assert name == "tiny-debug" and "tiny Llama" in what
    kobart = load_config(find_config("kobart-summarization"), [])
    name, what = doctor.build_stand_in(kobart, tmp_path)
    assert name == "tiny-debug" and "tiny BART" in what
    assert not any(tmp_path.iterdir())  # nothing built for a fallback


@pytest.mark.slow
def test_smoke_runs_the_stand_in_through_the_pipeline(tmp_path: Path, qwen_folder: Path) -> None:
    res = run_cli(["--debug-small", f"model.name={qwen_folder}", "--keep", str(tmp_path / "work")],
                  module="src.doctor", timeout=300)
    _, report = report_of(res.stdout)
    smoke = next(c for c in report["checks"] if c["name"] == "smoke")
    assert smoke["status"] == "pass", smoke["detail"] + res.stderr[-2000:]
    assert "2-layer qwen2" in smoke["detail"]
    assert (tmp_path / "work" / "model_dir" / "doctor" / "final_checkpoint").is_dir()  # --keep keeps it


@pytest.mark.slow
def test_a_failing_run_fails_its_checks_and_the_exit_status(tmp_path: Path) -> None:
    from src.inference.vllm_engine import vllm_available

    if vllm_available():
        pytest.skip("vLLM is installed here: inference.backend=vllm would run")
    res = run_cli(["--debug-small", "inference.backend=vllm", "--keep", str(tmp_path)], module="src.doctor", timeout=300)
    assert res.returncode == 1 and "Traceback" not in res.stdout
    _, report = report_of(res.stdout)
    by_name = {c["name"]: c for c in report["checks"]}
    assert report["ok"] is False
    assert by_name["vllm"]["status"] == "fail" and "make setup-vllm" in by_name["vllm"]["detail"]
    assert by_name["preflight"]["status"] == "fail"
    smoke = by_name["smoke"]
    assert smoke["status"] == "fail" and "error: config key 'inference.backend'" in smoke["detail"]
    assert str(tmp_path / "smoke.log") in smoke["detail"] and (tmp_path / "smoke.log").is_file()
