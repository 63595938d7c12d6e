"""Encoder-decoder (KoBART-style) models: tokenizer with the speaker/mask tokens, model, and input framing.

KoBART's tokenizer adds no ``<s>``/``</s>`` by itself, so the framing is done here by hand, once,
for training and inference alike: encoder ``<s> dialogue </s>``, labels ``summary </s>``.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Iterable, Sequence

from src.config import Config
from src.utils.errors import UserError
from src.models.loading import count_parameters
from src.utils.patterns import HASH_TOKEN

log = logging.getLogger(__name__)

PAD_CANDIDATES = ("<pad>", "<|pad|>", "<unk>")


def find_mask_tokens(texts: Iterable[str]) -> list[str]:
    """Every distinct ``#Word#`` token in ``texts``, sorted."""
    found: set[str] = set()
    for text in texts:
        found.update(HASH_TOKEN.findall(str(text)))
    return sorted(found)


def special_tokens(cfg: Config, texts: Iterable[str] = ()) -> list[str]:
    """``model.special_tokens`` followed by the mask tokens found in ``texts`` (no duplicates)."""
    return list(dict.fromkeys([*cfg.model.special_tokens, *find_mask_tokens(texts)]))


def load_seq2seq_tokenizer(path: str, cfg: Config, extra_tokens: Sequence[str] = ()) -> Any:
    """The tokenizer with a pad token and ``extra_tokens`` added as special (unsplittable) tokens."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, revision=cfg.model.revision,
                                        trust_remote_code=cfg.model.trust_remote_code,
                                        token=os.environ.get("HF_TOKEN") or None)
    if tok.eos_token is None:
        raise UserError(f"config key 'model.name' = {cfg.model.name!r}: the tokenizer has no EOS token; "
                        "a seq2seq model needs one to end summaries (pick a BART/T5-style model)")
    if tok.pad_token is None:
        vocab = tok.get_vocab()
        tok.pad_token = next((t for t in PAD_CANDIDATES if t in vocab), tok.eos_token)
        log.info("tokenizer had no pad token; using %r", tok.pad_token)
    new = [t for t in extra_tokens if t not in tok.get_vocab()]
    if new:
        tok.add_special_tokens({"extra_special_tokens": new}, replace_extra_special_tokens=False)
        log.info("added %d special tokens: %s", len(new), " ".join(new))
    tok.padding_side = "right"
    return tok


def load_seq2seq(path: str, cfg: Config, device: str, dtype: Any, extra_tokens: Sequence[str] = ()) -> tuple[Any, Any]:
    """(model, tokenizer): AutoModelForSeq2SeqLM on ``device``, embeddings resized to the tokenizer."""
    from transformers import AutoModelForSeq2SeqLM

    tokenizer = load_seq2seq_tokenizer(path, cfg, extra_tokens)
    model = AutoModelForSeq2SeqLM.from_pretrained(
        path, revision=cfg.model.revision, trust_remote_code=cfg.model.trust_remote_code,
        token=os.environ.get("HF_TOKEN") or None, dtype=dtype)
    positions = getattr(model.config, "max_position_embeddings", None)
    if positions and cfg.seq2seq.encoder_max_len > positions:
        raise UserError(f"config key 'seq2seq.encoder_max_len' = {cfg.seq2seq.encoder_max_len}: {path} has only "
                        f"{positions} positions; set seq2seq.encoder_max_len <= {positions}")
    old = model.get_input_embeddings().weight.shape[0]
    if old != len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
        log.info("embeddings resized: %d -> %d", old, len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    trainable, total = count_parameters(model)
    log.info("seq2seq model %s: %s parameters (%s trainable), dtype %s, device %s", path, f"{total:,}",
             f"{trainable:,}", str(model.dtype).split(".")[-1], device)
    return model.to(device), tokenizer


def encode_source(tokenizer: Any, dialogue: str, max_len: int) -> tuple[list[int], bool]:
    """Encoder ids ``<s> dialogue </s>`` cut to ``max_len`` (``</s>`` kept); and whether it was cut."""
    ids = tokenizer(str(dialogue), add_special_tokens=False)["input_ids"]
    head = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    room = max_len - len(head) - 1
    return head + ids[:room] + [tokenizer.eos_token_id], len(ids) > room


def encode_target(tokenizer: Any, summary: str, max_len: int) -> tuple[list[int], bool]:
    """Label ids ``summary </s>`` cut to ``max_len`` (``</s>`` kept); and whether it was cut."""
    ids = tokenizer(str(summary), add_special_tokens=False)["input_ids"]
    return ids[: max_len - 1] + [tokenizer.eos_token_id], len(ids) > max_len - 1


def decode_summary(tokenizer: Any, ids: Sequence[int]) -> str:
    """Text of generated ids, keeping the added speaker/mask tokens (skip_special_tokens would drop them)."""
    structural = {tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id}
    return tokenizer.decode([i for i in ids if i not in structural and i >= 0], skip_special_tokens=False)
