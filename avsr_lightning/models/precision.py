"""Mixed precision (``trainer.precision: bf16-mixed``): fp32 islands and the bf16 rule of the frontends.

Under ``torch.autocast`` the GEMM-heavy layers (linear, convolutions) run in bf16. Where bf16 would lose
accuracy the models leave autocast and compute in float32 (``with fp32_island(x): ... x.float()``): the
CTC and attention losses (log-softmax, reductions), the attention softmax and the relative-position
bias, BatchNorm statistics (masked ones included). Outside autocast every helper here is a no-op, so
default fp32 numerics are untouched (docs/models.md, "Speed").

Some bf16 kernels are slower than their fp32 counterparts on CPUs without AMX: convolutions with very
few channels (the video stem, whose input has one channel, and 2-D stages narrower than
:data:`BF16_MIN_CHANNELS`). Those layers stay in float32 under autocast; see :func:`bf16_allowed`. The
video stem runs in a faster frame-stacked form under autocast, in float32 except for inference on CPUs with
AMX (:func:`stacked_stem_dtype`).
"""
from __future__ import annotations

import functools

import torch
from torch import Tensor, nn

#: 2-D video-trunk stages narrower than this stay in float32 under autocast (profiled on an
#: avx512_bf16 CPU without AMX: 8-channel 3x3 convolutions are ~2x slower in bf16, 16 channels break
#: even, 32 and more are faster). The 1-D audio trunk is faster in bf16 at every shipped width.
BF16_MIN_CHANNELS = 32


def fp32_island(like: Tensor) -> torch.autocast:
    """Context manager that turns autocast off on ``like``'s device (cast the inputs with ``.float()``)."""
    return torch.autocast(device_type=like.device.type, enabled=False)


def autocast_dtype(like: Tensor) -> torch.dtype | None:
    """The autocast low-precision dtype active for ``like``'s device, or None outside autocast."""
    device = like.device.type
    if not torch.is_autocast_enabled(device):
        return None
    return torch.get_autocast_dtype(device)


def island_float(x: Tensor) -> Tensor:
    """``x`` in float32 when autocast is on for its device (entering an island), else unchanged: a model
    whose weights were cast to bf16 (no autocast) keeps computing in its own dtype."""
    return x.float() if torch.is_autocast_enabled(x.device.type) else x


@functools.cache
def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles (bf16 matrix units). There, bf16 convolutions with few input channels
    are fast, unlike on CPUs with AVX-512 bf16 only. Read through torch's private probe (the pinned torch
    has it); False if it is missing."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe()) if probe is not None else False


def stacked_stem_dtype(like: Tensor, channels: int, min_channels: int | None) -> torch.dtype | None:
    """The dtype of the frame-stacked video stem (``frontends._stem_stacked``) for ``like`` (the video), or
    None for the reference ``conv3d``, which float32 runs keep (their bits are the reference's). Under bf16
    autocast on CPU, where the answers are not the reference's bits anyway: in training float32 for a stem
    of ``channels`` >= ``min_channels`` (the trunk's rule, :func:`bf16_allowed`; the stem block
    forward+backward ~1.3x faster than ``conv3d`` and its frame-cut copies, same fp32 accuracy; in bf16 the
    backward through the stem's BatchNorm, Swish and pool moved the stem's weight gradient ~4x further from
    fp32), and the reference ``conv3d`` for a narrower stem (the stacked form's channels-last BatchNorm
    backward is several times slower at 8 channels: the demo video step 120 -> 112 ms with ``conv3d``);
    without autograd bf16 on CPUs with AMX (~3x faster forward there; the bf16 ``conv3d`` is slow
    everywhere), float32 elsewhere (docs/models.md "Speed"). ``channels``: the stem's width; ``min_channels``:
    the trunk's ``bf16_min_channels``."""
    if like.device.type != "cpu" or autocast_dtype(like) != torch.bfloat16:
        return None
    if torch.is_grad_enabled():
        return torch.float32 if bf16_allowed(channels, min_channels) else None
    return torch.bfloat16 if cpu_has_amx() else torch.float32


def bf16_allowed(channels: int, min_channels: int | None) -> bool:
    """The per-layer rule: a convolution stage of ``channels`` width runs in low precision under
    autocast only if ``channels >= min_channels`` (``None`` = always, like plain autocast)."""
    return min_channels is None or channels >= min_channels


def set_bf16_min_channels(model: nn.Module, min_channels: int | None) -> None:
    """Change the threshold of every 2-D trunk in ``model`` (``None``: plain autocast everywhere except
    the one-channel video stem, ``0`` behaves the same; a large value keeps the whole trunk fp32)."""
    if min_channels is not None and min_channels < 0:
        raise ValueError(f"min_channels must be None or >= 0, got {min_channels}")
    for module in model.modules():
        if hasattr(module, "bf16_min_channels"):
            module.bf16_min_channels = min_channels
