"""Checkpoint writes that are never half-finished, on any local file system.

Lightning's ``TorchCheckpointIO`` ends in ``lightning.fabric.utilities.cloud_io._atomic_save``: it
serialises into memory, then writes inside an ``fsspec`` transaction. For local paths fsspec's
``LocalFileOpener`` writes to ``tempfile.mkstemp()`` - the *system* temp directory - and commits with
``shutil.move`` (fsspec/implementations/local.py, ``LocalFileOpener._open``/``commit``). When ``/tmp``
is on another file system than the checkpoint directory (usual on clusters), ``shutil.move`` falls
back to copying into the final path, which a kill can interrupt. This plugin writes to a temporary
file in the *same* directory, ``fsync``s it and ``os.replace``s it into place (atomic on POSIX), so a
reader sees either the previous checkpoint or the new one. Remote URLs keep Lightning's behaviour.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Optional

import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

__all__ = ["AtomicCheckpointIO", "atomic_torch_save"]


def atomic_torch_save(obj: Any, path: _PATH) -> None:
    """``torch.save`` through ``<dir>/.<name>.tmp<pid>`` + fsync + ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(buffer.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` with same-directory temp-file + rename saves for local paths."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Optional[Any] = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO does not take storage_options; got "
                            f"{storage_options!r}. Use a custom CheckpointIO for remote storage options.")
        if not isinstance(get_filesystem(path), LocalFileSystem):
            return super().save_checkpoint(checkpoint, path, storage_options)
        atomic_torch_save(checkpoint, path)
