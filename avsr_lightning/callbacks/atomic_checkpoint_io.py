"""Checkpoint writes that are never half-finished, and checkpoint reads that never run code.

Writes: Lightning's ``TorchCheckpointIO`` ends in ``lightning.fabric.utilities.cloud_io._atomic_save``:
it serialises into memory, then writes inside an ``fsspec`` transaction. For local paths fsspec's
``LocalFileOpener`` writes to ``tempfile.mkstemp()`` - the *system* temp directory - and commits with
``shutil.move``, which falls back to copying into the final path when ``/tmp`` is on another file system
(usual on clusters); a kill can interrupt that copy. This plugin writes through the project's one
durable-write helper (avsr_lightning/durable.py: unique temp in the same directory, fsync, rename, fsync
the directory), so a reader sees either the previous checkpoint or the new one. Remote URLs keep
Lightning's behaviour.

Reads: every ``--ckpt_path`` (fit/validate/test/predict) goes through
:func:`avsr_lightning.weights.read_checkpoint` (``weights_only=True``; one-line errors naming the file).
A reference-format ``{'state_dict': ...}`` or bare state dict is wrapped into the Lightning layout
(``model.`` prefix, a version stamp) so ``validate``/``test``/``predict --ckpt_path`` accept it, as
README.md promises; resuming *training* from it is refused by Lightning (no optimizer state).

:class:`AVSRModule` installs this plugin itself (``setup``) when the trainer uses the plain
``TorchCheckpointIO``, so users of their own ``Trainer`` get it too (docs/training.md).
"""
from __future__ import annotations

import io
import os
import signal
from pathlib import Path
from typing import Any, Callable, Optional

import lightning
import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

from avsr_lightning.durable import durable_path

__all__ = ["AtomicCheckpointIO", "atomic_torch_save", "read_lightning_checkpoint", "FAULT_KILL_IN_WRITE"]

#: test-only fault injection (tests/training/test_kill.py): when set to N, the N-th checkpoint save of
#: the process writes half of the serialised checkpoint into its temporary file and SIGKILLs the process.
FAULT_KILL_IN_WRITE = "AVSR_FAULT_KILL_IN_CKPT_WRITE"
_saves = 0


def _write(buffer: memoryview, f: Any) -> None:
    global _saves
    _saves += 1
    fault = os.environ.get(FAULT_KILL_IN_WRITE)
    if fault and int(fault) == _saves:
        f.write(buffer[: len(buffer) // 2])
        f.flush()
        os.fsync(f.fileno())
        os.kill(os.getpid(), signal.SIGKILL)
    f.write(buffer)
    f.flush()


def atomic_torch_save(obj: Any, path: _PATH) -> None:
    """``torch.save`` into memory, then durably onto ``path`` (avsr_lightning/durable.py)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with durable_path(Path(path)) as tmp:
        with open(tmp, "wb") as f:
            _write(buffer.getbuffer(), f)


def read_lightning_checkpoint(path: _PATH, reader: Optional[Callable[[Any], Any]] = None) -> dict[str, Any]:
    """Read ``path`` with ``weights_only=True`` and return it in Lightning's layout.

    Lightning checkpoints come back as they are; a reference ``{'state_dict': ...}`` or a bare state dict
    gets the ``model.`` prefix and a ``pytorch-lightning_version`` stamp (Lightning's migration step
    needs one). Anything else raises :class:`~avsr_lightning.weights.CheckpointError` naming the file.
    """
    from avsr_lightning.weights.load import CheckpointError, read_checkpoint, split_checkpoint

    obj = (reader or read_checkpoint)(path)
    if isinstance(obj, dict) and "pytorch-lightning_version" in obj:
        return obj
    state, _, kind = split_checkpoint(obj, source=os.fspath(path))
    if kind == "lightning":  # a Lightning-shaped dict without the version stamp
        return {**obj, "pytorch-lightning_version": lightning.__version__}
    if not state:
        raise CheckpointError(f"{os.fspath(path)}: the checkpoint holds no weights")
    return {"state_dict": {f"model.{k}": v for k, v in state.items()},
            "pytorch-lightning_version": lightning.__version__}


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` with durable saves for local paths and hardened ``weights_only`` loads."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Optional[Any] = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO does not take storage_options; got "
                            f"{storage_options!r}. Use a custom CheckpointIO for remote storage options.")
        if not isinstance(get_filesystem(path), LocalFileSystem):
            return super().save_checkpoint(checkpoint, path, storage_options)
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(self, path: _PATH, map_location: Optional[Callable] = None,
                        weights_only: Optional[bool] = None) -> dict[str, Any]:
        if weights_only is False:
            raise ValueError(f"AtomicCheckpointIO loads every checkpoint with weights_only=True; refusing "
                             f"weights_only=False for {path}")
        if not isinstance(get_filesystem(path), LocalFileSystem):
            return super().load_checkpoint(path, map_location=map_location, weights_only=True)
        return read_lightning_checkpoint(path)
