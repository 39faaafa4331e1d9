"""Video steps of a pipeline: crop, flip, normalise, time mask, cutout (spec §4.3 composes them in this order).

Crop and flip work on the uint8 frames (views, no copy); :class:`Normalize` turns them into a float32 tensor;
:class:`TimeMask` and :class:`Cutout` after it set pixels to ``value`` (0 = the mean grey, as the reference).
Put them before ``Normalize`` and they work on the uint8 frames instead (0 = black).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from avsr_lightning.data.errors import DataError
from avsr_lightning.data.transforms.base import Clip, PipelineContext, Transform
from avsr_lightning.data.transforms.functional import VIDEO_MEAN, VIDEO_STD


def _need_rng(step: Transform, rng: np.random.Generator | None) -> np.random.Generator:
    if rng is None:
        raise ValueError(f"{type(step).__name__} draws at random and needs the training Generator; use it in "
                         f"train_transforms only (eval_transforms get rng=None)")
    return rng


def _check_size(frames, size: int, where: str, path=None) -> None:
    if frames.ndim != 3:
        raise ValueError(f"video frames must be (T, H, W), got shape {tuple(frames.shape)}")
    h, w = frames.shape[1:]
    if h < size or w < size:
        # a video of the wrong size is a data problem (a counted skip naming the file), not a bug
        reason = f"video frames are {h}x{w}, smaller than the {size}x{size} crop of {where}"
        raise DataError(path, reason) if path is not None else ValueError(reason)


class RandomCrop(Transform):
    """A ``size`` x ``size`` window at a uniformly drawn position (two draws: row, then column)."""

    def __init__(self, size: int = 88) -> None:
        if size < 1:
            raise ValueError(f"RandomCrop: size should be >= 1, got {size}")
        self.size = int(size)

    def __call__(self, clip: Clip, rng: np.random.Generator | None) -> Clip:
        if clip.frames is None:
            return clip
        rng = _need_rng(self, rng)
        _check_size(clip.frames, self.size, "RandomCrop", clip.paths.get("video"))
        h, w = clip.frames.shape[1:]
        dy, dx = int(rng.integers(0, h - self.size + 1)), int(rng.integers(0, w - self.size + 1))
        clip.frames = clip.frames[:, dy:dy + self.size, dx:dx + self.size]
        return clip


class CenterCrop(Transform):
    """The central ``size`` x ``size`` window (evaluation)."""

    def __init__(self, size: int = 88) -> None:
        if size < 1:
            raise ValueError(f"CenterCrop: size should be >= 1, got {size}")
        self.size = int(size)

    def __call__(self, clip: Clip, rng: np.random.Generator | None) -> Clip:
        if clip.frames is None:
            return clip
        _check_size(clip.frames, self.size, "CenterCrop", clip.paths.get("video"))
        h, w = clip.frames.shape[1:]
        dy, dx = (h - self.size) // 2, (w - self.size) // 2
        clip.frames = clip.frames[:, dy:dy + self.size, dx:dx + self.size]
        return clip


class HorizontalFlip(Transform):
    """Mirror every frame with probability ``p`` (one draw per utterance, also when ``p`` is 0 or 1, so the
    stream of later draws does not depend on ``p``)."""

    def __init__(self, p: float = 0.5) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"HorizontalFlip: p should be in [0, 1], got {p}")
        self.p = float(p)

    def __call__(self, clip: Clip, rng: np.random.Generator | None) -> Clip:
        if clip.frames is None:
            return clip
        if _need_rng(self, rng).random() < self.p:
            clip.frames = clip.frames.flip(-1) if isinstance(clip.frames, torch.Tensor) else clip.frames[:, :, ::-1]
        return clip


class Normalize(Transform):
    """uint8 frames -> float32 tensor ``(x / 255 - mean) / std``.

    ``mean``/``std`` default to the LRS lip-crop statistics (0.421, 0.165, spec §4.3); ``null`` (None) reads
    them from the corpus (``pixel_mean``/``pixel_std`` in ``<root>/corpus.json``, written by the synthetic
    generator) when the data module binds the pipeline, and stops with a clear error if the corpus has none.
    """

    def __init__(self, mean: Optional[float] = VIDEO_MEAN, std: Optional[float] = VIDEO_STD) -> None:
        if std is not None and std <= 0:
            raise ValueError(f"Normalize: std should be > 0, got {std}")
        self.mean, self.std = mean, std

    def bind(self, context: PipelineContext) -> None:
        if self.mean is None or self.std is None:
            stats = context.corpus_stats() if context.corpus_stats is not None else {}
            if "pixel_mean" not in stats or "pixel_std" not in stats:
                raise ValueError(f"Normalize(mean=None/std=None) reads pixel_mean/pixel_std from "
                                 f"{context.root}/corpus.json, which has none; give mean and std explicitly "
                                 f"(LRS: 0.421, 0.165) or regenerate the synthetic corpus")
            self.mean = stats["pixel_mean"] if self.mean is None else self.mean
            self.std = stats["pixel_std"] if self.std is None else self.std

    def __call__(self, clip: Clip, rng: np.random.Generator | None) -> Clip:
        frames = clip.frames
        if frames is None:
            return clip
        if self.mean is None or self.std is None:
            raise ValueError("Normalize(mean=None) must be bound to a corpus first (the data module does it)")
        if isinstance(frames, torch.Tensor):
            video = torch.empty(frames.shape, dtype=torch.float32).copy_(frames)
        else:
            if not frames.flags.writeable or any(s < 0 for s in frames.strides):
                frames = np.array(frames, order="C")  # torch needs a writable, positively strided array
            video = torch.empty(frames.shape, dtype=torch.float32).copy_(torch.from_numpy(frames))
        clip.frames = video.mul_(1.0 / (255.0 * self.std)).sub_(self.mean / self.std)
        return clip


class TimeMask(Transform):
    """Set a run of 0..``max_frames`` consecutive frames to ``value`` (two draws: length, start)."""

    def __init__(self, max_frames: int = 15, value: float = 0.0) -> None:
        if max_frames < 0:
            raise ValueError(f"TimeMask: max_frames should be >= 0, got {max_frames}")
        self.max_frames, self.value = int(max_frames), float(value)

    def __call__(self, clip: Clip, rng: np.random.Generator | None) -> Clip:
        if clip.frames is None or self.max_frames == 0:
            return clip
        rng = _need_rng(self, rng)
        t = clip.frames.shape[0]
        length = int(rng.integers(0, min(t, self.max_frames) + 1))
        start = int(rng.integers(0, t - length + 1))
        clip.frames = _writable(clip.frames)
        clip.frames[start:start + length] = self.value
        return clip


class Cutout(Transform):
    """Set one square of side ``min_size..max_size`` (drawn), at a drawn position, to ``value`` on every frame."""

    def __init__(self, min_size: int = 22, max_size: int = 44, value: float = 0.0) -> None:
        if not 0 < min_size <= max_size:
            raise ValueError(f"Cutout: need 0 < min_size <= max_size, got {min_size}, {max_size}")
        self.min_size, self.max_size, self.value = int(min_size), int(max_size), float(value)

    def __call__(self, clip: Clip, rng: np.random.Generator | None) -> Clip:
        if clip.frames is None:
            return clip
        rng = _need_rng(self, rng)
        size = clip.frames.shape[-1]
        if self.max_size > size:
            raise ValueError(f"Cutout: max_size {self.max_size} exceeds the {size}-px frames; lower max_size "
                             f"(e.g. a quarter to half of the crop)")
        side = int(rng.integers(self.min_size, self.max_size + 1))
        y, x = (int(v) for v in rng.integers(0, size - side + 1, size=2))
        clip.frames = _writable(clip.frames)
        clip.frames[:, y:y + side, x:x + side] = self.value
        return clip


def _writable(frames):
    """numpy frames that may be written (crops/flips are views of possibly cached, read-only clips)."""
    if isinstance(frames, torch.Tensor):
        return frames
    return np.array(frames, order="C")


class Resize(Transform):
    """Scale every frame to ``size`` x ``size`` (area averaging when shrinking, bilinear when growing).

    For a cheaper video frontend on simple lips: e.g. ``Resize(56)`` then ``RandomCrop(48)`` keeps the whole
    mouth at a quarter of the 88-px crop's pixels. Works on uint8 frames (before ``Normalize``) or tensors.
    """

    def __init__(self, size: int = 48) -> None:
        if size < 1:
            raise ValueError(f"Resize: size should be >= 1, got {size}")
        self.size = int(size)

    def __call__(self, clip: Clip, rng: np.random.Generator | None) -> Clip:
        frames = clip.frames
        if frames is None or tuple(frames.shape[1:]) == (self.size, self.size):
            return clip
        if isinstance(frames, torch.Tensor):
            mode = "area" if frames.shape[-1] > self.size else "bilinear"
            kwargs = {} if mode == "area" else {"align_corners": False}
            clip.frames = torch.nn.functional.interpolate(frames[:, None], size=(self.size, self.size), mode=mode,
                                                          **kwargs)[:, 0]
            return clip
        import cv2

        interpolation = cv2.INTER_AREA if frames.shape[-1] > self.size else cv2.INTER_LINEAR
        out = np.empty((len(frames), self.size, self.size), dtype=frames.dtype)
        for t, frame in enumerate(frames):  # per frame: multi-channel cv2 paths round differently
            out[t] = cv2.resize(np.ascontiguousarray(frame), (self.size, self.size), interpolation=interpolation)
        clip.frames = out
        return clip
