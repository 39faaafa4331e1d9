"""Conformer AV baseline (spec §1.9): a full Conformer encoder per modality, features concatenated
along channels and fused by an MLP (Linear -> BatchNorm -> ReLU -> Linear).

The audio branch is trimmed/padded to the video length and masked with the video lengths, as in the
reference. Quirk kept: the fusion BatchNorm's training statistics include padded frames; the
``mask_padding`` fix excludes them (and fixes the frontends and conv modules).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .masking import lengths_to_mask, masked_batch_norm
from .modality_encoders import AudioEncoder, VideoEncoder
from .recognizer import Recognizer
from .resnet import DEFAULT_WIDTHS


class FusionMLP(nn.Module):
    """(B, T, 2D) -> (B, T, D): ``Linear1`` -> ``BN`` over channels -> ReLU -> ``Linear2`` (reference names)."""

    def __init__(self, d_model: int = 256, hidden: int = 1024) -> None:
        super().__init__()
        self.Linear1 = nn.Linear(2 * d_model, hidden)
        self.BN = nn.BatchNorm1d(hidden)
        self.Relu = nn.ReLU()
        self.Linear2 = nn.Linear(hidden, d_model)

    def forward(self, x: Tensor, valid: Tensor | None = None) -> Tensor:
        """``valid`` (B, 1, T): only for the ``mask_padding`` fix (BatchNorm statistics)."""
        h = masked_batch_norm(self.BN, self.Linear1(x).transpose(1, 2), valid)
        return self.Linear2(self.Relu(h).transpose(1, 2))


class Conformer(Recognizer):
    """Conformer AV baseline (88,940,178 parameters at default sizes). Args as :class:`AVRelScore`,
    plus ``fusion_hidden`` (1024)."""

    def __init__(self, vocab_size: int = 41, d_model: int = 256, heads: int = 4, encoder_layers: int = 12,
                 ffn_dim: int = 2048, decoder_layers: int = 6, decoder_ffn_dim: int = 2048, conv_kernel: int = 31,
                 dropout: float = 0.1, attention_dropout: float = 0.1,
                 frontend_widths: tuple[int, int, int, int] = DEFAULT_WIDTHS, fusion_hidden: int = 1024,
                 ctc_weight: float = 0.1, label_smoothing: float = 0.1, length_normalized_loss: bool = False,
                 mask_padding: bool = False, audio_stem_stride: int = 4) -> None:
        super().__init__()
        args = (d_model, heads, encoder_layers, ffn_dim, conv_kernel, dropout, attention_dropout, frontend_widths,
                mask_padding)
        self.encoder_vid = VideoEncoder(*args)
        self.encoder_aud = AudioEncoder(*args, stem_stride=audio_stem_stride)
        self.fusion_module = FusionMLP(d_model, fusion_hidden)
        self.mask_padding = mask_padding
        self._build_heads(vocab_size, d_model, heads, decoder_layers, decoder_ffn_dim, dropout, attention_dropout,
                          ctc_weight, label_smoothing, length_normalized_loss)

    def encode(self, video: Tensor | None, video_lengths: Tensor | None, audio: Tensor | None,
               audio_lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        if video is None or audio is None or video_lengths is None:
            raise ValueError("Conformer needs both video and audio (and video_lengths)")
        t = video.size(1)
        h_v = self.encoder_vid(video, video_lengths)
        h_a = self.encoder_aud(audio, video_lengths, t, audio_lengths)
        valid = lengths_to_mask(video_lengths, t).unsqueeze(1) if self.mask_padding else None
        return self.fusion_module(torch.cat([h_v, h_a], dim=-1), valid), video_lengths
