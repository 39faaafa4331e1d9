"""Opt-in: the video 2-D trunk runs its first stages channels-last (docs/models.md, "Speed"): a layout
change only, so outputs, gradients and BatchNorm statistics equal the plain NCHW trunk to fp32 round-off."""
from __future__ import annotations

import copy

import pytest
import torch

from avsr_lightning.models import ResNet2dTrunk, VideoFrontend


def _max_relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


@pytest.mark.parametrize("lengths", [None, (6, 3)])
def test_channels_last_frontend_equals_nchw(lengths):
    torch.manual_seed(0)
    plain = VideoFrontend(widths=(8, 8, 16, 16)).train()
    assert plain.trunk.channels_last_stages == 0  # off by default
    fast = copy.deepcopy(plain)
    fast.trunk.channels_last_stages = 3
    video = torch.randn(2, 6, 40, 40)
    lens = None if lengths is None else torch.tensor(lengths)
    v1, v2 = video.clone().requires_grad_(True), video.clone().requires_grad_(True)
    out_fast, out_plain = fast(v1, lens), plain(v2, lens)
    assert _max_relative(out_fast, out_plain) < 1e-5
    weights = torch.randn_like(out_fast)
    (out_fast * weights).sum().backward()
    (out_plain * weights).sum().backward()
    assert _max_relative(v1.grad, v2.grad) < 1e-5
    for (name, a), b in zip(fast.named_parameters(), plain.parameters()):
        assert _max_relative(a.grad, b.grad) < 1e-4, name
    for (name, a), b in zip(fast.named_buffers(), plain.buffers()):
        torch.testing.assert_close(a.float(), b.float(), rtol=1e-5, atol=1e-6, msg=name)


def test_channels_last_stages_really_change_the_layout():
    trunk = ResNet2dTrunk(widths=(8, 8, 16, 16), channels_last_stages=3).train()
    seen = []
    for i in range(1, 5):
        getattr(trunk, f"layer{i}")[0].conv1.register_forward_pre_hook(
            lambda m, inp: seen.append(inp[0].is_contiguous(memory_format=torch.channels_last)) and None)
    trunk(torch.randn(3, 8, 20, 20))
    assert seen == [True, True, True, False]
    with pytest.raises(ValueError, match="channels_last_stages"):
        ResNet2dTrunk(channels_last_stages=5)
