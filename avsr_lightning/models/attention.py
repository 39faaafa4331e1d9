"""Multi-head attention (decoder, plain) and relative-position multi-head self-attention (Conformer).

Both compute exactly the reference functions (spec §1.6, §1.10): masked keys are filled with the float
minimum before the softmax and their probabilities are zero after it. The fast path uses
``scaled_dot_product_attention``; the relative-position term enters it as an additive float bias, and
a masked key gets the float minimum as bias, which after the softmax is an exact zero just as in the
reference. Rows with no valid key at all (only possible for empty utterances) are zeroed afterwards,
as the reference's post-softmax fill does. ``need_weights=True`` takes the explicit path and also
returns the attention probabilities (for inspection and the golden tests).

Masks are boolean, True = valid key, shaped (B, 1, T2) or (B, T1, T2).

Under autocast (bf16-mixed) the projections run in low precision and the attention core (scores,
relative-position bias, mask bias, softmax, weighted sum) in a float32 island; in fp32 the island is a
no-op (docs/models.md, "Speed").
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .dropout import Dropout
from .precision import fp32_island, island_float


def mask_to_bias(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """(B, T1|1, T2) bool -> (B, 1, T1|1, T2) additive bias: 0 for valid, dtype minimum for masked keys."""
    bias = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    return bias.masked_fill(~mask, torch.finfo(dtype).min).unsqueeze(1)


def _zero_empty_rows(context: Tensor, mask: Tensor | None) -> Tensor:
    """Reference semantics for a query row whose keys are all masked: zero context (B, H, T1, dk)."""
    if mask is None:
        return context
    any_valid = mask.any(dim=-1, keepdim=True).unsqueeze(1)  # (B, 1, T1|1, 1)
    return context * any_valid.to(context.dtype)


class MultiHeadAttention(nn.Module):
    """Scaled dot-product multi-head attention with ``linear_q/k/v/out`` (reference names)."""

    def __init__(self, n_head: int, n_feat: int, dropout: float = 0.0) -> None:
        super().__init__()
        if n_feat % n_head != 0:
            raise ValueError(f"d_model={n_feat} must be divisible by heads={n_head}")
        self.d_k = n_feat // n_head
        self.h = n_head
        self.linear_q = nn.Linear(n_feat, n_feat)
        self.linear_k = nn.Linear(n_feat, n_feat)
        self.linear_v = nn.Linear(n_feat, n_feat)
        self.linear_out = nn.Linear(n_feat, n_feat)
        self.dropout_rate = dropout
        self.dropout = Dropout(dropout)

    def _heads(self, x: Tensor) -> Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.h, self.d_k).transpose(1, 2)  # (B, H, T, dk)

    def _merge(self, x: Tensor) -> Tensor:
        b, _, t, _ = x.shape
        return self.linear_out(x.transpose(1, 2).reshape(b, t, self.h * self.d_k))

    def _explicit(self, q: Tensor, k: Tensor, v: Tensor, scores_extra: Tensor | None,
                  mask: Tensor | None) -> tuple[Tensor, Tensor]:
        scores = torch.matmul(q, k.transpose(-2, -1))
        if scores_extra is not None:
            scores = scores + scores_extra
        scores = scores / math.sqrt(self.d_k)
        if mask is not None:
            invalid = ~mask.unsqueeze(1)
            scores = scores.masked_fill(invalid, torch.finfo(scores.dtype).min)
            attn = torch.softmax(scores, dim=-1).masked_fill(invalid, 0.0)
        else:
            attn = torch.softmax(scores, dim=-1)
        return torch.matmul(self.dropout(attn), v), attn

    def forward(self, query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None,
                need_weights: bool = False, is_causal: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """(B, T1, D), (B, T2, D), (B, T2, D) -> (B, T1, D).

        ``is_causal=True`` (self-attention only, ``mask`` None) is the decoder's lower-triangular mask.
        """
        q = self._heads(self.linear_q(query))
        k = self._heads(self.linear_k(key))
        v = self._heads(self.linear_v(value))
        q, k, v = island_float(q), island_float(k), island_float(v)
        with fp32_island(q):
            out = self._core(q, k, v, mask, need_weights, is_causal)
        if need_weights:
            context, attn = out
            return self._merge(context), attn
        return self._merge(out)

    def _core(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, need_weights: bool,
              is_causal: bool) -> Tensor | tuple[Tensor, Tensor]:
        """(B, H, T, dk) heads -> context (B, H, T1, dk) [, probabilities]."""
        if is_causal and need_weights:
            t1, t2 = q.size(2), k.size(2)
            mask = torch.ones(t1, t2, dtype=torch.bool, device=q.device).tril().unsqueeze(0)
            is_causal = False
        if need_weights:
            return self._explicit(q, k, v, None, mask)
        drop = self.dropout_rate if self.training else 0.0
        if is_causal:
            return F.scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=True)
        sdpa_mask = None if mask is None else mask.unsqueeze(1)
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=sdpa_mask, dropout_p=drop)
        return _zero_empty_rows(context, mask)


def rel_shift(x: Tensor) -> Tensor:
    """(B, H, T, 2T-1) scores against relative positions +(T-1)..-(T-1) -> (B, H, T, T) where entry
    (i, j) is the score against relative position i - j (the "latest" ESPnet ``rel_shift``).

    Implemented as a strided view: element (i, j) sits at column (T-1) - i + j of row i.
    """
    b, h, t, p = x.shape
    x = x.contiguous()
    sb, sh, st, _ = x.stride()
    return x.as_strided((b, h, t, t), (sb, sh, st - 1, 1), x.storage_offset() + (t - 1))


class RelPositionMultiHeadAttention(MultiHeadAttention):
    """Self-attention with relative positional scores (Transformer-XL style, ESPnet "latest").

    score(i, j) = ((q_i + u) . k_j + (q_i + v) . W_pos PE(i - j)) / sqrt(d_k).
    """

    def __init__(self, n_head: int, n_feat: int, dropout: float = 0.0) -> None:
        super().__init__(n_head, n_feat, dropout)
        self.linear_pos = nn.Linear(n_feat, n_feat, bias=False)
        self.pos_bias_u = nn.Parameter(torch.empty(self.h, self.d_k))
        self.pos_bias_v = nn.Parameter(torch.empty(self.h, self.d_k))
        nn.init.xavier_uniform_(self.pos_bias_u)
        nn.init.xavier_uniform_(self.pos_bias_v)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, pos_emb: Tensor,  # type: ignore[override]
                mask: Tensor | None = None, need_weights: bool = False,
                mask_bias: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        """``pos_emb`` (1, 2T-1, D) from :class:`RelPositionalEncoding`. ``mask_bias`` is the optional
        precomputed :func:`mask_to_bias` of ``mask`` (shared by all blocks of an encoder)."""
        q = self._heads(self.linear_q(query))  # (B, H, T1, dk)
        k = self._heads(self.linear_k(key))
        v = self._heads(self.linear_v(value))
        p = self._heads(self.linear_pos(pos_emb))  # (1|B, H, 2T-1, dk)
        q, k, v, p = island_float(q), island_float(k), island_float(v), island_float(p)
        with fp32_island(q):
            out = self._rel_core(q, k, v, p, mask, need_weights, mask_bias)
        if need_weights:
            context, attn = out
            return self._merge(context), attn
        return self._merge(out)

    def _rel_core(self, q: Tensor, k: Tensor, v: Tensor, p: Tensor, mask: Tensor | None, need_weights: bool,
                  mask_bias: Tensor | None) -> Tensor | tuple[Tensor, Tensor]:
        q_u = q + self.pos_bias_u.unsqueeze(1).to(q.dtype)
        q_v = q + self.pos_bias_v.unsqueeze(1).to(q.dtype)
        matrix_bd = rel_shift(torch.matmul(q_v, p.transpose(-2, -1)))  # (B, H, T, T)
        if need_weights:
            return self._explicit(q_u, k, v, matrix_bd, mask)
        bias = matrix_bd * (1.0 / math.sqrt(self.d_k))
        if mask is not None:
            if mask_bias is None or mask_bias.dtype != bias.dtype:  # e.g. under autocast
                mask_bias = mask_to_bias(mask, bias.dtype)
            bias = bias + mask_bias
        drop = self.dropout_rate if self.training else 0.0
        context = F.scaled_dot_product_attention(q_u, k, v, attn_mask=bias, dropout_p=drop)
        return _zero_empty_rows(context, mask)
