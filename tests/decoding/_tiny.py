"""Tiny models for the decoding tests: a real decoder/CTC head over given "encoder outputs"."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from avsr_lightning.models.ctc import CTCHead
from avsr_lightning.models.decoder import TransformerDecoder


class FeatureRecognizer(nn.Module):
    """Recognizer stand-in whose ``encode`` returns its input: ``video`` holds (B, T, D) features."""

    blank = 0

    def __init__(self, vocab_size: int = 5, d_model: int = 16, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.vocab_size, self.d_model = vocab_size, d_model
        self.sos = self.eos = vocab_size - 1
        self.decoder = TransformerDecoder(vocab_size, d_model, heads=2, layers=2, ffn_dim=32, dropout=0.1,
                                          attention_dropout=0.1)
        self.ctc = CTCHead(vocab_size, d_model)
        with torch.no_grad():  # peakier distributions than the default init, so the weights matter
            for p in self.parameters():
                p.mul_(3.0)
        self.eval()

    def encode(self, video: Tensor, video_lengths: Tensor, audio, audio_lengths) -> tuple[Tensor, Tensor]:
        return video, video_lengths
