"""Dropout whose mask can be drawn from packed random bits (opt-in: ``packed_dropout: true``).

``nn.Dropout`` draws one Bernoulli sample per element. On CPU that draw is the cost: in a default-size
training step the ~30 M dropout elements of the Conformer feed-forwards took ~10 % of a bf16 step
(torch profiler, ``aten::bernoulli_``; docs/models.md "Speed"). The packed mask takes 16 random bits per
element from one 64-bit draw per four elements and keeps an element when its bits are at or above
``round(p * 2**16)``: the drop probability is ``p`` rounded to a multiple of 2**-16 (at p = 0.1:
0.100006), and kept elements are scaled by the inverse of the *rounded* keep probability, so the
expectation is exactly the input, as with ``nn.Dropout``.

The masks are different random numbers from ``nn.Dropout``'s (the same distribution up to that
rounding), so a run with the packed masks is not bit-for-bit the run without; evaluation, where dropout
is the identity, is unchanged. Off by default. Device-agnostic (on CUDA the draw is Philox's).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

#: random bits per element of a packed mask
MASK_BITS = 16


def packed_dropout(x: Tensor, p: float) -> Tensor:
    """Training-mode dropout of ``x`` with drop probability ``p`` (rounded to a multiple of 2**-16)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    levels = 1 << MASK_BITS
    drop = round(p * levels)
    if drop == 0 or x.numel() == 0:
        return x
    draws = torch.empty((x.numel() + 3) // 4, dtype=torch.int64, device=x.device)
    draws.random_(-(1 << 63), None)  # all 64 bits uniform
    bits = draws.view(torch.int16)[: x.numel()].view(x.shape)  # uniform over [-2**15, 2**15)
    keep = bits >= drop - (levels >> 1)
    scale = levels / (levels - drop)
    return x * keep.to(x.dtype).mul_(scale)


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same arguments, no parameters) that uses :func:`packed_dropout` when ``packed``."""

    #: draw the mask from packed random bits (set per model with :func:`set_packed_dropout`)
    packed: bool = False

    def forward(self, x: Tensor) -> Tensor:
        if self.packed and self.training and not self.inplace:
            return packed_dropout(x, self.p)
        return super().forward(x)


def set_packed_dropout(model: nn.Module, enabled: bool) -> int:
    """Turn the packed masks on or off for every :class:`Dropout` in ``model``; returns how many."""
    count = 0
    for module in model.modules():
        if isinstance(module, Dropout):
            module.packed = bool(enabled)
            count += 1
    return count
