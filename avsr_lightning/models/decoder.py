"""Transformer decoder (spec §1.10): embedding + absolute positions, pre-LN self/source attention
blocks, final LayerNorm and output layer; teacher-forced ``forward`` and incremental ``step``.

``step`` is the beam-search API (docs/internals.md): it recomputes only the newest position of every
layer and returns a per-layer cache of the layer outputs, exactly the reference ``forward_one_step``.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .attention import MultiHeadAttention
from .conformer import layer_norm
from .dropout import Dropout
from .feedforward import PositionwiseFeedForward
from .masking import lengths_to_mask
from .positional import PositionalEncoding


class DecoderLayer(nn.Module):
    """x + SelfAttn(LN1 x) -> + SrcAttn(LN2 x, memory) -> + FFN(LN3 x) (reference names norm1..3)."""

    def __init__(self, d_model: int, heads: int, ffn_dim: int, dropout: float, attention_dropout: float) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(heads, d_model, attention_dropout)
        self.src_attn = MultiHeadAttention(heads, d_model, attention_dropout)
        self.feed_forward = PositionwiseFeedForward(d_model, ffn_dim, dropout)
        self.norm1 = layer_norm(d_model)
        self.norm2 = layer_norm(d_model)
        self.norm3 = layer_norm(d_model)
        self.dropout = Dropout(dropout)

    def _rest(self, x: Tensor, memory: Tensor, memory_mask: Tensor | None) -> Tensor:
        h = self.norm2(x)
        x = x + self.dropout(self.src_attn(h, memory, memory, memory_mask))
        return x + self.dropout(self.feed_forward(self.norm3(x)))

    def forward(self, x: Tensor, memory: Tensor, memory_mask: Tensor | None) -> Tensor:
        """Teacher forcing with the causal mask: (B, L, D) -> (B, L, D)."""
        h = self.norm1(x)
        x = x + self.dropout(self.self_attn(h, h, h, is_causal=True))
        return self._rest(x, memory, memory_mask)

    def forward_last(self, x: Tensor, memory: Tensor, memory_mask: Tensor | None) -> Tensor:
        """Only the last position's output (B, 1, D); keys/values are LN1 of the whole input."""
        h = self.norm1(x)
        last = x[:, -1:]
        last = last + self.dropout(self.self_attn(h[:, -1:], h, h))
        return self._rest(last, memory, memory_mask)


class TransformerDecoder(nn.Module):
    """Attention decoder over encoder memory.

    Args:
        vocab_size: output classes (reference 41); d_model, heads, layers, ffn_dim: sizes (256, 4, 6, 2048);
        dropout: residual/FFN/positional dropout; attention_dropout: on attention probabilities.
    """

    def __init__(self, vocab_size: int = 41, d_model: int = 256, heads: int = 4, layers: int = 6,
                 ffn_dim: int = 2048, dropout: float = 0.1, attention_dropout: float = 0.1) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Embedding(vocab_size, d_model), PositionalEncoding(d_model, dropout))
        self.decoders = nn.ModuleList(
            DecoderLayer(d_model, heads, ffn_dim, dropout, attention_dropout) for _ in range(layers)
        )
        self.after_norm = layer_norm(d_model)
        self.output_layer = nn.Linear(d_model, vocab_size)
        self.vocab_size = vocab_size

    def forward(self, ys_in: Tensor, ys_in_lengths: Tensor | None, memory: Tensor,
                memory_lengths: Tensor | None) -> Tensor:
        """ys_in (B, L) long (sos + tokens, padded with eos), memory (B, T, D) -> logits (B, L, V).

        The self-attention mask is purely causal, as in the reference (ys_in is padded with eos, never
        with the ignore id, so its ``target_mask`` reduces to the causal mask); padded target positions
        are computed and then ignored by the loss. ``ys_in_lengths`` is accepted for the interface.
        """
        memory_mask = None
        if memory_lengths is not None:
            memory_mask = lengths_to_mask(memory_lengths, memory.size(1)).unsqueeze(1)
        x = self.embed(ys_in)
        for layer in self.decoders:
            x = layer(x, memory, memory_mask)
        return self.output_layer(self.after_norm(x))

    def step(self, ys: Tensor, memory: Tensor, memory_mask: Tensor | None,
             cache: list[Tensor] | None) -> tuple[Tensor, list[Tensor]]:
        """One incremental step for N hypotheses.

        ys (N, i) long prefixes (starting with sos); memory (N, T, D); memory_mask (N, 1, T) bool
        True = valid, or None; cache None at the first call, else a list (one per layer) of (N, i-1, D)
        layer outputs from the previous call. Returns the log-softmax (N, V) of the next token and the
        new cache (per layer (N, i, D)). Reorder beams with ``[c.index_select(0, idx) for c in cache]``.
        """
        x = self.embed(ys)
        new_cache: list[Tensor] = []
        for idx, layer in enumerate(self.decoders):
            if cache is None:
                x = layer(x, memory, memory_mask)
            else:
                x = torch.cat([cache[idx], layer.forward_last(x, memory, memory_mask)], dim=1)
            new_cache.append(x)
        logits = self.output_layer(self.after_norm(x[:, -1]))
        return torch.log_softmax(logits, dim=-1), new_cache
