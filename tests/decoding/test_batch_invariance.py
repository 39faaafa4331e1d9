"""Decoding utterances together gives the same hypotheses and scores as one at a time; bad lengths."""
from __future__ import annotations

import pytest
import torch

import avsr_lightning
from avsr_lightning.batch import AVBatch
from avsr_lightning.decoding import BeamSearchDecoder
from avsr_lightning.models.rnnlm import RNNLM

from ._tiny import FeatureRecognizer


@pytest.fixture(scope="module")
def setup():
    model = FeatureRecognizer(vocab_size=8, d_model=16, seed=5)
    torch.manual_seed(6)
    lm = RNNLM(8, layers=2, units=12).eval()
    lengths = torch.tensor([9, 5, 0, 7, 1])
    feats = torch.randn(5, 9, 16)
    return model, lm, feats, lengths


@pytest.mark.parametrize("beam", [3, 6])  # beam 3: pre-beam of 4 tokens < 8; beam 6: none
def test_together_equals_one_at_a_time(setup, beam):
    model, lm, feats, lengths = setup
    kw = dict(beam_size=beam, ctc_weight=0.3, lm=lm, lm_weight=0.5, length_bonus=0.5, nbest=4)
    together = avsr_lightning.decode(model, feats, lengths, None, None, **kw)
    assert len(together) == 5
    for b in range(5):
        t = max(int(lengths[b]), 1)
        alone = avsr_lightning.decode(model, feats[b:b + 1, :t], lengths[b:b + 1], None, None, **kw)[0]
        assert [h.tokens for h in together[b]] == [h.tokens for h in alone]
        for x, y in zip(together[b], alone):
            assert abs(x.score - y.score) < 1e-4
            assert x.scores.keys() == y.scores.keys()
            assert all(abs(x.scores[k] - y.scores[k]) < 1e-4 for k in x.scores)
    # the search found real hypotheses, with the n-best ordered by score
    assert len(together[0]) == 4 and together[0][0].score >= together[0][1].score >= together[0][3].score
    assert set(together[0][0].scores) == {"decoder", "lm", "length_bonus", "ctc"}
    assert all(model.eos not in h.tokens for hyps in together for h in hyps)


def test_zero_length_gives_empty_hypothesis(setup):
    model, lm, feats, lengths = setup
    out = avsr_lightning.decode(model, feats, lengths, None, None, beam_size=3, lm=lm)
    assert out[2][0].tokens == [] and out[2][0].text == ""
    # one frame: maxlen 1, so the only hypotheses have at most one token (closed at maxlen)
    assert len(out[4][0].tokens) <= 1
    none = avsr_lightning.decode(model, feats[:1], torch.tensor([0]), None, None, beam_size=3)
    assert none[0][0].tokens == []


def test_never_ending_hypothesis_is_closed_at_maxlen():
    """A decoder that never wants eos: the search still ends, at maxlen = number of frames."""
    model = FeatureRecognizer(vocab_size=6, d_model=16, seed=7)
    with torch.no_grad():
        model.decoder.output_layer.bias[model.eos] = -1e4
        model.decoder.output_layer.bias[2] = 50.0
    out = avsr_lightning.decode(model, torch.randn(1, 6, 16), torch.tensor([6]), None, None, beam_size=2,
                                ctc_weight=0.0, length_bonus=0.0)
    assert out[0][0].tokens == [2] * 6


def test_decoder_object_on_a_batch(setup, tmp_path):
    model, lm, feats, lengths = setup
    batch = AVBatch(video=feats, video_lengths=lengths, audio=None, audio_lengths=lengths * 640,
                    targets=torch.full((5, 1), -1), target_lengths=torch.zeros(5, dtype=torch.long))
    from avsr_lightning.weights.espnet_lm import export_lm

    export_lm(lm, tmp_path, char_list=[f"<{i}>" for i in range(8)])
    decoder = BeamSearchDecoder(beam_size=3, ctc_weight=0.3, lm_path=str(tmp_path / "model.pth"), nbest=2)
    out = decoder(model, batch)
    direct = avsr_lightning.decode(model, feats, lengths, None, None, beam_size=3, ctc_weight=0.3, lm=lm, nbest=2)
    assert [[h.tokens for h in hyps] for hyps in out] == [[h.tokens for h in hyps] for hyps in direct]
    assert model.training is False


def test_bad_settings_fail_fast():
    with pytest.raises(ValueError, match="ctc_weight"):
        BeamSearchDecoder(ctc_weight=1.5)
    with pytest.raises(FileNotFoundError, match="lm_path"):
        BeamSearchDecoder(lm_path="/nonexistent/model.pth")
