"""Samples → one padded :class:`AVBatch`. Bad items are dropped here and handed on (``CollatedBatch.bad_items``)
so the data module, in the main process, can warn once per item, count them per epoch and enforce the
bad-fraction limit; the model only ever sees good utterances.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Sequence

import torch
from torch.utils.data import Dataset

from avsr_lightning.batch import SAMPLES_PER_FRAME, AVBatch
from avsr_lightning.data.dataset import BadItem, Sample


@dataclass
class CollatedBatch(AVBatch):
    """An :class:`AVBatch` plus what the loader noticed: dropped ``bad_items`` and per-sample ``notes``.

    :meth:`to_avbatch` strips the extras; the data module does it in ``on_before_batch_transfer``.
    """

    bad_items: list[BadItem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_avbatch(self) -> AVBatch:
        names = {f.name for f in fields(AVBatch)}
        return AVBatch(**{name: getattr(self, name) for name in names})

    def to(self, device, non_blocking: bool = False) -> "CollatedBatch":
        moved = self.to_avbatch().to(device, non_blocking=non_blocking)
        return CollatedBatch(**{f.name: getattr(moved, f.name) for f in fields(AVBatch)},
                             bad_items=self.bad_items, notes=self.notes)


def pad_samples(samples: Sequence[Sample]) -> AVBatch:
    """Zero-pad video (B, T, H, W) and audio (B, 640*T); targets padded with -1."""
    if not samples:
        raise ValueError("cannot collate an empty list of samples")
    batch_size = len(samples)
    frames = torch.tensor([s.num_frames for s in samples], dtype=torch.long)
    t_max = int(frames.max())
    video = None
    if samples[0].video is not None:
        h, w = samples[0].video.shape[1:]
        video = torch.empty(batch_size, t_max, h, w, dtype=torch.float32)  # only the padding is zeroed
        for i, s in enumerate(samples):
            video[i, : s.video.shape[0]] = s.video
            video[i, s.video.shape[0]:] = 0.0
    audio = None
    if samples[0].audio is not None:
        audio = torch.empty(batch_size, t_max * SAMPLES_PER_FRAME, dtype=torch.float32)
        for i, s in enumerate(samples):
            audio[i, : s.audio.shape[0]] = s.audio
            audio[i, s.audio.shape[0]:] = 0.0
    target_lengths = torch.tensor([len(s.targets) for s in samples], dtype=torch.long)
    targets = torch.full((batch_size, max(1, int(target_lengths.max()))), -1, dtype=torch.long)
    for i, s in enumerate(samples):
        targets[i, : len(s.targets)] = s.targets
    return AVBatch(video=video, video_lengths=frames, audio=audio, audio_lengths=frames * SAMPLES_PER_FRAME,
                   targets=targets, target_lengths=target_lengths, ids=[s.id for s in samples],
                   texts=[s.text for s in samples], conditions=[dict(s.condition) for s in samples])


class Collator:
    """DataLoader ``collate_fn``: drops bad items; if a whole batch is bad, it loads replacement utterances
    (the next indices, deterministically) so a batch is always produced and never empty. Replacements are
    marked ``replacement: true`` in their condition."""

    def __init__(self, dataset: Dataset | None = None, max_replacement_tries: int = 32,
                 eligible: Sequence[int] | None = None) -> None:
        self.dataset = dataset
        self.max_replacement_tries = max_replacement_tries
        # replacements come only from these indices (what the sampler may draw), so an utterance excluded at
        # setup (unreadable, too long) is never loaded or trained on through the back door
        self.eligible = sorted(int(i) for i in eligible) if eligible is not None else None

    def _candidates(self, start: int) -> list[int]:
        n = len(self.dataset)  # type: ignore[arg-type]
        pool = self.eligible if self.eligible is not None else list(range(n))
        if not pool:
            return []
        first = next((j for j, i in enumerate(pool) if i > start), 0)
        ordered = [i for i in pool[first:] + pool[:first] if i != start]
        return ordered[: self.max_replacement_tries]

    def __call__(self, items: Sequence[Sample | BadItem]) -> CollatedBatch:
        good = [x for x in items if isinstance(x, Sample)]
        bad = [x for x in items if isinstance(x, BadItem)]
        if not good and self.dataset is not None and bad:
            for index in self._candidates(bad[0].index):
                candidate = self.dataset[index]
                if isinstance(candidate, Sample):
                    candidate.condition["replacement"] = True
                    good.append(candidate)
                    break
                bad.append(candidate)
        if not good:
            reasons = "; ".join(b.message() for b in bad[:5])
            raise RuntimeError(f"no loadable utterance among {len(bad)} tried: {reasons}")
        batch = pad_samples(good)
        notes = [note for s in good for note in s.notes]
        return CollatedBatch(**{f.name: getattr(batch, f.name) for f in fields(AVBatch)}, bad_items=bad, notes=notes)


def collate(items: Sequence[Sample | BadItem]) -> CollatedBatch:
    """Functional form of :class:`Collator` without replacement."""
    return Collator()(items)
