"""The single-object video transform and the audio helpers the pipeline steps build on. Train and evaluation
transforms are separate objects (the reference applies its training augmentation to validation too, spec §8.5);
every random draw uses an explicit numpy Generator.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

#: Grey-level mean and std of the reference lip crops after /255 (spec §4.3).
VIDEO_MEAN = 0.421
VIDEO_STD = 0.165


@dataclass
class VideoTransform:
    """uint8 (T, H, W) → float32 torch (T, crop, crop), normalised.

    ``train=True``: random crop, horizontal flip, time mask, cutout (spec §4.3). ``train=False``: centre crop
    only. The mask/cutout set pixels to 0 *after* normalisation, i.e. to the mean grey, as the reference does.
    """

    train: bool = False
    crop: int = 88
    flip_prob: float = 0.5
    time_mask_max: int = 15
    cutout: tuple[int, int] | None = (22, 44)
    mean: float = VIDEO_MEAN
    std: float = VIDEO_STD

    def __call__(self, frames: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
        frames = np.asarray(frames)
        if frames.ndim != 3:
            raise ValueError(f"video frames must be (T, H, W), got shape {frames.shape}")
        t, h, w = frames.shape
        if h < self.crop or w < self.crop:
            raise ValueError(f"video frames are {h}x{w}, smaller than the {self.crop}x{self.crop} crop")
        if self.train:
            if rng is None:
                raise ValueError("training VideoTransform needs a numpy Generator")
            dy, dx = int(rng.integers(0, h - self.crop + 1)), int(rng.integers(0, w - self.crop + 1))
        else:
            dy, dx = (h - self.crop) // 2, (w - self.crop) // 2
        if not frames.flags.writeable or any(s < 0 for s in frames.strides):
            frames = np.array(frames, order="C")  # torch needs a writable, positively strided array
        # crop and flip as torch views/copies, then one conversion straight into a contiguous float tensor
        clip = torch.from_numpy(frames)[:, dy:dy + self.crop, dx:dx + self.crop]
        if self.train and rng.random() < self.flip_prob:
            clip = clip.flip(-1)
        video = torch.empty(clip.shape, dtype=torch.float32).copy_(clip)  # always a fresh tensor: never the input
        video = video.mul_(1.0 / (255.0 * self.std)).sub_(self.mean / self.std)
        if self.train:
            if self.time_mask_max > 0:
                length = int(rng.integers(0, min(t, self.time_mask_max) + 1))
                start = int(rng.integers(0, t - length + 1))
                video[start:start + length] = 0.0
            if self.cutout is not None:
                side = int(rng.integers(self.cutout[0], self.cutout[1] + 1))
                y, x = (int(v) for v in rng.integers(0, self.crop - side + 1, size=2))
                video[:, y:y + side, x:x + side] = 0.0
        return video


def normalize_utterance(audio: np.ndarray | torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Zero mean, unit variance per utterance; silent (constant) audio becomes zeros instead of NaN (spec §8.12)."""
    x = torch.as_tensor(audio, dtype=torch.float32)
    x = x - x.mean()
    std = x.std(unbiased=False)
    return x / std if float(std) > eps else torch.zeros_like(x)


def fit_audio_to_frames(audio: np.ndarray, num_frames: int, samples_per_frame: int = 640) -> np.ndarray:
    """Cut or zero-pad audio to exactly ``num_frames * samples_per_frame`` samples (integer arithmetic,
    avoiding the reference's float-rounding loss and its crash on short audio, spec §8.3-4)."""
    target = int(num_frames) * samples_per_frame
    audio = np.asarray(audio, dtype=np.float32)
    if len(audio) >= target:
        return audio[:target]
    return np.concatenate([audio, np.zeros(target - len(audio), dtype=np.float32)])
