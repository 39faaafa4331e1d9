"""The fused LSTM LM scorer computes what ``RNNLM.step`` computes; other LMs are refused with a clear error."""
from __future__ import annotations

import pytest
import torch

from avsr_lightning.decoding.fast_lm import FusedLSTMLMScorer, supports
from avsr_lightning.decoding.scorers import RNNLMScorer, SearchContext
from avsr_lightning.models.rnnlm import RNNLM


@torch.no_grad()
@pytest.mark.parametrize("layers,embed_units", [(1, None), (3, 7)])
def test_fused_lm_equals_rnnlm_step(layers, embed_units):
    torch.manual_seed(layers)
    lm = RNNLM(11, layers=layers, units=13, embed_units=embed_units).eval()
    ctx = SearchContext(torch.zeros(2, 3, 4), torch.tensor([3, 3]), torch.tensor([0, 0, 1, 1, 1]))
    fast, slow = FusedLSTMLMScorer(lm), RNNLMScorer(lm)
    sf, ss = fast.init_state(ctx), slow.init_state(ctx)
    yseq = torch.full((5, 1), lm.sos)
    for step in range(5):
        a, cf = fast.score(yseq, sf, ctx)
        b, cs = slow.score(yseq, ss, ctx)
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        assert a.dtype == torch.float32
        src = torch.randint(0, yseq.size(0), (4 if step == 2 else yseq.size(0),))
        tok = torch.randint(0, 11, (src.numel(),))
        sf, ss = fast.select(cf, src, tok), slow.select(cs, src, tok)
        yseq = torch.cat([yseq[src], tok[:, None]], 1)
        ctx.hyp_to_utt = ctx.hyp_to_utt[src]


def test_gru_and_quantised_lms_are_not_fused():
    gru = RNNLM(6, layers=1, units=5, rnn_type="gru")
    assert not supports(gru) and supports(RNNLM(6, layers=1, units=5))
    with pytest.raises(TypeError, match="RNNLMScorer"):
        FusedLSTMLMScorer(gru)
