"""``FitSummary``: where a ``fit``'s wall time went, printed when training ends.

A time-budgeted run (``trainer.max_time``, as in the CPU demo) is only as good as the share of its
budget spent in optimizer steps; the rest is waiting for data, validation, checkpoints and logging.
This callback measures the share from the training loop's own hooks, so nothing is inferred:

- *step*: ``on_train_batch_start`` -> ``on_train_batch_end`` (forward, backward, optimizer update and
  the step's logging; Lightning runs checkpoint callbacks after this one);
- *validation*: ``on_validation_start`` -> ``on_validation_end`` inside ``fit``;
- *other*: everything else between ``on_train_start`` and ``on_train_end`` (waiting for the next batch,
  checkpoint writes, epoch-end hooks).
"""
from __future__ import annotations

import time
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_info

__all__ = ["FitSummary"]


class FitSummary(pl.Callback):
    """Counts updates, utterances and the time spent in steps and validation during ``fit``.

    After training, :attr:`summary` holds ``updates``, ``utterances``, ``wall_s``, ``step_s``,
    ``validation_s``, ``other_s``, ``utt_per_s`` and ``step_share``; with ``verbose`` it is printed.
    """

    def __init__(self, verbose: bool = True) -> None:
        self.verbose = verbose
        self.summary: dict[str, float] = {}
        self._reset()

    def _reset(self) -> None:
        self._t0 = self._batch_t0 = self._val_t0 = None
        self._step_s = self._val_s = 0.0
        self._utterances = 0
        self._step0 = 0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._reset()
        self._t0 = time.perf_counter()
        self._step0 = int(trainer.global_step)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self._batch_t0 = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self._batch_t0 is not None:
            self._step_s += time.perf_counter() - self._batch_t0
            self._batch_t0 = None
        try:
            self._utterances += len(batch)
        except TypeError:
            pass

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == "fit":
            self._val_t0 = time.perf_counter()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._val_t0 is not None:
            self._val_s += time.perf_counter() - self._val_t0
            self._val_t0 = None

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._t0 is None:
            return
        wall = max(time.perf_counter() - self._t0, 1e-9)
        updates = int(trainer.global_step) - self._step0
        self.summary = {
            "updates": float(updates), "utterances": float(self._utterances), "wall_s": wall,
            "step_s": self._step_s, "validation_s": self._val_s,
            "other_s": max(0.0, wall - self._step_s - self._val_s),
            "utt_per_s": self._utterances / wall, "step_share": self._step_s / wall,
        }
        if self.verbose:
            rank_zero_info(self.format())

    def format(self) -> str:
        s = self.summary
        if not s:
            return "fit summary: training did not start"
        return (f"fit summary: {int(s['updates'])} updates, {int(s['utterances'])} utterances in {s['wall_s']:.1f} s "
                f"({s['utt_per_s']:.2f} utt/s); optimizer steps {100 * s['step_share']:.1f}% of the wall time "
                f"({s['step_s']:.1f} s), validation {100 * s['validation_s'] / s['wall_s']:.1f}% "
                f"({s['validation_s']:.1f} s), data wait/checkpoints/other {100 * s['other_s'] / s['wall_s']:.1f}% "
                f"({s['other_s']:.1f} s)")
