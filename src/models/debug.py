"""Tiny random-init models built locally for ``--debug-small`` and the tests (no download).

The tokenizer is a byte-level BPE trained on the run's own text, so every Korean character
round-trips; the causal model is Llama-architecture with a ChatML-style chat template.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Iterable

from src.utils.io import follow_umask, temp_path

log = logging.getLogger(__name__)

BUILD_VERSION = 2
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CAUSAL_SPECIALS = ["<pad>", "<|im_start|>", "<|im_end|>"]
SEQ2SEQ_SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", "<mask>"]


def train_tokenizer(texts: Iterable[str], specials: list[str], vocab_size: int):
    """Byte-level BPE trained on ``texts`` with ``specials`` as the first ids."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(texts), trainer=trainer)
    return tok


def _is_current(out_dir: Path, spec: dict) -> bool:
    info = out_dir / "BUILD_INFO.json"
    return info.is_file() and json.loads(info.read_text()) == spec and (out_dir / "config.json").is_file()


def _build_spec(kind: str, texts: list[str], hidden: int, layers: int, vocab_size: int, seed: int) -> dict:
    """What identifies a build: a different spec (or different text) rebuilds the model."""
    return {"kind": kind, "v": BUILD_VERSION, "hidden": hidden, "layers": layers, "vocab": vocab_size,
            "seed": seed, "n_texts": len(texts), "chars": sum(map(len, texts))}


def build_tiny_causal(out_dir: Path, texts: list[str], hidden: int = 64, layers: int = 2,
                      vocab_size: int = 2000, seed: int = 0) -> Path:
    """Build (or reuse) a tiny Llama with a ChatML template in ``out_dir``."""
    spec = _build_spec("causal", texts, hidden, layers, vocab_size, seed)
    out_dir = Path(out_dir)
    if _is_current(out_dir, spec):
        return out_dir
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=train_tokenizer(texts, CAUSAL_SPECIALS, vocab_size),
        eos_token="<|im_end|>", pad_token="<pad>", chat_template=CHAT_TEMPLATE, model_max_length=4096)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=4096, tie_word_embeddings=False,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    _save(out_dir, model, tokenizer, spec)
    return out_dir


def build_tiny_seq2seq(out_dir: Path, texts: list[str], hidden: int = 64, layers: int = 2,
                       vocab_size: int = 2000, seed: int = 0) -> Path:
    """Build (or reuse) a tiny BART (KoBART-style tokenizer: no automatic <s>/</s>) in ``out_dir``."""
    spec = _build_spec("seq2seq", texts, hidden, layers, vocab_size, seed)
    out_dir = Path(out_dir)
    if _is_current(out_dir, spec):
        return out_dir
    import torch
    from transformers import BartConfig, BartForConditionalGeneration, PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=train_tokenizer(texts, SEQ2SEQ_SPECIALS, vocab_size), bos_token="<s>", eos_token="</s>",
        pad_token="<pad>", unk_token="<unk>", mask_token="<mask>", model_max_length=1024)
    config = BartConfig(vocab_size=len(tokenizer), d_model=hidden, encoder_layers=layers, decoder_layers=layers,
                        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=hidden * 2,
                        decoder_ffn_dim=hidden * 2, max_position_embeddings=1024,
                        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.eos_token_id,
                        forced_eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(seed)
    model = BartForConditionalGeneration(config)
    _save(out_dir, model, tokenizer, spec)
    return out_dir


def _save(out_dir: Path, model, tokenizer, spec: dict) -> None:
    """Save into a temp folder and rename it into place, so parallel ranks never see half a model."""
    import shutil

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(out_dir)
    tmp.mkdir()  # umask permissions, unlike mkdtemp's 0700
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "BUILD_INFO.json").write_text(json.dumps(spec))
    follow_umask(tmp)
    if out_dir.exists():
        if _is_current(out_dir, spec):  # another process finished the same build first
            shutil.rmtree(tmp, ignore_errors=True)
            return
        shutil.rmtree(out_dir)
    try:
        tmp.rename(out_dir)
    except OSError:  # lost a race to an identical build
        shutil.rmtree(tmp, ignore_errors=True)
    n = sum(p.numel() for p in model.parameters())
    log.info("built tiny %s model (%d parameters, vocab %d) in %s", spec["kind"], n, len(tokenizer), out_dir)
