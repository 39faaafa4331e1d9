"""Visual corruption modelling (spec §4.5 for training, §7.1 for the AV-RelScore test protocol).

Operates on the processed uint8 grey mouth crops (T, 96, 96) *before* the video transform, with the
utterance's aligned landmarks and crop origins to place occluders on the lips.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from avsr_lightning.data.corruption import functional as F
from avsr_lightning.data.corruption.occluders import OccluderBank
from avsr_lightning.data.landmarks import MOUTH, Landmarks

VISUAL_CONDITIONS = ("clean", "occlusion", "noise", "blur", "occlusion_noise")


@dataclass
class VisualCorruption:
    """Occluders on the lips plus Gaussian-noise / blur segments.

    Defaults are the reference *training* probabilities: clean with ``clean_prob`` 0.2, otherwise occlusion
    (1-3 occluders) followed by noise segments, each noise segment Gaussian (0.3), blurred (0.3) or untouched
    (0.4). ``reference_quirks=True`` reproduces the reference's landmark index k instead of s+k and its
    swapped row/column offsets (spec §8.8-9); the default places the occluder where the landmark is.

    ``__call__(frames, landmarks, rng, condition=None) -> (frames, info)``; ``condition`` forces one of
    ``VISUAL_CONDITIONS`` (test protocol), ``None`` draws as in training.
    """

    occluders: OccluderBank | None = None
    clean_prob: float = 0.2
    occluder_size: tuple[int, int] = (20, 45)
    offset_single: tuple[int, int] = (20, 60)
    offset_multi: tuple[int, int] = (20, 40)
    occlusion_single_fraction: tuple[float, float] = (0.1, 0.5)
    noise_single_fraction: tuple[float, float] = (0.1, 0.5)
    multi_fraction: tuple[float, float] = (0.3, 0.5)
    noise_probs: tuple[float, float, float] = (0.3, 0.3, 0.4)  # gaussian, blur, untouched
    noise_variance_max: float = 0.2
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_kernel: int = 7
    landmark_points: tuple[int, int] = (48, 67)
    reference_quirks: bool = False
    #: training draws (``condition=None``) sample pixel noise with torch's faster sampler (same distribution);
    #: forced conditions (the reproducible test protocol) always use numpy's bit-stable stream
    fast_training_noise: bool = True

    def __post_init__(self) -> None:
        if abs(sum(self.noise_probs) - 1.0) > 1e-6 or min(self.noise_probs) < 0:
            raise ValueError(f"noise_probs (gaussian, blur, untouched) must sum to 1, got {self.noise_probs}")
        if not 0.0 <= self.clean_prob <= 1.0:
            raise ValueError(f"clean_prob must be in [0, 1], got {self.clean_prob}")

    @classmethod
    def avrelscore_test(cls, occluders: OccluderBank | None, occluder_size: int = 42) -> "VisualCorruption":
        """The AV-RelScore test-set protocol (spec §7.1): fixed occluder size (30 px LRS2, 42 px LRS3),
        offset 15, single occlusion 0.3-0.5 L, noise segments 50 % Gaussian / 50 % blur."""
        return cls(occluders=occluders, clean_prob=0.0, occluder_size=(occluder_size, occluder_size),
                   offset_single=(15, 15), offset_multi=(15, 15), occlusion_single_fraction=(0.3, 0.5),
                   noise_probs=(0.5, 0.5, 0.0))

    @property
    def needs_landmarks(self) -> bool:
        return self.occluders is not None

    # ----------------------------------------------------------------------------------------------
    def __call__(self, frames: np.ndarray, landmarks: Landmarks | None, rng: np.random.Generator,
                 condition: str | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        fast_noise = condition is None and self.fast_training_noise
        if condition is None:
            if rng.random() < self.clean_prob:
                return frames, {"visual": "clean"}
            condition = "occlusion_noise" if self.occluders is not None else "noise"
        if condition not in VISUAL_CONDITIONS:
            raise ValueError(f"visual condition must be one of {VISUAL_CONDITIONS}, got {condition!r}")
        info: dict[str, Any] = {"visual": condition}
        if condition == "clean":
            return frames, info
        if condition in ("occlusion", "occlusion_noise"):
            if self.occluders is None:
                raise ValueError("visual condition needs occluders but no occluder_dir was given")
            if landmarks is None:
                raise ValueError("occlusion needs landmarks")
            freq = int(rng.integers(1, 4))
            frames, info["occlusion"] = self.occlude_sequence(frames, landmarks, freq, rng)
        if condition in ("noise", "occlusion_noise", "blur"):
            freq = int(rng.integers(1, 4))
            force = "blur" if condition == "blur" else None
            frames, info["noise_segments"] = self.noise_sequence(frames, freq, rng, force=force, fast=fast_noise)
        return frames, info

    def _placement(self, landmarks: Landmarks, frame: int, k: int, point: int, offset: int) -> tuple[int, int]:
        """Top-left (row, col) of the occluder for video frame ``frame`` (k-th frame of its segment)."""
        lm_index = k if self.reference_quirks else frame  # spec §8.8
        lm_index = min(max(lm_index, 0), len(landmarks) - 1)
        x, y = landmarks.points[lm_index, point]
        y_min, x_min = landmarks.yx_min[lm_index] if landmarks.yx_min is not None else (0.0, 0.0)
        row, col = y - y_min - offset, x - x_min - offset
        if self.reference_quirks:  # spec §8.9: (row, col) passed as (x, y)
            row, col = col, row
        return int(row), int(col)

    def occlude_sequence(self, frames: np.ndarray, landmarks: Landmarks, freq: int,
                         rng: np.random.Generator) -> tuple[np.ndarray, list[dict[str, Any]]]:
        segments = F.choose_segments(len(frames), freq, rng, self.occlusion_single_fraction, self.multi_fraction)
        offsets = self.offset_single if freq == 1 else self.offset_multi
        records = []
        for start, length in segments:
            point = int(rng.integers(self.landmark_points[0], self.landmark_points[1] + 1))
            offset = int(rng.integers(offsets[0], offsets[1] + 1))
            side = int(rng.integers(self.occluder_size[0], self.occluder_size[1] + 1))
            patch, alpha, name = self.occluders.draw(rng, side)
            idx = np.arange(start, min(start + length, len(frames)))
            pos = np.array([self._placement(landmarks, int(f), k, point, offset) for k, f in enumerate(idx)]
                           ).reshape(-1, 2)
            frames = F.occlude(frames, patch, alpha, idx, pos)
            records.append({"start": start, "length": length, "point": point, "offset": offset, "size": side,
                            "occluder": name})
        return frames, records

    def noise_sequence(self, frames: np.ndarray, freq: int, rng: np.random.Generator, force: str | None = None,
                       fast: bool = False) -> tuple[np.ndarray, list[dict[str, Any]]]:
        segments = F.choose_segments(len(frames), freq, rng, self.noise_single_fraction, self.multi_fraction)
        records = []
        frames = np.array(frames, copy=True)
        p_gauss, p_blur, _ = self.noise_probs
        for start, length in segments:
            stop = min(start + length, len(frames))
            u = rng.random()
            kind = force or ("gaussian" if u < p_gauss else "blur" if u < p_gauss + p_blur else "none")
            record: dict[str, Any] = {"start": start, "length": length, "kind": kind}
            if kind == "gaussian" and stop > start:
                var = float(rng.uniform(0.0, 1.0)) * self.noise_variance_max
                frames[start:stop] = F.gaussian_pixel_noise(frames[start:stop], var, rng, fast=fast)
                record["variance"] = round(var, 6)
            elif kind == "blur" and stop > start:
                sigma = float(rng.uniform(*self.blur_sigma))
                frames[start:stop] = F.gaussian_blur(frames[start:stop], sigma, self.blur_kernel)
                record["sigma"] = round(sigma, 6)
            records.append(record)
        return frames, records


def mouth_centre(landmarks: Landmarks) -> np.ndarray:
    """Per-frame mouth centre (x, y) in crop coordinates (T, 2), for tests and diagnostics."""
    centre = landmarks.points[:, MOUTH].mean(axis=1)
    if landmarks.yx_min is not None:
        centre = centre - landmarks.yx_min[:, ::-1]
    return centre
