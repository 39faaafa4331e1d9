"""Incremental decoding == teacher forcing; the loss against hand-computed values."""
from __future__ import annotations

import math

import torch

from avsr_lightning.loss import HybridCTCAttentionLoss, add_sos_eos, label_smoothing_loss, token_accuracy
from avsr_lightning.models import CTCHead, TransformerDecoder


def test_incremental_step_equals_full_decoder():
    torch.manual_seed(0)
    dec = TransformerDecoder(vocab_size=11, d_model=16, heads=2, layers=3, ffn_dim=32).eval()
    memory = torch.randn(3, 8, 16)
    lengths = torch.tensor([8, 5, 2])
    mask = (torch.arange(8) < lengths[:, None]).unsqueeze(1)
    ys = torch.cat([torch.full((3, 1), 10), torch.randint(1, 10, (3, 5))], dim=1)
    with torch.no_grad():
        full = dec(ys, None, memory, lengths).log_softmax(-1)
        cache = None
        for i in range(1, ys.size(1) + 1):
            logp, cache = dec.step(ys[:, :i], memory, mask, cache)
            assert len(cache) == 3 and all(c.shape == (3, i, 16) for c in cache)
            torch.testing.assert_close(logp, full[:, i - 1], atol=1e-5, rtol=1e-5)
        # beam reordering via index_select on the cache gives the reordered hypotheses' scores
        idx = torch.tensor([2, 0, 0])
        cache = [c[:, :-1].index_select(0, idx) for c in cache]
        logp, _ = dec.step(ys.index_select(0, idx), memory.index_select(0, idx), mask.index_select(0, idx), cache)
        torch.testing.assert_close(logp, full.index_select(0, idx)[:, -1], atol=1e-5, rtol=1e-5)


def test_add_sos_eos():
    ys = torch.tensor([[5, 6, 7], [8, -1, -1]])
    ys_in, ys_out = add_sos_eos(ys, sos=40, eos=40)
    assert ys_in.tolist() == [[40, 5, 6, 7], [40, 8, 40, 40]]
    assert ys_out.tolist() == [[5, 6, 7, 40], [8, 40, -1, -1]]


def test_label_smoothing_by_hand():
    v, eps = 4, 0.1
    logits = torch.tensor([[[1.0, 2.0, 0.5, -1.0], [0.0, 0.0, 3.0, 1.0]], [[2.0, -1.0, 0.0, 0.0], [9.0, 9.0, 9.0, 9.0]]])
    targets = torch.tensor([[1, 2], [3, -1]])  # argmax hits 1 and 2, misses 3
    total = 0.0
    for b, t in [(0, 0), (0, 1), (1, 0)]:
        logp = torch.log_softmax(logits[b, t], -1).tolist()
        q = [eps / (v - 1)] * v
        q[int(targets[b, t])] = 1 - eps
        total += sum(qc * (math.log(qc) - lp) for qc, lp in zip(q, logp))
    assert math.isclose(float(label_smoothing_loss(logits, targets, eps)), total / 2, rel_tol=1e-6)
    assert math.isclose(float(label_smoothing_loss(logits, targets, eps, length_normalized=True)), total / 3,
                        rel_tol=1e-6)
    # no smoothing = plain cross-entropy
    ce = torch.nn.functional.cross_entropy(logits.view(-1, v), targets.view(-1), ignore_index=-1, reduction="sum")
    assert math.isclose(float(label_smoothing_loss(logits, targets, 0.0)), float(ce) / 2, rel_tol=1e-6)
    assert math.isclose(float(token_accuracy(logits, targets)), 2 / 3, rel_tol=1e-6)


def test_ctc_loss_is_summed_nll_over_batch_size():
    torch.manual_seed(1)
    head = CTCHead(vocab_size=6, d_model=8).eval()
    feats = torch.randn(3, 7, 8)
    lengths = torch.tensor([7, 6, 2])
    targets = torch.tensor([[1, 2, 3], [4, 4, -1], [1, 2, 3]])  # the last one is infeasible (2 frames, 3 labels)
    tl = torch.tensor([3, 2, 3])
    per_utt = torch.nn.CTCLoss(blank=0, reduction="none", zero_infinity=True)(
        head.log_probs(feats).transpose(0, 1), targets.clamp_min(0), lengths, tl)
    assert per_utt[2] == 0
    torch.testing.assert_close(head.loss(feats, lengths, targets, tl), per_utt.sum() / 3)


def test_hybrid_weighting():
    logits = torch.randn(2, 3, 5)
    ys_out = torch.tensor([[1, 2, 4], [3, 4, -1]])
    out = HybridCTCAttentionLoss(ctc_weight=0.3, label_smoothing=0.1)(torch.tensor(10.0), logits, ys_out)
    torch.testing.assert_close(out["loss"], 0.3 * 10.0 + 0.7 * out["loss_att"])
    assert set(out) == {"loss", "loss_ctc", "loss_att", "acc"}
