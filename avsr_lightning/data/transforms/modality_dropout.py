"""``ModalityDropout``: train an audio-visual model to use each stream alone now and then.

On a corpus where one stream is much easier to learn (the synthetic lips are clean and distinct), an AV
model learns that stream first and leans on it; the other stream stays under-used and the model gains
little from it when the easy one degrades. Blanking one stream in a fraction of the training utterances
forces both paths to carry the transcript on their own, which is what lets the fused model beat each
single-stream model (docs/demo.md). Blanking happens after normalisation, so a blanked video is the mean
grey (0) and a blanked audio is silence (0).
"""
from __future__ import annotations

import numpy as np
import torch

from avsr_lightning.data.transforms.base import Clip, Transform


class ModalityDropout(Transform):
    """With probability ``video_p`` zero every frame; else with probability ``audio_p`` zero the audio.

    One uniform draw per utterance, whatever the probabilities (so later draws do not depend on them).
    Never both streams. The sample's ``condition`` records ``dropped: video|audio``. Only for clips that
    carry both streams (an audio-only or video-only pipeline is left untouched). Put it last.
    """

    def __init__(self, video_p: float = 0.0, audio_p: float = 0.0) -> None:
        if video_p < 0 or audio_p < 0 or video_p + audio_p > 1.0:
            raise ValueError(f"ModalityDropout: need video_p >= 0, audio_p >= 0 and video_p + audio_p <= 1, got "
                             f"{video_p}, {audio_p}")
        self.video_p, self.audio_p = float(video_p), float(audio_p)

    def __call__(self, clip: Clip, rng: np.random.Generator | None) -> Clip:
        if clip.frames is None or clip.audio is None:
            return clip
        if rng is None:
            raise ValueError("ModalityDropout draws at random and belongs in train_transforms only")
        u = float(rng.random())
        if u < self.video_p:
            clip.frames = _zeros_like(clip.frames)
            clip.condition["dropped"] = "video"
        elif u < self.video_p + self.audio_p:
            clip.audio = _zeros_like(clip.audio)
            clip.condition["dropped"] = "audio"
        return clip


def _zeros_like(x):
    return torch.zeros_like(x) if isinstance(x, torch.Tensor) else np.zeros_like(x)
