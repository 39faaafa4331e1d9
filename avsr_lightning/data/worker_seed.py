"""Data-loader randomness that never depends on the training process's global RNG (docs/training.md, "Resume").

Two sources would otherwise break a bit-exact resume:

- ``iter(DataLoader)`` draws the workers' base seed from the *global* torch generator when the loader has
  no ``generator`` of its own. That draw happens at different moments in an uninterrupted and in a
  resumed run (e.g. the resumed run builds its first iterator before the RNG states are restored), so
  the model's dropout stream would shift. :func:`loader_generator` gives each loader its own generator.
- worker processes start with RNG states derived from that base seed. :class:`WorkerSeeder` re-seeds
  Python/numpy/torch in each worker from ``(seed, epoch at worker start, rank, worker id)``.

The data pipeline itself draws only from per-item generators seeded by ``(seed, utterance id, epoch)``
(docs/data.md), so worker RNG state never changes a batch; the seeding above makes that true even for
code that reaches for a global generator.
"""
from __future__ import annotations

import random
from typing import Callable

import numpy as np
import torch

__all__ = ["loader_generator", "WorkerSeeder"]


def loader_generator(seed: int) -> torch.Generator:
    """A CPU generator of the loader's own, so iterating the loader never touches the global RNG."""
    g = torch.Generator()
    g.manual_seed(int(seed) & 0xFFFF_FFFF_FFFF)
    return g


class WorkerSeeder:
    """``worker_init_fn`` seeding every global generator of a worker from (seed, epoch, rank, worker id).

    ``epoch`` is read from ``epoch_of()`` when the loader builds its workers (pickled with the loader for
    ``spawn``; with ``fork`` the current value is inherited), i.e. the epoch the workers start in.
    """

    def __init__(self, seed: int, rank: int, epoch_of: Callable[[], int]) -> None:
        self.seed, self.rank, self.epoch_of = int(seed), int(rank), epoch_of
        self.epoch = 0

    def __call__(self, worker_id: int) -> None:
        epoch = int(self.epoch_of()) if self.epoch_of is not None else self.epoch
        ss = np.random.SeedSequence([self.seed, epoch, self.rank, int(worker_id)])
        s32, s64 = ss.generate_state(2, dtype=np.uint32), ss.generate_state(1, dtype=np.uint64)
        random.seed(int(s32[0]))
        np.random.seed(int(s32[1]))
        torch.manual_seed(int(s64[0]) & 0x7FFF_FFFF_FFFF_FFFF)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)  # spawn: capture the epoch now; the sampler does not travel
        state["epoch"] = int(self.epoch_of()) if self.epoch_of is not None else self.epoch
        state["epoch_of"] = None
        return state
