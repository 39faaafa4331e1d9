"""The cached attention scorer computes exactly what ``decoder.step`` computes (padded batch, reordering)."""
from __future__ import annotations

import pytest
import torch

from avsr_lightning.decoding import fast_attention as fa
from avsr_lightning.decoding import search_weights
from avsr_lightning.decoding.fast_attention import CachedAttentionScorer, supports
from avsr_lightning.decoding.scorers import AttentionScorer, SearchContext
from avsr_lightning.models.decoder import TransformerDecoder


@pytest.mark.parametrize("row_major_min", [None, 1], ids=["default", "row-major-weights"])
@pytest.mark.parametrize("frames, fuse", [(7, True), (9, True), (7, False)], ids=["folded", "wide-memory", "unfused"])
@torch.no_grad()
def test_cached_scorer_equals_decoder_step(row_major_min, frames, fuse, monkeypatch):
    if row_major_min is not None:  # the tiny layers are narrower than the default threshold: force the path
        monkeypatch.setattr(search_weights, "MIN_OUT_FEATURES", row_major_min)
    torch.manual_seed(0)
    dec = TransformerDecoder(vocab_size=9, d_model=32, heads=4, layers=2, ffn_dim=48).eval()
    assert supports(dec) and not supports(torch.nn.Linear(2, 2))
    beam, lengths = 3, torch.tensor([frames, 4])
    memory = torch.randn(2, frames, 32)
    h2u = torch.tensor([0, 1]).repeat_interleave(beam)
    ctx = SearchContext(memory, lengths, h2u)
    fast, slow = CachedAttentionScorer(dec, beam, fuse=fuse), AttentionScorer(dec)
    sf, ss = fast.init_state(ctx), slow.init_state(ctx)
    # the source attention is folded into two products while 4 heads x frames <= d_model (fast path only)
    assert (sf["folds"] is not None) is (fuse and 4 * frames <= 32)
    yseq = torch.full((6, 1), 8)
    for step in range(4):
        a, cf = fast.score(yseq, sf, ctx)
        b, cs = slow.score(yseq, ss, ctx)
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-5)
        src = torch.tensor([2, 0, 0, 5, 3, 4]) if step % 2 else torch.tensor([0, 1, 2, 3, 4, 5])
        tok = torch.randint(1, 8, (6,))
        sf, ss = fast.select(cf, src, tok), slow.select(cs, src, tok)
        yseq = torch.cat([yseq[src], tok[:, None]], 1)
    # only some slots live (compaction): rows 0, 2 of utterance 0 and row 4 of utterance 1
    live = torch.tensor([0, 2, 4])
    _, cf = fast.score(yseq, sf, ctx)
    _, cs = slow.score(yseq, ss, ctx)
    ctx.hyp_to_utt, ctx.row_slot, ctx.beam, ctx.groups = h2u[live], live, beam, 2
    tok = torch.randint(1, 8, (3,))
    sf, ss = fast.select(cf, live, tok), slow.select(cs, live, tok)
    yseq = torch.cat([yseq[live], tok[:, None]], 1)
    a, cf = fast.score(yseq, sf, ctx)
    b, cs = slow.score(yseq, ss, ctx)
    torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-5)
    # dropping the first utterance keeps the second one's numbers
    keep_row, keep_utt = torch.tensor([2]), torch.tensor([1])
    sf = fast.compact(fast.select(cf, keep_row, tok[2:]), keep_utt)
    ss = slow.compact(slow.select(cs, keep_row, tok[2:]), keep_utt)
    yseq = torch.cat([yseq[keep_row], tok[2:, None]], 1)
    ctx.hyp_to_utt, ctx.row_slot, ctx.groups = h2u[live[keep_row]], torch.tensor([1]), 1
    a, _ = fast.score(yseq, sf, ctx)
    b, _ = slow.score(yseq, ss, ctx)
    torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-5)


def test_bf16_source_attention_products_match_the_fused_kernel():
    """Over >= PRODUCT_ATTENTION_MIN_GROUPS utterances bf16 source attention runs as two products with a
    float32 softmax: the same attention as the fused kernel (masked frames excluded) to bf16 precision."""
    g = torch.Generator().manual_seed(0)
    groups = fa.PRODUCT_ATTENTION_MIN_GROUPS
    q, k, v = (torch.randn(groups, 2, 5, 8, generator=g).bfloat16() for _ in range(3))
    k, v = k.repeat(1, 1, 2, 1)[:, :, :7], v.repeat(1, 1, 2, 1)[:, :, :7]
    mask = (torch.arange(7)[None] < torch.randint(3, 8, (groups,), generator=g)[:, None])[:, None, None, :]
    got = fa._source_attend(q, k, v, mask).float()
    want = torch.nn.functional.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask)
    torch.testing.assert_close(got, want, rtol=0, atol=0.03)
    v_masked = v.clone()
    v_masked[~mask.squeeze(2).unsqueeze(-1).expand_as(v)] = 100.0  # masked frames must not count
    torch.testing.assert_close(fa._source_attend(q, k, v_masked, mask).float(), got, rtol=0, atol=0)
    assert torch.equal(fa._source_attend(q[:groups - 1], k[:groups - 1], v[:groups - 1], mask[:groups - 1]),
                       torch.nn.functional.scaled_dot_product_attention(q[:groups - 1], k[:groups - 1],
                                                                        v[:groups - 1], attn_mask=mask[:groups - 1]))


def test_bf16_self_attention_products_match_the_fused_kernel():
    """One query per hypothesis over its dense cached positions: in bf16 on CPU two products with a float32
    softmax, the fused kernel's attention to bf16 precision; float32 is the fused kernel itself."""
    g = torch.Generator().manual_seed(0)
    q = torch.randn(6, 4, 1, 8, generator=g)
    k, v = torch.randn(6, 4, 5, 8, generator=g), torch.randn(6, 4, 5, 8, generator=g)
    want = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    assert torch.equal(fa._self_attend(q, k, v), want)
    got = fa._self_attend(q.bfloat16(), k.bfloat16(), v.bfloat16())
    assert got.dtype == torch.bfloat16 and got.shape == want.shape
    torch.testing.assert_close(got.float(), want, rtol=0, atol=0.03)


@torch.no_grad()
def test_row_major_cache_grows_by_one_position_and_keeps_the_gathered_rows():
    """The fused search's key/value cache: dense (N, H, positions, dk) tensors, gathered by select() into
    tensors one position longer whose filled part is exactly the chosen rows' past."""
    torch.manual_seed(0)
    dec = TransformerDecoder(vocab_size=9, d_model=32, heads=4, layers=2, ffn_dim=48).eval()
    beam = 3
    ctx = SearchContext(torch.randn(1, 5, 32), torch.tensor([5]), torch.zeros(beam, dtype=torch.long))
    fast = CachedAttentionScorer(dec, beam)
    state = fast.init_state(ctx)
    yseq = torch.full((beam, 1), 8)
    _, cand = fast.score(yseq, state, ctx)
    src = torch.tensor([2, 2, 0])
    new = fast.select(cand, src, torch.tensor([1, 2, 3]))
    assert len(new["self_kv"]) == 2 * len(dec.decoders)
    for before, after in zip(cand["self_kv"], new["self_kv"]):
        assert before.shape == (beam, 4, 1, 8) and after.shape == (beam, 4, 2, 8) and after.is_contiguous()
        assert torch.equal(after[:, :, :1], before[src])
