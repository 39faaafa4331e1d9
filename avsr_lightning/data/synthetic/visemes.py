"""Phonemes -> visemes -> per-frame mouth shape (opening, width, rounding) with coarticulation.

Each eSpeak NG phoneme maps to a viseme class (bilabial closure, labiodental, rounded, open, spread, ...)
that sets a target for three mouth parameters in [0, 1] and a *dominance*: how strongly the phoneme
imposes its shape on its neighbours. Closures and labiodentals dominate (the lips must meet); alveolars
and velars barely do (the tongue does the work, the lips follow the vowels), and they share one viseme:
from the outside ``t d n l k g s z`` look alike, as they do on real faces. Like real lips, the classes leave
homophenes (``p b m``, ``f v``, ``t d n l k g s z``) that only the audio can tell apart (docs/demo.md). The trajectory is the
dominance-weighted Gaussian blend of the targets on a 1 ms grid (a light form of the Cohen-Massaro
coarticulation model), sampled at the centre of each 40 ms video frame.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from avsr_lightning.data.synthetic.speech import Phone


@dataclass(frozen=True)
class Viseme:
    """Mouth targets: ``opening`` (jaw/lip gap), ``width`` (spread), ``rounding`` (protrusion); ``dominance``."""

    name: str
    opening: float
    width: float
    rounding: float
    dominance: float


REST = Viseme("rest", 0.04, 0.45, 0.15, 1.5)
CLOSURE = Viseme("bilabial_closure", 0.0, 0.45, 0.1, 8.0)
LABIODENTAL = Viseme("labiodental", 0.08, 0.5, 0.0, 5.0)
ROUNDED = Viseme("rounded", 0.3, 0.05, 1.0, 3.0)
OPEN = Viseme("open", 1.0, 0.65, 0.0, 2.5)
MID = Viseme("mid", 0.6, 0.55, 0.1, 1.5)
SPREAD = Viseme("spread", 0.28, 1.0, 0.0, 2.5)
POSTALVEOLAR = Viseme("postalveolar", 0.22, 0.25, 0.75, 2.5)
DENTAL = Viseme("dental", 0.3, 0.6, 0.0, 1.5)
#: Alveolars and velars: the tongue moves, the lips barely do and the two places look the same.
LINGUAL = Viseme("lingual", 0.3, 0.55, 0.05, 0.55)
ALVEOLAR = VELAR = LINGUAL
SIBILANT = LINGUAL  # s, z: narrow teeth gap, like t and d from the outside

# eSpeak NG English phoneme mnemonics (stress marks stripped). Diphthongs are two visemes in sequence.
_PHONEME_VISEMES: dict[str, tuple[Viseme, ...]] = {
    "p": (CLOSURE,), "b": (CLOSURE,), "m": (CLOSURE,),
    "f": (LABIODENTAL,), "v": (LABIODENTAL,),
    "w": (ROUNDED,), "u:": (ROUNDED,), "U": (ROUNDED,), "U@": (ROUNDED, MID), "O:": (ROUNDED,), "O@": (ROUNDED, MID),
    "0": (OPEN,), "O2": (OPEN,), "O": (ROUNDED,), "r": (POSTALVEOLAR,),
    "S": (POSTALVEOLAR,), "Z": (POSTALVEOLAR,), "tS": (POSTALVEOLAR,), "dZ": (POSTALVEOLAR,),
    "a": (OPEN,), "aa": (OPEN,), "A:": (OPEN,), "A@": (OPEN, MID), "V": (OPEN,), "a#": (MID,),
    "aI": (OPEN, SPREAD), "aU": (OPEN, ROUNDED), "oU": (MID, ROUNDED), "OI": (ROUNDED, SPREAD),
    "eI": (MID, SPREAD), "e@": (MID, MID), "E": (MID,), "e": (MID,), "@": (MID,), "@2": (MID,), "@5": (MID,),
    "3:": (MID,), "3": (MID,), "@L": (MID,),
    "i:": (SPREAD,), "i": (SPREAD,), "I": (SPREAD,), "I2": (SPREAD,), "i@": (SPREAD, MID), "j": (SPREAD,),
    "s": (SIBILANT,), "z": (SIBILANT,),
    "T": (DENTAL,), "D": (DENTAL,),
    "t": (ALVEOLAR,), "d": (ALVEOLAR,), "n": (ALVEOLAR,), "l": (ALVEOLAR,), "h": (VELAR,),
    "k": (VELAR,), "g": (VELAR,), "N": (VELAR,),
    "_": (REST,), "_:": (REST,), "_!": (REST,), "_|": (REST,),
}

_FRAME_SECONDS = 0.04
_GRID_SECONDS = 0.001
#: Width (s) of the coarticulation blend; ~40 ms lets a closure still reach (nearly) zero opening.
COARTICULATION_SECONDS = 0.03


def visemes_of(phone: str) -> tuple[Viseme, ...]:
    """Viseme sequence of an eSpeak NG phoneme; unknown symbols fall back on their first letter, then MID."""
    if phone in _PHONEME_VISEMES:
        return _PHONEME_VISEMES[phone]
    for key in (phone.rstrip(":;"), phone[:1]):
        if key in _PHONEME_VISEMES:
            return _PHONEME_VISEMES[key]
    return (MID,)


def _grid_index(seconds: float, grid: int) -> int:
    """The 1 ms grid index nearest to ``seconds``, clipped to [0, grid] (plain ints: called per phone)."""
    return min(max(round(seconds / _GRID_SECONDS), 0), grid)


@lru_cache(maxsize=None)
def _weighted_target(vis: Viseme) -> np.ndarray:
    """``dominance * (opening, width, rounding)``, float64, computed once per viseme (read-only)."""
    target = vis.dominance * np.array([vis.opening, vis.width, vis.rounding])
    target.setflags(write=False)
    return target


def mouth_trajectory(phones: Sequence[Phone], offset: float, num_frames: int) -> np.ndarray:
    """Mouth parameters per video frame.

    Args:
        phones: phoneme events in time order (start in seconds from the start of the synthesised speech).
        offset: seconds of silence inserted before the speech in the final audio.
        num_frames: video frames (25 fps) to produce.

    Returns:
        float32 (num_frames, 3): opening, width, rounding in [0, 1].
    """
    total = num_frames * _FRAME_SECONDS
    grid = int(round(total / _GRID_SECONDS))
    weighted = np.zeros((grid, 3), np.float64)
    weights = np.full(grid, 1e-3, np.float64)  # the rest pose wherever nothing is said
    rest = np.array([REST.opening, REST.width, REST.rounding])
    weighted += 1e-3 * rest
    bounds = [p.start + offset for p in phones] + [total]
    for phone, start, end in zip(phones, bounds[:-1], bounds[1:]):
        parts = visemes_of(phone.name)
        step = (end - start) / len(parts)
        for k, vis in enumerate(parts):
            a = _grid_index(start + k * step, grid)
            b = _grid_index(start + (k + 1) * step, grid)
            weighted[a:b] += _weighted_target(vis)
            weights[a:b] += vis.dominance
    # leading silence before the first phone
    a = _grid_index(phones[0].start + offset, grid) if phones else grid
    weighted[:a] += REST.dominance * rest
    weights[:a] += REST.dominance
    sigma = COARTICULATION_SECONDS / _GRID_SECONDS
    radius = int(3 * sigma)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    smooth_w = np.convolve(np.pad(weights, radius, mode="edge"), kernel, mode="valid")
    smooth = np.stack([np.convolve(np.pad(weighted[:, c], radius, mode="edge"), kernel, mode="valid")
                       for c in range(3)], axis=1)
    trajectory = smooth / smooth_w[:, None]
    centres = np.clip(((np.arange(num_frames) + 0.5) * _FRAME_SECONDS / _GRID_SECONDS).astype(int), 0, grid - 1)
    return np.clip(trajectory[centres], 0.0, 1.0).astype(np.float32)
