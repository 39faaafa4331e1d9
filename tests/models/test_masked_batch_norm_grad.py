"""The fused masked BatchNorm (``mask_padding``'s training statistics): its hand-written backward is the
derivative of its forward (gradcheck in float64), and it matches BatchNorm run on the valid positions alone,
gradients included, for inputs the frontends and the Conformer conv module give it (1-D, 2-D, transposed)."""
from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from avsr_lightning.models.masking import _MaskedBatchNormTrain, lengths_to_mask, masked_batch_norm


def _case(shape: tuple[int, ...], dtype=torch.float64, transposed: bool = False):
    g = torch.Generator().manual_seed(len(shape) * 10 + transposed)
    if transposed:  # (B, C, T) as a transposed view of (B, T, C): the Conformer conv module's layout
        x = torch.randn(shape[0], shape[2], shape[1], generator=g, dtype=dtype).transpose(1, 2)
    else:
        x = torch.randn(*shape, generator=g, dtype=dtype)
    x = (x * 3 + 5).requires_grad_(True)  # |mean| >> std: where a one-pass variance would lose digits
    valid = (torch.rand(shape[0], 1, *shape[2:], generator=g) > 0.3)
    valid.view(shape[0], -1)[:, 0] = True  # every row has a valid position
    return x, valid


@pytest.mark.parametrize("shape,transposed", [((3, 4, 7), False), ((3, 4, 5, 6), False), ((3, 4, 7), True)])
def test_backward_is_the_derivative_of_forward(shape, transposed):
    x, valid = _case(shape, transposed=transposed)
    c = shape[1]
    weight = torch.rand(c, dtype=torch.float64).add_(0.5).requires_grad_(True)
    bias = torch.randn(c, dtype=torch.float64).requires_grad_(True)
    vm = valid.to(torch.float64)
    assert torch.autograd.gradcheck(lambda a, w, b: _MaskedBatchNormTrain.apply(a, vm, w, b, 1e-5)[0],
                                    (x, weight, bias))
    assert torch.autograd.gradcheck(lambda a: _MaskedBatchNormTrain.apply(a, vm, None, None, 1e-5)[0], (x,))


@pytest.mark.parametrize("shape,transposed", [((4, 6, 50), False), ((3, 5, 6, 7), False), ((4, 6, 50), True)])
def test_equals_batchnorm_of_the_valid_positions(shape, transposed):
    """Valid outputs, running statistics and every gradient equal a native BatchNorm that only sees the
    valid positions (gathered into one row), with a loss that also reads the padded outputs (they use the
    same statistics, so their gradient flows into the statistics too)."""
    x, valid = _case(shape, dtype=torch.float32, transposed=transposed)
    c = shape[1]
    bn = torch.nn.BatchNorm1d(c) if len(shape) == 3 else torch.nn.BatchNorm2d(c)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2.0)
        bn.bias.uniform_(-1.0, 1.0)
    ref = type(bn)(c)
    ref.load_state_dict(bn.state_dict())
    grad_out = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))

    y = masked_batch_norm(bn.train(), x, valid)
    (y * grad_out).sum().backward()
    got = (x.grad.clone(), bn.weight.grad.clone(), bn.bias.grad.clone())
    x.grad = None

    # reference: statistics from the valid positions only, then the affine map applied everywhere
    keep = valid.expand(shape[0], 1, *shape[2:]).squeeze(1)  # (N, ...)
    xs = x.movedim(1, -1)  # (N, ..., C)
    vals = xs[keep]  # (n_valid, C)
    stats_src = vals.t().unsqueeze(0)  # (1, C, n_valid)
    F.batch_norm(stats_src, ref.running_mean, ref.running_var, training=True, momentum=0.1, eps=ref.eps)
    mean = vals.mean(0)
    var = vals.var(0, unbiased=False)
    y_ref = ((xs - mean) * torch.rsqrt(var + ref.eps) * ref.weight + ref.bias).movedim(-1, 1)
    (y_ref * grad_out).sum().backward()

    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(bn.running_mean, ref.running_mean)
    torch.testing.assert_close(bn.running_var, ref.running_var)
    assert int(bn.num_batches_tracked) == 1
    for a, b in zip(got, (x.grad, ref.weight.grad, ref.bias.grad)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_eval_mode_and_no_mask_are_plain_batchnorm():
    bn = torch.nn.BatchNorm1d(3)
    x = torch.randn(2, 3, 8)
    valid = lengths_to_mask(torch.tensor([8, 3]), 8).unsqueeze(1)
    torch.testing.assert_close(masked_batch_norm(bn.eval(), x, valid), bn(x))
    torch.testing.assert_close(masked_batch_norm(bn.train(), x, None), F.batch_norm(
        x, None, None, bn.weight, bn.bias, training=True, eps=bn.eps))
