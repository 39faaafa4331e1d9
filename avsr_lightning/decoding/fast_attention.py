"""A faster attention scorer for :class:`~avsr_lightning.models.decoder.TransformerDecoder`.

``decoder.step`` (the reference ``forward_one_step``) re-projects the encoder memory into source-attention
keys/values for every hypothesis at every step, and recomputes the self-attention keys/values of the
whole prefix. For beam 40 and a 3-s utterance that is ~99% of the decoding cost. This scorer computes
the same function with the same weights but:

- projects the memory once per utterance and layer, and lets the ``beam`` hypotheses of an utterance
  attend to it as ``beam`` queries of one attention call (no memory copy per hypothesis);
- caches each layer's self-attention keys/values of past positions in a preallocated buffer (only the
  new position is projected; reordering beams is one contiguous row gather per layer);
- embeds only the newest token;
- multiplies the hypothesis rows by row-major copies of the wide weights (:mod:`.search_weights`: few-row
  products are faster in that layout).

Numbers equal ``decoder.step`` up to float round-off (tested), so the golden beam-search results hold.
It relies on the decoder's reference module structure (``embed``, ``decoders[i].self_attn/src_attn/
feed_forward/norm1..3``, ``after_norm``, ``output_layer``); :func:`supports` checks it, and the search
falls back to :class:`~avsr_lightning.decoding.scorers.AttentionScorer` otherwise.
"""
from __future__ import annotations

import weakref
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import search_weights
from .row_buckets import padded_rows
from .scorers import SearchContext

#: self-attention cache capacity grows in steps of this many positions
CHUNK = 16
#: reduced-precision source attention over at least this many utterances runs as two batched products
#: (``_source_attend``) instead of the fused kernel
PRODUCT_ATTENTION_MIN_GROUPS = 8


def supports(decoder: nn.Module) -> bool:
    try:
        layer = decoder.decoders[0]
        attn = layer.self_attn
        return all(hasattr(attn, n) for n in ("linear_q", "linear_k", "linear_v", "linear_out", "h", "d_k")) and all(
            hasattr(layer, n) for n in ("src_attn", "feed_forward", "norm1", "norm2", "norm3")) and all(
            hasattr(layer.feed_forward, n) for n in ("w_1", "w_2")) and all(
            hasattr(decoder, n) for n in ("embed", "after_norm", "output_layer"))
    except (AttributeError, IndexError, TypeError):
        return False


def _heads(x: Tensor, h: int, dk: int) -> Tensor:
    """(..., D) -> (..., H, dk)."""
    return x.view(*x.shape[:-1], h, dk)


def _plain_linear(m: nn.Module) -> bool:
    """A float ``nn.Linear`` whose weight can be concatenated (not a quantised replacement)."""
    return type(m) is nn.Linear and m.weight.is_floating_point()


#: concatenated weights per first module, rebuilt when any parameter changes (version counter / storage)
_FUSED: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()


def _fused_weights(linears: tuple[nn.Module, ...]) -> tuple[search_weights.Matrix, Tensor]:
    """``[W1; W2; ...]`` as one :class:`~.search_weights.Matrix` (the route few-row products are fast by)
    and ``[b1; b2; ...]``, cached across searches (a decode call builds new scorers)."""
    params = [p for m in linears for p in (m.weight, m.bias) if p is not None]
    key = tuple(map(search_weights.tensor_key, params)) + tuple(map(id, linears)) + (search_weights.ONEDNN_FP32,)
    hit = _FUSED.get(linears[0])
    if hit is not None and hit[0] == key:
        return hit[1], hit[2]
    with torch.no_grad():
        weight = search_weights.Matrix(torch.cat([m.weight for m in linears], 0))
        bias = torch.cat([m.bias if m.bias is not None else m.weight.new_zeros(m.out_features) for m in linears], 0)
    _FUSED[linears[0]] = (key, weight, bias)
    return weight, bias


class _FusedLinear:
    """Several linear layers on the same input as one matrix product (``x @ [W1; W2; ...]^T``).

    One GEMM with a wider output instead of three narrow ones: fewer calls and better use of the
    machine on the few-row inputs of a beam step. Falls back to calling the modules one by one when
    they are not plain float ``nn.Linear`` (e.g. int8 dynamic-quantised copies)."""

    def __init__(self, *linears: nn.Module, fuse: bool = True) -> None:
        self.linears = linears
        self.fused = fuse and all(_plain_linear(m) for m in linears)
        if self.fused:
            self.weight, self.bias = _fused_weights(linears)
            self.sizes = [m.out_features for m in linears]

    def product(self, x: Tensor) -> Tensor:
        """``[x W1^T + b1 | x W2^T + b2 | ...]`` as one (N, sum of outs) tensor (fused only)."""
        if x.dtype == torch.float32 and self.weight.dtype == torch.float32:
            return self.weight.mm(x, self.bias)
        x, n = padded_rows(x.to(self.weight.dtype))
        return self.weight.mm(x, self.bias)[:n]

    def __call__(self, x: Tensor) -> list[Tensor]:
        if self.fused:
            return list(self.product(x).split(self.sizes, dim=-1))
        return [_lin(m, x) for m in self.linears]


class _StepLinear:
    """One linear layer of the beam step, resolved once per search: its input dtype, whether its rows are
    padded (bf16, :mod:`.row_buckets`), and for wide plain float32 layers the search's own product
    (:class:`~.search_weights.Matrix`). Same numbers as :func:`_lin`; it only skips re-deciding all of that at every
    call (a beam step makes ~40 such calls, where the Python around a product costs as much as a
    few-row product's overhead)."""

    __slots__ = ("module", "dtype", "pad", "weight", "bias")

    def __init__(self, m: nn.Module, row_major: bool) -> None:
        self.module, self.dtype = m, _param_dtype(m)
        self.pad = self.dtype == torch.bfloat16
        use = row_major and search_weights.uses_row_major(m)
        self.weight = search_weights.for_product(m.weight) if use else None
        self.bias = m.bias if use else None

    def __call__(self, x: Tensor) -> Tensor:
        if self.weight is not None and x.dtype == self.dtype:  # float32 search product: no cast, no padding
            return self.weight.mm(x, self.bias)
        x = x.to(self.dtype)
        n = x.size(0)
        if self.pad:
            x, n = padded_rows(x)
        out = self.module(x) if self.weight is None else self.weight.mm(x, self.bias)
        return out[:n] if self.pad else out


class _LayerLinears:
    """The per-step linear layers of one decoder layer (the self-attention q/k/v are a _FusedLinear)."""

    __slots__ = ("self_out", "src_q", "src_out", "w_1", "w_2")

    def __init__(self, layer: nn.Module, row_major: bool) -> None:
        self.self_out = _StepLinear(layer.self_attn.linear_out, row_major)
        self.src_q = _StepLinear(layer.src_attn.linear_q, row_major)
        self.src_out = _StepLinear(layer.src_attn.linear_out, row_major)
        self.w_1 = _StepLinear(layer.feed_forward.w_1, row_major)
        self.w_2 = _StepLinear(layer.feed_forward.w_2, row_major)


class _SourceFold:
    """One layer's source attention with the utterance's memory folded into the projections around it.

    Why: with keys ``K_h`` and values ``V_h`` of head ``h`` fixed for the whole search, the query projection,
    the scaled dot products and the output projection are linear in the normed input ``y``:

        scores_h = y @ (W_q,h^T K_h^T / sqrt(dk)) + b_q,h K_h^T / sqrt(dk)   one (D, H*T) matrix ``m``
        output   = sum_h softmax(scores_h) @ (V_h W_o,h^T) + b_o            one (H*T, D) matrix ``o``

    so a step is two products and a softmax instead of two projections, an attention kernel and the head
    reshapes around it: fewer operators (a B = 1 step is dominated by their count) and, while ``H*T <= D``
    (:func:`_fold_pays`), fewer multiply-adds. Same function; float round-off differs (tested against
    ``decoder.step``). Built for float32 plain ``nn.Linear`` projections only.
    """

    __slots__ = ("m", "c", "o", "bias", "heads", "frames")

    def __init__(self, att: nn.Module, k: Tensor, v: Tensor) -> None:
        a, h, t, dk = k.shape
        d = h * dk
        scale = dk ** -0.5
        q_lin, out_lin = att.linear_q, att.linear_out
        with torch.no_grad():
            self.m = torch.einsum("hei,ahte->aiht", q_lin.weight.view(h, dk, -1), k).mul_(scale).reshape(a, -1, h * t)
            bq = q_lin.bias if q_lin.bias is not None else q_lin.weight.new_zeros(d)
            self.c = torch.einsum("he,ahte->aht", bq.view(h, dk), k).mul_(scale).reshape(a, 1, h * t)
            self.o = torch.einsum("ahte,jhe->ahtj", v, out_lin.weight.view(-1, h, dk)).reshape(a, h * t, -1)
            self.bias = out_lin.bias if out_lin.bias is not None else out_lin.weight.new_zeros(out_lin.out_features)
        self.heads, self.frames = h, t

    def index_select(self, keep: Tensor) -> "_SourceFold":
        new = object.__new__(_SourceFold)
        new.m, new.c, new.o = self.m.index_select(0, keep), self.c.index_select(0, keep), self.o.index_select(0, keep)
        new.bias, new.heads, new.frames = self.bias, self.heads, self.frames
        return new

    def __call__(self, y: Tensor, groups: int, beam: int, row_slot: Tensor | None, mask: Tensor | None) -> Tensor:
        """Output projection of the source attention for rows ``y`` (N, D) (normed), (N, D)."""
        h, t = self.heads, self.frames
        n = y.size(0)
        if groups == 1:  # every row attends to the same memory: plain products over the rows
            scores = torch.addmm(self.c[0, 0], y, self.m[0]).view(n, h, t)
            if mask is not None:
                scores = scores.masked_fill(~mask[0, 0], float("-inf"))
            return torch.addmm(self.bias, torch.softmax(scores, dim=-1).view(n, h * t), self.o[0])
        y = _to_slots(y, groups * beam, row_slot)
        scores = torch.baddbmm(self.c, y.view(groups, beam, -1), self.m).view(groups, beam, h, t)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))  # mask (A, 1, 1, T)
        out = torch.baddbmm(self.bias, torch.softmax(scores, dim=-1).view(groups, beam, h * t), self.o)
        return _from_slots(out.view(groups * beam, -1), row_slot)


def _to_slots(x: Tensor, slots: int, row_slot: Tensor | None) -> Tensor:
    """Live rows -> their slots of the (utterance, beam) grid (empty slots zero); identity when every slot is a row."""
    return x if row_slot is None else x.new_zeros((slots,) + tuple(x.shape[1:])).index_copy_(0, row_slot, x)


def _from_slots(x: Tensor, row_slot: Tensor | None) -> Tensor:
    """Grid slots -> the live rows (inverse of :func:`_to_slots`)."""
    return x if row_slot is None else x.index_select(0, row_slot)


def _fold_pays(att: nn.Module, frames: int) -> bool:
    """Fold the source attention (:class:`_SourceFold`) for float32 plain projections while its matrices
    are no wider than the projections they replace (``H * T <= D``)."""
    plain = all(_plain_linear(m) and m.weight.dtype == torch.float32 for m in (att.linear_q, att.linear_out))
    return plain and att.h * frames <= att.linear_q.in_features


class CachedAttentionScorer:
    """Attention-decoder scorer with per-utterance memory projections and a key/value cache.

    Rows are live hypotheses placed in the search's slot grid (``ctx.row_slot``, ``ctx.beam`` slots per
    active utterance); the source attention runs per utterance on the grid (empty slots are zero queries
    whose outputs are discarded), so the memory is never copied per hypothesis.
    """

    partial = False

    def __init__(self, decoder: nn.Module, beam_size: int, name: str = "decoder", fuse: bool = True) -> None:
        self.decoder, self.beam, self.name, self.fuse = decoder, beam_size, name, fuse
        self.layers = list(decoder.decoders)
        self.self_proj = [_FusedLinear(layer.self_attn.linear_q, layer.self_attn.linear_k, layer.self_attn.linear_v,
                                       fuse=fuse) for layer in self.layers]
        self.linears = [_LayerLinears(layer, fuse) for layer in self.layers]
        self.output = _StepLinear(decoder.output_layer, fuse)

    def _grid(self, ctx: SearchContext, n: int) -> tuple[int, Tensor | None]:
        """(groups, row_slot or None when the rows are exactly the full grid in slot order)."""
        if ctx.row_slot is None or ctx.groups == 0:  # plain layout: ``beam`` consecutive rows per utterance
            return n // self.beam, None
        if n == ctx.groups * self.beam:
            return ctx.groups, None
        return ctx.groups, ctx.row_slot

    def init_state(self, ctx: SearchContext) -> dict[str, Any]:
        n = ctx.hyp_to_utt.numel()
        groups, row_slot = self._grid(ctx, n)
        if row_slot is None:
            utts = ctx.hyp_to_utt.view(-1, self.beam)[:, 0]
        else:
            group_of_row = torch.div(row_slot, self.beam, rounding_mode="floor")
            utts = ctx.hyp_to_utt.new_zeros(groups).scatter_(0, group_of_row, ctx.hyp_to_utt)
        memory = ctx.memory.index_select(0, utts)  # (A, T, D)
        lengths = ctx.memory_lengths.index_select(0, utts)
        t = memory.size(1)
        mask = None
        if bool(ctx.memory_lengths.min() < t):
            mask = (torch.arange(t, device=memory.device).unsqueeze(0) < lengths.unsqueeze(1))  # (A, T)
            mask = mask[:, None, None, :]  # (A, 1, 1, T)
        mem_kv = []
        folds: list[_SourceFold] | None = [] if self.fuse else None
        for layer in self.layers:
            att = layer.src_attn
            k = _heads(_lin(att.linear_k, memory), att.h, att.d_k).transpose(1, 2)  # (A, H, T, dk)
            v = _heads(_lin(att.linear_v, memory), att.h, att.d_k).transpose(1, 2)
            mem_kv.append((k, v))
            if folds is not None and _fold_pays(att, t) and k.dtype == torch.float32:
                folds.append(_SourceFold(att, k, v))
            else:
                folds = None
        if folds is not None:  # the folded matrices replace the keys/values for the rest of the search
            mem_kv = [None] * len(mem_kv)
        return {"mem_kv": mem_kv, "mask": mask, "self_kv": None, "spare": None, "filled": 0, "folds": folds}

    def _self_attention(self, i: int, x: Tensor, bufs: list[Tensor], position: int) -> Tensor:
        """New position's self-attention over the cached keys/values; writes its own k/v into the cache at
        ``position`` (:meth:`_buffers` for the two layouts)."""
        layer = self.layers[i]
        att = layer.self_attn
        h = layer.norm1(x)  # (N, D)
        n = x.size(0)
        proj = self.self_proj[i]
        if self.fuse:  # keys and values (N, H, position + 1, dk) each, dense
            kb, vb = bufs[2 * i], bufs[2 * i + 1]
            if proj.fused:
                qkv = proj.product(h)
                d = proj.sizes[0]
                q, k_new, v_new = qkv[:, :d], qkv[:, d:d + proj.sizes[1]], qkv[:, d + proj.sizes[1]:]
            else:
                q, k_new, v_new = proj(h)
            kb[:, :, position] = _heads(k_new, att.h, att.d_k)
            vb[:, :, position] = _heads(v_new, att.h, att.d_k)
            ctx = _self_attend(q.view(n, att.h, 1, att.d_k), kb[:, :, :position + 1], vb[:, :, :position + 1])
            return x + self.linears[i].self_out(ctx.reshape(n, -1))
        buf = bufs[i]  # (capacity, N, 2, H, dk), position-major: the search as it was (``fuse=False``)
        q, k_new, v_new = proj(h)
        buf[position, :, 0] = _heads(k_new, att.h, att.d_k)
        buf[position, :, 1] = _heads(v_new, att.h, att.d_k)
        q = q.view(n, att.h, 1, att.d_k)
        k, v = buf[:position + 1].permute(2, 1, 3, 0, 4)  # each (N, H, i+1, dk)
        ctx = F.scaled_dot_product_attention(q, k, v)  # all past positions are visible
        return x + self.linears[i].self_out(ctx.reshape(n, -1))

    def _source_attention(self, i: int, x: Tensor, kv: tuple[Tensor, Tensor] | None, mask: Tensor | None,
                          groups: int, row_slot: Tensor | None, fold: "_SourceFold | None") -> Tensor:
        layer = self.layers[i]
        if fold is not None:
            return x + fold(layer.norm2(x), groups, self.beam, row_slot, mask)
        att = layer.src_attn
        n = x.size(0)
        q = _heads(self.linears[i].src_q(layer.norm2(x)), att.h, att.d_k)  # (N, H, dk)
        q = _to_slots(q, groups * self.beam, row_slot)
        q = q.view(groups, self.beam, att.h, att.d_k).transpose(1, 2)  # (A, H, beam, dk)
        ctx = _source_attend(q, kv[0], kv[1], mask)  # (A, H, beam, dk)
        ctx = _from_slots(ctx.transpose(1, 2).reshape(groups * self.beam, -1), row_slot)
        return x + self.linears[i].src_out(ctx.reshape(n, -1))

    def _buffers(self, bufs: list[Tensor] | None, n: int, position: int, like: Tensor) -> list[Tensor]:
        """Key/value buffers with room for ``position``, in the projections' output dtype (bfloat16 on the bf16
        path). Fused search: a keys and a values tensor (N, H, position + 1, dk) per layer, dense, so the
        attention of one query over a hypothesis' past positions is two small dense products
        (:func:`_self_attend`); :meth:`select` gathers the rows into tensors one position longer, so they
        never grow here after the first step. ``fuse=False``, the search as it was: one (capacity, N, 2, H,
        dk) tensor per layer, position-major, grown in chunks of :data:`CHUNK` positions."""
        if self.fuse:
            if bufs is not None and bufs[0].size(2) > position:
                return bufs
            if bufs is not None:
                raise RuntimeError(f"the fused key/value cache holds {bufs[0].size(2)} positions at step {position}: "
                                   f"its next position comes from select(), which was not called after score()")
            # positions are written before they are read (``_self_attention``): no need to zero them
            return [like.new_empty(n, layer.self_attn.h, position + 1, layer.self_attn.d_k,
                                   dtype=_param_dtype(layer.self_attn.linear_k))
                    for layer in self.layers for _ in range(2)]
        cap = (position // CHUNK + 1) * CHUNK
        if bufs is not None and bufs[0].size(0) >= cap:
            return bufs
        out = []
        for i, layer in enumerate(self.layers):
            att = layer.self_attn
            new = like.new_empty(cap, n, 2, att.h, att.d_k, dtype=_param_dtype(att.linear_k))
            if bufs is not None:
                new[:bufs[i].size(0)] = bufs[i]
            out.append(new)
        return out

    def score(self, yseq: Tensor, state: dict[str, Any], ctx: SearchContext,
              scoring_ids: Tensor | None = None) -> tuple[Tensor, dict[str, Any]]:
        position = yseq.size(1) - 1
        embed, posenc = self.decoder.embed[0], self.decoder.embed[1]
        x = posenc(embed(yseq[:, -1:]), offset=position)[:, 0]  # (N, D)
        groups, row_slot = self._grid(ctx, x.size(0))
        bufs = self._buffers(state["self_kv"], x.size(0), position, x)
        folds = state.get("folds")
        for i, layer in enumerate(self.layers):
            x = self._self_attention(i, x, bufs, position)
            x = self._source_attention(i, x, state["mem_kv"][i], state["mask"], groups, row_slot,
                                       None if folds is None else folds[i])
            lin = self.linears[i]  # feed-forward w_2(relu(w_1 x)); dropout is off when decoding
            x = x + lin.w_2(torch.relu(lin.w_1(layer.norm3(x))))
        logits = self.output(self.decoder.after_norm(x))
        # log-softmax in float32 whatever the decoder's dtype: the search ranks on these scores
        return torch.log_softmax(logits.float(), dim=-1), {**state, "self_kv": bufs, "filled": position + 1}

    @staticmethod
    def _rows(buf: Tensor, idx: Tensor, filled: int, spare: Tensor | None, row_major: bool) -> Tensor:
        """Hypothesis rows ``idx`` of the first ``filled`` positions of a cache tensor, as a new tensor. It is
        written into the storage of ``spare`` when that is large enough (reusing memory avoids the page
        faults that dominate copying fresh multi-MB tensors on CPU). Row-major (N, H, positions, dk): a dim-0
        gather into a dense tensor with one more position, for the next step's keys/values; position-major
        (capacity, N, ...): a dim-1 gather, same capacity."""
        shape = list(buf.shape)
        if row_major:
            shape[0], shape[2] = idx.numel(), filled + 1
        else:
            shape[1] = idx.numel()
        size = 1
        for d in shape:
            size *= d
        if (spare is not None and not torch.is_grad_enabled() and spare.numel() >= size and spare.dtype == buf.dtype
                and spare.device == buf.device):
            out = spare.view(-1)[:size].view(shape)
        elif row_major:  # storage for CHUNK more positions, so it serves as ``spare`` for the next steps too
            out = buf.new_empty(size + shape[0] * shape[1] * CHUNK * shape[3])[:size].view(shape)
        else:
            out = buf.new_empty(shape)
        if row_major:
            torch.index_select(buf[:, :, :filled], 0, idx, out=out[:, :, :filled])
        else:
            torch.index_select(buf[:filled], 1, idx, out=out[:filled])
        return out

    def select(self, candidate: dict[str, Any], src: Tensor, token: Tensor) -> dict[str, Any]:
        bufs = candidate["self_kv"]
        spare = candidate.get("spare") or [None] * len(bufs)
        filled = candidate["filled"]
        new = [self._rows(b, src, filled, out, self.fuse) for b, out in zip(bufs, spare)]
        # the candidate's buffers are dead after selection: their memory is the next step's destination
        return {**candidate, "self_kv": new, "spare": [_base(b) for b in bufs]}

    def compact(self, state: dict[str, Any], keep_utt: Tensor) -> dict[str, Any]:
        mem_kv = [kv if kv is None else (kv[0].index_select(0, keep_utt), kv[1].index_select(0, keep_utt))
                  for kv in state["mem_kv"]]
        mask = None if state["mask"] is None else state["mask"].index_select(0, keep_utt)
        folds = state.get("folds")
        folds = None if folds is None else [f.index_select(keep_utt) for f in folds]
        return {**state, "mem_kv": mem_kv, "mask": mask, "folds": folds}


def _self_attend(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """One new query per hypothesis over its cached past positions: q (N, H, 1, dk), k/v (N, H, P, dk), each
    (P, dk) block dense. In reduced precision on CPU as two batched products with the softmax in float32:
    the fused kernel's per-(row, head) overhead makes it 5-8x slower there for a single query
    (docs/decoding.md, session 23). float32 and GPUs keep the fused kernel."""
    if q.dtype == torch.float32 or q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v)
    return _product_attention(q, k, v, None)


def _source_attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
    """Attention of every hypothesis over its utterance's memory: q (A, H, beam, dk), k/v (A, H, T, dk).

    In float32 this is ``scaled_dot_product_attention`` (batched and one-at-a-time decoding then give the
    same bits), and so on GPUs. In bf16 on CPU over many utterances (>= :data:`PRODUCT_ATTENTION_MIN_GROUPS`)
    the fused kernel is ~2x slower than two batched products (profiled, docs/decoding.md), so the scores are
    one bf16 product, the masked softmax is taken in float32 and its bf16 weights meet the values in a second
    product.
    """
    if q.dtype == torch.float32 or q.device.type != "cpu" or q.size(0) < PRODUCT_ATTENTION_MIN_GROUPS:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return _product_attention(q, k, v, mask)


def _product_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
    """Scaled dot-product attention as two reduced-precision products around a float32 (masked) softmax."""
    scores = torch.matmul(q, k.transpose(-1, -2)).float().mul_(q.size(-1) ** -0.5)  # (..., queries, keys)
    if mask is not None:
        scores.masked_fill_(~mask, float("-inf"))
    return torch.matmul(torch.softmax(scores, dim=-1).to(v.dtype), v)


def _base(t: Tensor) -> Tensor:
    """The whole contiguous allocation a buffer view lives in (so a bigger spare stays reusable)."""
    return t._base if t._base is not None and t._base.is_contiguous() else t


def _lin(m: nn.Module, x: Tensor) -> Tensor:
    """A linear layer on ``x`` cast to the layer's input dtype. Everything between linear layers (residual
    stream, LayerNorm, softmax) stays float32; on the bf16 path only the matrix products run in bfloat16,
    and dynamic-quantised layers take float32. (The per-step layers go through :class:`_StepLinear`.)"""
    if x.dim() != 2:
        return m(x.to(_param_dtype(m)))
    x, n = padded_rows(x.to(_param_dtype(m)))
    return m(x)[:n]


def _param_dtype(m: nn.Module) -> torch.dtype:
    """Input dtype a (possibly quantised) linear layer expects: its float weight's, float32 otherwise."""
    w = getattr(m, "weight", None)
    return w.dtype if isinstance(w, Tensor) and w.is_floating_point() else torch.float32
