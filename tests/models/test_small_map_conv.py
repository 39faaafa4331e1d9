"""Convolutions on small maps as one GEMM (models/small_map_conv.py): the same function and gradients as
``F.conv2d``, taken only in bf16 on CPU on maps of at most ``gemm_max_positions`` positions."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from avsr_lightning.models import small_map_conv
from avsr_lightning.models.resnet import ResNet2dTrunk
from avsr_lightning.models.small_map_conv import SmallMapConv2d, conv2d_as_gemm


@pytest.mark.parametrize("kernel, stride, padding, size", [
    (3, 1, 1, 3), (3, 2, 1, 6), (3, 2, 1, 5), (1, 2, 0, 6), (3, 1, 0, 7), (5, 1, 2, 4)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_gemm_form_equals_the_convolution(kernel, stride, padding, size, channels_last):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 6, size, size + 1, generator=g, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(7, 6, kernel, kernel, generator=g, dtype=torch.float64)
    x.requires_grad_(True)
    w.requires_grad_(True)
    ref = F.conv2d(x, w, stride=stride, padding=padding)
    out = conv2d_as_gemm(x, w, (stride, stride), (padding, padding))
    assert out.shape == ref.shape and out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    grad = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    ref_grads = torch.autograd.grad(ref, (x, w), grad)
    out_grads = torch.autograd.grad(out, (x, w), grad)
    for a, b in zip(out_grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def _calls(monkeypatch) -> list:
    calls = []
    real = small_map_conv.conv2d_as_gemm

    def counting(*args):
        calls.append(args[0].shape)
        return real(*args)

    monkeypatch.setattr(small_map_conv, "conv2d_as_gemm", counting)
    return calls


def test_taken_in_bf16_on_small_maps_only(monkeypatch):
    calls = _calls(monkeypatch)
    monkeypatch.setattr(SmallMapConv2d, "gemm_min_channels", 0)  # the positions rule alone (channels: below)
    conv = SmallMapConv2d(16, 16, 3, 1, 1, bias=False)
    assert list(conv.state_dict()) == ["weight"]  # the nn.Conv2d checkpoint keys
    small, large = torch.randn(4, 16, 3, 3), torch.randn(4, 16, 6, 6)
    conv(small)  # fp32: the convolution kernel, default numerics untouched
    with torch.autocast("cpu", dtype=torch.bfloat16):
        conv(large)  # 36 positions > 9
        out = conv(small)
        with torch.autocast("cpu", enabled=False):
            conv(small)  # an fp32 island
    assert calls == [small.shape]
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), F.conv2d(small, conv.weight, padding=1), rtol=0.05, atol=0.05)
    conv.bfloat16()(small.bfloat16())  # bf16 weights, no autocast
    assert len(calls) == 2
    conv.gemm_max_positions = 0
    conv(small.bfloat16())
    assert len(calls) == 2


def test_narrow_convolutions_keep_the_convolution_kernel(monkeypatch):
    calls = _calls(monkeypatch)
    narrow, wide = SmallMapConv2d(64, 64, 3, 1, 1, bias=False), SmallMapConv2d(128, 64, 3, 1, 1, bias=False)
    assert SmallMapConv2d.gemm_min_channels == 128
    with torch.autocast("cpu", dtype=torch.bfloat16):
        narrow(torch.randn(2, 64, 3, 3))
        wide(torch.randn(2, 128, 3, 3))
    assert [s[1] for s in calls] == [128]


def test_the_trunk_takes_it_on_its_last_stage_under_bf16(monkeypatch):
    calls = _calls(monkeypatch)
    monkeypatch.setattr(SmallMapConv2d, "gemm_min_channels", 0)
    trunk = ResNet2dTrunk((32, 32, 32, 32)).train()
    frames = torch.randn(6, 32, 22, 22)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = trunk(frames)  # stages at 22, 11, 6, 3: only stage 4's three 3x3 and one 1x1 convolutions
    out.float().sum().backward()
    # block 1: conv1 (stride 2 from 6x6), conv2, the 1x1 stride-2 downsample; block 2: conv1, conv2
    assert [tuple(s[2:]) for s in calls] == [(6, 6), (3, 3), (6, 6), (3, 3), (3, 3)]
    with torch.no_grad():
        ref = trunk.eval()(frames)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = trunk(frames)
    assert float((low.float() - ref).abs().max() / ref.abs().max()) < 0.05
