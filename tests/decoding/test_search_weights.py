"""The search's few-row products (oneDNN or row-major MKL): the same products as ``nn.Linear``, refreshed when a weight changes."""
from __future__ import annotations

import torch
from torch import nn

from avsr_lightning.decoding import search_weights
from avsr_lightning.decoding.fast_attention import _StepLinear


@torch.no_grad()
def test_matrix_computes_the_linear_product_by_either_route_and_is_reused(monkeypatch):
    torch.manual_seed(0)
    w, b, x = torch.randn(300, 24), torch.randn(300), torch.randn(40, 24)
    want = x @ w.t() + b
    m = search_weights.for_product(w)
    assert search_weights.for_product(w) is m  # cached: built once per weight, not per search
    assert m.onednn is search_weights.ONEDNN_FP32  # float32 on CPU takes oneDNN's kernel where available
    torch.testing.assert_close(m.mm(x, b), want, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(m.acc(b.expand(40, 300).clone(), x), want, rtol=1e-6, atol=1e-5)
    monkeypatch.setattr(search_weights, "ONEDNN_FP32", False)  # MKL's route: a row-major (in, out) copy
    mkl = search_weights.Matrix(w)
    assert not mkl.onednn and mkl.kn.shape == (24, 300) and mkl.kn.is_contiguous() and torch.equal(mkl.kn, w.t())
    assert torch.equal(mkl.mm(x, b), torch.addmm(b, x, mkl.kn))
    assert torch.equal(mkl.acc(b.expand(40, 300).clone(), x), torch.addmm(b.expand(40, 300), x, mkl.kn))
    half = search_weights.Matrix(w.bfloat16())  # bf16: the transposed view, no copy
    assert not half.onednn and not half.kn.is_contiguous() and half.dtype == torch.bfloat16


def test_matrix_under_autograd_takes_the_differentiable_route():
    w = torch.randn(300, 24)
    x = torch.randn(5, 24, requires_grad=True)
    search_weights.Matrix(w).mm(x).sum().backward()  # oneDNN's linear op has no derivative: skipped here
    # d/dx of sum(x @ w.T) is the column sum of w: 300 fp32 terms, summed by the GEMM's backward in its own
    # order (MKL and oneDNN differ by ~1e-5 on it), so the reference is fp64 and the tolerance fp32 accumulation
    torch.testing.assert_close(x.grad.double(), w.double().sum(0).expand(5, 24), rtol=0, atol=1e-4)


@torch.no_grad()
def test_matrix_follows_in_place_weight_updates():
    """A weight changed in place (an optimizer step, loading a checkpoint) must not be served stale."""
    lin = nn.Linear(16, 300)
    x = torch.randn(7, 16)
    before = search_weights.for_product(lin.weight).mm(x).clone()
    lin.weight.mul_(2.0)
    after = search_weights.for_product(lin.weight).mm(x)
    torch.testing.assert_close(after, x @ lin.weight.t(), rtol=1e-6, atol=1e-5)
    assert not torch.allclose(after, before)
    lin.weight.copy_(torch.randn(300, 16))
    torch.testing.assert_close(search_weights.for_product(lin.weight).mm(x), x @ lin.weight.t(), rtol=1e-6, atol=1e-5)


@torch.no_grad()
def test_step_linear_equals_the_module():
    """The beam step's linears (fp32 search product, bias or none; bf16 rows padded) compute ``nn.Linear``."""
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
