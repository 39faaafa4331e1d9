"""Export to the reference checkpoint format (``{'state_dict': ...}``, reference key names).

Our parameter names *are* the reference names (no remapping), so export is a copy of the state dict in
the reference key order; loading it back with :func:`~avsr_lightning.weights.load.load_model` is exact.
"""
from __future__ import annotations

import os
from collections import OrderedDict

from torch import Tensor, nn

from avsr_lightning.durable import torch_save


def to_reference_state_dict(model: nn.Module) -> "OrderedDict[str, Tensor]":
    """Detached CPU copies of every parameter and buffer under the reference names."""
    return OrderedDict((k, v.detach().cpu().clone()) for k, v in model.state_dict().items())


def save_reference_checkpoint(model: nn.Module, path: str | os.PathLike) -> None:
    """Write ``{'state_dict': ...}`` as the reference ``train.py`` does, durably (avsr_lightning/durable.py)."""
    torch_save({"state_dict": to_reference_state_dict(model)}, path)
