"""Audio steps of a pipeline: align to the video, noise mixing (with optional volume), volume, normalisation."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from avsr_lightning.batch import SAMPLES_PER_FRAME
from avsr_lightning.data.corruption import functional as F
from avsr_lightning.data.corruption.acoustic import PARTIAL_MODES
from avsr_lightning.data.transforms.base import Clip, PipelineContext, Transform
from avsr_lightning.data.transforms.functional import fit_audio_to_frames, normalize_utterance


class MatchAudioToVideo(Transform):
    """Fix the utterance length in frames (video length, else audio length / 640) and cut or zero-pad the
    audio to exactly 640 samples per frame, noting mismatches of more than one frame. Put it after steps
    that change the length (``SpeedPerturbation``) and before noise; a pipeline without one gets it inserted
    before its first audio step."""

    def __call__(self, clip: Clip, rng: np.random.Generator | None) -> Clip:
        frames, audio = clip.frames, clip.audio
        num_frames = len(frames) if frames is not None else max(1, int(round(len(audio) / SAMPLES_PER_FRAME)))
        clip.num_frames = num_frames
        if audio is not None:
            diff = len(audio) - num_frames * SAMPLES_PER_FRAME
            if abs(diff) > SAMPLES_PER_FRAME:
                kind = "shorter" if diff < 0 else "longer"
                clip.notes.append(f"audio_length: {clip.paths.get('audio')} is {abs(diff)} samples {kind} than the "
                                  f"video ({num_frames} frames); {'zero-padded' if diff < 0 else 'cut'}")
            clip.audio = fit_audio_to_frames(audio, num_frames)
        return clip


def training_noise_files(noise_files: Optional[list[str]], context: PipelineContext) -> list[Path]:
    """``noise_files`` with relative paths taken under the corpus root, or the data module's training noise."""
    if noise_files is None:
        return [Path(p) for p in context.noise_files]
    return [Path(p) if Path(p).is_absolute() or context.root is None else Path(context.root) / p for p in noise_files]


class NoiseMixing(Transform):
    """Training noise: one of ``noise_files`` at an SNR drawn uniformly from ``snrs`` (``null`` = clean).

    Args:
        snrs: dB values and/or null. All null: the step does nothing and draws nothing.
        noise_files: wav/flac/npy files; None = the data module's training noise (``<root>/noise/babble.wav``).
        partial: ``none``, ``reference_train`` (zero 4 spans of the mixture with prob ``partial_prob``) or
            ``avrelscore`` (the test protocol's gating), see :class:`~avsr_lightning.data.corruption.NoiseMixer`.
        volume_db: also scale the speech by a gain drawn in this dB range (drawn after the SNR, before the noise).
    Draw order: SNR, gain, noise file, excerpt, partial gating (that of ``NoiseMixer``).
    """

    aligned_audio = True

    def __init__(self, snrs: list[Optional[float]] = [-5.0, 0.0, 5.0, 10.0, 15.0],  # noqa: B006 - jsonargparse
                 noise_files: Optional[list[str]] = None, partial: str = "none", partial_prob: float = 0.5,
                 volume_db: Optional[tuple[float, float]] = None) -> None:
        if not snrs:
            raise ValueError("NoiseMixing: snrs is empty; use [null] for clean audio")
        if partial not in PARTIAL_MODES:
            raise ValueError(f"NoiseMixing: partial must be one of {PARTIAL_MODES}, got {partial!r}")
        self.snrs = [None if s is None else float(s) for s in snrs]
        self.noise_files, self.partial, self.partial_prob = noise_files, partial, float(partial_prob)
        self.volume_db = None if volume_db is None else (float(volume_db[0]), float(volume_db[1]))
        self._mixer: Any = None

    def bind(self, context: PipelineContext) -> None:
        if all(s is None for s in self.snrs):
            self._mixer = None
            return
        files = training_noise_files(self.noise_files, context)
        if not files:
            raise ValueError(f"NoiseMixing: SNRs {self.snrs} need noise but no noise file was found; set "
                             f"noise_files or put babble.wav under {Path(context.root or '.') / 'noise'}, or use "
                             f"[null] for clean audio")
        from avsr_lightning.data.corruption.acoustic import NoiseMixer

        self._mixer = NoiseMixer(files, self.snrs, partial=self.partial, partial_prob=self.partial_prob,
                                 volume_db=self.volume_db)

    def __call__(self, clip: Clip, rng: np.random.Generator | None) -> Clip:
        if clip.audio is None or self._mixer is None:
            return clip
        if rng is None:
            raise ValueError("NoiseMixing draws at random and belongs in train_transforms; evaluation noise comes "
                             "from the test conditions (TestCondition)")
        clip.audio, info = self._mixer(clip.audio, rng)
        clip.condition.update({"snr": info["snr"], "noise": info["noise"]})
        if info.get("partial"):
            clip.condition["partial"] = info["partial"]
        return clip


class VolumePerturbation(Transform):
    """Scale the audio by a gain drawn uniformly in ``gain_db`` (one draw), as lhotse's volume perturbation."""

    aligned_audio = True

    def __init__(self, gain_db: tuple[float, float] = (-6.0, 6.0)) -> None:
        if gain_db[0] > gain_db[1]:
            raise ValueError(f"VolumePerturbation: gain_db should be (low, high), got {gain_db}")
        self.gain_db = (float(gain_db[0]), float(gain_db[1]))

    def __call__(self, clip: Clip, rng: np.random.Generator | None) -> Clip:
        if clip.audio is None:
            return clip
        if rng is None:
            raise ValueError("VolumePerturbation draws at random and belongs in train_transforms")
        gain = float(rng.uniform(*self.gain_db))
        clip.audio = F.change_volume(clip.audio, gain)
        clip.condition["volume_db"] = round(gain, 4)
        return clip


class AudioNormalize(Transform):
    """Zero mean, unit variance per utterance -> float32 tensor; silent audio becomes zeros (noted)."""

    aligned_audio = True

    def __init__(self, eps: float = 1e-5) -> None:
        self.eps = float(eps)

    def __call__(self, clip: Clip, rng: np.random.Generator | None) -> Clip:
        if clip.audio is None:
            return clip
        if not np.any(np.asarray(clip.audio)):
            clip.notes.append(f"silent_audio: {clip.paths.get('audio')} is silent")
        audio = clip.audio
        if isinstance(audio, np.ndarray) and not audio.flags.writeable:
            audio = audio.copy()  # a cached clip's read-only array (torch warns on those)
        clip.audio = normalize_utterance(audio, self.eps)
        return clip


def audio_tensor(audio: np.ndarray | torch.Tensor) -> torch.Tensor:
    """The final float32 tensor of a clip's audio (a copy when the array is a read-only cached one)."""
    if isinstance(audio, torch.Tensor):
        return audio.to(torch.float32)
    audio = np.asarray(audio, dtype=np.float32)
    if not audio.flags.writeable:
        audio = audio.copy()
    return torch.from_numpy(audio)
