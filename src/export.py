"""A run's fine-tuned model as one GGUF file for llama.cpp (and Ollama):
``python -m src.export --run NAME --format gguf [--quant q8_0|f16|bf16|f32] [--out FILE] [key.sub=value ...]``.

The run's ``<paths.model_dir>/<run>/final_checkpoint`` (checked as the checkpoint contract says: an adapter or
full weights) is loaded in float32 on the CPU, an adapter merged into its base (peft ``merge_and_unload``), and
saved as a plain Hugging Face folder in a temporary directory. Its tokenizer gets a chat template that renders
exactly the prompt the model was trained on (system prompt, instruction, the dialogue as the one user message,
the response header): llama.cpp's converter writes it as ``tokenizer.chat_template`` in the GGUF, so a chat with
the file (``llama-cli -cnv``, llama-cpp-python's ``create_chat_completion``, Ollama) prompts as training did.
llama.cpp's ``convert_hf_to_gguf.py`` (``make setup-llamacpp`` keeps it in ``.venv-llamacpp/llama.cpp/``) writes
the file; ``<file>.prompt.json`` beside it documents the prompt. Then, when ``llama_cpp`` imports, llama.cpp loads
the file and summarizes one dev dialogue greedily (the prompt as our builder's token ids, and whether llama.cpp's
own tokenization of the rendered text gives the same ids). Problems: one ``error:`` line each, exit code 2.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from src.config import REPO_ROOT, Config, load_config
from src.config.resources import find_config
from src.inference.settings import resolve_settings
from src.models.checkpoint import check_checkpoint, checkpoint_type, verified_checkpoint
from src.models.loading import load_tokenizer, read_adapter_config
from src.prompting.builder import PromptBuilder
from src.utils.errors import UserError, printable
from src.utils.logging_setup import setup_logging

log = logging.getLogger("src.export")

FORMATS = ("gguf",)
QUANTS = ("q8_0", "f16", "bf16", "f32")  # what convert_hf_to_gguf.py writes directly (--outtype)
CONVERTER = REPO_ROOT / ".venv-llamacpp" / "llama.cpp" / "convert_hf_to_gguf.py"
_SLOT = "\u2063DIALOGUE\u2063"  # stands for the dialogue while the prompt is split around it


def build_parser(prog: str = "python -m src.export") -> argparse.ArgumentParser:
    """The command-line interface of the export."""
    parser = argparse.ArgumentParser(prog=prog, description="Export a run's final checkpoint (merged) as one GGUF "
                                     "file for llama.cpp, with the training prompt as its chat template.")
    parser.add_argument("--run", required=True, help="the run whose <paths.model_dir>/<run>/final_checkpoint to export")
    parser.add_argument("--format", choices=FORMATS, default="gguf", help="output format (gguf)")
    parser.add_argument("--quant", choices=QUANTS, default="q8_0", help="weight type in the file (default q8_0)")
    parser.add_argument("--config", default=None, help="config YAML or preset name, as for a run (default: the base)")
    parser.add_argument("--out", default=None, help="the GGUF file (default <checkpoint>/../<run>-<quant>.gguf)")
    parser.add_argument("--converter", default=str(CONVERTER), help="llama.cpp's convert_hf_to_gguf.py "
                        "(default: the one make setup-llamacpp keeps)")
    parser.add_argument("--no-check", action="store_true", help="skip loading the file in llama.cpp")
    parser.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1), help="llama.cpp threads (check)")
    parser.add_argument("overrides", nargs="*", help="key.sub=value config overrides, as for a run "
                        "(e.g. paths.model_dir=/elsewhere/model)")
    return parser


# ---------------------------------------------------------------- what to export

def final_checkpoint(cfg: Config, run: str) -> Path:
    """The run's final checkpoint per the checkpoint contract (intact, or the newest intact checkpoint-N instead);
    UserError when there is none or it is not a causal model."""
    if not run.strip() or Path(run).name != run:
        raise UserError(f"--run {run!r}: give a run name (a folder under paths.model_dir), not a path")
    folder = Path(cfg.paths.model_dir) / run / "final_checkpoint"
    if not folder.is_dir():
        raise UserError(f"run {run!r} has no final checkpoint at {folder}; train it first, or set "
                        "paths.model_dir=... to where its model folder is")
    check_checkpoint(folder)
    folder = verified_checkpoint(folder)
    kind = checkpoint_type(folder, {})
    if kind == "seq2seq":
        raise UserError(f"{folder} is an encoder-decoder (seq2seq) model; llama.cpp's GGUF export covers causal "
                        "models only")
    return folder


def merge_to_folder(checkpoint: Path, out_dir: Path) -> Path:
    """Full weights (an adapter merged into its base) and the tokenizer, float32, as a plain HF folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter = read_adapter_config(checkpoint)
    if adapter is None:
        model = AutoModelForCausalLM.from_pretrained(str(checkpoint), dtype=torch.float32)
    else:
        from peft import PeftModel

        base = adapter.get("base_model_name_or_path") or ""
        if not base or (base.startswith(("/", ".")) and not Path(base).is_dir()):
            raise UserError(f"{checkpoint / 'adapter_config.json'}: base model {base or '(none)'} is not there; "
                            "restore it or edit base_model_name_or_path")
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32),
                                          str(checkpoint)).merge_and_unload()
    model.save_pretrained(str(out_dir), safe_serialization=True)
    AutoTokenizer.from_pretrained(str(checkpoint)).save_pretrained(str(out_dir))
    return out_dir


# ---------------------------------------------------------------- the prompt format

def prompt_parts(builder: Any) -> tuple[str, str]:
    """(text before the dialogue, text after it) of the prompt the builder renders, zero-shot."""
    before, sep, after = builder.render(_SLOT).partition(_SLOT)
    if not sep:
        raise UserError("the prompt builder's rendering does not contain the dialogue verbatim; cannot write it as "
                        "a chat template")
    return before, after


def chat_template(before: str, after: str) -> str:
    """A Jinja chat template whose rendering of one user message (the dialogue) is the training prompt."""
    quote = json.dumps  # a JSON string is a valid Jinja string literal (escapes and non-ASCII as is)
    return ("{{ " + quote(before, ensure_ascii=False) + " }}{{ messages[-1]['content'] | trim }}{{ " +
            quote(after, ensure_ascii=False) + " }}")


def write_template(folder: Path, template: str) -> None:
    """Set the saved tokenizer's chat template (what the converter copies into tokenizer.chat_template)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    tokenizer.chat_template = template
    tokenizer.save_pretrained(str(folder))
    jinja = folder / "chat_template.jinja"  # newer transformers also save it apart; keep the two the same
    if jinja.is_file():
        jinja.write_text(template, encoding="utf-8")


def prompt_card(builder: Any, before: str, after: str, max_new_tokens: int) -> dict[str, Any]:
    """What ``<file>.prompt.json`` documents: the prompt around the dialogue, BOS, stops, the length cap."""
    cfg = builder.cfg
    return {"prompt_before_dialogue": before, "prompt_after_dialogue": after, "add_bos": builder.add_bos,
            "stop_token_ids": builder.stop_token_ids, "max_new_tokens": max_new_tokens,
            "system_prompt": cfg.system_prompt, "instruction": cfg.instruction, "num_fewshot": 0,
            "use": "prompt = prompt_before_dialogue + dialogue + prompt_after_dialogue (the GGUF's chat template "
                   "renders the same from one user message); greedy decoding, stop at stop_token_ids"}


# ---------------------------------------------------------------- conversion and the check

def convert(hf_dir: Path, out_file: Path, quant: str, converter: Path) -> float:
    """llama.cpp's converter over the HF folder; the seconds it took. UserError when it fails."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(converter), str(hf_dir), "--outfile", str(out_file), "--outtype",
                           quant], capture_output=True, text=True)
    if done.returncode != 0 or not out_file.is_file():
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise UserError(f"convert_hf_to_gguf.py failed (exit {done.returncode}): {tail}")
    return time.perf_counter() - start


def llamacpp_missing() -> Optional[str]:
    """Why llama.cpp cannot be used here (None when ``llama_cpp`` imports)."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError as exc:
        return f"llama-cpp-python is not importable ({exc}); run `make setup-llamacpp` and use .venv-llamacpp/bin/python"
    return None


def llamacpp_summary(gguf: Path, prompt_ids: list[int], text: str, max_new_tokens: int, stops: list[int],
                     threads: int) -> dict[str, Any]:
    """Load the file in llama.cpp and decode one prompt greedily from our token ids; also whether llama.cpp's
    tokenization of the rendered prompt text gives the same ids."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf), n_ctx=len(prompt_ids) + max_new_tokens + 8, n_threads=threads,
                n_batch=512, verbose=False, logits_all=False)
    own = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
    out: list[int] = []
    for token in llm.generate(prompt_ids, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0, reset=True):
        if token in stops or token == llm.token_eos() or len(out) >= max_new_tokens:
            break
        out.append(int(token))
    summary = llm.detokenize(out).decode("utf-8", errors="replace").strip()
    return {"summary": summary, "tokens": len(out), "prompt_tokens": len(prompt_ids),
            "same_prompt_ids": own == prompt_ids or [prompt_ids[0], *own] == prompt_ids}


def dev_dialogue(cfg: Config) -> str:
    """One dialogue of the dev split (the bundled debug set's when the config's dev file is not here)."""
    import csv

    for path in [Path(cfg.paths.data_dir) / name for name in cfg.data.dev_file] + [REPO_ROOT / "data/debug/dev.csv"]:
        if path.is_file():
            with path.open(encoding="utf-8", newline="") as handle:
                for row in csv.DictReader(handle):
                    if row.get("dialogue"):
                        return row["dialogue"]
    raise UserError("no dev dialogue to check the export with: data.dev_file is not in paths.data_dir")


# ---------------------------------------------------------------- the command

def export_gguf(cfg: Config, run: str, quant: str, out: Optional[Path], converter: Path, check: bool,
                threads: int) -> dict[str, Any]:
    """Merge, convert, document and check; the result line's fields."""
    checkpoint = final_checkpoint(cfg, run)
    if not converter.is_file():
        raise UserError(f"llama.cpp's converter {converter} is not there; run `make setup-llamacpp` (it keeps it in "
                        ".venv-llamacpp/llama.cpp/) or pass --converter")
    out = out or checkpoint.parent / f"{run}-{quant}.gguf"
    settings = resolve_settings(cfg, checkpoint, None, None, verify=False)  # the checkpoint's prompt and length cap
    builder = PromptBuilder(load_tokenizer(str(checkpoint), settings.cfg), settings.cfg.prompt)
    before, after = prompt_parts(builder)
    max_new = int(settings.cfg.inference.max_new_tokens)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dialsum-export-") as tmp:
        hf_dir = merge_to_folder(checkpoint, Path(tmp) / "merged")
        write_template(hf_dir, chat_template(before, after))
        merge_seconds = time.perf_counter() - start
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        convert_seconds = convert(hf_dir, partial, quant, converter)
        partial.replace(out)
    card = out.with_name(out.name + ".prompt.json")
    card.write_text(json.dumps(prompt_card(builder, before, after, max_new), ensure_ascii=False, indent=1) + "\n",
                    encoding="utf-8")
    result: dict[str, Any] = {"gguf": str(out), "prompt_card": str(card), "checkpoint": str(checkpoint),
                              "quant": quant, "bytes": out.stat().st_size, "merge_seconds": round(merge_seconds, 1),
                              "convert_seconds": round(convert_seconds, 1)}
    missing = None if check else "--no-check"
    missing = missing or llamacpp_missing()
    if missing:
        log.warning("llama.cpp check skipped: %s", missing)
        result["check"] = {"skipped": missing}
        return result
    dialogue = dev_dialogue(settings.cfg)
    ids = builder.encode_prompt(dialogue).input_ids
    result["check"] = llamacpp_summary(out, ids, builder.render(dialogue), max_new, builder.stop_token_ids, threads)
    log.info("llama.cpp summary of one dev dialogue: %s", result["check"]["summary"])
    return result


def main(argv: Optional[list[str]] = None, prog: str = "python -m src.export") -> int:
    """Export; 0 on success with one JSON line on stdout, 2 on a user error (one line per problem)."""
    args = build_parser(prog).parse_args(argv)
    setup_logging("INFO")
    try:
        if args.threads < 1:
            raise UserError(f"--threads {args.threads}: give 1 or more")
        cfg = load_config(find_config(args.config) if args.config else None, args.overrides)
        result = export_gguf(cfg, args.run, args.quant, Path(args.out) if args.out else None, Path(args.converter),
                             not args.no_check, args.threads)
    except UserError as exc:
        for problem in exc.problems:
            sys.stderr.write(f"error: {printable(problem)}\n")
        return 2
    sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
