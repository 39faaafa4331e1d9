"""Sinusoidal positional encodings: absolute (decoder) and relative "latest ESPnet" form (encoders).

The tables are not parameters and are kept out of the state dict (``persistent=False``), as in the
reference (spec §1.4, §6.1). They are built lazily for the longest sequence seen and grown on demand;
the values of a row do not depend on the table size.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .dropout import Dropout


def _angles(positions: Tensor, d_model: int) -> Tensor:
    """(P,) float32 positions -> (P, d_model/2) float32 angles ``p * 10000^(-2i/d)``."""
    div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * -(math.log(10000.0) / d_model))
    return positions.unsqueeze(1) * div_term


def _sinusoid(angles: Tensor, d_model: int) -> Tensor:
    table = torch.zeros(angles.size(0), d_model, dtype=torch.float32)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles)
    return table


class PositionalEncoding(nn.Module):
    """``dropout(x * sqrt(d) + PE(pos))`` with PE(p)[2i] = sin(p w_i), PE(p)[2i+1] = cos(p w_i)."""

    def __init__(self, d_model: int, dropout: float = 0.1, max_len: int = 5000) -> None:
        super().__init__()
        self.d_model = d_model
        self.xscale = math.sqrt(d_model)
        self.dropout = Dropout(dropout)
        self.register_buffer("pe", torch.empty(0, d_model), persistent=False)
        self._initial_len = max_len

    def table(self, length: int, like: Tensor) -> Tensor:
        """(length, d) encodings of positions 0..length-1, on ``like``'s device and dtype."""
        if self.pe.size(0) < length or self.pe.device != like.device or self.pe.dtype != like.dtype:
            size = max(length, min(self._initial_len, 512), self.pe.size(0))
            positions = torch.arange(size, dtype=torch.float32)
            self.pe = _sinusoid(_angles(positions, self.d_model), self.d_model).to(like.device, like.dtype)
        return self.pe[:length]

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """(B, T, d) -> (B, T, d); ``offset`` shifts the positions (unused by the reference)."""
        pe = self.table(offset + x.size(1), x)[offset:]
        return self.dropout(x * self.xscale + pe)


class RelPositionalEncoding(nn.Module):
    """Returns ``(dropout(x * sqrt(d)), dropout(P))`` with P (1, 2T-1, d) the encodings of the relative
    positions +(T-1), ..., 0, ..., -(T-1) in that order (ESPnet "latest" rel-pos; dropout hits both)."""

    def __init__(self, d_model: int, dropout: float = 0.1, max_len: int = 5000) -> None:
        super().__init__()
        self.d_model = d_model
        self.xscale = math.sqrt(d_model)
        self.dropout = Dropout(dropout)
        self.register_buffer("pe", torch.empty(0, d_model), persistent=False)
        self._initial_len = max_len

    def table(self, length: int, like: Tensor) -> Tensor:
        """(2*length-1, d) relative encodings for sequences of ``length`` frames."""
        have = (self.pe.size(0) + 1) // 2
        if have < length or self.pe.device != like.device or self.pe.dtype != like.dtype:
            size = max(length, min(self._initial_len, 512), have)
            positions = torch.arange(size, dtype=torch.float32)
            angles = _angles(positions, self.d_model)
            positive = _sinusoid(angles, self.d_model).flip(0)  # +(size-1) ... 0
            negative = _sinusoid(-angles, self.d_model)[1:]  # -1 ... -(size-1); angle = -(p*w) exactly
            self.pe = torch.cat([positive, negative], dim=0).to(like.device, like.dtype)
        centre = (self.pe.size(0) - 1) // 2
        return self.pe[centre - length + 1: centre + length]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        pos = self.table(x.size(1), x).unsqueeze(0)
        return self.dropout(x * self.xscale), self.dropout(pos)
