"""The video stem's (1, 3, 3) max pool runs per frame as a channels-last 2-D pool: the same values and the
same gradients as the reference ``MaxPool3d``, ties included (padded reference frames are constant)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from avsr_lightning.models.frontends import _frames, _pool_frames


def _stem_pool() -> nn.MaxPool3d:
    return nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("shape", [(2, 8, 9, 44, 44), (2, 8, 5, 23, 17), (1, 3, 1, 6, 6)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_frame_pool_equals_the_3d_pool(shape, ties, channels_last):
    pool = _stem_pool()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=g)
    if ties:  # three values only: most windows hold their maximum more than once
        x = torch.randint(0, 3, shape, generator=g).float()
    x.requires_grad_(True)
    ref = pool(x).transpose(1, 2).flatten(0, 1)  # the reference's 3-D pool, then one frame per row
    out = _pool_frames(pool, x, channels_last)
    assert out.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    assert torch.equal(out, ref)
    grad = torch.randn(out.shape, generator=g)
    (g_ref,) = torch.autograd.grad(ref, x, grad)
    (g_out,) = torch.autograd.grad(out, x, grad)
    assert torch.equal(g_out, g_ref)


def test_a_pool_over_time_is_refused():
    pool = nn.MaxPool3d(kernel_size=(2, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
    with pytest.raises(ValueError, match="single frames"):
        _pool_frames(pool, torch.randn(1, 2, 4, 8, 8), False)


@pytest.mark.parametrize("channels_last_input", [False, True])
def test_frames_hand_the_stem_a_gradient_in_its_own_layout(channels_last_input):
    """The frame cut's backward returns the stem's gradient in the stem's layout, with the values
    autograd's permute-and-copy would give: the stem's Swish/BatchNorm backward kernels are several times
    slower on a channels-innermost gradient (docs/models.md, "Speed")."""
    g = torch.Generator().manual_seed(1)
    stem = torch.randn(2, 8, 5, 12, 10, generator=g)
    if channels_last_input:
        stem = stem.contiguous(memory_format=torch.channels_last_3d)
    stem.requires_grad_(True)
    seen = []
    hidden = stem * 1.0  # a non-leaf, as the stem's Swish output is: its gradient is used as it arrives
    hidden.register_hook(lambda grad: seen.append(grad))
    frames = _frames(hidden)
    assert frames.shape == (10, 8, 12, 10) and frames.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(frames, stem.transpose(1, 2).reshape(10, 8, 12, 10))
    grad = torch.randn(10, 12, 10, 8, generator=g).permute(0, 3, 1, 2)  # channels-last, as the pool's is
    frames.backward(grad)
    (arrived,) = seen
    layout = torch.channels_last_3d if channels_last_input else torch.contiguous_format
    assert arrived.is_contiguous(memory_format=layout)
    assert torch.equal(arrived, grad.reshape(2, 5, 8, 12, 10).transpose(1, 2))
