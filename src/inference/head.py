"""The output layer generation uses: the model's own rows for the kept ids only, and the checks on it.

``Head.logits`` is ``hidden @ W[kept].T`` (plus bias and final-logit softcapping where the model has
them), so greedy and beam choices among kept ids are those of the full layer. ``Head.escapes``
runs the full layer on the same hidden states and counts rows whose best id was dropped: the
engine calls it every ``inference.vocab_check_every`` decode steps.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

NEG = float("-inf")


class Head:
    """Logits over ``kept`` ids (all ids when ``kept`` is None); banned ids score -inf either way."""

    def __init__(self, model: Any, kept: Optional[Sequence[int]], banned: Sequence[int] = ()) -> None:
        import torch

        layer = model.get_output_embeddings()
        self.full_weight = layer.weight.detach()
        self.full_bias = layer.bias.detach() if getattr(layer, "bias", None) is not None else None
        config = model.config
        self.softcap = getattr(config, "final_logit_softcapping", None)
        self.vocab_size = self.full_weight.shape[0]
        device = self.full_weight.device
        self.kept = None if kept is None else torch.tensor(list(kept), dtype=torch.long, device=device)
        self.weight = self.full_weight if self.kept is None else self.full_weight[self.kept].contiguous()
        self.bias = self.full_bias if self.kept is None or self.full_bias is None else self.full_bias[self.kept]
        self.size = self.weight.shape[0]
        self.index_of = torch.full((self.vocab_size,), -1, dtype=torch.long, device=device)
        self.index_of[self.kept if self.kept is not None else torch.arange(self.vocab_size, device=device)] = \
            torch.arange(self.size, device=device)
        self.banned = torch.tensor([i for i in banned if 0 <= i < self.vocab_size], dtype=torch.long, device=device)
        self.blocked: Optional[Any] = None
        inside = [i for i in banned if 0 <= i < self.vocab_size and int(self.index_of[i]) >= 0]
        if inside:  # the full head: banned ids stay in the matrix and are masked
            self.blocked = torch.zeros(self.size, device=device)
            self.blocked[self.index_of[torch.tensor(inside, device=device)]] = NEG

    def _project(self, hidden: Any, weight: Any, bias: Any) -> Any:
        import torch
        import torch.nn.functional as F

        logits = F.linear(hidden.to(weight.dtype), weight, bias).float()
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits

    def logits(self, hidden: Any) -> Any:
        """[rows, size] float32 logits of the kept ids for hidden states [rows, hidden]."""
        logits = self._project(hidden, self.weight, self.bias)
        return logits if self.blocked is None else logits + self.blocked

    def ids(self, index: Any) -> Any:
        """Vocabulary ids of positions in the kept list."""
        return index if self.kept is None else self.kept[index]

    def escapes(self, hidden: Any, best: Any) -> int:
        """Rows whose best dropped id scores above ``best`` (their best kept logit) under the full layer."""
        if self.kept is None:
            return 0
        full = self._project(hidden, self.full_weight, self.full_bias)
        full[:, self.kept] = NEG
        full[:, self.banned] = NEG  # a banned id is never generated: winning there is not an escape
        return int((full.max(dim=-1).values > best).sum())


def full_size_layer(head: Head) -> Any:
    """An output layer for ``model.generate``: the kept ids' logits in place, -inf everywhere else.

    The matmul is the trimmed one; only the (cheap) fill of a vocabulary-wide row remains, so the
    transformers engine can measure the trimmed vocabulary on its own.
    """
    import torch

    class FullSize(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = head.full_weight  # generate() reads the dtype and device from it

        def forward(self, hidden: Any) -> Any:
            shape = (*hidden.shape[:-1], head.vocab_size)
            out = torch.full(shape, NEG, dtype=torch.float32, device=hidden.device)
            out[..., head.kept if head.kept is not None else slice(None)] = head.logits(hidden.reshape(-1, hidden.shape[-1])
                                                                                        ).reshape(*hidden.shape[:-1], -1)
            return out

    return FullSize()
