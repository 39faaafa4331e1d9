"""The cached attention scorer computes exactly what ``decoder.step`` computes (padded batch, reordering)."""
from __future__ import annotations

import torch

from avsr_lightning.decoding.fast_attention import CachedAttentionScorer, supports
from avsr_lightning.decoding.scorers import AttentionScorer, SearchContext
from avsr_lightning.models.decoder import TransformerDecoder


@torch.no_grad()
def test_cached_scorer_equals_decoder_step():
    torch.manual_seed(0)
    dec = TransformerDecoder(vocab_size=9, d_model=32, heads=4, layers=2, ffn_dim=48).eval()
    assert supports(dec) and not supports(torch.nn.Linear(2, 2))
    beam, lengths = 3, torch.tensor([7, 4])
    memory = torch.randn(2, 7, 32)
    h2u = torch.tensor([0, 1]).repeat_interleave(beam)
    ctx = SearchContext(memory, lengths, h2u)
    fast, slow = CachedAttentionScorer(dec, beam), AttentionScorer(dec)
    sf, ss = fast.init_state(ctx), slow.init_state(ctx)
    yseq = torch.full((6, 1), 8)
    for step in range(4):
        a, cf = fast.score(yseq, sf, ctx)
        b, cs = slow.score(yseq, ss, ctx)
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-5)
        src = torch.tensor([2, 0, 0, 5, 3, 4]) if step % 2 else torch.tensor([0, 1, 2, 3, 4, 5])
        tok = torch.randint(1, 8, (6,))
        sf, ss = fast.select(cf, src, tok), slow.select(cs, src, tok)
        yseq = torch.cat([yseq[src], tok[:, None]], 1)
    # dropping the first utterance keeps the second one's numbers
    keep = torch.arange(3, 6)
    ctx.hyp_to_utt = h2u[keep]
    sf, ss = fast.compact(sf, keep), slow.compact(ss, keep)
    a, _ = fast.score(yseq[keep], sf, ctx)
    b, _ = slow.score(yseq[keep], ss, ctx)
    torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-5)
