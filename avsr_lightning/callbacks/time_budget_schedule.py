"""``TimeBudgetSchedule``: size a step-based learning-rate schedule to the updates ``trainer.max_time`` allows.

A time-budgeted run (the CPU demo: ten minutes, whatever the step) makes as many updates as the machine
allows, and that number moves by ±20 % between machines and even between days on one machine. A cosine
schedule written for a fixed ``total_steps`` then either ends too early (the budget's last minutes at the
floor learning rate) or is cut off before it has decayed (the run stops at a high learning rate). This
callback keeps the rule ("warm up, then cosine to the floor when the budget ends") and measures the rest:
every ``every`` updates it takes the update rate over the last ``window`` updates (validation pauses
included, because they spend the same budget) and sets the scheduler's ``total_steps`` to the updates done
plus what the remaining time buys at that rate (docs/demo.md, "The schedule").

The schedule's length therefore depends on the machine's speed: two runs make the same updates with the
same learning rates only if their step times agree, which is already true of any ``max_time`` run. The
resized ``total_steps`` is part of the scheduler's state, so resuming from a checkpoint continues it.
"""
from __future__ import annotations

import time
from collections import deque
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.utilities import rank_zero_info

__all__ = ["TimeBudgetSchedule"]


class TimeBudgetSchedule(pl.Callback):
    """Resize the scheduler's ``total_steps`` to the updates left in ``trainer.max_time``.

    Args:
        enabled: off by default (fixed-length schedules stay as written); the demo recipes turn it on.
            Without ``trainer.max_time`` there is no budget to fit and the callback does nothing.
        every: re-estimate after every this many updates.
        window: updates over which the rate is measured (one epoch of the demo, so one validation).
    """

    def __init__(self, enabled: bool = False, every: int = 25, window: int = 150) -> None:
        if every < 1 or window < every:
            raise ValueError(f"TimeBudgetSchedule needs 1 <= every <= window; got every={every}, window={window}")
        self.enabled, self.every, self.window = enabled, every, window
        self._marks: deque[tuple[int, float]] = deque()
        self._timer: Timer | None = None
        self._scheduler: Any = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._marks.clear()
        if not self.enabled:
            return
        timers = [c for c in trainer.callbacks if isinstance(c, Timer)]
        if not timers:  # e.g. a recipe's budget overridden with --trainer.max_time null: a fixed-length run
            rank_zero_info("budget schedule: no trainer.max_time, the schedule keeps its written total_steps")
            return
        schedulers = [c.scheduler for c in trainer.lr_scheduler_configs
                      if hasattr(c.scheduler, "total_steps") and hasattr(c.scheduler, "warmup_steps")]
        if len(schedulers) != 1:
            raise ValueError(f"budget_schedule.enabled needs exactly one step schedule with total_steps and "
                             f"warmup_steps (e.g. avsr_lightning.schedules.WarmupCosineLR); found {len(schedulers)}")
        self._timer, self._scheduler = timers[0], schedulers[0]
        self._marks.append((int(trainer.global_step), time.monotonic()))

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self._scheduler is None:
            return
        step = int(trainer.global_step)
        if step % self.every or step == self._marks[-1][0]:
            return
        now = time.monotonic()
        self._marks.append((step, now))
        while len(self._marks) > 2 and step - self._marks[1][0] >= self.window:
            self._marks.popleft()
        first_step, first_t = self._marks[0]
        if now <= first_t:
            return
        rate = (step - first_step) / (now - first_t)
        remaining = self._timer.time_remaining("train")
        if remaining is None:
            return
        total = max(int(self._scheduler.warmup_steps), step + int(remaining * rate))
        if trainer.max_steps is not None and trainer.max_steps > 0:
            total = min(total, int(trainer.max_steps))
        self._scheduler.total_steps = total
        pl_module.log("train/schedule_total_steps", float(total), on_step=True, on_epoch=False)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._scheduler is not None:
            rank_zero_info(f"budget schedule: sized to {self._scheduler.total_steps} updates "
                           f"({int(trainer.global_step)} made)")
        self._scheduler = self._timer = None
