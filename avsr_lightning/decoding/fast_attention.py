"""A faster attention scorer for :class:`~avsr_lightning.models.decoder.TransformerDecoder`.

``decoder.step`` (the reference ``forward_one_step``) re-projects the encoder memory into source-attention
keys/values for every hypothesis at every step, and recomputes the self-attention keys/values of the
whole prefix. For beam 40 and a 3-s utterance that is ~99% of the decoding cost. This scorer computes
the same function with the same weights but:

- projects the memory once per utterance and layer, and lets the ``beam`` hypotheses of an utterance
  attend to it as ``beam`` queries of one attention call (no memory copy per hypothesis);
- caches each layer's self-attention keys/values of past positions in a preallocated buffer (only the
  new position is projected; reordering beams is one contiguous row gather per layer);
- embeds only the newest token.

Numbers equal ``decoder.step`` up to float round-off (tested), so the golden beam-search results hold.
It relies on the decoder's reference module structure (``embed``, ``decoders[i].self_attn/src_attn/
feed_forward/norm1..3``, ``after_norm``, ``output_layer``); :func:`supports` checks it, and the search
falls back to :class:`~avsr_lightning.decoding.scorers.AttentionScorer` otherwise.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .scorers import SearchContext

#: self-attention cache capacity grows in steps of this many positions
CHUNK = 16


def supports(decoder: nn.Module) -> bool:
    try:
        layer = decoder.decoders[0]
        attn = layer.self_attn
        return all(hasattr(attn, n) for n in ("linear_q", "linear_k", "linear_v", "linear_out", "h", "d_k")) and all(
            hasattr(layer, n) for n in ("src_attn", "feed_forward", "norm1", "norm2", "norm3")) and all(
            hasattr(decoder, n) for n in ("embed", "after_norm", "output_layer"))
    except (AttributeError, IndexError, TypeError):
        return False


def _heads(x: Tensor, h: int, dk: int) -> Tensor:
    """(..., D) -> (..., H, dk)."""
    return x.view(*x.shape[:-1], h, dk)


class CachedAttentionScorer:
    """Attention-decoder scorer with per-utterance memory projections and a key/value cache.

    Requires the search's row layout: ``beam`` consecutive rows per active utterance.
    """

    partial = False

    def __init__(self, decoder: nn.Module, beam_size: int, name: str = "decoder") -> None:
        self.decoder, self.beam, self.name = decoder, beam_size, name
        self.layers = list(decoder.decoders)

    def init_state(self, ctx: SearchContext) -> dict[str, Any]:
        utts = ctx.hyp_to_utt.view(-1, self.beam)[:, 0]
        memory = ctx.memory.index_select(0, utts)  # (A, T, D)
        lengths = ctx.memory_lengths.index_select(0, utts)
        t = memory.size(1)
        mask = None
        if bool(ctx.memory_lengths.min() < t):
            mask = (torch.arange(t, device=memory.device).unsqueeze(0) < lengths.unsqueeze(1))  # (A, T)
            mask = mask[:, None, None, :]  # (A, 1, 1, T)
        mem_kv = []
        for layer in self.layers:
            att = layer.src_attn
            k = _heads(att.linear_k(memory), att.h, att.d_k).transpose(1, 2)  # (A, H, T, dk)
            v = _heads(att.linear_v(memory), att.h, att.d_k).transpose(1, 2)
            mem_kv.append((k, v))
        return {"mem_kv": mem_kv, "mask": mask, "self_kv": None, "spare": None, "filled": 0}

    def _self_attention(self, layer: nn.Module, x: Tensor, buf: Tensor, position: int) -> Tensor:
        """New position's self-attention over the cached keys/values; writes its own k/v into ``buf``
        (capacity, N, 2, H, dk) at ``position`` (position-major, so the filled part is contiguous)."""
        att = layer.self_attn
        h = layer.norm1(x)  # (N, D)
        n = x.size(0)
        q = _heads(att.linear_q(h), att.h, att.d_k).unsqueeze(2)  # (N, H, 1, dk)
        buf[position, :, 0] = _heads(att.linear_k(h), att.h, att.d_k)
        buf[position, :, 1] = _heads(att.linear_v(h), att.h, att.d_k)
        k = buf[:position + 1, :, 0].permute(1, 2, 0, 3)  # (N, H, i+1, dk)
        v = buf[:position + 1, :, 1].permute(1, 2, 0, 3)
        ctx = F.scaled_dot_product_attention(q, k, v)  # all past positions are visible
        return x + att.linear_out(ctx.reshape(n, -1))

    def _source_attention(self, layer: nn.Module, x: Tensor, kv: tuple[Tensor, Tensor], mask: Tensor | None) -> Tensor:
        att = layer.src_attn
        a = kv[0].size(0)
        q = _heads(att.linear_q(layer.norm2(x)), att.h, att.d_k)  # (N, H, dk)
        q = q.view(a, self.beam, att.h, att.d_k).transpose(1, 2)  # (A, H, beam, dk)
        ctx = F.scaled_dot_product_attention(q, kv[0], kv[1], attn_mask=mask)  # (A, H, beam, dk)
        ctx = ctx.transpose(1, 2).reshape(x.size(0), -1)
        return x + att.linear_out(ctx)

    def _buffers(self, bufs: list[Tensor] | None, n: int, position: int, like: Tensor) -> list[Tensor]:
        """Key/value buffers (capacity, N, 2, H, dk) with room for ``position`` (grown in chunks)."""
        cap = (position // CHUNK + 1) * CHUNK
        if bufs is not None and bufs[0].size(0) >= cap:
            return bufs
        out = []
        for i, layer in enumerate(self.layers):
            att = layer.self_attn
            new = like.new_zeros(cap, n, 2, att.h, att.d_k)
            if bufs is not None:
                new[:bufs[i].size(0)] = bufs[i]
            out.append(new)
        return out

    def score(self, yseq: Tensor, state: dict[str, Any], ctx: SearchContext,
              scoring_ids: Tensor | None = None) -> tuple[Tensor, dict[str, Any]]:
        position = yseq.size(1) - 1
        embed, posenc = self.decoder.embed[0], self.decoder.embed[1]
        x = posenc(embed(yseq[:, -1:]), offset=position)[:, 0]  # (N, D)
        bufs = self._buffers(state["self_kv"], x.size(0), position, x)
        for i, layer in enumerate(self.layers):
            x = self._self_attention(layer, x, bufs[i], position)
            x = self._source_attention(layer, x, state["mem_kv"][i], state["mask"])
            x = x + layer.feed_forward(layer.norm3(x))
        logits = self.decoder.output_layer(self.decoder.after_norm(x))
        return torch.log_softmax(logits, dim=-1).float(), {**state, "self_kv": bufs, "filled": position + 1}

    @staticmethod
    def _rows(buf: Tensor, idx: Tensor, filled: int, out: Tensor | None = None) -> Tensor:
        """Hypothesis rows ``idx`` of the first ``filled`` positions; written into ``out`` when it fits (reusing
        memory avoids the page faults that dominate copying fresh multi-MB tensors on CPU)."""
        if (out is not None and not torch.is_grad_enabled() and out.shape == buf.shape and out.dtype == buf.dtype
                and out.device == buf.device):
            torch.index_select(buf[:filled], 1, idx, out=out[:filled])
            return out
        new = buf.new_empty(buf.size(0), idx.numel(), *buf.shape[2:])
        new[:filled] = buf[:filled].index_select(1, idx)
        return new

    def select(self, candidate: dict[str, Any], src: Tensor, token: Tensor) -> dict[str, Any]:
        spare = candidate.get("spare") or [None] * len(self.layers)
        filled = candidate["filled"]
        new = [self._rows(b, src, filled, out) for b, out in zip(candidate["self_kv"], spare)]
        # the candidate's buffers are dead after selection: they become the next step's destination
        return {**candidate, "self_kv": new, "spare": list(candidate["self_kv"])}

    def compact(self, state: dict[str, Any], keep: Tensor) -> dict[str, Any]:
        groups = torch.div(keep.view(-1, self.beam)[:, 0], self.beam, rounding_mode="floor")
        mem_kv = [(k.index_select(0, groups), v.index_select(0, groups)) for k, v in state["mem_kv"]]
        mask = None if state["mask"] is None else state["mask"].index_select(0, groups)
        self_kv = None if state["self_kv"] is None else [
            self._rows(b, keep, state["filled"]) for b in state["self_kv"]]
        return {"mem_kv": mem_kv, "mask": mask, "self_kv": self_kv, "spare": None, "filled": state.get("filled", 0)}
