"""Test-only fault injection, switched on by environment variables (off otherwise; docs/training.md).

The kill and elastic-restart tests (tests/training/test_kill.py, tests/training/test_torchrun.py) need a
worker to die at a chosen step of a real CLI or ``torchrun`` run. :class:`AVSRModule` adds this callback
from ``configure_callbacks`` only when ``AVSR_FAULT_AT_STEP`` is set, so it costs nothing otherwise.

- ``AVSR_FAULT_AT_STEP=k``: fault when training batch ``k`` is about to start (``k`` updates are done and
  their checkpoints written);
- ``AVSR_FAULT_MODE``: ``kill`` (SIGKILL itself: no cleanup, no exception handlers; the default) or
  ``raise`` (a :class:`InjectedFault` exception, as a crashing worker);
- ``AVSR_FAULT_ONCE=<file>``: fault only if ``<file>`` does not exist, and create it first (so a
  restarted worker does not crash again);
- ``AVSR_FAULT_RANK=r``: fault only on global rank ``r`` (default: every rank).
"""
from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any, Optional

import lightning as L

__all__ = ["FaultInjection", "InjectedFault", "fault_from_env"]

ENV_STEP, ENV_MODE, ENV_ONCE, ENV_RANK = "AVSR_FAULT_AT_STEP", "AVSR_FAULT_MODE", "AVSR_FAULT_ONCE", "AVSR_FAULT_RANK"


class InjectedFault(RuntimeError):
    """The crash asked for by ``AVSR_FAULT_AT_STEP`` with ``AVSR_FAULT_MODE=raise``."""


class FaultInjection(L.Callback):
    def __init__(self, step: int, mode: str = "kill", once: Optional[str] = None, rank: Optional[int] = None) -> None:
        if mode not in ("kill", "raise"):
            raise ValueError(f"{ENV_MODE} must be 'kill' or 'raise', got {mode!r}")
        self.step, self.mode, self.once, self.rank = int(step), mode, once, rank

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if trainer.global_step != self.step or (self.rank is not None and trainer.global_rank != self.rank):
            return
        if self.once is not None:
            marker = Path(self.once)
            if marker.exists():
                return
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(f"fault at step {self.step}\n")
        print(f"[fault injection] {self.mode} at global step {self.step} (rank {trainer.global_rank})", flush=True)
        if self.mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise InjectedFault(f"injected fault at global step {self.step} ({ENV_STEP})")


def fault_from_env() -> Optional[FaultInjection]:
    """The callback described by the ``AVSR_FAULT_*`` variables, or None when ``AVSR_FAULT_AT_STEP`` is unset."""
    step = os.environ.get(ENV_STEP)
    if not step:
        return None
    rank = os.environ.get(ENV_RANK)
    return FaultInjection(int(step), os.environ.get(ENV_MODE, "kill"), os.environ.get(ENV_ONCE) or None,
                          int(rank) if rank else None)
