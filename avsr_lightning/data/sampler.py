"""``FrameBudgetBatchSampler``: length-bucketed batches under a padded-frame budget, DDP-aware, reshuffled
every epoch.

Per epoch (all ranks compute the same plan from ``(seed, epoch)``):

1. keep utterances up to the epoch's maximum length (curriculum, optional);
2. sort by length multiplied by a small random jitter, so neighbours change between epochs while
   lengths inside a batch stay close (little padding);
3. cut the sorted order greedily into batches whose *padded* size ``len(batch) * max_len`` fits
   ``max_frames`` (or fixed ``batch_size`` batches);
4. shuffle the batch order; if the number of batches is not a multiple of the world size, split the
   largest batches in two (no utterance is duplicated; only with fewer utterances than ranks is one
   repeated); rank r takes batches r, r+W, r+2W, ...

Yields lists of ``(index, epoch)`` so the dataset can seed training augmentation without worker state.
"""
from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


def _dist_info() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


class FrameBudgetBatchSampler(Sampler[list[tuple[int, int]]]):
    """Args:
        lengths: video frames per dataset index (None entries are excluded and must be reported by the caller).
        max_frames: padded-frame budget per batch (``batch_size * longest``); exclusive with ``batch_size``.
        batch_size: fixed batch size instead of a budget (still length-sorted when ``bucketed``).
        shuffle: reshuffle every epoch (training); False gives a deterministic length-sorted order.
        seed: base seed; the plan of epoch e depends only on (seed, e).
        num_replicas, rank: DDP world size and rank (default: from ``torch.distributed`` if initialised).
        max_length: drop longer utterances (e.g. 600 frames), counted in ``num_too_long``.
        curriculum: ``[[epoch, max_length], ...]``: from that epoch on, only utterances up to max_length
            (the reference's 0_100 → 0_600 splits as one option).
        jitter: relative length jitter for the sort key (0 = strictly sorted, same batches every epoch).
        bucketed: sort by length (True) or shuffle freely (False, the fixed-size baseline).
    """

    def __init__(self, lengths: Sequence[int | None], max_frames: int | None = None, batch_size: int | None = None,
                 shuffle: bool = True, seed: int = 0, num_replicas: int | None = None, rank: int | None = None,
                 max_length: int | None = None, curriculum: Sequence[Sequence[int]] | None = None,
                 jitter: float = 0.1, bucketed: bool = True, drop_last: bool = False) -> None:
        if (max_frames is None) == (batch_size is None):
            raise ValueError(f"give exactly one of max_frames (frame budget) or batch_size; got max_frames={max_frames},"
                             f" batch_size={batch_size}")
        if max_frames is not None and max_frames <= 0:
            raise ValueError(f"max_frames must be > 0, got {max_frames}")
        if batch_size is not None and batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {batch_size}")
        world, this_rank = _dist_info()
        self.num_replicas = int(num_replicas if num_replicas is not None else world)
        self.rank = int(rank if rank is not None else this_rank)
        if not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"rank must be in [0, {self.num_replicas}), got {self.rank}")
        self.lengths = np.array([-1 if n is None else int(n) for n in lengths], dtype=np.int64)
        self.max_frames = max_frames
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = int(seed)
        self.max_length = max_length
        self.curriculum = sorted((int(e), int(m)) for e, m in curriculum) if curriculum else None
        self.jitter = float(jitter)
        self.bucketed = bucketed
        self.drop_last = drop_last
        self.epoch = 0
        self._plan_cache: tuple[int, list[list[int]]] | None = None
        self._skip = 0

    # ------------------------------------------------------------------------------------------- plan
    def max_length_at(self, epoch: int) -> int | None:
        limit = self.max_length
        if self.curriculum:
            current = None
            for start, m in self.curriculum:
                if epoch >= start:
                    current = m
            if current is not None:
                limit = current if limit is None else min(limit, current)
        return limit

    def eligible(self, epoch: int) -> np.ndarray:
        limit = self.max_length_at(epoch)
        ok = self.lengths >= 0
        if limit is not None:
            ok &= self.lengths <= limit
        if self.max_frames is not None:
            ok &= self.lengths <= self.max_frames
        return np.flatnonzero(ok)

    @property
    def num_too_long(self) -> int:
        """Utterances excluded at the final length limit (report these; they are not silently lost)."""
        return int(((self.lengths >= 0).sum()) - len(self.eligible(10**9)))

    def _batches(self, epoch: int) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, epoch])
        idx = self.eligible(epoch)
        if len(idx) == 0:
            return []
        lengths = self.lengths[idx].astype(np.float64)
        if self.bucketed:
            key = lengths * (np.exp(rng.uniform(-self.jitter, self.jitter, len(idx))) if self.shuffle else 1.0)
            order = idx[np.lexsort((rng.permutation(len(idx)) if self.shuffle else idx, key))]
        else:
            order = rng.permutation(idx) if self.shuffle else idx
        batches: list[list[int]] = []
        current: list[int] = []
        longest = 0
        for i in order:
            n = int(self.lengths[i])
            if current:
                full = (len(current) >= self.batch_size) if self.batch_size else \
                    (max(longest, n) * (len(current) + 1) > self.max_frames)
                if full:
                    batches.append(current)
                    current, longest = [], 0
            current.append(int(i))
            longest = max(longest, n)
        if current and not (self.drop_last and self.batch_size and len(current) < self.batch_size):
            batches.append(current)
        if self.shuffle:
            perm = rng.permutation(len(batches))
            batches = [batches[p] for p in perm]
        return self._balance(batches)

    def _balance(self, batches: list[list[int]]) -> list[list[int]]:
        """Make the number of batches a multiple of the world size by splitting the largest batches."""
        w = self.num_replicas
        while len(batches) % w and any(len(b) > 1 for b in batches):
            k = max(range(len(batches)), key=lambda j: (len(batches[j]), -j))
            b = batches[k]
            batches[k:k + 1] = [b[: len(b) // 2], b[len(b) // 2:]]
        if len(batches) % w:  # fewer utterances than ranks: the minimal padding by repetition
            if self.drop_last:
                batches = batches[: len(batches) - len(batches) % w]
            else:
                pad = w - len(batches) % w
                batches = batches + [list(batches[j % len(batches)]) for j in range(pad)]
        return batches

    def plan(self, epoch: int | None = None) -> list[list[int]]:
        """All ranks' batches for ``epoch`` (rank r gets ``plan[r::world]``); cached per epoch."""
        epoch = self.epoch if epoch is None else epoch
        if self._plan_cache is None or self._plan_cache[0] != epoch:
            self._plan_cache = (epoch, self._batches(epoch))
        return self._plan_cache[1]

    def rank_batches(self, epoch: int | None = None) -> list[list[int]]:
        return self.plan(epoch)[self.rank::self.num_replicas]

    # -------------------------------------------------------------------------------- Sampler API
    @property
    def sampler(self) -> "_EpochForwarder":
        """Lightning calls ``dataloader.batch_sampler.sampler.set_epoch(e)`` each epoch; forward it here."""
        return _EpochForwarder(self)

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning (and by hand in plain loops) before every epoch."""
        if int(epoch) != self.epoch:
            self._skip = 0
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch = self.epoch
        batches = self.rank_batches(epoch)
        skip, self._skip = self._skip, 0
        for batch in batches[skip:]:
            yield [(i, epoch) for i in batch]

    def __len__(self) -> int:
        return len(self.rank_batches())

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any], batches_done: int = 0) -> None:
        """Restore the epoch (and optionally skip ``batches_done`` batches of it on the next iteration)."""
        self.seed = int(state.get("seed", self.seed))
        self.epoch = int(state.get("epoch", 0))
        self._skip = int(batches_done)

    # ---------------------------------------------------------------------------------- statistics
    def padding_waste(self, epoch: int | None = None) -> float:
        """Padded frames / total frames (valid + padding) over all ranks' batches of an epoch."""
        total = valid = 0
        for b in self.plan(epoch):
            lens = self.lengths[b]
            total += int(lens.max()) * len(b)
            valid += int(lens.sum())
        return 0.0 if total == 0 else (total - valid) / total


class _EpochForwarder:
    def __init__(self, owner: FrameBudgetBatchSampler) -> None:
        self.owner = owner

    def set_epoch(self, epoch: int) -> None:
        self.owner.set_epoch(epoch)


def fixed_size_batches_waste(lengths: Sequence[int], batch_size: int, seed: int = 0) -> float:
    """Padding waste of shuffled fixed-size batches (the reference's loader), for comparison."""
    lengths = np.asarray(lengths)
    order = np.random.default_rng(seed).permutation(len(lengths))
    total = valid = 0
    for start in range(0, len(order), batch_size):
        lens = lengths[order[start:start + batch_size]]
        total += int(lens.max()) * len(lens)
        valid += int(lens.sum())
    return (total - valid) / total if total else 0.0

