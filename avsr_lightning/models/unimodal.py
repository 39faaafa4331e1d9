"""Single-modality recognizers: ``Audio`` (raw waveform) and ``Video`` (lips), spec §1.9.

Parameter names follow the Conformer AV baseline (``encoder_aud.*`` / ``encoder_vid.*``), so one
modality branch of a Conformer checkpoint maps onto them directly.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .frontends import SAMPLES_PER_FRAME
from .modality_encoders import AudioEncoder, VideoEncoder
from .recognizer import Recognizer
from .resnet import DEFAULT_WIDTHS


class Video(Recognizer):
    """Lip-reading only (52,494,610 parameters at default sizes). Args as :class:`AVRelScore`."""

    def __init__(self, vocab_size: int = 41, d_model: int = 256, heads: int = 4, encoder_layers: int = 12,
                 ffn_dim: int = 2048, decoder_layers: int = 6, decoder_ffn_dim: int = 2048, conv_kernel: int = 31,
                 dropout: float = 0.1, attention_dropout: float = 0.1,
                 frontend_widths: tuple[int, int, int, int] = DEFAULT_WIDTHS, ctc_weight: float = 0.1,
                 label_smoothing: float = 0.1, length_normalized_loss: bool = False,
                 mask_padding: bool = False) -> None:
        super().__init__()
        self.encoder_vid = VideoEncoder(d_model, heads, encoder_layers, ffn_dim, conv_kernel, dropout,
                                        attention_dropout, frontend_widths, mask_padding)
        self._build_heads(vocab_size, d_model, heads, decoder_layers, decoder_ffn_dim, dropout, attention_dropout,
                          ctc_weight, label_smoothing, length_normalized_loss)

    def encode(self, video: Tensor | None, video_lengths: Tensor | None, audio: Tensor | None = None,
               audio_lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if video is None or video_lengths is None:
            raise ValueError("Video needs video and video_lengths")
        return self.encoder_vid(video, video_lengths), video_lengths


class Audio(Recognizer):
    """Audio only (45,160,402 parameters at default sizes). Args as :class:`AVRelScore`.

    T = N // 640 frames; frame lengths are ``video_lengths`` when given (AV corpora), else
    ``audio_lengths // 640``.
    """

    def __init__(self, vocab_size: int = 41, d_model: int = 256, heads: int = 4, encoder_layers: int = 12,
                 ffn_dim: int = 2048, decoder_layers: int = 6, decoder_ffn_dim: int = 2048, conv_kernel: int = 31,
                 dropout: float = 0.1, attention_dropout: float = 0.1,
                 frontend_widths: tuple[int, int, int, int] = DEFAULT_WIDTHS, ctc_weight: float = 0.1,
                 label_smoothing: float = 0.1, length_normalized_loss: bool = False,
                 mask_padding: bool = False, audio_stem_stride: int = 4) -> None:
        super().__init__()
        self.encoder_aud = AudioEncoder(d_model, heads, encoder_layers, ffn_dim, conv_kernel, dropout,
                                        attention_dropout, frontend_widths, mask_padding, audio_stem_stride)
        self._build_heads(vocab_size, d_model, heads, decoder_layers, decoder_ffn_dim, dropout, attention_dropout,
                          ctc_weight, label_smoothing, length_normalized_loss)

    def encode(self, video: Tensor | None, video_lengths: Tensor | None, audio: Tensor | None,
               audio_lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        if audio is None or (audio_lengths is None and video_lengths is None):
            raise ValueError("Audio needs audio and audio_lengths (or video_lengths)")
        num_frames = audio.size(1) // SAMPLES_PER_FRAME
        if video_lengths is not None:
            lengths = video_lengths
        else:
            lengths = torch.div(audio_lengths, SAMPLES_PER_FRAME, rounding_mode="floor").clamp_min(1)
        return self.encoder_aud(audio, lengths, num_frames, audio_lengths), lengths
