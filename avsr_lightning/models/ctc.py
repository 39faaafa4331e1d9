"""CTC head (spec §1.11): ``ctc_lo`` Linear over dropout of the encoder output; one frame per video frame."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .dropout import Dropout
from .precision import fp32_island


class CTCHead(nn.Module):
    def __init__(self, vocab_size: int = 41, d_model: int = 256, dropout: float = 0.1, blank: int = 0) -> None:
        super().__init__()
        self.ctc_lo = nn.Linear(d_model, vocab_size)
        self.dropout = Dropout(dropout)
        self.blank = blank

    def log_probs(self, features: Tensor) -> Tensor:
        """(B, T, D) -> (B, T, V) log-softmax posteriors (no dropout, as the reference's ``log_softmax``)."""
        logits = self.ctc_lo(features)
        with fp32_island(logits):  # log-softmax in float32 under autocast (no-op in fp32)
            return torch.log_softmax(logits.float(), dim=-1)

    def loss(self, features: Tensor, lengths: Tensor, targets: Tensor, target_lengths: Tensor) -> Tensor:
        """Summed CTC negative log-likelihood divided by the batch size (reference normalisation).

        ``targets`` (B, L) padded with -1; infeasible utterances contribute 0 (``zero_infinity``) and
        still count in the batch size, as in the reference.
        """
        logits = self.ctc_lo(self.dropout(features))
        with fp32_island(logits):  # log-softmax and CTC in float32 under autocast (no-op in fp32)
            log_probs = torch.log_softmax(logits.float(), dim=-1)
            return ctc_loss(log_probs, lengths, targets, target_lengths, self.blank)


def ctc_loss(log_probs: Tensor, lengths: Tensor, targets: Tensor, target_lengths: Tensor, blank: int = 0) -> Tensor:
    """``sum_b NLL_b / B`` from (B, T, V) log-probabilities; computed in float32."""
    nll = F.ctc_loss(log_probs.transpose(0, 1).float(), targets.clamp_min(0), lengths, target_lengths,
                     blank=blank, reduction="sum", zero_infinity=True)
    return nll / log_probs.size(0)
