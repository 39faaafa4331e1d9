"""The data <-> model contract: one padded audio-visual batch.

Every data module yields :class:`AVBatch`; every model, loss and decoder consumes it. Keeping it a plain
dataclass of tensors (plus per-item metadata lists) lets Lightning move it between devices and lets the
decoders and reports name each utterance.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import torch
from torch import Tensor

#: Audio samples per video frame (16 kHz audio, 25 fps video).
SAMPLES_PER_FRAME = 640


@dataclass
class AVBatch:
    """A padded batch.

    Shapes (B = batch, T = padded frames, N = padded samples = 640*T, L = padded label length):

    - ``video``: float (B, T, H, W), normalised grey frames (the crop size of the data pipeline, 88x88 in the LRS recipes); ``None`` for audio-only data.
    - ``video_lengths``: long (B,), valid frames per item.
    - ``audio``: float (B, N), normalised 16 kHz waveform; ``None`` for video-only data.
    - ``audio_lengths``: long (B,), valid samples per item.
    - ``targets``: long (B, L) token ids without sos/eos, padded with -1.
    - ``target_lengths``: long (B,).
    - ``ids``: utterance ids (relative paths such as ``test/spk/00001``).
    - ``texts``: normalised reference transcripts (upper case, single spaces).
    - ``conditions``: per item, what corruption it received, e.g. ``{"snr": 0.0, "noise": "babble",
      "visual": "occlusion"}``; ``snr`` is ``None`` for clean audio. Empty dicts when unknown.
    """

    video: Tensor | None
    video_lengths: Tensor
    audio: Tensor | None
    audio_lengths: Tensor
    targets: Tensor
    target_lengths: Tensor
    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    conditions: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.video_lengths.shape[0])

    @property
    def num_frames(self) -> int:
        """Valid (unpadded) video frames in the batch, for throughput logging."""
        return int(self.video_lengths.sum())

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "AVBatch":
        moved = {
            f.name: (getattr(self, f.name).to(device, non_blocking=non_blocking)
                     if isinstance(getattr(self, f.name), Tensor) else getattr(self, f.name))
            for f in fields(self)
        }
        return AVBatch(**moved)

    def pin_memory(self) -> "AVBatch":
        """Called by ``DataLoader(pin_memory=True)``."""
        pinned = {f.name: getattr(self, f.name).pin_memory()
                  for f in fields(self) if isinstance(getattr(self, f.name), Tensor)}
        return replace(self, **pinned)

    def model_inputs(self) -> tuple[Tensor | None, Tensor, Tensor | None, Tensor]:
        """``(video, video_lengths, audio, audio_lengths)`` in the order the models take them."""
        return self.video, self.video_lengths, self.audio, self.audio_lengths
