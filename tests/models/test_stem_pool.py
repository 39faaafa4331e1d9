"""The video stem's (1, 3, 3) max pool runs as a 2-D pool over planes: same values, same gradients."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from avsr_lightning.models.frontends import _pool_planes


@pytest.mark.parametrize("shape", [(2, 8, 9, 44, 44), (2, 8, 5, 23, 17), (11, 8, 22, 22)])
def test_plane_pool_equals_the_3d_pool(shape):
    pool = nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=g).requires_grad_(True)
    x5 = x if x.dim() == 5 else x.unsqueeze(2)  # (N, C, H, W) frames: the 3-D pool sees T = 1
    ref = pool(x5)
    ref = ref if x.dim() == 5 else ref.squeeze(2)
    out = _pool_planes(pool, x)
    assert torch.equal(out, ref)
    grad = torch.randn(out.shape, generator=g)
    (g_ref,) = torch.autograd.grad(ref, x, grad, retain_graph=True)
    (g_out,) = torch.autograd.grad(out, x, grad)
    assert torch.equal(g_out, g_ref)


def test_a_pool_over_time_keeps_the_3d_kernel():
    pool = nn.MaxPool3d(kernel_size=(2, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
    x = torch.randn(1, 2, 4, 8, 8)
    assert torch.equal(_pool_planes(pool, x), pool(x))
