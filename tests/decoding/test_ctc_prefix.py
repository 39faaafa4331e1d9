"""The vectorised CTC prefix score against a direct sum over all alignments."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from avsr_lightning.decoding.ctc_prefix import CTCPrefixScorer


def collapse(path, blank=0):
    out, prev = [], None
    for s in path:
        if s != prev and s != blank:
            out.append(s)
        prev = s
    return out


def brute_force(log_probs: torch.Tensor, prefix: list[int], complete: bool) -> float:
    """log of the summed probability of every alignment whose labelling is ``prefix`` (complete) or
    starts with it (prefix probability psi, the label of ``prefix[-1]`` must be *emitted* by then)."""
    t, v = log_probs.shape
    total = 0.0
    for path in itertools.product(range(v), repeat=t):
        labels = collapse(path)
        if complete:
            ok = labels == prefix
        else:
            # psi(h): the labelling starts with h and h's last label is fully emitted at some frame
            ok = labels[:len(prefix)] == prefix
        if ok:
            total += math.exp(sum(float(log_probs[i, s]) for i, s in enumerate(path)))
    return math.log(total) if total > 0 else float("-inf")


@pytest.mark.parametrize("joint", [False, True], ids=["loop", "joint"])
@pytest.mark.parametrize("frames", [3, 5])
def test_prefix_scores_equal_alignment_sums(frames, joint):
    torch.manual_seed(frames)
    vocab, eos = 5, 4  # blank 0, labels 1..3, eos 4 (never emitted by CTC: its posterior is ignored)
    logits = torch.randn(frames, vocab) * 2
    logits[:, eos] = -30.0
    log_probs = torch.log_softmax(logits, -1)
    scorer = CTCPrefixScorer(log_probs[None], torch.tensor([frames]), blank=0, eos=eos, joint=joint)
    h2u = torch.zeros(1, dtype=torch.long)
    for prefix in [[], [1], [2, 2], [1, 3], [3, 1, 2]]:
        state = scorer.initial_state(h2u)
        last = torch.tensor([eos])
        for k, tok in enumerate(prefix):
            cand = scorer.score(state, last, k, h2u)
            state = cand.select(torch.tensor([0]), torch.tensor([tok]))
            last = torch.tensor([tok])
        cand = scorer.score(state, last, len(prefix), h2u)
        for c in (1, 2, 3):
            expect = brute_force(log_probs[:, :eos], prefix + [c], complete=False)
            got = float(cand.log_psi[0, c])
            if expect == float("-inf"):
                assert got < -1e9
            else:
                assert got == pytest.approx(expect, abs=1e-4), (prefix, c)
        # eos: the probability of the prefix as the complete labelling
        expect = brute_force(log_probs[:, :eos], prefix, complete=True)
        got = float(cand.log_psi[0, eos])
        assert (got < -1e9) if expect == float("-inf") else got == pytest.approx(expect, abs=1e-4)
        assert float(cand.log_psi[0, 0]) < -1e9  # blank is never a candidate


def test_padded_batch_matches_single_utterances():
    torch.manual_seed(1)
    lp = torch.log_softmax(torch.randn(2, 7, 6), -1)
    lengths = torch.tensor([7, 4])
    batched = CTCPrefixScorer(lp, lengths, 0, 5)
    h2u = torch.tensor([0, 0, 1, 1])
    state = batched.initial_state(h2u)
    cand = batched.score(state, torch.full((4,), 5), 0, h2u)
    state = cand.select(torch.arange(4), torch.tensor([1, 2, 3, 1]))
    cand = batched.score(state, torch.tensor([1, 2, 3, 1]), 1, h2u)
    for u, rows in ((0, [0, 1]), (1, [2, 3])):
        single = CTCPrefixScorer(lp[u:u + 1, :int(lengths[u])], lengths[u:u + 1], 0, 5)
        h = torch.zeros(2, dtype=torch.long)
        s = single.initial_state(h)
        c = single.score(s, torch.full((2,), 5), 0, h)
        toks = torch.tensor([[1, 2, 3, 1][r] for r in rows])
        s = c.select(torch.arange(2), toks)
        c = single.score(s, toks, 1, h)
        got, ref = cand.log_psi[rows], c.log_psi
        valid = ref > -1e9
        assert torch.equal(got > -1e9, valid)
        torch.testing.assert_close(got[valid], ref[valid], atol=1e-5, rtol=0)


def test_pre_beam_scores_only_selected_tokens_and_eos():
    torch.manual_seed(2)
    lp = torch.log_softmax(torch.randn(1, 6, 8), -1)
    sc = CTCPrefixScorer(lp, torch.tensor([6]), 0, 7)
    h2u = torch.zeros(2, dtype=torch.long)
    state = sc.initial_state(h2u)
    full = sc.score(state, torch.full((2,), 7), 0, h2u)
    ids = torch.tensor([[1, 3, 5], [2, 3, 4]])
    part = sc.score(state, torch.full((2,), 7), 0, h2u, scoring_ids=ids)
    for row in range(2):
        for tok in range(8):
            if tok in ids[row].tolist() or tok == 7:
                assert float(part.log_psi[row, tok]) == pytest.approx(float(full.log_psi[row, tok]), abs=1e-6)
            else:
                assert float(part.log_psi[row, tok]) < -1e9
    # selecting through the pre-beam column map gives the same forward variables
    a = full.select(torch.tensor([1]), torch.tensor([4]))
    b = part.select(torch.tensor([1]), torch.tensor([4]))
    torch.testing.assert_close(a.r, b.r)


def test_joint_recursion_gives_the_loops_bits():
    """The fast path's joint [phi | r^n | r^b] recursion computes the same values as the former loop, in a
    padded batch, with and without a pre-beam, over several reordering steps."""
    torch.manual_seed(3)
    lp = torch.log_softmax(torch.randn(3, 20, 41), -1)
    lengths = torch.tensor([20, 13, 17])
    loop, joint = CTCPrefixScorer(lp, lengths, 0, 40), CTCPrefixScorer(lp, lengths, 0, 40, joint=True)
    h2u = torch.tensor([0, 0, 1, 1, 2])
    sa, sb = loop.initial_state(h2u), joint.initial_state(h2u)
    last = torch.full((5,), 40)
    src = torch.tensor([1, 0, 3, 2, 4])
    for step in range(6):
        ids = torch.randint(1, 40, (5, 12)) if step % 2 else None
        ca, cb = loop.score(sa, last, step, h2u, ids), joint.score(sb, last, step, h2u, ids)
        assert torch.equal(ca.log_psi, cb.log_psi) and torch.equal(ca.r, cb.r), step
        tok = ids[src, step % 12] if ids is not None else torch.randint(1, 40, (5,))
        sa, sb = ca.select(src, tok), cb.select(src, tok)
        assert torch.equal(sa.r, sb.r)
        last = tok
