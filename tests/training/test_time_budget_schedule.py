"""``TimeBudgetSchedule``: the cosine schedule ends when ``max_time`` does, whatever the machine's speed.

A toy module whose step sleeps a fixed time stands in for a machine of known speed; two speeds, one
schedule written for the wrong length: with the callback the schedule's end lands on the last update
(and the learning rate reaches its floor there), without it the schedule stays as written.
"""
from __future__ import annotations

import time

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.demos.boring_classes import BoringModel

from avsr_lightning.callbacks import TimeBudgetSchedule
from avsr_lightning.schedules import WarmupCosineLR

WRITTEN_FOR = 1000  # the recipe's guess: far more updates than the budget allows at either speed


class _Timed(BoringModel):
    def __init__(self, step_s: float) -> None:
        super().__init__()
        self.step_s = step_s
        self.lrs: list[float] = []

    def training_step(self, batch, batch_idx):
        time.sleep(self.step_s)
        self.lrs.append(self.trainer.optimizers[0].param_groups[0]["lr"])
        return super().training_step(batch, batch_idx)

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.1)
        sched = WarmupCosineLR(opt, warmup_steps=5, total_steps=WRITTEN_FOR, min_lr_ratio=0.05)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def _fit(tmp_path, step_s: float, enabled: bool, seconds: float = 2.5):
    model = _Timed(step_s)
    callback = TimeBudgetSchedule(enabled=enabled, every=5, window=30)
    trainer = pl.Trainer(max_time={"seconds": seconds}, max_epochs=-1, accelerator="cpu", devices=1,
                         callbacks=[callback], logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_val_batches=0, default_root_dir=tmp_path)
    trainer.fit(model)
    return trainer, model, trainer.lr_scheduler_configs[0].scheduler


@pytest.mark.parametrize("step_s", [0.01, 0.025])
def test_schedule_is_resized_to_the_updates_the_budget_allows(tmp_path, step_s):
    trainer, model, sched = _fit(tmp_path, step_s, enabled=True)
    made = trainer.global_step
    assert 30 < made < WRITTEN_FOR / 2
    # the last estimate is taken at most `every` updates before the end, from the measured rate
    assert abs(sched.total_steps - made) <= max(10, 0.15 * made), (sched.total_steps, made)
    assert model.lrs[-1] < 0.3 * max(model.lrs)  # decayed near its floor by the end of the budget


def test_disabled_leaves_the_written_schedule(tmp_path):
    trainer, model, sched = _fit(tmp_path, 0.01, enabled=False, seconds=1.0)
    assert sched.total_steps == WRITTEN_FOR
    assert model.lrs[-1] > 0.9 * max(model.lrs)  # the written schedule has barely begun to decay


def test_enabled_without_a_time_budget_keeps_the_written_schedule(tmp_path):
    model = _Timed(0.0)
    trainer = pl.Trainer(max_steps=12, accelerator="cpu", devices=1,
                         callbacks=[TimeBudgetSchedule(enabled=True, every=5, window=5)],
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_val_batches=0, default_root_dir=tmp_path)
    trainer.fit(model)
    assert trainer.lr_scheduler_configs[0].scheduler.total_steps == WRITTEN_FOR


def test_enabled_without_a_step_schedule_fails_fast(tmp_path):
    class _NoSchedule(_Timed):
        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    trainer = pl.Trainer(max_time={"seconds": 5}, accelerator="cpu", devices=1,
                         callbacks=[TimeBudgetSchedule(enabled=True)], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                         default_root_dir=tmp_path)
    with pytest.raises(ValueError, match="WarmupCosineLR"):
        trainer.fit(_NoSchedule(0.0))


def test_bad_arguments_name_the_values():
    with pytest.raises(ValueError, match="every=0"):
        TimeBudgetSchedule(every=0)
