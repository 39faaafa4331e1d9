"""Every architecture: parameter counts, forward/backward on variable-length batches, interface shapes."""
from __future__ import annotations

import pytest
import torch

from avsr_lightning.models import ARCHITECTURES, AVRelScore, Recognizer

from ._tiny import random_batch, tiny_model

REFERENCE_PARAMS = {"AVRelScore": 85_719_698, "VCAFE": 58_706_578, "Conformer": 88_940_178,
                    "Audio": 45_160_402, "Video": 52_494_610}
UNUSED = {"AVRelScore": {"encoders.after_norm_vid.weight", "encoders.after_norm_vid.bias",
                         "encoders.after_norm_aud.weight", "encoders.after_norm_aud.bias"}}
UNUSED["VCAFE"] = UNUSED["AVRelScore"]


def _inputs(arch: str, batch: dict) -> tuple:
    video = None if arch == "Audio" else batch["video"]
    audio = None if arch == "Video" else batch["audio"]
    return video, batch["video_lengths"], audio, batch["audio_lengths"]


@pytest.mark.parametrize("arch", sorted(REFERENCE_PARAMS))
def test_default_parameter_count_matches_reference(arch):
    with torch.device("meta"):
        model = ARCHITECTURES[arch]()
    assert sum(p.numel() for p in model.parameters()) == REFERENCE_PARAMS[arch]
    assert isinstance(model, Recognizer)
    assert (model.vocab_size, model.sos, model.eos, model.blank, model.ignore_id, model.d_model) == (41, 40, 40, 0, -1, 256)


@pytest.mark.parametrize("arch", sorted(REFERENCE_PARAMS))
def test_forward_backward_variable_lengths(arch):
    model = tiny_model(arch).train()
    batch = random_batch()
    out = model(*_inputs(arch, batch), batch["targets"], batch["target_lengths"])
    assert set(out) == {"loss", "loss_ctc", "loss_att", "acc"}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in out.values())
    torch.testing.assert_close(out["loss"], 0.1 * out["loss_ctc"] + 0.9 * out["loss_att"])
    out["loss"].backward()
    no_grad = {n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0}
    assert no_grad == UNUSED.get(arch, set())
    assert set(model.unused_parameter_names()) == UNUSED.get(arch, set())


@pytest.mark.parametrize("arch", sorted(REFERENCE_PARAMS))
def test_encode_ctc_and_decoder_shapes(arch):
    model = tiny_model(arch).eval()
    batch = random_batch()
    with torch.no_grad():
        feats, lengths = model.encode(*_inputs(arch, batch))
        assert feats.shape == (2, 12, 32)
        assert torch.equal(lengths, batch["video_lengths"])
        assert model.ctc.log_probs(feats).shape == (2, 12, 41)
        ys = torch.full((2, 3), model.sos)
        assert model.decoder(ys, torch.tensor([3, 3]), feats, lengths).shape == (2, 3, 41)


def test_audio_model_without_video_lengths_uses_audio_frames():
    model = tiny_model("Audio").eval()
    batch = random_batch()
    with torch.no_grad():
        feats, lengths = model.encode(None, None, batch["audio"], batch["audio_lengths"])
    assert feats.shape[1] == 12 and torch.equal(lengths, batch["video_lengths"])


def test_short_audio_is_zero_padded_to_video_length():
    """640*T - 1 samples (the reference's float rounding) give T-1 audio frames, padded with one zero frame."""
    model = tiny_model("AVRelScore").eval()
    batch = random_batch()
    audio = batch["audio"][:, :-1]
    with torch.no_grad():
        feats, _ = model.encode(batch["video"], batch["video_lengths"], audio, batch["audio_lengths"])
    assert feats.shape == (2, 12, 32) and torch.isfinite(feats).all()


def test_avrelscore_reliability_shapes_and_range():
    model = tiny_model("AVRelScore").eval()
    batch = random_batch()
    with torch.no_grad():
        rel = model.reliability(batch["video"], batch["video_lengths"], batch["audio"], batch["audio_lengths"])
    assert set(rel) == {"video", "audio"}
    for scores in rel.values():
        assert scores.shape == (2, 12) and (scores > 0).all() and (scores < 1).all()


def test_wrong_inputs_fail_fast():
    model = tiny_model("AVRelScore")
    batch = random_batch()
    with pytest.raises(ValueError, match="needs both video and audio"):
        model.encode(None, batch["video_lengths"], batch["audio"], batch["audio_lengths"])
    with pytest.raises(ValueError, match="divisible"):
        AVRelScore(d_model=30, heads=4)


def test_macaron_ffn_starts_as_copy_of_ffn():
    block = tiny_model("Video").encoder_vid.encoders[0]
    assert torch.equal(block.feed_forward.w_1.weight, block.feed_forward_macaron.w_1.weight)
    assert block.feed_forward.w_1.weight.data_ptr() != block.feed_forward_macaron.w_1.weight.data_ptr()
