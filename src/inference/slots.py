"""A key/value cache of fixed slots, each holding one sequence at its own length (continuous batching).

``transformers``' DynamicCache concatenates every layer's keys and values at every step (on Gemma 3
270M, 16 sequences, ~300 tokens: a third of the decode step on a CPU was ``aten::cat``), and a
left-padded batch keeps decoding until its longest member stops. Here each layer has one buffer of
``slots x kv_heads x capacity x head_dim``, written in place: a prefill fills rows ``[0, n)`` of the
slots it is given, a decode step writes each row's new key at that row's own position and attends
over the first ``width`` positions, masked per row (and per sliding window). A finished row's slot
takes the next prompt while the others keep decoding.

The model's own modules do the work: the attention layers call ``cache.update`` as they do with
transformers' caches, and the masks are handed in ready-made (a mapping per layer type for models
with sliding-window layers, else one 4-D mask), so no transformers mask helper ever sees this cache.
"""
from __future__ import annotations

from typing import Any, Optional

FULL, SLIDING = "full_attention", "sliding_attention"


class SlotCache:
    """Per-layer key/value buffers of ``slots`` rows; ``prefill`` or ``decode`` mode set before each forward."""

    def __init__(self, slots: int, capacity: int) -> None:
        self.slots, self.capacity = slots, capacity
        self.keys: dict[int, Any] = {}
        self.values: dict[int, Any] = {}
        self.rows: Any = None  # prefill: the slot of each row of the batch (LongTensor)
        self.start = 0  # prefill: the position the batch starts at (after a shared prefix already in the slots)
        self.positions: Any = None  # decode: the position each row's new key is written at (LongTensor [n])
        self.arange: Any = None
        self.width = 0  # decode: positions [0, width) are attended (masked per row)

    def prefill(self, rows: Any, start: int = 0) -> None:
        """The next forward is a prefill of right-padded prompts into these slots, from position ``start``
        (positions before it hold a prefix copied in by ``seed``)."""
        self.rows, self.start = rows, start

    def seed(self, prefix: "SlotCache", rows: Any, length: int) -> None:
        """Slots ``rows`` take the first ``length`` positions of ``prefix``'s slot 0 (a prompt prefix computed once)."""
        import torch

        for layer in prefix.keys:
            for mine, theirs in ((self.keys, prefix.keys), (self.values, prefix.values)):
                if layer not in mine:
                    shape = (self.slots, theirs[layer].shape[1], self.capacity, theirs[layer].shape[3])
                    mine[layer] = torch.zeros(shape, dtype=theirs[layer].dtype, device=theirs[layer].device)
                mine[layer][rows, :, :length] = theirs[layer][0, :, :length]

    def decode(self, positions: Any, width: int) -> None:
        """The next forward is one token for each of the first ``len(positions)`` slots."""
        import torch

        self.rows, self.positions, self.width = None, positions, width
        self.arange = torch.arange(len(positions), device=positions.device)

    def _buffers(self, layer: int, key: Any, value: Any) -> tuple[Any, Any]:
        if layer not in self.keys:
            import torch

            shape = (self.slots, key.shape[1], self.capacity, key.shape[3])
            self.keys[layer] = torch.zeros(shape, dtype=key.dtype, device=key.device)
            self.values[layer] = torch.zeros((*shape[:3], value.shape[3]), dtype=value.dtype, device=value.device)
        return self.keys[layer], self.values[layer]

    def update(self, key: Any, value: Any, layer_idx: int, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        """Store this step's keys/values; return what the layer attends over (the transformers Cache contract)."""
        keys, values = self._buffers(layer_idx, key, value)
        if self.rows is not None:  # prefill: the prompt attends over itself (and the prefix before it)
            end = self.start + key.shape[2]
            keys[self.rows, :, self.start:end] = key.to(keys.dtype)
            values[self.rows, :, self.start:end] = value.to(values.dtype)
            if not self.start:
                return key, value
            return keys[self.rows, :, :end], values[self.rows, :, :end]
        rows = len(self.positions)
        keys[self.arange, :, self.positions] = key[:, :, 0]
        values[self.arange, :, self.positions] = value[:, :, 0]
        return keys[:rows, :, :self.width], values[:rows, :, :self.width]

    def copy_rows(self, source: Any, target: Any, width: int) -> None:
        """Slots ``target`` take the first ``width`` positions of slots ``source`` (beams, compaction)."""
        for layer in self.keys:
            for buf in (self.keys[layer], self.values[layer]):
                buf[target, :, :width] = buf[source, :, :width]


def layer_kinds(config: Any) -> Optional[tuple[str, ...]]:
    """The attention kinds of a model's layers when it has sliding-window layers (it then takes a mask per kind)."""
    kinds = tuple(getattr(config, "layer_types", None) or ())
    return kinds if SLIDING in kinds and getattr(config, "sliding_window", None) else None


def decode_masks(config: Any, positions: Any, width: int) -> Any:
    """Boolean masks [rows, 1, 1, width]: row b attends positions <= its own (within the window when sliding)."""
    import torch

    j = torch.arange(width, device=positions.device)[None, :]
    full = j <= positions[:, None]
    if layer_kinds(config) is None:
        return full[:, None, None, :]
    window = (j > positions[:, None] - config.sliding_window) & full
    return {FULL: full[:, None, None, :], SLIDING: window[:, None, None, :]}


def prefill_masks(config: Any, length: int, device: Any, start: int = 0) -> Any:
    """Masks for right-padded prompts of ``length`` after ``start`` prefix positions: causal (a padded tail is
    never seen by a real token), [1, 1, length, start + length].

    ``None`` lets sdpa take its causal kernel; an explicit mask is built only where one is needed
    (a prefix, a sliding window shorter than the prompt, or a model that takes a single mask).
    """
    import torch

    i = torch.arange(start, start + length, device=device)[:, None]
    j = torch.arange(start + length, device=device)[None, :]
    causal = j <= i
    if layer_kinds(config) is None:
        return causal[None, None]
    window = config.sliding_window
    sliding = None if start + length <= window and not start else (causal & (j > i - window))[None, None]
    return {FULL: None if not start else causal[None, None], SLIDING: sliding}


def shared_prefix(prompts: list[list[int]], least: int = 8) -> int:
    """Length of the prefix every prompt starts with (each keeping at least one own token); 0 below ``least``."""
    first, n = prompts[0], min(len(p) for p in prompts) - 1
    k = 0
    while k < n and all(p[k] == first[k] for p in prompts):
        k += 1
    return k if k >= least else 0
