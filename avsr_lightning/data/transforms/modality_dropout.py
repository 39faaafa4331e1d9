"""``ModalityDropout``: train an audio-visual model to use each stream alone now and then.

On a corpus where one stream is much easier to learn (the synthetic lips are clean and distinct), an AV
model learns that stream first and leans on it; the other stream stays under-used and the model gains
little from it when the easy one degrades. Blanking one stream in a fraction of the training utterances
forces both paths to carry the transcript on their own, which is what lets the fused model beat each
single-stream model (docs/demo.md). Blanking happens after normalisation, so a blanked video is the mean
grey (0) and a blanked audio is silence (0).

Silence is easy to recognise, so a model trained only with it learns "no sound: read the lips" but not "a
sound that does not match the lips: read the lips", which is what babble at a negative SNR is. With
``audio_noise_p`` the audio of some utterances is replaced by an excerpt of the training noise alone
(normalised like speech), other talkers with nothing of the target sentence in it.

The lips are the slower stream to learn, and while the audio is there the model has little reason to. A
``schedule`` gives the first epochs their own probabilities (e.g. every audio dropped for a few epochs: the
model starts as a lip reader, as AVSR recipes start from a lip-reading frontend), then the main ones hold.
On the demo corpus that start cost the AV model at every SNR (docs/demo.md, session 30), so no shipped recipe uses it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from avsr_lightning.data.corruption.functional import crop_noise
from avsr_lightning.data.transforms.audio import training_noise_files
from avsr_lightning.data.transforms.base import Clip, PipelineContext, Transform
from avsr_lightning.data.transforms.functional import normalize_utterance


@dataclass(frozen=True)
class DropoutStage:
    """The probabilities of :class:`ModalityDropout` for the training epochs before ``until_epoch``."""

    until_epoch: int
    video_p: float = 0.0
    audio_p: float = 0.0
    audio_noise_p: float = 0.0


def _check_probabilities(owner: str, video_p: float, audio_p: float, audio_noise_p: float) -> None:
    if video_p < 0 or audio_p < 0 or audio_noise_p < 0 or video_p + audio_p + audio_noise_p > 1.0:
        raise ValueError(f"{owner}: need video_p, audio_p, audio_noise_p >= 0 with a sum <= 1, got "
                         f"{video_p}, {audio_p}, {audio_noise_p}")


class ModalityDropout(Transform):
    """With probability ``video_p`` zero every frame; else with ``audio_p`` zero the audio; else with
    ``audio_noise_p`` replace the audio by training noise alone.

    One uniform draw per utterance, whatever the probabilities (so later draws do not depend on them); the
    noise branch then draws the noise file and the excerpt. Never both streams. The sample's ``condition``
    records ``dropped: video|audio|audio_noise``. Only for clips that carry both streams (an audio-only or
    video-only pipeline is left untouched). Put it last (after ``AudioNormalize``).

    Args:
        video_p, audio_p, audio_noise_p: the probabilities of the three branches (sum <= 1).
        noise_files: the noise of the ``audio_noise_p`` branch; None = the data module's training noise.
        schedule: stages for the first epochs, in increasing ``until_epoch``: a clip of training epoch ``e``
            uses the first stage with ``e < until_epoch``, and the main probabilities after the last stage.
    """

    def __init__(self, video_p: float = 0.0, audio_p: float = 0.0, audio_noise_p: float = 0.0,
                 noise_files: list[str] | None = None, schedule: Sequence[DropoutStage] = ()) -> None:
        _check_probabilities("ModalityDropout", video_p, audio_p, audio_noise_p)
        self.video_p, self.audio_p, self.audio_noise_p = float(video_p), float(audio_p), float(audio_noise_p)
        self.noise_files = noise_files
        self.schedule = tuple(schedule)
        for i, stage in enumerate(self.schedule):
            _check_probabilities(f"ModalityDropout schedule[{i}]", stage.video_p, stage.audio_p, stage.audio_noise_p)
            if stage.until_epoch < 1 or (i and stage.until_epoch <= self.schedule[i - 1].until_epoch):
                raise ValueError(f"ModalityDropout schedule[{i}]: until_epoch should be >= 1 and increase from "
                                 f"stage to stage, got {[st.until_epoch for st in self.schedule]}")
        self._mixer: Any = None

    def probabilities(self, epoch: int) -> tuple[float, float, float]:
        """(video_p, audio_p, audio_noise_p) for a clip of training epoch ``epoch``."""
        for stage in self.schedule:
            if epoch < stage.until_epoch:
                return stage.video_p, stage.audio_p, stage.audio_noise_p
        return self.video_p, self.audio_p, self.audio_noise_p

    def bind(self, context: PipelineContext) -> None:
        noisy = self.audio_noise_p > 0.0 or any(stage.audio_noise_p > 0.0 for stage in self.schedule)
        if not noisy or "audio" not in context.modalities or "video" not in context.modalities:
            self._mixer = None
            return
        files = training_noise_files(self.noise_files, context)
        if not files:
            asked = [self.audio_noise_p] + [stage.audio_noise_p for stage in self.schedule]
            raise ValueError(f"ModalityDropout: audio_noise_p {asked} (main, then schedule) needs training noise but "
                             f"none was found; set noise_files or put babble.wav under <root>/noise, or use "
                             f"audio_noise_p: 0")
        from avsr_lightning.data.corruption.acoustic import NoiseMixer

        self._mixer = NoiseMixer(files, snrs=[0.0])  # only its file list and its once-per-worker loading

    def __call__(self, clip: Clip, rng: np.random.Generator | None) -> Clip:
        if clip.frames is None or clip.audio is None:
            return clip
        if rng is None:
            raise ValueError("ModalityDropout draws at random and belongs in train_transforms only")
        video_p, audio_p, audio_noise_p = self.probabilities(clip.epoch)
        u = float(rng.random())
        if u < video_p:
            clip.frames = _zeros_like(clip.frames)
            clip.condition["dropped"] = "video"
        elif u < video_p + audio_p:
            clip.audio = _zeros_like(clip.audio)
            clip.condition["dropped"] = "audio"
        elif u < video_p + audio_p + audio_noise_p:
            if self._mixer is None:
                raise RuntimeError("ModalityDropout: audio_noise_p > 0 but bind() was not called")
            index = int(rng.integers(0, len(self._mixer.noise_files)))
            noise = normalize_utterance(crop_noise(self._mixer.noises[index], len(clip.audio), rng))
            clip.audio = noise if isinstance(clip.audio, torch.Tensor) else noise.numpy()
            clip.condition["dropped"] = "audio_noise"
        return clip


def _zeros_like(x):
    return torch.zeros_like(x) if isinstance(x, torch.Tensor) else np.zeros_like(x)
