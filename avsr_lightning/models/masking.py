"""Length <-> mask helpers and the padding-aware BatchNorm used by the ``mask_padding`` fix.

Masks are boolean with True = valid frame, as in the reference (``make_non_pad_mask``). Everything here
is built with tensor ops only (no Python loop over the batch, no host-device sync).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .precision import fp32_island


def lengths_to_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(B,) lengths -> (B, max_len) bool, True for positions < length."""
    positions = torch.arange(max_len, device=lengths.device)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)


def match_length(x: Tensor, length: int) -> Tensor:
    """Trim or zero-pad (B, T', C) along time to exactly ``length`` frames (spec §1.3 alignment rule)."""
    t = x.size(1)
    if t > length:
        return x[:, :length]
    if t < length:
        return F.pad(x, (0, 0, 0, length - t))
    return x


def masked_batch_norm(bn: nn.modules.batchnorm._BatchNorm, x: Tensor, valid: Tensor | None) -> Tensor:
    """BatchNorm whose training statistics ignore padded positions.

    ``x`` is (N, C, ...); ``valid`` is broadcastable to ``x`` with a singleton channel dim (1 = valid) or
    None. In eval mode (or with ``valid=None``) this is exactly ``bn(x)``: running statistics are
    per-position, so padding cannot leak. In training mode the batch mean/variance and the running-stat
    update use only valid positions, which is what the reference gets wrong (spec §8.13).

    Under autocast (a bf16/fp16 ``x``): the masked statistics are computed in a float32 island and the
    result is returned in ``x``'s dtype. Without a mask, PyTorch's native BatchNorm already takes a
    low-precision input with float32 parameters and accumulates the statistics and running buffers in
    float32 (checked by tests/models/test_bf16.py), so it runs as is and saves two casts of the
    activation. A float32 ``x`` takes the plain path unchanged.
    """
    if (valid is not None and x.dtype in (torch.bfloat16, torch.float16)
            and torch.is_autocast_enabled(x.device.type)):
        with fp32_island(x):
            return masked_batch_norm(bn, x.float(), valid).to(x.dtype)
    if valid is None or not bn.training or not bn.track_running_stats:
        return bn(x)
    out_dtype = x.dtype
    x = x.float()  # statistics in float32 even under autocast, as BatchNorm does
    dims = [0] + list(range(2, x.dim()))
    weight_map = valid.to(x.dtype).expand(x.size(0), 1, *x.shape[2:])
    group = _sync_group(bn)
    if group is None:
        weight = bn.weight.float() if bn.affine else None
        bias = bn.bias.float() if bn.affine else None
        y, mean, var, count = _MaskedBatchNormTrain.apply(x, weight_map, weight, bias, bn.eps)
    else:  # sync_batchnorm: statistics over the valid positions of every rank (docs/training.md)
        count, mean, centred, var = _synced_stats(x, weight_map, dims, group)
        y = centred * torch.rsqrt(var + bn.eps)
        if bn.affine:
            shape = [1, -1] + [1] * (x.dim() - 2)
            y = y * bn.weight.view(shape).float() + bn.bias.view(shape).float()
    with torch.no_grad():
        bn.num_batches_tracked.add_(1)
        momentum = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
        unbiased = var.flatten() * count / (count - 1).clamp_min(1.0)
        bn.running_mean.mul_(1 - momentum).add_(mean.flatten(), alpha=momentum)
        bn.running_var.mul_(1 - momentum).add_(unbiased, alpha=momentum)
    return y.to(out_dtype)


class _MaskedBatchNormTrain(torch.autograd.Function):
    """Training-mode BatchNorm with statistics over the valid positions: three elementwise passes forward
    and three backward, where the composite formula took about ten each way (most of the ``mask_padding``
    overhead of the raw-waveform frontend, docs/models.md "Speed").

    ``forward(x (N, C, ...), valid_map (N, 1, ...) 0/1, weight, bias, eps)`` -> ``(y, mean, var, count)``:
    ``y`` over every position, ``mean``/``var`` (C,) the biased valid-position statistics, ``count`` the
    number of valid positions. The masked channel sums are batched matrix-vector products with the mask
    (``bmm``, no ``x * mask`` tensor) and only ``x - mean`` is kept for backward; the variance is
    two-pass, as in the plain formula.

    Backward, with ``s = rsqrt(var + eps)``, ``scale = weight * s``, ``G = sum(g)`` and ``H = sum(g * xhat)``
    over *all* positions (every output uses the statistics), ``n`` valid positions:
    ``dx = scale * g - valid * scale / n * (G + H * xhat)``, ``dweight = H``, ``dbias = G``.
    """

    @staticmethod
    def forward(ctx, x: Tensor, valid_map: Tensor, weight: Tensor | None, bias: Tensor | None,
                eps: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        n, c = x.shape[:2]
        x3 = x.reshape(n, c, -1).contiguous()  # a transposed input (the Conformer conv module) is copied once
        m3 = valid_map.reshape(n, -1, 1).to(x.dtype)  # (N, L, 1)
        count = m3.sum().clamp_min(1.0)
        mean = torch.bmm(x3, m3).sum(0).view(1, c, 1) / count
        centred = x3 - mean  # two-pass variance: no cancellation when |mean| >> std
        var = torch.bmm(centred.square(), m3).sum(0).view(c) / count
        invstd = torch.rsqrt(var + eps)
        scale = invstd if weight is None else invstd * weight
        if bias is None:
            y = (centred * scale.view(1, c, 1)).view(x.shape)
        else:
            y = torch.addcmul(bias.view(1, c, 1), centred, scale.view(1, c, 1)).view(x.shape)
        mean = mean.view(c)
        ctx.save_for_backward(centred, m3, invstd, scale, count)
        ctx.grads = (weight is not None, bias is not None)
        ctx.shape = x.shape
        ctx.mark_non_differentiable(mean, var, count)
        return y, mean, var, count

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor, *_unused: Tensor):
        centred, m3, invstd, scale, count = ctx.saved_tensors
        shape = ctx.shape
        n, c = shape[:2]
        g3 = grad.reshape(n, c, -1).contiguous()
        g_sum = g3.sum((0, 2))
        h = invstd * (g3 * centred).sum((0, 2))  # sum of grad * xhat
        # dx = scale * g + valid * (alpha + beta * centred)
        beta = (-(scale / count) * h * invstd).view(1, c, 1)
        alpha = (-(scale / count) * g_sum).view(1, c, 1)
        dx = torch.addcmul(alpha, centred, beta)
        dx.mul_(m3.transpose(1, 2)).addcmul_(g3, scale.view(1, c, 1))
        has_weight, has_bias = ctx.grads
        return dx.view(shape), None, (h if has_weight else None), (g_sum if has_bias else None), None


def _sync_group(bn: nn.Module):
    """The process group to reduce over when ``bn`` is a ``SyncBatchNorm`` in a multi-process run, else None.

    Lightning's ``sync_batchnorm: true`` turns every BatchNorm into ``nn.SyncBatchNorm``; the masked path
    then all-reduces its valid-frame sums and counts, as ``SyncBatchNorm`` would for unmasked inputs.
    """
    if not isinstance(bn, nn.SyncBatchNorm):
        return None
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return None
    group = bn.process_group if bn.process_group is not None else dist.group.WORLD
    return group if dist.get_world_size(group) > 1 else None


def _synced_stats(x: Tensor, weight_map: Tensor, dims: list[int], group) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Global valid-frame count, mean and (biased) variance; differentiable all-reduces (two passes).

    Two passes (sum and count, then centred squares) keep the numerics of the one-process formula; the
    backward of ``torch.distributed.nn.functional.all_reduce`` sums the statistics' gradients over ranks,
    which is what makes the gradient that of the whole global batch (as ``SyncBatchNorm``'s backward).
    """
    from torch.distributed.nn.functional import all_reduce

    c = x.size(1)
    local = torch.cat([(x * weight_map).sum(dims), weight_map.sum().reshape(1)])
    total = all_reduce(local, group=group)
    count = total[c].clamp_min(1.0)
    mean = (total[:c] / count).view(1, c, *([1] * (x.dim() - 2)))
    centred = x - mean
    sq = all_reduce((centred.square() * weight_map).sum(dims), group=group)
    var = (sq / count).view_as(mean)
    return count, mean, centred, var
