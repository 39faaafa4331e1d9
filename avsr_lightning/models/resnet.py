"""ResNet-18 style trunks of the two frontends: 2-D per video frame, 1-D on the raw waveform.

Module and attribute names (``layer1.0.conv1``, ``downsample.0`` ...) reproduce the reference state-dict
keys (spec §1.2-1.3, Appendix A). All convolutions are bias-free, every activation is Swish.

Each block takes an optional ``valid`` mask (broadcastable to its input, 1 = valid position). It is only
passed when the ``mask_padding`` fix is on: padded positions are then zeroed before every convolution
and excluded from BatchNorm training statistics, so a padded utterance gives exactly the features it
would give alone. With ``valid=None`` the blocks compute what the reference computes.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from .activations import Swish
from .masking import masked_batch_norm
from .precision import BF16_MIN_CHANNELS, autocast_dtype, bf16_allowed, fp32_island, island_float
from .small_map_conv import SmallMapConv2d

DEFAULT_WIDTHS: tuple[int, int, int, int] = (64, 128, 256, 512)


def _zero_padding(x: Tensor, valid: Tensor | None) -> Tensor:
    return x if valid is None else x * valid.to(x.dtype)


class _BasicBlock(nn.Module):
    """conv-BN-Swish-conv-BN + residual (1x1 conv + BN when the shape changes), then Swish."""

    def __init__(self, conv: type, bn: type, kernel: int, inplanes: int, planes: int, stride: int) -> None:
        super().__init__()
        pad = kernel // 2
        self.conv1 = conv(inplanes, planes, kernel, stride, pad, bias=False)
        self.bn1 = bn(planes)
        self.relu1 = Swish()
        self.conv2 = conv(planes, planes, kernel, 1, pad, bias=False)
        self.bn2 = bn(planes)
        self.relu2 = Swish()
        self.downsample: nn.Sequential | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(conv(inplanes, planes, 1, stride, bias=False), bn(planes))
        self.stride = stride

    def forward(self, x: Tensor, valid_in: Tensor | None = None, valid_out: Tensor | None = None) -> Tensor:
        """``valid_in``/``valid_out``: masks at the input and output resolution (None = reference)."""
        x = _zero_padding(x, valid_in)
        out = self.relu1(masked_batch_norm(self.bn1, self.conv1(x), valid_out))
        out = _zero_padding(out, valid_out)
        out = masked_batch_norm(self.bn2, self.conv2(out), valid_out)
        if self.downsample is not None:
            residual = masked_batch_norm(self.downsample[1], self.downsample[0](x), valid_out)
        else:
            residual = x
        return self.relu2(out + residual)


class BasicBlock2d(_BasicBlock):
    """3x3 2-D basic block (video trunk); its convolutions on small maps run as GEMMs in bf16 on CPU
    (:mod:`.small_map_conv`)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__(SmallMapConv2d, nn.BatchNorm2d, 3, inplanes, planes, stride)


class BasicBlock1d(_BasicBlock):
    """k=3 1-D basic block (audio trunk)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__(nn.Conv1d, nn.BatchNorm1d, 3, inplanes, planes, stride)


def _make_layer(block: type, inplanes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    layers = [block(inplanes, planes, stride)] + [block(planes, planes, 1) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def _check_widths(widths: Sequence[int]) -> tuple[int, int, int, int]:
    widths = tuple(int(w) for w in widths)
    if len(widths) != 4 or min(widths) <= 0:
        raise ValueError(f"frontend widths must be 4 positive ints (one per ResNet stage), got {widths}")
    return widths  # type: ignore[return-value]


class ResNet2dTrunk(nn.Module):
    """Four stages of 2-D basic blocks ([2,2,2,2], strides 1,2,2,2) and a global average pool."""

    def __init__(self, widths: Sequence[int] = DEFAULT_WIDTHS, blocks: Sequence[int] = (2, 2, 2, 2),
                 bf16_min_channels: int | None = BF16_MIN_CHANNELS, channels_last_stages: int = 0) -> None:
        super().__init__()
        w = _check_widths(widths)
        if not 0 <= channels_last_stages <= 4:
            raise ValueError(f"channels_last_stages must be in 0..4 (leading stages in channels-last), "
                             f"got {channels_last_stages}")
        self.widths = w
        #: opt-in: the first stages run in channels-last memory format (same function up to fp32 round-off;
        #: faster CPU kernels on the 22x22 / 11x11 / 6x6 maps, slower on stage 4's 3x3; docs/models.md "Speed")
        self.channels_last_stages = channels_last_stages
        #: under autocast, stages narrower than this run in float32 (docs/models.md "Speed"); None = all bf16
        self.bf16_min_channels = bf16_min_channels
        self.layer1 = _make_layer(BasicBlock2d, w[0], w[0], blocks[0], 1)
        self.layer2 = _make_layer(BasicBlock2d, w[0], w[1], blocks[1], 2)
        self.layer3 = _make_layer(BasicBlock2d, w[1], w[2], blocks[2], 2)
        self.layer4 = _make_layer(BasicBlock2d, w[2], w[3], blocks[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.out_dim = w[3]

    def forward(self, x: Tensor, valid: Tensor | None = None) -> Tensor:
        """(N, C0, H, W) frames -> (N, C). ``valid``: (N, 1, 1, 1), only for BatchNorm statistics.

        Under autocast each stage is decided by its width (:func:`~.precision.bf16_allowed`): a wide
        stage runs in the autocast dtype (its input cast once, so residual adds stay low precision), a
        narrow one in a float32 island. Outside autocast this is the plain fp32 forward.
        """
        low = autocast_dtype(x)
        layers = (self.layer1, self.layer2, self.layer3, self.layer4)
        for stage, (width, layer) in enumerate(zip(self.widths, layers)):
            x = x.contiguous(memory_format=torch.channels_last if stage < self.channels_last_stages
                             else torch.contiguous_format)  # a no-op when already in that layout
            if low is None or bf16_allowed(width, self.bf16_min_channels):
                x = x if low is None else x.to(low)
                for block in layer:
                    x = block(x, None, valid)
            else:
                with fp32_island(x):
                    x = x.float()
                    for block in layer:
                        x = block(x, None, valid)
        return self.avgpool(x).flatten(1)


class ResNet1dTrunk(nn.Module):
    """Raw-waveform ResNet-18: conv k80/s4, four 1-D stages, AvgPool1d(20) -> one vector per 640 samples.

    ``stem_stride`` (opt-in, default 4 = reference) is the stride of the k80 stem. The reference's 0.25 ms
    hop gives the four stages 10,560 positions per second of audio at 8-64 channels: on a CPU those tiny
    convolutions and their BatchNorms are memory-bound, and at the demo sizes they are a third of an AV
    step. A stride of 16 or 20 (1-1.25 ms hop, still ten times finer than a 10 ms filterbank) divides that
    work by 4-5 and the final pool shrinks by the same factor, so the output is still one vector per
    640 samples (docs/models.md, "Speed", "coarser audio stem").
    """

    #: down-sampling of the stem output and of each stage output relative to the stem's input stride
    STAGE_FACTORS = (1, 1, 2, 4, 8)

    def __init__(self, widths: Sequence[int] = DEFAULT_WIDTHS, blocks: Sequence[int] = (2, 2, 2, 2),
                 upsample_ratio: int = 1, stem_stride: int = 4) -> None:
        super().__init__()
        w = _check_widths(widths)
        span = 640 // upsample_ratio  # samples per output vector
        down = self.STAGE_FACTORS[-1]  # the stages' own down-sampling
        # stride >= 4: the k80/p38 stem then gives exactly n / stride positions for n a multiple of the span
        if (isinstance(stem_stride, bool) or not isinstance(stem_stride, int) or stem_stride < 4
                or span % (down * stem_stride) or 640 % upsample_ratio):
            allowed = [s for s in range(4, span // down + 1) if span % (down * s) == 0]
            raise ValueError(f"stem_stride={stem_stride!r}: the stem stride times the stages' {down} must divide "
                             f"the {span} samples of one output vector; use one of {allowed} (4 = reference)")
        #: total down-sampling of the stem output and of each stage output relative to the waveform
        self.stage_strides = tuple(stem_stride * f for f in self.STAGE_FACTORS)
        self.conv1 = nn.Conv1d(1, w[0], kernel_size=80, stride=stem_stride, padding=38, bias=False)
        self.bn1 = nn.BatchNorm1d(w[0])
        self.relu = Swish()
        self.layer1 = _make_layer(BasicBlock1d, w[0], w[0], blocks[0], 1)
        self.layer2 = _make_layer(BasicBlock1d, w[0], w[1], blocks[1], 2)
        self.layer3 = _make_layer(BasicBlock1d, w[1], w[2], blocks[2], 2)
        self.layer4 = _make_layer(BasicBlock1d, w[2], w[3], blocks[3], 2)
        pool = span // (down * stem_stride)
        self.avgpool = nn.AvgPool1d(kernel_size=pool, stride=pool)
        self.out_dim = w[3]

    def forward(self, x: Tensor, valid_masks: Sequence[Tensor] | None = None) -> Tensor:
        """(B, 1, N) waveform -> (B, C, N/640). ``conv1`` (one input channel) runs in float32 also under
        autocast: bf16 kernels with a single input channel are slower than fp32 on CPUs without AMX.

        ``valid_masks``: five (B, 1, L) masks at strides 4, 4, 8, 16, 32 (conv1 output and the four stages),
        or None for the reference behaviour.
        """
        v = valid_masks if valid_masks is not None else [None] * 5
        x = island_float(x)
        with fp32_island(x):  # one input channel: fp32 also under autocast (as the video stem)
            x = self.relu(masked_batch_norm(self.bn1, self.conv1(x), v[0]))
        stage_in = v[0]
        for layer, stage_out in zip((self.layer1, self.layer2, self.layer3, self.layer4), v[1:]):
            for i, block in enumerate(layer):
                x = block(x, stage_in if i == 0 else stage_out, stage_out)
            stage_in = stage_out
        x = _zero_padding(x, stage_in)
        return self.avgpool(x)
