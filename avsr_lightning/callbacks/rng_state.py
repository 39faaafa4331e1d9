"""Save the torch/CUDA/numpy/python RNG states in every checkpoint and restore them on resume.

Lightning restores weights, optimizer, schedulers and loop counters but not the random generators, so
dropout masks and augmentation after a resume would differ from an uninterrupted run. The states are
stored as tensors and plain Python values, so the checkpoint stays loadable with ``weights_only=True``.

The states are re-applied in ``on_train_start`` (after the sanity check, before the first resumed
batch is fetched), i.e. the next training batch sees the generators as they were when the checkpoint
was written. With data loaders that draw from the global generator between that save and the next
batch (e.g. ``num_workers > 0`` without an explicit loader ``generator``), bit-exactness additionally
needs a data pipeline that seeds itself per epoch, as the project's samplers do.
"""
from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch

__all__ = ["RNGStateCallback", "collect_rng_states", "apply_rng_states"]

_KEY = "avsr_rng_states"


def collect_rng_states() -> dict[str, Any]:
    """Current states of every generator, as tensors and plain Python values."""
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": np_name, "keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "cached_gaussian": float(np_gauss)},
        "python": {"version": version, "state": torch.tensor(py_state, dtype=torch.int64), "gauss": py_gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def apply_rng_states(states: dict[str, Any]) -> None:
    """Inverse of :func:`collect_rng_states`."""
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = states["python"]
    random.setstate((p["version"], tuple(int(x) for x in p["state"].tolist()), p["gauss"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class RNGStateCallback(L.Callback):
    """Per-rank RNG states in checkpoints (key ``avsr_rng_states``, one entry per global rank)."""

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        states = collect_rng_states()
        if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            gathered: list[Any] = [None] * trainer.world_size
            torch.distributed.all_gather_object(gathered, states)
            checkpoint[_KEY] = {rank: s for rank, s in enumerate(gathered)}
        else:
            checkpoint[_KEY] = {0: states}

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get(_KEY)
        if not saved:
            return
        # same world size: each rank gets its own states; otherwise rank 0's (still reproducible)
        self._pending = saved.get(trainer.global_rank, saved.get(0))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._pending is not None:
            apply_rng_states(self._pending)
            self._pending = None
