"""Hybrid CTC/attention loss (spec §2): ``ctc_weight * L_ctc + (1 - ctc_weight) * L_att``.

``L_att`` is the reference ``LabelSmoothingLoss``: per target position KL(q || softmax(logits)) with
q = 1 - eps on the target and eps / (V - 1) on every other class (blank and eos included), so it contains
q's constant entropy term and is not plain cross-entropy. Positions with the ignore id count 0. The sum
is divided by the batch size (reference) or, with ``length_normalized=True``, by the number of tokens.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor


def add_sos_eos(targets: Tensor, sos: int, eos: int, ignore_id: int = -1) -> tuple[Tensor, Tensor]:
    """(B, L) ids padded with ``ignore_id`` -> ys_in (B, L+1) = [sos] + y padded with eos, ys_out (B, L+1)
    = y + [eos] padded with ``ignore_id`` (reference ``add_sos_eos``), without a loop over the batch."""
    b = targets.size(0)
    valid = targets != ignore_id
    lengths = valid.sum(1)
    body = targets.masked_fill(~valid, eos)
    ys_in = torch.cat([targets.new_full((b, 1), sos), body], dim=1)
    ys_out = torch.cat([targets.masked_fill(~valid, ignore_id), targets.new_full((b, 1), ignore_id)], dim=1)
    ys_out = ys_out.scatter(1, lengths.unsqueeze(1), eos)
    return ys_in, ys_out


def _entropy_constant(smoothing: float, vocab_size: int) -> float:
    """sum_c q_c log q_c of the smoothed target distribution (0 log 0 = 0)."""
    confidence, other = 1.0 - smoothing, smoothing / (vocab_size - 1)
    total = confidence * math.log(confidence) if confidence > 0 else 0.0
    if other > 0:
        total += (vocab_size - 1) * other * math.log(other)
    return total


def label_smoothing_loss(logits: Tensor, targets: Tensor, smoothing: float = 0.1, ignore_id: int = -1,
                         length_normalized: bool = False) -> Tensor:
    """KL(q || p) summed over valid positions, divided by B (default) or by the number of valid tokens.

    logits (B, L, V) float, targets (B, L) long with ``ignore_id`` padding.
    """
    b, _, v = logits.shape
    logp = torch.log_softmax(logits.float(), dim=-1)
    valid = targets != ignore_id
    safe = targets.masked_fill(~valid, 0)
    target_logp = logp.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    confidence, other = 1.0 - smoothing, smoothing / (v - 1)
    cross = confidence * target_logp + other * (logp.sum(-1) - target_logp)  # sum_c q_c log p_c
    per_position = (_entropy_constant(smoothing, v) - cross) * valid
    denom = valid.sum().clamp_min(1) if length_normalized else b
    return per_position.sum() / denom


def token_accuracy(logits: Tensor, targets: Tensor, ignore_id: int = -1) -> Tensor:
    """Fraction of non-ignored positions where argmax(logits) == target (a 0-dim tensor, no sync)."""
    valid = targets != ignore_id
    correct = (logits.argmax(-1) == targets) & valid
    return correct.sum().float() / valid.sum().clamp_min(1).float()


class HybridCTCAttentionLoss:
    """Combines a CTC loss value with the label-smoothed attention loss; returns the loss dict.

    Args:
        ctc_weight: alpha in ``alpha * ctc + (1 - alpha) * att`` (reference 0.1).
        label_smoothing: epsilon (reference 0.1).
        length_normalized: divide the attention loss by the token count instead of B (reference False).
        ignore_id: label padding id (-1).
    """

    def __init__(self, ctc_weight: float = 0.1, label_smoothing: float = 0.1, length_normalized: bool = False,
                 ignore_id: int = -1) -> None:
        if not 0.0 <= ctc_weight <= 1.0:
            raise ValueError(f"ctc_weight must be in [0, 1], got {ctc_weight}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.ctc_weight = ctc_weight
        self.label_smoothing = label_smoothing
        self.length_normalized = length_normalized
        self.ignore_id = ignore_id

    def __call__(self, loss_ctc: Tensor, att_logits: Tensor, ys_out: Tensor) -> dict[str, Tensor]:
        # float32 island under autocast (bf16-mixed): log-softmax, KL and the reductions stay fp32
        with torch.autocast(device_type=att_logits.device.type, enabled=False):
            loss_att = label_smoothing_loss(att_logits.float(), ys_out, self.label_smoothing, self.ignore_id,
                                            self.length_normalized)
            acc = token_accuracy(att_logits.detach(), ys_out, self.ignore_id)
            loss = self.ctc_weight * loss_ctc.float() + (1.0 - self.ctc_weight) * loss_att
        return {"loss": loss, "loss_ctc": loss_ctc, "loss_att": loss_att, "acc": acc}
