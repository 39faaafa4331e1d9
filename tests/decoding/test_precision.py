"""bf16 and int8 decoding of a small decoded set stay within the stated tolerance of fp32 (docs/decoding.md).

The model is a tiny decoder + CTC head trained for a few seconds to read token sequences from noisy
"encoder features", so fp32 decoding has a real, non-trivial word error rate to compare against.
Tolerance (stated in the docs): best hypotheses identical to fp32 on >= 90 % of the utterances and WER
within 0.05 absolute of fp32's.
"""
from __future__ import annotations

import pytest
import torch

import avsr_lightning
from avsr_lightning.decoding import precision
from avsr_lightning.evaluation.metrics import word_errors
from avsr_lightning.models.rnnlm import RNNLM

from ._tiny import FeatureRecognizer

VOCAB, D, REPEAT = 10, 24, 2


def _data(n: int, seed: int, table: torch.Tensor):
    """Token sequences (ids 1..V-2) and features: each token's code repeated REPEAT frames, plus noise."""
    g = torch.Generator().manual_seed(seed)
    lens = torch.randint(3, 7, (n,), generator=g)
    targets = torch.full((n, int(lens.max())), -1, dtype=torch.long)
    feats = torch.zeros(n, int(lens.max()) * REPEAT, D)
    for i, m in enumerate(lens.tolist()):
        targets[i, :m] = torch.randint(1, VOCAB - 1, (m,), generator=g)
        codes = table[targets[i, :m]].repeat_interleave(REPEAT, 0)
        feats[i, :m * REPEAT] = codes + 0.9 * torch.randn(m * REPEAT, D, generator=g)
    return feats, lens * REPEAT, targets, lens


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    model = FeatureRecognizer(vocab_size=VOCAB, d_model=D, seed=0)
    with torch.no_grad():
        for p in model.parameters():
            p.div_(3.0)  # undo the test helper's peaking: this one is trained
    table = torch.randn(VOCAB, D, generator=torch.Generator().manual_seed(1))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for step in range(120):
        feats, flen, targets, tlen = _data(32, 100 + step, table)
        ys_in = torch.cat([torch.full((32, 1), model.sos), targets.clamp_min(0)], 1)
        for i, m in enumerate(tlen.tolist()):
            ys_in[i, m + 1:] = model.eos
        ys_out = torch.cat([targets, torch.full((32, 1), -1)], 1)
        ys_out[torch.arange(32), tlen] = model.eos
        logits = model.decoder(ys_in, tlen + 1, feats, flen)
        att = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), ys_out.reshape(-1), ignore_index=-1)
        loss = 0.7 * att + 0.3 * model.ctc.loss(feats, flen, targets, tlen) / 10
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    torch.manual_seed(2)
    lm = RNNLM(VOCAB, layers=2, units=24).eval()
    return model, lm, _data(40, 7, table)


def _wer(hyps, targets, lens) -> float:
    errors = words = 0
    for h, t, m in zip(hyps, targets, lens.tolist()):
        e, w = word_errors(" ".join(map(str, t[:m].tolist())), " ".join(map(str, h[0].tokens)))
        errors, words = errors + e, words + w
    return errors / words


@pytest.mark.parametrize("dtype,quantize", [("bf16", "none"), ("fp32", "int8"), ("bf16", "int8")])
def test_reduced_precision_wer_within_tolerance(trained, dtype, quantize):
    model, lm, (feats, flen, targets, tlen) = trained
    kw = dict(beam_size=4, ctc_weight=0.3, lm=lm, lm_weight=0.2, length_bonus=0.5)
    ref = avsr_lightning.decode(model, feats, flen, None, None, **kw)
    out = avsr_lightning.decode(model, feats, flen, None, None, dtype=dtype, quantize=quantize, **kw)
    wer_ref, wer = _wer(ref, targets, tlen), _wer(out, targets, tlen)
    print(f"{dtype}/{quantize}: WER {wer:.4f} vs fp32 {wer_ref:.4f}")
    assert 0.0 < wer_ref < 0.6, wer_ref  # the fp32 decode is a real, imperfect recognizer
    same = sum(x[0].tokens == y[0].tokens for x, y in zip(out, ref)) / len(ref)
    print(f"identical best hypotheses: {same:.3f}")
    assert same >= 0.9, same
    assert abs(wer - wer_ref) <= 0.05, (wer, wer_ref)
    assert all(isinstance(h[0].score, float) for h in out)


def test_reduced_precision_copies_are_really_used(trained):
    """The test above compares different numerics: bf16 weights / int8 modules in the search copies,
    while the user's model is left untouched in fp32."""
    model, lm, _ = trained
    bf16 = precision.converted(model.decoder, "decoder", "bf16", "none")
    assert bf16.decoders[0].feed_forward.w_1.weight.dtype == torch.bfloat16
    assert bf16.after_norm.weight.dtype == torch.float32  # LayerNorms stay fp32
    int8 = precision.converted(model.decoder, "decoder", "fp32", "int8")
    assert "quantized" in type(int8.decoders[0].feed_forward.w_1).__module__
    assert "quantized" in type(precision.converted(lm, "lm", "fp32", "int8").rnn[0]).__module__
    assert model.decoder.decoders[0].feed_forward.w_1.weight.dtype == torch.float32
    # cached while the weights are unchanged, rebuilt after an in-place update
    assert precision.converted(model.decoder, "decoder", "bf16", "none") is bf16
    with torch.no_grad():
        model.decoder.output_layer.bias.add_(0.0)
    assert precision.converted(model.decoder, "decoder", "bf16", "none") is not bf16


def test_bad_precision_options_fail_fast():
    model = FeatureRecognizer()
    with pytest.raises(ValueError, match="dtype"):
        avsr_lightning.decode(model, torch.randn(1, 3, 16), torch.tensor([3]), None, None, dtype="fp16")
    with pytest.raises(ValueError, match="quantize"):
        avsr_lightning.decoding.BeamSearchDecoder(quantize="int4")


def test_bf16_rows_are_bucketed_fp32_rows_are_not():
    from avsr_lightning.decoding.row_buckets import BUCKET, padded_rows

    x = torch.randn(5, 3).bfloat16()
    padded, n = padded_rows(x)
    assert n == 5 and padded.shape == (BUCKET, 3) and torch.equal(padded[:5], x) and not padded[5:].any()
    same, n = padded_rows(x.float())
    assert n == 5 and same.shape == (5, 3)
