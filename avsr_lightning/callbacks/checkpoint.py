"""``ResumableModelCheckpoint``: ModelCheckpoint whose ``last.ckpt`` is always the newest state.

Lightning 2.6's ``ModelCheckpoint(save_last=True)`` only refreshes ``last.ckpt`` when a top-k file was
written in the same step (``on_validation_end``: "Only save last checkpoint if a checkpoint was actually
saved"), and defers ``every_n_train_steps`` saves until the monitored metric exists. Once ``val/wer``
stops improving, ``last.ckpt`` would then point back to the last improvement and a resume would lose
every update since. This subclass additionally writes ``last.ckpt`` after every validation and at every
``every_n_train_steps`` step, whatever the top-k decision.
"""
from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

__all__ = ["ResumableModelCheckpoint"]


class ResumableModelCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` (same arguments) with an always-fresh ``last.ckpt``."""

    def _refresh_last(self, trainer: L.Trainer) -> None:
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        every = self._every_n_train_steps
        if every >= 1 and trainer.global_step % every == 0 and self._defer_save_until_validation:
            self._refresh_last(trainer)  # top-k waits for val/wer; last.ckpt does not

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)
