"""``Downsample``: lower the spatial resolution of the lip frames by an integer factor (area average).

The synthetic lips are large, smooth shapes: a 44x44 crop carries what the demo models need, and the video
frontend's cost falls with the square of the side. An integer box average (no interpolation kernel) keeps
the step exact and cheap, on uint8 frames before ``Normalize`` or float frames after it.
"""
from __future__ import annotations

import numpy as np
import torch

from avsr_lightning.data.transforms.base import Clip, Transform


class Downsample(Transform):
    """(T, H, W) -> (T, H // factor, W // factor), each output pixel the mean of a ``factor`` x ``factor`` block
    (rounded back to uint8 for uint8 input). Draws nothing; use it in train and eval pipelines alike."""

    def __init__(self, factor: int = 2) -> None:
        if factor < 1:
            raise ValueError(f"Downsample: factor should be an int >= 1, got {factor}")
        self.factor = int(factor)

    def __call__(self, clip: Clip, rng: np.random.Generator | None) -> Clip:
        frames, f = clip.frames, self.factor
        if frames is None or f == 1:
            return clip
        t, h, w = frames.shape
        if h < f or w < f:
            raise ValueError(f"Downsample: {h}x{w} frames are smaller than the factor {f}")
        x = torch.as_tensor(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames
        x = x[:, : h - h % f, : w - w % f]
        pooled = torch.nn.functional.avg_pool2d(x.unsqueeze(1).float(), f).squeeze(1)
        if isinstance(frames, np.ndarray):
            clip.frames = pooled.round_().clamp_(0, 255).to(torch.uint8).numpy()
        else:
            clip.frames = pooled.to(frames.dtype) if frames.is_floating_point() else pooled.round_().to(frames.dtype)
        return clip
