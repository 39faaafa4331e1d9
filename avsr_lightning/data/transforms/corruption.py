"""Corruption steps of a pipeline: training visual corruption, speed perturbation, and the seeded evaluation
condition. Each wraps the seeded operations of :mod:`avsr_lightning.data.corruption` (docs/data.md).
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from avsr_lightning.data.conditions import Condition, apply_condition
from avsr_lightning.data.corruption import functional as F
from avsr_lightning.data.corruption.visual import VisualCorruption as _VisualCorruption
from avsr_lightning.data.transforms.base import Clip, PipelineContext, Transform


class VisualCorruption(Transform):
    """Training visual corruption (spec §4.5): occluders on the lips (from the ``coco_object`` bank) and
    Gaussian-noise/blur segments, clean with probability ``clean_prob``. Works on the uint8 frames, so put it
    before the crop.

    Args:
        occluders: False = noise/blur segments only (no occluder bank, no landmarks needed).
        occluder_dir: bank directory; None = the data module's ``occluder_dir`` (``<root>/occlusion_patch``).
        reference_quirks: None = the data module's setting (spec §8.8-9).
        clean_prob, occluder_size, noise_probs, noise_variance_max, blur_sigma: as
            :class:`avsr_lightning.data.corruption.VisualCorruption` (reference training values by default).
    """

    def __init__(self, occluders: bool = True, occluder_dir: Optional[str] = None, clean_prob: float = 0.2,
                 occluder_size: tuple[int, int] = (20, 45), noise_probs: tuple[float, float, float] = (0.3, 0.3, 0.4),
                 noise_variance_max: float = 0.2, blur_sigma: tuple[float, float] = (0.1, 2.0),
                 reference_quirks: Optional[bool] = None) -> None:
        self.occluders, self.occluder_dir = occluders, occluder_dir
        self.clean_prob, self.occluder_size = float(clean_prob), tuple(occluder_size)
        self.noise_probs, self.noise_variance_max = tuple(noise_probs), float(noise_variance_max)
        self.blur_sigma, self.reference_quirks = tuple(blur_sigma), reference_quirks
        self._corruption = self._make(None)  # validates the arguments now, not at the first batch

    def _make(self, bank: Any) -> _VisualCorruption:
        return _VisualCorruption(occluders=bank, clean_prob=self.clean_prob, occluder_size=self.occluder_size,
                                 noise_probs=self.noise_probs, noise_variance_max=self.noise_variance_max,
                                 blur_sigma=self.blur_sigma, reference_quirks=bool(self.reference_quirks))

    def bind(self, context: PipelineContext) -> None:
        if "video" not in context.modalities:
            self._corruption = None
            return
        if self.reference_quirks is None:
            self.reference_quirks = context.reference_quirks
        bank = context.make_occluders(self.occluder_dir) if self.occluders and context.make_occluders else None
        if self.occluders and bank is None:
            raise ValueError("VisualCorruption(occluders=true) needs an occluder bank; bind it through a data module "
                             "or set occluders: false")
        self._corruption = self._make(bank)

    def __call__(self, clip: Clip, rng: np.random.Generator | None) -> Clip:
        if clip.frames is None or self._corruption is None:
            return clip
        if rng is None:
            raise ValueError("VisualCorruption draws at random and belongs in train_transforms; evaluation uses "
                             "the test conditions (TestCondition)")
        landmarks = clip.landmarks if self._corruption.needs_landmarks else None
        clip.frames, info = self._corruption(clip.frames, landmarks, rng)
        clip.condition["visual"] = info["visual"]
        return clip


class SpeedPerturbation(Transform):
    """Play both streams at a speed drawn uniformly from ``factors`` (one draw), keeping them in sync."""

    def __init__(self, factors: list[float] = [0.9, 1.0, 1.1]) -> None:  # noqa: B006 - jsonargparse
        if not factors or any(f <= 0 for f in factors):
            raise ValueError(f"SpeedPerturbation: factors should be a non-empty list of positive speeds, got {factors}")
        self.factors = [float(f) for f in factors]

    def __call__(self, clip: Clip, rng: np.random.Generator | None) -> Clip:
        if rng is None:
            raise ValueError("SpeedPerturbation draws at random and belongs in train_transforms")
        factor = float(self.factors[int(rng.integers(0, len(self.factors)))])
        clip.audio, clip.frames = F.speed_perturb(clip.audio, clip.frames, factor)
        clip.condition["speed"] = factor
        return clip


class TestCondition(Transform):
    """Where the evaluation condition of the loader (clean, babble at 0 dB, occlusion, ...) is applied: noise
    from the data module's *eval* noise files and the AV-RelScore visual protocol (spec §7.1-2), every draw
    seeded by ``(seed, utterance id, condition)`` (so byte-identical across runs and workers). The data
    module binds one copy per condition; an ``eval_transforms`` list without one gets it inserted right after
    ``MatchAudioToVideo``.

    Args:
        occluder_size: occluder side of the protocol; None = the data module's ``test_occluder_size``.
    """

    __test__ = False  # not a pytest class
    aligned_audio = True

    def __init__(self, occluder_size: Optional[int] = None) -> None:
        self.occluder_size = occluder_size
        self._condition = Condition()
        self._seed = 0
        self._mixer: Any = None
        self._visual: Any = None

    def bind(self, context: PipelineContext) -> None:
        condition = self._condition = context.condition
        self._seed = context.seed
        self._mixer = None
        if "audio" in context.modalities and condition.snr is not None:
            self._mixer = context.make_mixer([condition.snr], "avrelscore", context.eval_noise_files)
        self._visual = None
        if condition.visual != "clean" and "video" in context.modalities:
            needs_occ = condition.visual in ("occlusion", "occlusion_noise")
            size = self.occluder_size if self.occluder_size is not None else context.test_occluder_size
            self._visual = _VisualCorruption.avrelscore_test(context.make_occluders(None) if needs_occ else None,
                                                             size)
            self._visual.reference_quirks = context.reference_quirks

    def __call__(self, clip: Clip, rng: np.random.Generator | None) -> Clip:
        condition = self._condition
        needs_landmarks = (clip.frames is not None and self._visual is not None and self._visual.needs_landmarks
                           and condition.visual in ("occlusion", "occlusion_noise"))
        landmarks = clip.landmarks if needs_landmarks else None
        clip.frames, clip.audio, _ = apply_condition(condition, clip.id, self._seed, clip.frames, clip.audio,
                                                     landmarks, self._mixer, self._visual)
        clip.condition = {"name": condition.name, "snr": condition.snr,
                          "noise": condition.noise if condition.snr is not None else None,
                          "visual": condition.visual}
        return clip
