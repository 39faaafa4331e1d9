"""2-D convolution that runs as one GEMM (im2col) where the CPU's bf16 convolution kernels are slow.

The video trunk's last stage works on 3x3 maps (88-pixel crops: 44 -> 22 -> 11 -> 6 -> 3). There the
oneDNN bf16 convolution kernels reach only a fraction of the bf16 GEMM rate on an avx512_bf16 CPU
without AMX: for the default model's 512-channel 3x3 convolution of 300 frames, forward + backward take
~320 ms as a convolution and ~105 ms as the same arithmetic laid out as one matrix product (forward
alone 53 vs 23 ms; profiled in docs/models.md "Speed"). The layout costs a copy of the input with each
of the kernel's taps side by side (9x a tiny map), which is cheap exactly where the map is small.

So a :class:`SmallMapConv2d` computes itself as a GEMM when all of these hold, and is a plain
``nn.Conv2d`` otherwise:

- the computation is in bfloat16 (under autocast, or with bf16 weights) - in float32 the convolution
  kernels are as fast or faster, so default fp32 numerics are untouched;
- the tensor is on the CPU (CUDA's convolution libraries already pick GEMM-like algorithms);
- the output map has at most :attr:`SmallMapConv2d.gemm_max_positions` positions;
- the convolution has at least :attr:`SmallMapConv2d.gemm_min_channels` input channels: narrow ones gain
  nothing from the layout (the demo trunk's 32- and 64-channel stages on 3x3 and 2x2 maps ran slower that way);
- no groups, no dilation, zero padding, no bias (what the ResNet trunks use).

The parameters and state-dict keys are those of ``nn.Conv2d``: checkpoints load either way.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .precision import autocast_dtype

#: Output maps with at most this many positions run as a GEMM in bf16 on CPU. Stage 4's 3x3 maps (9) are
#: 2-3x faster that way; stage 3's 6x6 maps (36) break even, so they stay convolutions.
GEMM_MAX_POSITIONS = 9
#: ... and at least this many input channels. Measured on a 2-core AMX CPU at demo sizes (44-pixel crops,
#: widths 8-64): a bf16 video-only step 117 ms with the GEMM path on its 32/64-channel small maps, 112 ms as
#: convolutions (fp32: 110 ms). The default model's stage 4 (256-512 channels) keeps the GEMM path.
GEMM_MIN_CHANNELS = 128


def conv2d_as_gemm(x: Tensor, weight: Tensor, stride: tuple[int, int], padding: tuple[int, int]) -> Tensor:
    """``F.conv2d(x, weight, stride=stride, padding=padding)`` (no bias, groups or dilation) as one
    matrix product of the input's taps (N*H'*W', kh*kw*C) with the weight (kh*kw*C, O).

    The result is a (N, O, H', W') tensor in channels-last memory (the GEMM's natural output); autograd
    differentiates through the copies and the product.
    """
    n, c, h, w = x.shape
    out_channels, _, kh, kw = weight.shape
    sh, sw = stride
    ph, pw = padding
    ho = (h + 2 * ph - kh) // sh + 1
    wo = (w + 2 * pw - kw) // sw + 1
    padded = F.pad(x.permute(0, 2, 3, 1), (0, 0, pw, pw, ph, ph))  # (N, H+2ph, W+2pw, C)
    taps = torch.cat([padded[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw, :]
                      for i in range(kh) for j in range(kw)], dim=-1)  # (N, H', W', kh*kw*C)
    matrix = weight.permute(0, 2, 3, 1).reshape(out_channels, kh * kw * c)  # taps in the same order
    out = F.linear(taps.reshape(n * ho * wo, kh * kw * c), matrix)
    return out.view(n, ho, wo, out_channels).permute(0, 3, 1, 2)


class SmallMapConv2d(nn.Conv2d):
    """``nn.Conv2d`` that computes itself with :func:`conv2d_as_gemm` when that is faster (module doc)."""

    #: the largest output map (H' * W' positions) computed as a GEMM; 0 turns the GEMM path off
    gemm_max_positions: int = GEMM_MAX_POSITIONS
    #: the fewest input channels for which the GEMM path is taken
    gemm_min_channels: int = GEMM_MIN_CHANNELS

    def forward(self, x: Tensor) -> Tensor:
        if self._gemm_pays(x):
            return conv2d_as_gemm(x, self.weight, self.stride, self.padding)  # type: ignore[arg-type]
        return super().forward(x)

    def _gemm_pays(self, x: Tensor) -> bool:
        if (x.device.type != "cpu" or x.dim() != 4 or self.groups != 1 or self.bias is not None
                or self.dilation != (1, 1) or self.padding_mode != "zeros" or isinstance(self.padding, str)):
            return False
        dtype = autocast_dtype(x) or x.dtype
        if dtype != torch.bfloat16 or self.in_channels < self.gemm_min_channels:
            return False
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        ho = (x.shape[2] + 2 * ph - kh) // sh + 1
        wo = (x.shape[3] + 2 * pw - kw) // sw + 1
        return ho * wo <= self.gemm_max_positions
