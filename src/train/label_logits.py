"""Training computes the output layer only where a label is trained (``training.label_logits_only``).

A causal LM's loss needs logits only at positions whose next-token label is not -100; the prompt
positions (most of a summarization example) need none. With a large vocabulary that layer is the
costliest part of the model: Gemma 3 270M's 262,144 x 640 head is ~335 MFLOP per token, more than
its 18 transformer layers together (~200 MFLOP).

How it composes with TRL: ``SFTTrainer`` patches the model with ``trl.trainer.add_fused_lm_head``
and calls ``model(**inputs, fused_lm_head=True)``, reading ``log_probs``, ``label_mask``,
``entropy`` and ``is_top1`` from the output (the loss and the entropy / token-accuracy metrics).
That head scores only the labelled positions on Triton devices but *every* position elsewhere,
the CPU included (trl 1.16, ``_use_triton``). ``install`` wraps that forward once more: for a
``fused_lm_head=True`` call it runs the model's own forward with ``logits_to_keep`` set to the
boolean mask of labelled positions (a transformers feature: the head then projects only those
hidden states, final-logit softcapping included), and returns the same fields. Every other call
(generation, evaluation without labels) goes to the forward underneath unchanged. Padding-free
rows work as they are: the mask is per position, whatever the row holds.
"""
from __future__ import annotations

import functools
import logging
from typing import Any

log = logging.getLogger(__name__)

MARKER = "_label_logits_only"


def base_model(model: Any) -> Any:
    """The transformers model under a PEFT wrapper (the one TRL patched), or ``model`` itself."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def scored_positions(labels: Any) -> Any:
    """Boolean ``(batch, seq)`` mask of positions whose next token is trained (the last position never is)."""
    import torch

    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != -100
    return keep


def label_log_probs(logits: Any, targets: Any) -> tuple[Any, Any, Any]:
    """Per kept position: log-probability of its target (differentiable), entropy and is-argmax (no gradient)."""
    import torch
    import torch.nn.functional as F

    logits = logits.float()  # fp32 softmax over 262k entries whatever the compute dtype
    log_probs = -F.cross_entropy(logits, targets, reduction="none")
    with torch.no_grad():
        log_z = torch.logsumexp(logits, dim=-1)
        entropy = log_z - (torch.softmax(logits, dim=-1) * logits).sum(-1)
        is_top1 = logits.argmax(dim=-1) == targets  # argmax takes the first maximum, as TRL's metric does
    return log_probs, entropy, is_top1


def labelled_forward(forward: Any, args: tuple, kwargs: dict, labels: Any, num_items_in_batch: Any) -> Any:
    """One ``fused_lm_head=True`` call: ``forward`` with ``logits_to_keep`` = the labelled positions."""
    from trl.trainer.utils import FusedCausalLMOutput

    keep = scored_positions(labels)
    kwargs["use_cache"] = False
    out = forward(*args, logits_to_keep=keep, **kwargs)  # logits: (kept positions, vocab)
    label_mask = keep[:, :-1]
    targets = labels[:, 1:][label_mask].to(out.logits.device)
    fields = label_log_probs(out.logits, targets)
    label_mask = label_mask.to(out.logits.device)
    # masked_scatter keeps a batch with no label connected to the graph (a differentiable zero)
    log_probs, entropy, is_top1 = (x.new_zeros(label_mask.shape).masked_scatter(label_mask, x) for x in fields)
    count = label_mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch
    return FusedCausalLMOutput(loss=-log_probs.sum() / count, log_probs=log_probs, entropy=entropy,
                               is_top1=is_top1, label_mask=label_mask)


def install(model: Any) -> bool:
    """Make ``fused_lm_head=True`` calls on ``model`` project only labelled positions; False when nothing to wrap.

    Call after ``SFTTrainer(...)`` has patched the model (the wrapper goes on top of TRL's forward).
    """
    target = base_model(model)
    if getattr(target, MARKER, False):
        return True
    if not hasattr(target, "get_output_embeddings") or target.get_output_embeddings() is None:
        log.info("training.label_logits_only: %s has no output layer to restrict; left as is", type(target).__name__)
        return False
    underneath = target.forward

    @functools.wraps(type(target).forward)  # generate() validates its kwargs against this signature
    def forward(*args: Any, fused_lm_head: bool = False, labels: Any = None, shift_labels: Any = None,
                num_items_in_batch: Any = None, **kwargs: Any) -> Any:
        if not fused_lm_head or labels is None or shift_labels is not None:
            # pre-shifted labels come with sequence parallelism: leave those to TRL
            extra = {k: v for k, v in (("labels", labels), ("shift_labels", shift_labels),
                                       ("num_items_in_batch", num_items_in_batch)) if v is not None}
            if fused_lm_head:
                extra["fused_lm_head"] = True
            return underneath(*args, **kwargs, **extra)
        return labelled_forward(underneath, args, kwargs, labels, num_items_in_batch)

    target.forward = forward
    setattr(target, MARKER, True)
    return True
