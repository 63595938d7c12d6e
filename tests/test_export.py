"""src.export: argument errors, checkpoint resolution, the merge into an HF folder on a tiny model, the chat template
that renders the training prompt (the GGUF that llama.cpp runs: tests/models/test_export_gguf.py)."""
from __future__ import annotations

import json
import pytest

from src.config import REPO_ROOT, Config
from src.export import chat_template, final_checkpoint, main, merge_to_folder, prompt_parts
from src.utils.errors import UserError
from tests.conftest import run_main

DEBUG = REPO_ROOT / "data" / "debug"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """A tiny Llama base and, in <model_dir>/lora/final_checkpoint, a LoRA adapter on it with non-zero B."""
    import pandas as pd
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from src.models.debug import build_tiny_causal

    train = pd.read_csv(DEBUG / "train.csv", dtype=str)
    root = tmp_path_factory.mktemp("export")
    base = build_tiny_causal(root / "base", list(train["dialogue"]) + list(train["summary"]), seed=0)
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    final = root / "model" / "lora" / "final_checkpoint"
    model.save_pretrained(str(final))
    AutoTokenizer.from_pretrained(str(base)).save_pretrained(str(final))
    return {"base": base, "model_dir": root / "model", "final": final, "root": root}


def test_missing_run_is_one_line_and_exit_2(tmp_path, capsys):
    code, out, err = run_main(main, capsys, "--run", "nope", f"paths.model_dir={tmp_path}", "--no-check")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "run 'nope' has no final checkpoint" in err and "paths.model_dir" in err


def test_run_given_as_a_path_and_bad_threads_are_refused(tmp_path, capsys):
    code, _, err = run_main(main, capsys, "--run", "../x", f"paths.model_dir={tmp_path}")
    assert code == 2 and "give a run name" in err
    code, _, err = run_main(main, capsys, "--run", "x", "--threads", "0")
    assert code == 2 and err.startswith("error: --threads 0")


def test_unknown_quant_and_format_exit_2(capsys):
    for argv in (["--run", "x", "--quant", "q4_0"], ["--run", "x", "--format", "onnx"]):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_unknown_config_key_exit_2(tmp_path, capsys):
    code, _, err = run_main(main, capsys, "--run", "x", "paths.model_dri=/tmp")
    assert code == 2 and "paths.model_dri" in err


def test_missing_converter_says_make_setup_llamacpp(tiny, tmp_path, capsys):
    code, _, err = run_main(main, capsys, "--run", "lora", f"paths.model_dir={tiny['model_dir']}",
                            "--converter", str(tmp_path / "none.py"))
    assert code == 2 and "make setup-llamacpp" in err


def test_final_checkpoint_resolves_through_model_dir(tiny):
    cfg = Config()
    from dataclasses import replace

    cfg = replace(cfg, paths=replace(cfg.paths, model_dir=str(tiny["model_dir"])))
    assert final_checkpoint(cfg, "lora") == tiny["final"]
    with pytest.raises(UserError, match="no final checkpoint"):
        final_checkpoint(cfg, "other")


def test_seq2seq_checkpoint_is_refused(tmp_path):
    from dataclasses import replace

    final = tmp_path / "s2s" / "final_checkpoint"
    final.mkdir(parents=True)
    (final / "config.json").write_text(json.dumps({"is_encoder_decoder": True}), encoding="utf-8")
    cfg = replace(Config(), paths=replace(Config().paths, model_dir=str(tmp_path)))
    with pytest.raises(UserError, match="causal models only"):
        final_checkpoint(cfg, "s2s")


def test_merge_writes_full_weights_with_the_adapter_applied(tiny, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = merge_to_folder(tiny["final"], tmp_path / "merged")
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    assert (out / "tokenizer.json").is_file() and not (out / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32)
    base = AutoModelForCausalLM.from_pretrained(str(tiny["base"]), dtype=torch.float32)
    on_base = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny["base"]), dtype=torch.float32),
                                        str(tiny["final"]))
    ids = torch.tensor([[5, 9, 17, 33, 2]])
    with torch.no_grad():
        want, got, plain = on_base(ids).logits, merged(ids).logits, base(ids).logits
    assert torch.allclose(want, got, atol=1e-4)
    assert not torch.allclose(plain, got, atol=1e-4)  # the adapter changed the weights the file will hold


@pytest.mark.parametrize("use_chat", [False, True])
def test_chat_template_renders_the_training_prompt(tiny, use_chat):
    from dataclasses import replace

    from transformers import AutoTokenizer

    from src.prompting.builder import PromptBuilder

    tokenizer = AutoTokenizer.from_pretrained(str(tiny["final"]))
    prompt = replace(Config().prompt, use_chat_template=use_chat, system_prompt="요약 전문가입니다.")
    builder = PromptBuilder(tokenizer, prompt)
    dialogue = '#Person1#: 안녕하세요 "따옴표" {{ 괄호 }}\n#Person2#: 네.'
    want = builder.render(dialogue)  # before the template changes: the builder renders with the tokenizer's own
    tokenizer.chat_template = chat_template(*prompt_parts(builder))
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": dialogue}], tokenize=False,
                                             add_generation_prompt=True)
    assert rendered == want and dialogue in want


def test_dialsum_export_is_the_same_command(tmp_path, capsys):
    from src.main import entry_point

    code = entry_point(["export", "--run", "nope", f"paths.model_dir={tmp_path}", "--no-check"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: run 'nope' has no final checkpoint")
