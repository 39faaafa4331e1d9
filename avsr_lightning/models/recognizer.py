"""``Recognizer``: the encoder -> (CTC head, attention decoder) skeleton shared by every architecture.

A subclass builds its encoder modules (reference names), calls :meth:`_build_heads`, and implements
:meth:`encode`. Training, validation and decoding only use the interface below (docs/internals.md).
"""
from __future__ import annotations

from torch import Tensor, nn

from ..loss import HybridCTCAttentionLoss, add_sos_eos
from .ctc import CTCHead
from .decoder import TransformerDecoder


class Recognizer(nn.Module):
    """Base class: attributes ``vocab_size, sos, eos, blank, ignore_id, d_model``; sub-modules
    ``decoder`` and ``ctc``; ``encode``, ``loss`` (= ``forward``), ``unused_parameter_names``."""

    #: parameters kept only so reference checkpoints load strictly (never used in forward)
    UNUSED_PARAMETER_PREFIXES: tuple[str, ...] = ()

    blank: int = 0
    ignore_id: int = -1

    def _build_heads(self, vocab_size: int, d_model: int, heads: int, decoder_layers: int, decoder_ffn_dim: int,
                     dropout: float, attention_dropout: float, ctc_weight: float, label_smoothing: float,
                     length_normalized_loss: bool) -> None:
        if vocab_size < 3:
            raise ValueError(f"vocab_size must be >= 3 (blank, a token, sos/eos), got {vocab_size}")
        if d_model % heads != 0:
            raise ValueError(f"d_model={d_model} must be divisible by heads={heads}")
        self.vocab_size = vocab_size
        self.d_model = d_model
        self.sos = self.eos = vocab_size - 1
        self.decoder = TransformerDecoder(vocab_size, d_model, heads, decoder_layers, decoder_ffn_dim, dropout,
                                          attention_dropout)
        self.ctc = CTCHead(vocab_size, d_model, dropout, blank=self.blank)
        self.criterion = HybridCTCAttentionLoss(ctc_weight, label_smoothing, length_normalized_loss, self.ignore_id)

    def encode(self, video: Tensor | None, video_lengths: Tensor | None, audio: Tensor | None,
               audio_lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        """-> features (B, T, d_model), lengths (B,) long (valid frames)."""
        raise NotImplementedError

    def loss(self, video: Tensor | None, video_lengths: Tensor | None, audio: Tensor | None,
             audio_lengths: Tensor | None, targets: Tensor, target_lengths: Tensor) -> dict[str, Tensor]:
        """Hybrid CTC/attention loss -> dict(loss, loss_ctc, loss_att, acc), all 0-dim tensors.

        targets (B, L) token ids without sos/eos, padded with -1.
        """
        features, lengths = self.encode(video, video_lengths, audio, audio_lengths)
        return self.loss_from_encoded(features, lengths, targets, target_lengths)

    def loss_from_encoded(self, features: Tensor, lengths: Tensor, targets: Tensor,
                          target_lengths: Tensor) -> dict[str, Tensor]:
        """:meth:`loss` on encoder outputs already computed (validation encodes once for loss and decoding)."""
        ys_in, ys_out = add_sos_eos(targets, self.sos, self.eos, self.ignore_id)
        logits = self.decoder(ys_in, target_lengths + 1, features, lengths)
        loss_ctc = self.ctc.loss(features, lengths, targets, target_lengths)
        return self.criterion(loss_ctc, logits, ys_out)

    def forward(self, video: Tensor | None, video_lengths: Tensor | None, audio: Tensor | None,
                audio_lengths: Tensor | None, targets: Tensor, target_lengths: Tensor) -> dict[str, Tensor]:
        return self.loss(video, video_lengths, audio, audio_lengths, targets, target_lengths)

    def unused_parameter_names(self) -> list[str]:
        """Names of parameters that never receive gradients (state-dict compatibility only)."""
        return [name for name, _ in self.named_parameters()
                if any(name.startswith(p + ".") for p in self.UNUSED_PARAMETER_PREFIXES)]
