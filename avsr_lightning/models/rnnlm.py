"""Character RNN language model with the semantics of ESPnet's ``DefaultRNNLM`` (spec §5.4).

Embedding -> a stack of LSTM (or GRU) *cells* -> linear output; scores are the log-softmax. Built from
cells (not ``nn.LSTM``) so the parameter names are the reference's ``rnn.{l}.weight_ih`` etc. and one
step per token is cheap inside the beam search. The sos token is fed first; eos is scored like any
token. Dropout (before every cell input and before the output layer) is only active in training.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .dropout import Dropout

#: per-step recurrent state: ``h`` (layers, N, units) and, for LSTM, ``c`` (layers, N, units)
LMState = tuple[Tensor, Tensor | None]


class RNNLM(nn.Module):
    """Args:
        vocab_size: output classes (41 for the reference characters; sos = eos = vocab_size - 1).
        layers, units: recurrent stack depth and width; embed_units: embedding width (default ``units``).
        rnn_type: ``"lstm"`` or ``"gru"``; dropout: before each cell and the output layer;
        emb_dropout: on the embedding; tie_weights: share ``embed`` and ``lo`` (needs embed_units == units).
    """

    def __init__(self, vocab_size: int = 41, layers: int = 2, units: int = 650, embed_units: int | None = None,
                 rnn_type: str = "lstm", dropout: float = 0.0, emb_dropout: float = 0.0,
                 tie_weights: bool = False) -> None:
        super().__init__()
        if rnn_type not in ("lstm", "gru"):
            raise ValueError(f"rnn_type must be 'lstm' or 'gru', got {rnn_type!r}")
        embed_units = units if embed_units is None else embed_units
        if tie_weights and embed_units != units:
            raise ValueError(f"tie_weights needs embed_units == units, got {embed_units} and {units}")
        self.vocab_size, self.layers, self.units, self.embed_units = vocab_size, layers, units, embed_units
        self.rnn_type = rnn_type
        self.sos = self.eos = vocab_size - 1
        self.embed = nn.Embedding(vocab_size, embed_units)
        self.embed_drop = Dropout(emb_dropout)
        cell = nn.LSTMCell if rnn_type == "lstm" else nn.GRUCell
        self.rnn = nn.ModuleList(cell(embed_units if i == 0 else units, units) for i in range(layers))
        self.dropout = nn.ModuleList(Dropout(dropout) for _ in range(layers + 1))
        self.lo = nn.Linear(units, vocab_size)
        if tie_weights:
            self.lo.weight = self.embed.weight
        for p in self.parameters():  # reference init: uniform(-0.1, 0.1) on every parameter
            nn.init.uniform_(p, -0.1, 0.1)

    def zero_state(self, n: int, device: torch.device | None = None, dtype: torch.dtype | None = None) -> LMState:
        ref = self.lo.weight
        h = torch.zeros(self.layers, n, self.units, device=device or ref.device, dtype=dtype or ref.dtype)
        return h, (torch.zeros_like(h) if self.rnn_type == "lstm" else None)

    def _cells(self, emb: Tensor, state: LMState) -> tuple[Tensor, LMState]:
        h_prev, c_prev = state
        x = emb
        hs, cs = [], []
        for i, cell in enumerate(self.rnn):
            if c_prev is not None:
                h, c = cell(self.dropout[i](x), (h_prev[i], c_prev[i]))
                cs.append(c)
            else:
                h = cell(self.dropout[i](x), h_prev[i])
            hs.append(h)
            x = h
        logits = self.lo(self.dropout[-1](x))
        return logits, (torch.stack(hs), torch.stack(cs) if cs else None)

    def step(self, tokens: Tensor, state: LMState | None) -> tuple[Tensor, LMState]:
        """Feed one token per sequence: tokens (N,) -> (log_probs (N, V), new state)."""
        if state is None:
            state = self.zero_state(tokens.size(0), tokens.device)
        logits, state = self._cells(self.embed_drop(self.embed(tokens)), state)
        return torch.log_softmax(logits, dim=-1), state

    def forward(self, tokens: Tensor, state: LMState | None = None) -> tuple[Tensor, LMState]:
        """Teacher forcing: tokens (B, L) -> (logits (B, L, V), final state)."""
        if state is None:
            state = self.zero_state(tokens.size(0), tokens.device)
        emb = self.embed_drop(self.embed(tokens))
        outputs = []
        for t in range(tokens.size(1)):
            logits, state = self._cells(emb[:, t], state)
            outputs.append(logits)
        return torch.stack(outputs, dim=1), state

    @staticmethod
    def select_state(state: LMState, idx: Tensor) -> LMState:
        h, c = state
        return h.index_select(1, idx), (None if c is None else c.index_select(1, idx))
