"""Single-modality Conformer encoders with their frontend (reference ``Encoder`` with input layer
``conv3d`` / ``conv1d``): ``frontend`` -> ``embed`` -> ``encoders`` -> ``after_norm``.

Used by the Conformer AV baseline (``encoder_vid``, ``encoder_aud``) and the unimodal models.
"""
from __future__ import annotations

from typing import Sequence

from torch import Tensor

from .conformer import ConformerEncoder
from .frontends import SAMPLES_PER_FRAME, AudioFrontend, VideoFrontend
from .masking import lengths_to_mask, match_length
from .resnet import DEFAULT_WIDTHS


class VideoEncoder(ConformerEncoder):
    def __init__(self, d_model: int = 256, heads: int = 4, layers: int = 12, ffn_dim: int = 2048,
                 conv_kernel: int = 31, dropout: float = 0.1, attention_dropout: float = 0.1,
                 frontend_widths: Sequence[int] = DEFAULT_WIDTHS, mask_padding: bool = False) -> None:
        super().__init__(int(frontend_widths[-1]), d_model, heads, layers, ffn_dim, conv_kernel, dropout,
                         attention_dropout, mask_padding, before_embed={"frontend": VideoFrontend(frontend_widths)})

    def forward(self, video: Tensor, lengths: Tensor) -> Tensor:  # type: ignore[override]
        """(B, T, H, W), (B,) frames -> (B, T, d_model)."""
        mask = lengths_to_mask(lengths, video.size(1)).unsqueeze(1)
        x = self.frontend(video, lengths if self.mask_padding else None)
        return self.after_norm(self.blocks(x, mask))


class AudioEncoder(ConformerEncoder):
    def __init__(self, d_model: int = 256, heads: int = 4, layers: int = 12, ffn_dim: int = 2048,
                 conv_kernel: int = 31, dropout: float = 0.1, attention_dropout: float = 0.1,
                 frontend_widths: Sequence[int] = DEFAULT_WIDTHS, mask_padding: bool = False,
                 stem_stride: int = 4) -> None:
        super().__init__(int(frontend_widths[-1]), d_model, heads, layers, ffn_dim, conv_kernel, dropout,
                         attention_dropout, mask_padding,
                         before_embed={"frontend": AudioFrontend(frontend_widths, stem_stride=stem_stride)})

    def forward(self, audio: Tensor, frame_lengths: Tensor, num_frames: int,  # type: ignore[override]
                audio_lengths: Tensor | None = None) -> Tensor:
        """(B, N) waveform -> (B, num_frames, d_model); features trimmed/zero-padded to ``num_frames``
        (the video length in the AV baseline, spec §1.9) and masked with ``frame_lengths``."""
        mask = lengths_to_mask(frame_lengths, num_frames).unsqueeze(1)
        if self.mask_padding and audio_lengths is None:
            audio_lengths = frame_lengths * SAMPLES_PER_FRAME
        x = self.frontend(audio, audio_lengths if self.mask_padding else None)
        x = match_length(x, num_frames)
        return self.after_norm(self.blocks(x, mask))
