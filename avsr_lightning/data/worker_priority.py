"""Data workers that yield the CPU to the training step on a machine without a spare core.

Why: on a small CPU (the demo's two cores) the step's intra-op threads use every core, and a data worker then
competes with them. A parallel region of the step finishes when its slowest thread does, so each time the
scheduler gives a core to the worker, the whole region waits. With a higher nice value the kernel runs the
worker mostly in the gaps the step leaves (its single-threaded Python, the optimizer, the logging), and the
prefetched batches it keeps ready hide its delays. On a machine with spare cores the value changes nothing.
Measured numbers: docs/demo.md, "Where the time goes".
"""
from __future__ import annotations

import os
from typing import Callable, Optional

__all__ = ["LowPriorityWorkerInit"]


class LowPriorityWorkerInit:
    """``worker_init_fn``: raise the worker's nice value by ``nice`` (``os.nice``), then run ``inner``.

    Args:
        inner: the loader's own worker initialisation (e.g. :class:`~avsr_lightning.data.worker_seed.WorkerSeeder`).
        nice: 0 = unchanged priority, up to 19 = run only when a core would otherwise idle (mostly).
    """

    def __init__(self, inner: Optional[Callable[[int], None]], nice: int) -> None:
        if not 0 <= int(nice) <= 19:
            raise ValueError(f"worker nice value {nice} is outside 0..19: use 0 (unchanged) to 19 (lowest priority)")
        self.inner, self.nice = inner, int(nice)

    def __call__(self, worker_id: int) -> None:
        if self.nice:
            os.nice(self.nice)
        if self.inner is not None:
            self.inner(worker_id)
