"""A beam wide enough to keep every prefix finds the exhaustive-enumeration optimum (tiny vocabulary)."""
from __future__ import annotations

import itertools
import math

import torch

from avsr_lightning.decoding.beam_search import BatchBeamSearch
from avsr_lightning.decoding.scorers import (
    AttentionScorer,
    CTCScorer,
    LengthBonus,
    RNNLMScorer,
    SearchContext,
)
from avsr_lightning.models.rnnlm import RNNLM

from ._tiny import FeatureRecognizer

WEIGHTS = {"decoder": 0.9, "ctc": 0.1, "lm": 0.5, "length_bonus": 0.5}
LABELS = (1, 2, 3)  # vocabulary: blank 0, labels 1..3, sos/eos 4


def collapse(path, blank=0):
    out, prev = [], None
    for s in path:
        if s != prev and s != blank:
            out.append(s)
        prev = s
    return tuple(out)


def ctc_tables(log_probs: torch.Tensor):
    """Every full-length path over all classes -> (labelling, log-prob), for direct sums."""
    t, v = log_probs.shape
    return [(collapse(p), float(sum(log_probs[i, s] for i, s in enumerate(p))))
            for p in itertools.product(range(v), repeat=t)]


def log_sum(values):
    values = list(values)
    if not values:
        return -1e10
    m = max(values)
    return m + math.log(sum(math.exp(x - m) for x in values))


def sequence_score(model, lm, memory, paths, y, with_eos):
    """The reference weighted sum for tokens ``y``, eos scored (ended) or not (closed at maxlen)."""
    sos = eos = model.eos
    ys_in = torch.tensor([[sos, *y]])
    dec = torch.log_softmax(model.decoder(ys_in, None, memory[None], None), -1)[0]
    lm_lp = torch.log_softmax(lm(ys_in)[0], -1)[0]
    targets = list(y) + ([eos] if with_eos else [])
    s_dec = sum(float(dec[k, tok]) for k, tok in enumerate(targets))
    s_lm = sum(float(lm_lp[k, tok]) for k, tok in enumerate(targets))
    if with_eos:  # complete labelling probability
        s_ctc = log_sum(lp for lab, lp in paths if lab == tuple(y))
    else:  # prefix probability
        s_ctc = log_sum(lp for lab, lp in paths if lab[:len(y)] == tuple(y)) if y else 0.0
    total = (WEIGHTS["decoder"] * s_dec + WEIGHTS["lm"] * s_lm + WEIGHTS["length_bonus"] * len(targets)
             + WEIGHTS["ctc"] * s_ctc)
    return total, {"decoder": s_dec, "ctc": s_ctc, "lm": s_lm, "length_bonus": float(len(targets))}


@torch.no_grad()
def test_wide_beam_equals_exhaustive_search():
    model = FeatureRecognizer(vocab_size=5, d_model=16, seed=3)
    torch.manual_seed(4)
    lm = RNNLM(5, layers=1, units=8).eval()
    lengths = torch.tensor([4, 3])
    memory = torch.randn(2, 4, 16)
    scorers = {"decoder": AttentionScorer(model.decoder), "lm": RNNLMScorer(lm), "length_bonus": LengthBonus(5),
               "ctc": CTCScorer(model.ctc.log_probs(memory), lengths, 0, 4)}
    search = BatchBeamSearch(scorers, WEIGHTS, beam_size=400, vocab_size=5, sos=4, eos=4, end_detect=False)
    assert not search.do_pre_beam
    results = search(SearchContext(memory, lengths, lengths.new_zeros(0)), lengths)
    for u in range(2):
        t = int(lengths[u])
        mem = memory[u, :t]
        paths = ctc_tables(model.ctc.log_probs(mem[None])[0])
        table = {}
        for n in range(t + 1):
            for y in itertools.product(LABELS, repeat=n):
                # shorter than maxlen: must end with a scored eos; at maxlen: eos appended unscored
                table[(y, n < t)] = sequence_score(model, lm, mem, paths, y, with_eos=n < t)
        best_key = max(table, key=lambda k: table[k][0])
        found = [r for r in results[u] if 0 not in r.yseq]  # drop never-competitive blank expansions
        assert tuple(found[0].tokens(4, 4)) == best_key[0]
        assert abs(found[0].score - table[best_key][0]) < 1e-4
        # every hypothesis the search ended has exactly the enumerated score
        checked = set()
        for r in found:
            y = tuple(r.tokens(4, 4))
            scored_eos = not r.reached_maxlen or r.yseq[-2] == 4
            total, parts = table[(y, scored_eos)]
            if total < -1e8:  # CTC-infeasible: both sides hold the log-zero constant
                assert r.score < -1e8 and r.scores["ctc"] <= -1e9
                continue
            assert abs(r.score - total) < 1e-4, (y, r.score, total)
            for k, v in parts.items():
                assert abs(r.scores[k] - v) < 1e-4, (y, k)
            checked.add((y, scored_eos))
        # the wide beam kept every sequence: all CTC-feasible candidates were ended by the search
        feasible = {k for k, v in table.items() if v[0] > -1e8}
        assert len(feasible) > 20 and checked == feasible
