"""Cutting a stream into model-sized segments at pauses (lowest audio energy)."""
from __future__ import annotations

import numpy as np

SAMPLES_PER_FRAME = 640  # 16 kHz / 25 fps


def frame_energy(audio: np.ndarray, frames: int) -> np.ndarray:
    """RMS of each 40-ms frame (zero-padded at the end), (frames,) float64."""
    x = np.zeros(frames * SAMPLES_PER_FRAME, np.float64)
    n = min(len(audio), len(x))
    x[:n] = audio[:n]
    return np.sqrt((x.reshape(frames, SAMPLES_PER_FRAME) ** 2).mean(axis=1))


def choose_cut(energy: np.ndarray | None, max_frames: int, min_fraction: float = 0.5) -> int:
    """Where to end a segment of at most ``max_frames`` frames: the quietest 0.2-s stretch in the second half
    (``min_fraction``..1 of the maximum); without audio, at the maximum."""
    if energy is None or len(energy) < max_frames:
        return max_frames
    lo = max(1, int(max_frames * min_fraction))
    e = np.convolve(energy[:max_frames], np.ones(5) / 5, mode="same")
    return lo + int(np.argmin(e[lo:max_frames]))
