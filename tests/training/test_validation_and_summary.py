"""Validation runs the encoder once per batch; ``FitSummary`` accounts for the fit's wall time."""
from __future__ import annotations

import torch

from avsr_lightning.callbacks import FitSummary
from avsr_lightning.decoding.greedy import AttentionGreedyDecoder, CTCGreedyDecoder
from avsr_lightning.decoding.pre_encoded import PreEncoded


def _count_encodes(model):
    calls = {"n": 0}
    original = model.encode

    def counted(*args, **kwargs):
        calls["n"] += 1
        return original(*args, **kwargs)

    model.encode = counted
    return calls


def test_validation_encodes_each_batch_once(tr, tmp_path):
    for decoder in (CTCGreedyDecoder(), AttentionGreedyDecoder()):
        module = tr.tiny_module("Video", val_decoder=decoder)
        data = tr.tiny_data("video", val_size=6, batch_size=2)
        calls = _count_encodes(module.model)
        trainer = tr.tiny_trainer(tmp_path, max_steps=1, limit_train_batches=1)
        trainer.validate(module, datamodule=data, verbose=False)
        assert calls["n"] == 3, f"{type(decoder).__name__}: 6 utterances in batches of 2 -> 3 encoder passes"


def test_pre_encoded_view_returns_the_loss_features_and_nothing_else():
    torch.manual_seed(0)
    from avsr_lightning.models import Video

    model = Video(d_model=32, heads=2, encoder_layers=1, ffn_dim=64, decoder_layers=1, decoder_ffn_dim=64,
                  conv_kernel=3, frontend_widths=(8, 8, 16, 16)).eval()
    video, lengths = torch.randn(2, 7, 24, 24), torch.tensor([7, 5])
    inputs = (video, lengths, None, None)
    feats, flen = model.encode(*inputs)
    view = PreEncoded(model, inputs, feats, flen)
    assert view.encode(*inputs)[0] is feats  # same tensors -> cached
    other = view.encode(video[:1], lengths[:1], None, None)  # other inputs -> a real encoder pass
    assert other[0].shape[0] == 1
    assert view.vocab_size == model.vocab_size and view.ctc is model.ctc
    a = CTCGreedyDecoder()(view, type("B", (), {"model_inputs": lambda self: inputs})())
    b = CTCGreedyDecoder()(model, type("B", (), {"model_inputs": lambda self: inputs})())
    assert [h[0].tokens for h in a] == [h[0].tokens for h in b]


def test_fit_summary_counts_updates_and_shares(tr, tmp_path):
    summary = FitSummary()
    module = tr.tiny_module("Video")
    data = tr.tiny_data("video", train_size=8, batch_size=2)
    trainer = tr.tiny_trainer(tmp_path, max_steps=6, val_check_interval=3, callbacks=[summary])
    trainer.fit(module, datamodule=data)
    s = summary.summary
    assert s["updates"] == 6 and s["utterances"] == 12
    assert 0.0 < s["step_share"] < 1.0
    assert s["validation_s"] > 0.0  # two validation runs inside fit
    assert abs(s["step_s"] + s["validation_s"] + s["other_s"] - s["wall_s"]) < 1e-6
    text = summary.format()
    assert "6 updates" in text and "optimizer steps" in text
