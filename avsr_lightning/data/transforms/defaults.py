"""The pipelines a data module builds when ``train_transforms`` / ``eval_transforms`` are not given: exactly
the composition of the older flag arguments (``train_snrs``, ``visual_corruption``, ``speed_factors``, ...),
draw for draw, so configs written before the pipeline existed give the same tensors (tests/data/test_pipeline.py).
"""
from __future__ import annotations

from typing import Optional, Sequence

from avsr_lightning.data.conditions import Condition
from avsr_lightning.data.transforms.audio import AudioNormalize, MatchAudioToVideo, NoiseMixing
from avsr_lightning.data.transforms.base import Transform
from avsr_lightning.data.transforms.corruption import SpeedPerturbation, TestCondition, VisualCorruption
from avsr_lightning.data.transforms.functional import VideoTransform
from avsr_lightning.data.transforms.video import (
    CenterCrop,
    Cutout,
    HorizontalFlip,
    Normalize,
    RandomCrop,
    TimeMask,
)


def video_steps(transform: VideoTransform) -> list[Transform]:
    """The steps equivalent to one :class:`VideoTransform` (train: crop, flip, normalise, time mask, cutout)."""
    if not transform.train:
        return [CenterCrop(transform.crop), Normalize(transform.mean, transform.std)]
    steps: list[Transform] = [RandomCrop(transform.crop), HorizontalFlip(transform.flip_prob),
                              Normalize(transform.mean, transform.std)]
    if transform.time_mask_max > 0:
        steps.append(TimeMask(transform.time_mask_max))
    if transform.cutout is not None:
        steps.append(Cutout(*transform.cutout))
    return steps


def default_train_transforms(train_snrs: Sequence[Optional[float]] = (-5.0, 0.0, 5.0, 10.0, 15.0),
                             visual_corruption: bool = False, speed_factors: Optional[Sequence[float]] = None,
                             partial_noise: str = "reference_train",
                             volume_db: Optional[tuple[float, float]] = None,
                             crop: int = 88) -> list[Transform]:
    """LRSDataModule's training pipeline from its flag arguments (the reference recipe's order, spec §4.3-5)."""
    steps: list[Transform] = []
    if visual_corruption:
        steps.append(VisualCorruption())
    if speed_factors:
        steps.append(SpeedPerturbation(list(speed_factors)))
    steps.append(MatchAudioToVideo())
    steps.append(NoiseMixing(list(train_snrs), partial=partial_noise,
                             volume_db=volume_db if partial_noise != "avrelscore" else None))
    steps += video_steps(VideoTransform(train=True, crop=crop))
    steps.append(AudioNormalize())
    return steps


def default_eval_transforms(crop: int = 88) -> list[Transform]:
    """Validation/test pipeline: the loader's condition, centre crop, LRS normalisation, audio normalisation."""
    return [MatchAudioToVideo(), TestCondition(), *video_steps(VideoTransform(train=False, crop=crop)),
            AudioNormalize()]


def prebound_pipeline(train: bool, video_transform: VideoTransform, noise, visual, condition: Condition, seed: int,
                      speed_factors: Optional[Sequence[float]], normalize_audio: bool) -> list[Transform]:
    """The pipeline of an :class:`~avsr_lightning.data.dataset.AVDataset` built from ready-made corruption
    objects (``noise``: NoiseMixer, ``visual``: VisualCorruption) instead of a data module's context."""
    steps: list[Transform] = []
    if train:
        if visual is not None:
            step = VisualCorruption.__new__(VisualCorruption)
            step._corruption = visual
            steps.append(step)
        if speed_factors:
            steps.append(SpeedPerturbation(list(speed_factors)))
        steps.append(MatchAudioToVideo())
        if noise is not None:
            mixing = NoiseMixing(noise.snrs, partial=noise.partial)
            mixing._mixer = noise
            steps.append(mixing)
    else:
        steps.append(MatchAudioToVideo())
        test = TestCondition()
        test._condition, test._seed, test._mixer, test._visual = condition, seed, noise, visual
        steps.append(test)
    steps += video_steps(video_transform)
    if normalize_audio:
        steps.append(AudioNormalize())
    return steps
