"""Scoring only live hypotheses (compaction) changes nothing: same ended hypotheses, same order, same scores."""
from __future__ import annotations

import pytest
import torch

from avsr_lightning.decoding.api import beam_search_from_features
from avsr_lightning.models.rnnlm import RNNLM

from ._tiny import FeatureRecognizer

# (vocab, beam, ctc_weight, use_lm, lengths, seed): pre-beam active (beam 3 of vocab 9) and not, CTC only
# (decoder dropped), attention only (no partial scorer), one utterance and several of different lengths.
CONFIGS = [
    (9, 3, 0.3, True, [11, 4, 8], 0),
    (9, 6, 0.1, False, [7, 12, 1, 5], 1),
    (7, 4, 0.0, True, [9, 3], 2),
    (7, 5, 1.0, True, [10, 6, 6], 3),
    (12, 8, 0.1, True, [13], 4),
    (6, 2, 0.5, False, [8, 2, 9, 4, 6], 5),
]


@pytest.mark.parametrize("vocab,beam,ctc_weight,use_lm,lengths,seed", CONFIGS)
@pytest.mark.parametrize("cached", [True, False])
def test_compaction_gives_identical_results(vocab, beam, ctc_weight, use_lm, lengths, seed, cached):
    model = FeatureRecognizer(vocab_size=vocab, d_model=16, seed=seed)
    torch.manual_seed(seed + 100)
    lm = RNNLM(vocab, layers=2, units=10).eval() if use_lm else None
    lengths_t = torch.tensor(lengths)
    feats = torch.randn(len(lengths), max(lengths), 16)
    kw = dict(beam_size=beam, ctc_weight=ctc_weight, lm=lm, lm_weight=0.4, length_bonus=0.3, cached_decoder=cached)
    with torch.no_grad():
        on = beam_search_from_features(model, feats, lengths_t, compact=True, **kw)
        off = beam_search_from_features(model, feats, lengths_t, compact=False, **kw)
    assert len(on) == len(off) == len(lengths)
    ended = 0
    for u, (a, b) in enumerate(zip(on, off)):
        assert [h.yseq for h in a] == [h.yseq for h in b], f"utterance {u}"
        for x, y in zip(a, b):
            assert abs(x.score - y.score) < 1e-4  # GEMM round-off differs with the row count
            assert x.scores.keys() == y.scores.keys()
            assert all(abs(x.scores[k] - y.scores[k]) < 1e-4 for k in x.scores)
            assert x.reached_maxlen == y.reached_maxlen
        ended += len(a)
    # the searches did real work: several hypotheses ended per utterance, some longer than one token
    assert ended >= 2 * len(lengths)
    assert any(len(h.yseq) > 3 for hyps in on for h in hyps)


@torch.no_grad()
def test_compaction_scores_fewer_rows():
    """The point of compaction: step 0 scores one row per utterance, and ended rows are not scored."""
    model = FeatureRecognizer(vocab_size=9, d_model=16, seed=7)
    rows: dict[bool, list[int]] = {True: [], False: []}
    feats, lengths = torch.randn(2, 10, 16), torch.tensor([10, 7])
    for compact in (True, False):
        original = model.decoder.output_layer.forward

        def counting(x, compact=compact, original=original):
            rows[compact].append(x.shape[0])
            return original(x)

        model.decoder.output_layer.forward = counting
        try:
            beam_search_from_features(model, feats, lengths, beam_size=5, ctc_weight=0.3, compact=compact)
        finally:
            del model.decoder.output_layer.forward
    assert rows[False][0] == 10 and rows[True][0] == 2
    assert sum(rows[True]) < sum(rows[False])
