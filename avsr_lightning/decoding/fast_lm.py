"""A faster LM scorer for LSTM :class:`~avsr_lightning.models.rnnlm.RNNLM` shallow fusion.

``RNNLM.step`` runs each ``nn.LSTMCell`` as two matrix products (input and recurrent weights) per layer.
In the beam search the first layer's input is the embedding of one token, so its input-gate product
``embed(token) @ W_ih^T + b_ih + b_hh`` takes only ``vocab`` distinct values: they are computed once per
search as a (vocab, 4 * units) table, and the layer needs one recurrent product. Higher layers do their
two products accumulated into one gate tensor. The recurrent and upper-layer weights are multiplied by
the search's own product (:class:`~.search_weights.Matrix`: oneDNN's kernel for float32 on CPU). The LSTM cell arithmetic is PyTorch's
(gates i, f, g, o) in float32 (also when the weights are bfloat16: the cell state stays float32), and
the log-softmax is taken in float32, so the scores equal ``RNNLM.step`` up to float
round-off (tested). Used automatically for LSTM LMs with plain float weights; GRU LMs and quantised
copies go through the generic :class:`~avsr_lightning.decoding.scorers.RNNLMScorer`.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.rnnlm import RNNLM
from . import search_weights
from .row_buckets import padded_rows
from .scorers import SearchContext


def supports(lm: nn.Module) -> bool:
    """An LSTM :class:`RNNLM` whose cells and output layer are plain float modules."""
    return (isinstance(lm, RNNLM) and lm.rnn_type == "lstm" and all(type(c) is nn.LSTMCell for c in lm.rnn)
            and type(lm.lo) is nn.Linear and lm.lo.weight.is_floating_point())


def _acc_mm(acc: Tensor, x: Tensor, w: search_weights.Matrix) -> Tensor:
    """``acc + x @ W^T``; float32 ``acc`` (gates) with bfloat16 weights takes a bf16 product. Out of place:
    torch's FLOP counter (benchmarks/decode.py) does not see in-place ``addmm_``."""
    if w.dtype == acc.dtype:
        return w.acc(acc, x)
    xp, n = padded_rows(x.to(w.dtype))
    return acc.add_(w.mm(xp)[:n])


def _affine(b: Tensor, x: Tensor, w: search_weights.Matrix) -> Tensor:
    """``b + x @ W^T`` as float32 (a bf16 product for bf16 weights)."""
    if w.dtype == b.dtype:
        return w.mm(x, b)
    xp, n = padded_rows(x.to(w.dtype))
    return w.mm(xp)[:n].float().add_(b)


class FusedLSTMLMScorer:
    """Shallow fusion with an LSTM :class:`RNNLM`: one matrix product per layer and step."""

    partial = False

    def __init__(self, lm: RNNLM, name: str = "lm") -> None:
        if not supports(lm):
            raise TypeError(f"FusedLSTMLMScorer needs an LSTM RNNLM with float weights, got {type(lm).__name__}; "
                            f"use avsr_lightning.decoding.scorers.RNNLMScorer for other LMs")
        self.lm, self.name = lm, name
        first = lm.rnn[0]
        with torch.no_grad():
            # embedding -> first-layer input gates, for every token at once (dropout is off when decoding);
            # float32 whatever the weights' dtype (it is tiny)
            self.table = torch.addmm((first.bias_ih + first.bias_hh).float(), lm.embed.weight.float(),
                                     first.weight_ih.float().t())
            # recurrent and upper-layer weights as the search's few-row products (search_weights.Matrix)
            self.w_hh0 = search_weights.for_product(first.weight_hh)
            self.upper = [(search_weights.for_product(c.weight_ih), search_weights.for_product(c.weight_hh),
                           (c.bias_ih + c.bias_hh).float()) for c in lm.rnn[1:]]

    def init_state(self, ctx: SearchContext) -> tuple[Tensor, Tensor]:
        n = ctx.hyp_to_utt.numel()
        h = self.table.new_zeros(self.lm.layers, n, self.lm.units)  # float32 state, also on the bf16 path
        return h, torch.zeros_like(h)

    @staticmethod
    def _cell(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        # one sigmoid over all four gates (the g quarter is discarded) and a fused multiply-add: a few large
        # kernels instead of ten small ones on strided quarters (a beam step is dominated by their count)
        i, f, _, o = torch.sigmoid(gates).chunk(4, dim=1)
        units = c.size(1)
        c_new = torch.addcmul(f * c, i, torch.tanh(gates[:, 2 * units:3 * units]))
        return o * torch.tanh(c_new), c_new

    def score(self, yseq: Tensor, state: tuple[Tensor, Tensor], ctx: SearchContext,
              scoring_ids: Tensor | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h_prev, c_prev = state
        gates = _acc_mm(self.table.index_select(0, yseq[:, -1]), h_prev[0], self.w_hh0)
        h, c = self._cell(gates, c_prev[0])
        hs, cs = [h], [c]
        for k, (w_ih, w_hh, b) in enumerate(self.upper, start=1):
            h, c = self._cell(_acc_mm(_affine(b, h, w_ih), h_prev[k], w_hh), c_prev[k])
            hs.append(h)
            cs.append(c)
        lo = self.lm.lo
        hp, n = padded_rows(h.to(lo.weight.dtype))
        logits = F.linear(hp, lo.weight, lo.bias)[:n]
        return torch.log_softmax(logits.float(), dim=-1), (torch.stack(hs), torch.stack(cs))

    def select(self, candidate: tuple[Tensor, Tensor], src: Tensor, token: Tensor) -> tuple[Tensor, Tensor]:
        return RNNLM.select_state(candidate, src)

    def compact(self, state: Any, keep_utt: Tensor) -> Any:
        return state
