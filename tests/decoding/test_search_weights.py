"""Row-major copies of the search's weights: the same products as ``nn.Linear``, refreshed when a weight changes."""
from __future__ import annotations

import torch
from torch import nn

from avsr_lightning.decoding import search_weights
from avsr_lightning.decoding.fast_attention import _StepLinear


def test_row_major_copy_is_the_transpose_and_is_reused():
    w = torch.randn(300, 24)
    kn = search_weights.for_product(w)
    assert kn.shape == (24, 300) and kn.is_contiguous()
    assert torch.equal(kn, w.t())
    assert search_weights.for_product(w) is kn  # cached: no copy per search
    half = w.bfloat16()
    assert not search_weights.for_product(half).is_contiguous()  # bf16: the transposed view, no copy


@torch.no_grad()
def test_row_major_copy_follows_in_place_weight_updates():
    """A weight changed in place (an optimizer step, loading a checkpoint) must not be served stale."""
    lin = nn.Linear(16, 300)
    before = search_weights.for_product(lin.weight).clone()
    lin.weight.mul_(2.0)
    after = search_weights.for_product(lin.weight)
    assert torch.equal(after, lin.weight.t())
    assert not torch.equal(after, before)
    lin.weight.copy_(torch.randn(300, 16))
    assert torch.equal(search_weights.for_product(lin.weight), lin.weight.t())


@torch.no_grad()
def test_step_linear_equals_the_module():
    """The beam step's linears (fp32 row-major weight, bias or none; bf16 rows padded) compute ``nn.Linear``."""
    torch.manual_seed(0)
    x = torch.randn(40, 64)
    for lin in (nn.Linear(64, 512), nn.Linear(64, 512, bias=False)):
        assert search_weights.uses_row_major(lin)
        step = _StepLinear(lin, row_major=True)
        assert step.weight is not None
        torch.testing.assert_close(step(x), lin(x), rtol=1e-6, atol=1e-5)
        half = _StepLinear(lin.to(torch.bfloat16), row_major=True)  # bf16 keeps nn.Linear, rows padded
        assert half.weight is None and half.pad
        torch.testing.assert_close(half(x[:37]).float(), lin(x[:37].bfloat16()).float(), rtol=0, atol=0)
        lin.float()
    assert _StepLinear(nn.Linear(64, 512), row_major=False).weight is None  # fused=False: nn.Linear as stored
    assert not search_weights.uses_row_major(nn.Linear(64, 41))  # narrow output layers keep nn.Linear
    assert not search_weights.uses_row_major(torch.ao.nn.quantized.dynamic.Linear(64, 512))
