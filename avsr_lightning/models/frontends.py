"""The two frontends: lip video -> (B, T, C) and raw 16 kHz waveform -> (B, T, C), both at 25 fps.

``VideoFrontend`` is the reference ``Conv3dResNet`` (spec §1.2): a 3-D conv stem over time, then a 2-D
ResNet-18 trunk applied to every frame. ``AudioFrontend`` is ``Conv1dResNet`` (spec §1.3): a 1-D
ResNet-18 whose total stride is 640 samples, i.e. one feature per video frame.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.utils import _triple

from .activations import Swish
from .masking import lengths_to_mask, masked_batch_norm
from .precision import BF16_MIN_CHANNELS, fp32_island, island_float, stacked_stem_dtype
from .resnet import DEFAULT_WIDTHS, ResNet1dTrunk, ResNet2dTrunk

#: Audio samples per video frame (16 kHz / 25 fps).
SAMPLES_PER_FRAME = 640


class _FramesChannelsLast(torch.autograd.Function):
    """(B, C, T, H, W) -> (B*T, C, H, W) frames in one channels-last copy, whose backward hands the stem a
    gradient in the stem's own layout.

    Autograd's backward of the permute-and-copy would return a permuted *view* of the frames' gradient
    (channels innermost), and the stem's Swish and BatchNorm backward kernels are 2-4x slower on such a
    gradient than on a contiguous one (profiled on CPU at default sizes: ~0.8 s vs ~0.4 s per step,
    docs/models.md "Speed"). Here the one copy back is made explicitly. The forward is the same copy.
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        b, c, t, h, w = x.shape
        ctx.shape = x.shape
        ctx.contiguous = x.is_contiguous()
        return x.permute(0, 2, 3, 4, 1).reshape(b * t, h, w, c).permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        b, c, t, h, w = ctx.shape
        grad = grad.permute(0, 2, 3, 1).reshape(b, t, h, w, c).permute(0, 4, 1, 2, 3)
        return grad.contiguous() if ctx.contiguous else grad


def _frames(x: Tensor) -> Tensor:
    """(B, C, T, H, W) -> (B*T, C, H, W) frames in one channels-last copy (:class:`_FramesChannelsLast`)."""
    return _FramesChannelsLast.apply(x)


def _stem_stacked(conv: nn.Conv3d, video: Tensor, dtype: torch.dtype) -> Tensor:
    """The stem's 3-D convolution as one 2-D convolution per frame whose input channels are the frame and
    its temporal neighbours (the kernel's taps), in ``dtype``: (B, T, H, W) -> (B, C, T, H', W').

    Used under bf16 autocast on CPU (:func:`~avsr_lightning.models.precision.stacked_stem_dtype`): in fp32 it
    is ~1.3-1.4x faster than ``conv3d`` with its frame cut (forward, and forward+backward in training); for
    inference on CPUs with AMX its bf16 kernel runs ~3x faster forward than the fp32 ``conv3d``. Either way
    the output comes out channels-last, so the frame cut of :func:`_frames` is a view instead of a copy.
    The same sums as ``conv3d`` (zero temporal padding included), in another order.
    """
    kt, pt = conv.kernel_size[0], conv.padding[0]
    if (conv.in_channels != 1 or conv.stride[0] != 1 or kt != 2 * pt + 1 or conv.groups != 1
            or conv.dilation != (1, 1, 1) or conv.bias is not None):
        raise ValueError(f"the frame-stacked stem needs one input channel, temporal stride 1, 'same' temporal "
                         f"padding, no dilation, groups or bias; got {conv}")
    b, t, h, w = video.shape
    padded = F.pad(video.to(dtype), (0, 0, 0, 0, pt, pt))  # (B, T + 2 pt, H, W)
    taps = padded.unfold(1, kt, 1).reshape(b * t, h, w, kt).permute(0, 3, 1, 2)  # channels-last frames
    weight = conv.weight[:, 0].to(dtype).contiguous(memory_format=torch.channels_last)
    out = F.conv2d(taps, weight, None, conv.stride[1:], conv.padding[1:])  # (B*T, C, H', W') channels-last
    c, ho, wo = out.shape[1:]
    return out.permute(0, 2, 3, 1).reshape(b, t, ho, wo, c).permute(0, 4, 1, 2, 3)  # channels_last_3d


def _stem_conv(conv: nn.Conv3d, x: Tensor, stacked: torch.dtype | None) -> Tensor:
    """(B, 1, T, H, W) -> (B, C, T, H', W'): the reference ``conv3d``, or its frame-stacked form in ``stacked``
    (the dtype :func:`~avsr_lightning.models.precision.stacked_stem_dtype` chose)."""
    return conv(x) if stacked is None else _stem_stacked(conv, x[:, 0], stacked)


def _pool_frames(pool: nn.MaxPool3d, x: Tensor, channels_last: bool) -> Tensor:
    """The stem's (1, 3, 3) max pool applied per frame: (B, C, T, H, W) -> (B*T, C, H', W') frames.

    The frames are cut from ``x`` in one copy, laid out channels-last, and pooled by the 2-D kernel in that
    layout: the same maxima and the same arg-max, ties included (hence the same gradients), as ``MaxPool3d``.
    On CPU the channels-last kernel is 10-15x faster forward (1.7-2.6x forward+backward) than the
    ``max_pool3d`` and channels-first ``max_pool2d`` kernels (docs/models.md, "Speed"). The
    result is in channels-last if ``channels_last`` (the trunk's first stage wants it), else channels-first.
    """
    return _pool_channels_last(pool, _frames(x), channels_last)


def _pool_channels_last(pool: nn.MaxPool3d, frames: Tensor, channels_last: bool) -> Tensor:
    """:func:`_pool_frames` on frames already cut: (N, C, H, W) channels-last -> pooled (N, C, H', W')."""
    kernel, stride, padding, dilation = (_triple(v) for v in (pool.kernel_size, pool.stride, pool.padding,
                                                                pool.dilation))
    if kernel[0] != 1 or stride[0] != 1 or padding[0] != 0 or pool.return_indices:
        raise ValueError(f"the video stem pool must act on single frames (kernel/stride (1, h, w), no temporal "
                         f"padding, no indices), got kernel {kernel}, stride {stride}, padding {padding}")
    out = F.max_pool2d(frames.contiguous(memory_format=torch.channels_last), kernel[1:], stride[1:], padding[1:],
                       dilation=dilation[1:], ceil_mode=pool.ceil_mode)
    return out.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


class VideoFrontend(nn.Module):
    """(B, T, H, W) grey frames -> (B, T, widths[-1]).

    Args:
        widths: channels of the four ResNet stages; the stem has ``widths[0]`` channels and the output
            dimension is ``widths[-1]`` (reference: 64, 128, 256, 512).
    """

    def __init__(self, widths: Sequence[int] = DEFAULT_WIDTHS, bf16_min_channels: int | None = BF16_MIN_CHANNELS) -> None:
        super().__init__()
        stem = int(widths[0])
        self.trunk = ResNet2dTrunk(widths, bf16_min_channels=bf16_min_channels)  # registered first (state dict)
        self.frontend3D = nn.Sequential(
            nn.Conv3d(1, stem, kernel_size=(5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3), bias=False),
            nn.BatchNorm3d(stem),
            Swish(),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        )
        self.out_dim = self.trunk.out_dim

    def forward(self, video: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``lengths`` (B,) frames: only given by the ``mask_padding`` fix (zeroes padded frames before the
        temporal conv and keeps them out of BatchNorm statistics).

        The 3-D stem runs in float32, also under autocast: its input has one channel, and bf16 convolutions
        with so few input channels are several times slower than fp32 on CPUs without AMX (profiled,
        docs/models.md "Speed"). Under bf16 autocast on CPU it runs in its frame-stacked form
        (:func:`_stem_stacked`): in float32 in training (a stem narrower than the trunk's
        ``bf16_min_channels`` keeps ``conv3d``), or in bf16 for inference on CPUs with AMX.
        The trunk applies its own per-stage rule (``bf16_min_channels``).
        """
        b, t = video.shape[:2]
        conv, bn, act, pool = self.frontend3D
        channels_last = self.trunk.channels_last_stages > 0
        stacked = stacked_stem_dtype(video, conv.out_channels, self.trunk.bf16_min_channels)
        x = island_float(video.unsqueeze(1))  # (B, 1, T, H, W); fp32 under autocast
        if lengths is None:  # frames for the per-frame 2-D trunk (a bf16 stem output stays bf16 in the island)
            with fp32_island(x):
                x = _pool_frames(pool, act(masked_batch_norm(bn, _stem_conv(conv, x, stacked), None)), channels_last)
            return self.trunk(x).view(b, t, -1)
        # mask_padding: after the temporal conv, frames are independent (BatchNorm, Swish, the (1, 3, 3)
        # pool and the 2-D trunk), so running them on the valid frames only gives the same valid outputs
        # and the same (valid-only) BatchNorm statistics as masking, with the native BatchNorm kernel and
        # no compute spent on padding. Padded frames come out as zeros. The index needs one host sync per
        # forward; this is the opt-in path only.
        valid = lengths_to_mask(lengths, t)
        index = valid.reshape(b * t).nonzero().squeeze(1)
        out = video.new_zeros(b * t, self.out_dim)
        if index.numel() == 0:  # an all-empty batch: nothing to normalise
            return out.view(b, t, -1)
        with fp32_island(x):
            x = _stem_conv(conv, x * valid.view(b, 1, t, 1, 1).to(x.dtype), stacked)  # (B, C, T, H', W')
            # valid frames only, gathered channels-last in one copy: (N, H', W', C) -> (N, C, 1, H', W') view
            frames = x.permute(0, 2, 3, 4, 1)[valid].permute(0, 3, 1, 2).unsqueeze(2)
            frames = _pool_channels_last(pool, act(bn(frames)).squeeze(2), channels_last)
        feats = self.trunk(frames)
        out = out.to(feats.dtype).index_copy(0, index, feats)
        return out.view(b, t, -1)


class AudioFrontend(nn.Module):
    """(B, N) waveform -> (B, N // 640, widths[-1]).

    The waveform is first cut to a whole number of frames (reference rule, spec §1.3). Callers align
    the result with the video length using :func:`~avsr_lightning.models.masking.match_length`.
    """

    def __init__(self, widths: Sequence[int] = DEFAULT_WIDTHS, upsample_ratio: int = 1, stem_stride: int = 4) -> None:
        super().__init__()
        self.trunk = ResNet1dTrunk(widths, upsample_ratio=upsample_ratio, stem_stride=stem_stride)
        self.out_dim = self.trunk.out_dim

    def forward(self, audio: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``lengths`` (B,) samples: only given by the ``mask_padding`` fix. Each utterance is then
        processed as if alone: cut to whole frames, padded samples zeroed at every conv input."""
        if audio.dim() == 3:  # reference layout (B, N, 1)
            audio = audio.squeeze(-1)
        n = audio.size(1) // SAMPLES_PER_FRAME * SAMPLES_PER_FRAME
        x = audio[:, :n].unsqueeze(1)
        masks = None
        if lengths is not None:
            whole = torch.div(lengths, SAMPLES_PER_FRAME, rounding_mode="floor") * SAMPLES_PER_FRAME
            x = x * lengths_to_mask(whole, n).unsqueeze(1).to(x.dtype)
            masks = [lengths_to_mask(torch.div(whole, s, rounding_mode="floor"), n // s).unsqueeze(1)
                     for s in self.trunk.stage_strides]
        return self.trunk(x, masks).transpose(1, 2)
