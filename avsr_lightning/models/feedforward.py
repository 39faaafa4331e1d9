"""Position-wise feed-forward: Linear -> ReLU -> Dropout -> Linear (reference ``w_1``/``w_2``)."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .dropout import Dropout


class PositionwiseFeedForward(nn.Module):
    def __init__(self, d_model: int, hidden: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.w_1 = nn.Linear(d_model, hidden)
        self.w_2 = nn.Linear(hidden, d_model)
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.w_2(self.dropout(torch.relu(self.w_1(x))))
