"""The per-utterance record (:class:`Clip`), the :class:`Transform` interface and the context a data module
binds transforms to (:class:`PipelineContext`). docs/data.md, "Transform pipeline", describes the design.

A pipeline is an ordered list of small transforms, each ``clip = transform(clip, rng)``. ``rng`` is the
utterance's numpy Generator in training (seeded by ``(seed, id, "train:<epoch>")``, shared by the whole list,
so the order of the list *is* the order of the random draws) and ``None`` in evaluation, where corruption
comes only from :class:`~avsr_lightning.data.transforms.corruption.TestCondition` (seeded by
``(seed, id, condition)``).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Optional, Sequence

import numpy as np
import torch

from avsr_lightning.data.conditions import Condition


@dataclass
class Clip:
    """One utterance on its way through a pipeline.

    ``frames``: uint8 (T, H, W) grey lip crops until a video transform turns them into a float tensor
    (``Normalize``); ``audio``: float32 (N,) at 16 kHz, a float tensor after ``AudioNormalize``; either is
    ``None`` when that stream is not used. ``condition`` and ``notes`` end up in the sample (and the batch).
    ``num_frames`` is set by ``MatchAudioToVideo`` (None before). ``landmarks`` are loaded on first use.
    ``epoch`` is the training epoch the clip is drawn for (0 in evaluation), for steps that change with it.
    """

    id: str
    frames: np.ndarray | torch.Tensor | None
    audio: np.ndarray | torch.Tensor | None
    condition: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    train: bool = False
    paths: dict[str, Any] = field(default_factory=dict)
    num_frames: int | None = None
    load_landmarks: Callable[[], Any] | None = None
    epoch: int = 0
    _landmarks: Any = None

    @property
    def landmarks(self) -> Any:
        """The utterance's aligned landmarks (loaded once; raises ``LandmarkError`` when missing)."""
        if self._landmarks is None:
            if self.load_landmarks is None:
                raise ValueError(f"clip {self.id}: landmarks are needed but no loader was given")
            self._landmarks = self.load_landmarks()
        return self._landmarks


@dataclass
class PipelineContext:
    """What a transform may need from the data module, given once per dataset through :meth:`Transform.bind`.

    ``noise_files`` are the training noises, ``eval_noise_files`` the val/test noises (unheard in training
    when the corpus has ``noise/eval/``); ``make_mixer(snrs, partial, files)`` and ``make_occluders(dir)``
    build the seeded corruption objects; ``corpus_stats()`` returns the corpus' recorded pixel statistics.
    """

    root: Any = None
    seed: int = 0
    modalities: tuple[str, ...] = ("video", "audio")
    train: bool = False
    condition: Condition = field(default_factory=Condition)
    noise_files: Sequence[Any] = ()
    eval_noise_files: Sequence[Any] = ()
    occluder_dir: Any = None
    reference_quirks: bool = False
    test_occluder_size: int = 42
    volume_db: Optional[tuple[float, float]] = None
    make_mixer: Optional[Callable[..., Any]] = None
    make_occluders: Optional[Callable[..., Any]] = None
    corpus_stats: Optional[Callable[[], dict[str, float]]] = None


class Transform:
    """Base class of pipeline steps: ``__call__(clip, rng) -> clip``; ``bind(context)`` resolves defaults
    that depend on the corpus (noise files, occluders, pixel statistics) before the first call.

    ``aligned_audio = True`` marks steps that expect audio already cut/padded to the video length; a data
    module inserts ``MatchAudioToVideo`` before the first of them when a pipeline has none.
    """

    aligned_audio: ClassVar[bool] = False

    def bind(self, context: PipelineContext) -> None:  # noqa: B027 - optional hook
        """Resolve corpus-dependent settings; the default needs nothing."""

    def __call__(self, clip: Clip, rng: np.random.Generator | None) -> Clip:
        raise NotImplementedError

    def __repr__(self) -> str:
        public = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in public.items())})"


def bound_pipeline(transforms: Sequence[Transform], context: PipelineContext) -> list[Transform]:
    """Shallow copies of ``transforms`` bound to ``context``: one list object per dataset, so val and every
    test condition can share the YAML list while each binds its own noise, occluders and condition."""
    from avsr_lightning.data.transforms.audio import MatchAudioToVideo

    steps = [copy.copy(t) for t in transforms]
    for step in steps:
        if not isinstance(step, Transform):
            raise TypeError(f"pipeline step {step!r} is not an avsr_lightning.data.transforms.Transform; give "
                            f"class_path/init_args of a Transform subclass (docs/data.md)")
    if not any(isinstance(t, MatchAudioToVideo) for t in steps):
        first = next((i for i, t in enumerate(steps) if t.aligned_audio), len(steps))
        steps.insert(first, MatchAudioToVideo())
    for step in steps:
        step.bind(context)
    return steps


def run_pipeline(steps: Sequence[Transform], clip: Clip, rng: np.random.Generator | None) -> Clip:
    for step in steps:
        clip = step(clip, rng)
    return clip
