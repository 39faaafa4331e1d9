"""VCAFE (Interspeech 2022; spec §1.8): audio queries attend to video (one head), a mask net turns the
visual context into a sigmoid mask that enhances the audio a * (1 + m), the enhanced audio is fused with
the video (Dropout 0.3, Linear 2C -> C), then one Conformer.

The reference builds the attention and output masks in Python loops over the batch; here they are
broadcast comparisons. Quirk kept: the mask net's conv sees padded frames (``mask_padding`` fixes it).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .conformer import ConformerEncoder, layer_norm
from .dropout import Dropout
from .frontends import SAMPLES_PER_FRAME, AudioFrontend, VideoFrontend
from .masking import lengths_to_mask, match_length
from .precision import fp32_island, island_float
from .recognizer import Recognizer
from .resnet import DEFAULT_WIDTHS


class VisualContextAttention(nn.Module):
    """``forward(aud, vid, lengths)`` -> fused (B, T, C). Reference ``VCA_Masking`` names q, k, v, mask, fusion."""

    def __init__(self, dim: int = 512, fusion_dropout: float = 0.3) -> None:
        super().__init__()
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.q = nn.Linear(dim, dim)
        self.mask = nn.Sequential(nn.Conv1d(dim, dim, 3, padding=1), nn.ReLU(), nn.Conv1d(dim, dim, 1))
        self.dropout = Dropout(fusion_dropout)
        self.fusion = nn.Linear(2 * dim, dim)
        self.dim = dim

    def enhancement_mask(self, aud: Tensor, vid: Tensor, lengths: Tensor, mask_padding: bool = False) -> Tensor:
        """sigmoid mask (B, T, C); exactly 0 on padded rows (reference fills them with -inf)."""
        t = aud.size(1)
        valid = lengths_to_mask(lengths, t)  # (B, T)
        key_mask = valid.unsqueeze(1)  # (B, 1, S): padded key columns -> -inf, every query row
        q, k, v = island_float(self.q(aud)), island_float(self.k(vid)), island_float(self.v(vid))
        with fp32_island(q):  # softmax in float32 under autocast (no-op in fp32)
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask,
                                                     scale=1.0 / math.sqrt(self.dim))
        context = context.transpose(1, 2)
        if mask_padding:
            context = context * valid.unsqueeze(1).to(context.dtype)
        logits = self.mask(context).transpose(1, 2)
        return torch.sigmoid(logits) * valid.unsqueeze(-1).to(logits.dtype)

    def forward(self, aud: Tensor, vid: Tensor, lengths: Tensor, mask_padding: bool = False) -> Tensor:
        m = self.enhancement_mask(aud, vid, lengths, mask_padding)
        enhanced = aud * m + aud
        return self.fusion(self.dropout(torch.cat([enhanced, vid], dim=-1)))


class VCAFEEncoder(ConformerEncoder):
    def __init__(self, d_model: int = 256, heads: int = 4, layers: int = 12, ffn_dim: int = 2048,
                 conv_kernel: int = 31, dropout: float = 0.1, attention_dropout: float = 0.1,
                 frontend_widths: Sequence[int] = DEFAULT_WIDTHS, fusion_dropout: float = 0.3,
                 mask_padding: bool = False, audio_stem_stride: int = 4) -> None:
        feat = int(frontend_widths[-1])
        super().__init__(
            feat, d_model, heads, layers, ffn_dim, conv_kernel, dropout, attention_dropout, mask_padding,
            before_embed={"frontend_aud": AudioFrontend(frontend_widths, stem_stride=audio_stem_stride),
                          "frontend_vid": VideoFrontend(frontend_widths)},
            # after_norm_vid/aud: created but never used by the reference (spec §1.8); kept for strict loading
            after_embed={"after_norm_vid": layer_norm(d_model), "after_norm_aud": layer_norm(d_model),
                         "fusion": VisualContextAttention(feat, fusion_dropout)},
        )

    def forward(self, video: Tensor, video_lengths: Tensor, audio: Tensor,  # type: ignore[override]
                audio_lengths: Tensor | None = None) -> Tensor:
        t = video.size(1)
        fix = self.mask_padding
        v = self.frontend_vid(video, video_lengths if fix else None)
        if fix and audio_lengths is None:
            audio_lengths = video_lengths * SAMPLES_PER_FRAME
        a = match_length(self.frontend_aud(audio, audio_lengths if fix else None), t)
        fused = self.fusion(a, v, video_lengths, fix)
        mask = lengths_to_mask(video_lengths, t).unsqueeze(1)
        return self.after_norm(self.blocks(fused, mask))


class VCAFE(Recognizer):
    """VCAFE recognizer (58,706,578 parameters at default sizes). Args as :class:`AVRelScore`, plus
    ``fusion_dropout`` (0.3, hard-coded in the reference)."""

    UNUSED_PARAMETER_PREFIXES = ("encoders.after_norm_vid", "encoders.after_norm_aud")

    def __init__(self, vocab_size: int = 41, d_model: int = 256, heads: int = 4, encoder_layers: int = 12,
                 ffn_dim: int = 2048, decoder_layers: int = 6, decoder_ffn_dim: int = 2048, conv_kernel: int = 31,
                 dropout: float = 0.1, attention_dropout: float = 0.1,
                 frontend_widths: tuple[int, int, int, int] = DEFAULT_WIDTHS, fusion_dropout: float = 0.3,
                 ctc_weight: float = 0.1, label_smoothing: float = 0.1, length_normalized_loss: bool = False,
                 mask_padding: bool = False, audio_stem_stride: int = 4) -> None:
        super().__init__()
        self.encoders = VCAFEEncoder(d_model, heads, encoder_layers, ffn_dim, conv_kernel, dropout,
                                     attention_dropout, frontend_widths, fusion_dropout, mask_padding,
                                     audio_stem_stride)
        self._build_heads(vocab_size, d_model, heads, decoder_layers, decoder_ffn_dim, dropout, attention_dropout,
                          ctc_weight, label_smoothing, length_normalized_loss)

    def encode(self, video: Tensor | None, video_lengths: Tensor | None, audio: Tensor | None,
               audio_lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        if video is None or audio is None or video_lengths is None:
            raise ValueError("VCAFE needs both video and audio (and video_lengths)")
        return self.encoders(video, video_lengths, audio, audio_lengths), video_lengths
