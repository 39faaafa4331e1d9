"""Synthetic speakers: an eSpeak NG voice, rate and pitch plus a face (lip shape, skin, lighting).

Voices, rates and pitches are a fixed table (so ``spk03`` always sounds the same); the appearance is
drawn from the corpus seed, so two seeds give differently looking speakers. The last speakers of the
table are *held out*: they appear only in the test split.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# (voice, words per minute, pitch 0-100, pitch range 0-100). Rates are slowish on purpose (learnability).
_VOICES: tuple[tuple[str, int, int, int], ...] = (
    ("en-us+m1", 135, 45, 50),
    ("en-us+f1", 130, 55, 60),
    ("en-us+m3", 125, 35, 40),
    ("en-us+f2", 140, 65, 55),
    ("en+m2", 130, 50, 45),
    ("en+f4", 125, 60, 70),
    ("en-us+m4", 145, 40, 35),
    ("en-us+f5", 135, 70, 50),
    # held out (test only)
    ("en+m7", 130, 42, 50),
    ("en-us+f3", 135, 58, 60),
)
NUM_TEST_SPEAKERS = 2


@dataclass(frozen=True)
class Speaker:
    """One voice and one face. Lengths are in pixels of the 96x96 crop, grey levels in 0-255."""

    speaker_id: str
    voice: str
    rate: int
    pitch: int
    pitch_range: int
    held_out: bool
    # appearance
    mouth_half_width: float  # half width of the closed mouth
    upper_lip: float  # upper lip thickness
    lower_lip: float  # lower lip thickness
    max_opening: float  # inner lip gap at full opening
    cupid_bow: float  # depth of the dip in the upper lip, 0-1
    skin: float  # skin grey level
    lip_contrast: float  # how much darker the lips are than the skin
    light_gradient: tuple[float, float]  # (x, y) brightness slope across the crop, grey levels per pixel
    mouth_y: float  # vertical position of the mouth centre in the crop
    noise_std: float  # pixel noise
    loudness: float  # peak amplitude of the speech, 0-1


@lru_cache(maxsize=16)
def speakers(seed: int) -> tuple[Speaker, ...]:
    """All speakers of a corpus generated with ``seed`` (voices fixed, appearance drawn from the seed).

    Cached (the result is immutable): every rendered utterance looks its speaker up."""
    result = []
    for index, (voice, rate, pitch, pitch_range) in enumerate(_VOICES):
        rng = np.random.default_rng([seed, 1009, index])
        result.append(Speaker(
            speaker_id=f"spk{index:02d}",
            voice=voice,
            rate=rate,
            pitch=pitch,
            pitch_range=pitch_range,
            held_out=index >= len(_VOICES) - NUM_TEST_SPEAKERS,
            mouth_half_width=float(rng.uniform(22.0, 28.0)),
            upper_lip=float(rng.uniform(4.5, 7.5)),
            lower_lip=float(rng.uniform(6.0, 9.5)),
            max_opening=float(rng.uniform(18.0, 24.0)),
            cupid_bow=float(rng.uniform(0.15, 0.45)),
            skin=float(rng.uniform(120.0, 195.0)),
            lip_contrast=float(rng.uniform(35.0, 65.0)),
            light_gradient=(float(rng.uniform(-0.35, 0.35)), float(rng.uniform(-0.35, 0.2))),
            mouth_y=float(rng.uniform(50.0, 54.0)),
            noise_std=float(rng.uniform(2.0, 5.0)),
            loudness=float(rng.uniform(0.45, 0.75)),
        ))
    return tuple(result)


def training_speakers(seed: int) -> tuple[Speaker, ...]:
    return tuple(s for s in speakers(seed) if not s.held_out)


def test_speakers(seed: int) -> tuple[Speaker, ...]:
    return tuple(s for s in speakers(seed) if s.held_out)
