"""Swish, the activation of both ResNet frontends (spec §1.2-1.3) and of the Conformer conv module."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class Swish(nn.Module):
    """x * sigmoid(x). A module (not a bare function) so the reference's module tree, e.g.
    ``frontend3D.2``, keeps the same indices and checkpoints load without remapping."""

    def forward(self, x: Tensor) -> Tensor:
        return F.silu(x)
