"""Learning-rate schedules, stepped once per optimizer update.

Both are ``torch.optim.lr_scheduler.LRScheduler`` subclasses, so a YAML file can name them as an
``LRSchedulerCallable`` (``class_path: avsr_lightning.schedules.NoamLR``) and the Lightning module
registers them with ``interval="step"``. Lightning only steps such a scheduler after a real optimizer
update, so with ``accumulate_grad_batches=k`` the schedule counts updates, not micro-batches - the same
counting as the reference's ``NoamOpt`` (spec §3.3).
"""
from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

__all__ = ["noam_lr", "warmup_cosine_factor", "NoamLR", "WarmupCosineLR"]


def noam_lr(step: int, d_model: int = 256, warmup_steps: int = 25000, factor: float = 1.0) -> float:
    """``factor * d_model^-0.5 * min(step^-0.5, step * warmup^-1.5)`` for update number ``step >= 1``.

    With the reference values (256, 25000, 1.0) the peak is ≈3.953e-4 at step 25000.
    """
    if step < 1:
        raise ValueError(f"noam_lr: step counts updates from 1, got {step}")
    return factor * d_model ** -0.5 * min(step ** -0.5, step * warmup_steps ** -1.5)


def warmup_cosine_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> float:
    """Multiplier of the base lr: linear 0→1 over ``warmup_steps`` updates, then cosine to ``min_ratio``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class NoamLR(LRScheduler):
    """The reference schedule (Adam + Noam). The optimizer's own ``lr`` is ignored: Noam sets it absolutely.

    Update ``k`` (counting from 1, as ``NoamOpt`` increments before computing) uses ``noam_lr(k)``.
    """

    def __init__(self, optimizer: Optimizer, d_model: int = 256, warmup_steps: int = 25000,
                 factor: float = 1.0, last_epoch: int = -1) -> None:
        if d_model <= 0 or warmup_steps <= 0 or factor <= 0:
            raise ValueError(f"NoamLR needs positive d_model, warmup_steps and factor; got "
                             f"d_model={d_model}, warmup_steps={warmup_steps}, factor={factor}")
        self.d_model, self.warmup_steps, self.factor = d_model, warmup_steps, factor
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        lr = noam_lr(self.last_epoch + 1, self.d_model, self.warmup_steps, self.factor)
        return [lr for _ in self.optimizer.param_groups]


class WarmupCosineLR(LRScheduler):
    """Linear warm-up then cosine decay of each group's base lr (the peers' AdamW recipe)."""

    def __init__(self, optimizer: Optimizer, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0,
                 last_epoch: int = -1) -> None:
        if warmup_steps < 1 or total_steps < warmup_steps:
            raise ValueError(f"WarmupCosineLR needs 1 <= warmup_steps <= total_steps; got "
                             f"warmup_steps={warmup_steps}, total_steps={total_steps}")
        if not 0.0 <= min_lr_ratio <= 1.0:
            raise ValueError(f"WarmupCosineLR min_lr_ratio must be in [0, 1], got {min_lr_ratio}")
        self.warmup_steps, self.total_steps, self.min_lr_ratio = warmup_steps, total_steps, min_lr_ratio
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        scale = warmup_cosine_factor(max(0, self.last_epoch), self.warmup_steps, self.total_steps,
                                     self.min_lr_ratio)
        return [base * scale for base in self.base_lrs]
