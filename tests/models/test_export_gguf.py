"""The GGUF export on the real Gemma 3 270M, loaded and run by llama.cpp: only where llama-cpp-python and
llama.cpp's converter are installed (``make setup-llamacpp``; run from ``.venv-llamacpp``), a skip with the reason
elsewhere. (The tiny debug model's tokenizer is one llama.cpp's converter does not know, so this needs a real one.)"""
from __future__ import annotations

import json

import pytest

from src.export import CONVERTER, main
from tests.conftest import run_main

pytestmark = pytest.mark.slow


def test_gguf_export_of_full_weights_runs_in_llamacpp(tmp_path, capsys, request):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (make setup-llamacpp builds it)")
    if not CONVERTER.is_file():
        pytest.skip(f"llama.cpp's converter is not at {CONVERTER} (make setup-llamacpp keeps it there)")
    gemma = request.getfixturevalue("gemma_dir")
    (tmp_path / "model" / "gemma").mkdir(parents=True)
    (tmp_path / "model" / "gemma" / "final_checkpoint").symlink_to(gemma, target_is_directory=True)
    out = tmp_path / "gemma.gguf"
    code, stdout, err = run_main(main, capsys, "--run", "gemma", f"paths.model_dir={tmp_path / 'model'}", "--quant",
                                 "q8_0", "--out", str(out), "--threads", "2")
    assert code == 0, err
    result = json.loads(stdout.strip().splitlines()[-1])
    assert out.is_file() and result["gguf"] == str(out) and result["bytes"] > 100_000_000
    assert result["check"]["same_prompt_ids"] is True and result["check"]["tokens"] > 0
    card = json.loads(out.with_name(out.name + ".prompt.json").read_text(encoding="utf-8"))
    assert card["instruction"] and "### Response:" in card["prompt_after_dialogue"]
