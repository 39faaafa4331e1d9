"""Reference quirks by default; with the opt-in fixes an utterance's output does not depend on the batch.

Eval mode throughout (BatchNorm running statistics). "Alone" = the utterance in a batch of one, padded
to its own length, which is also how the reference decodes at inference time.
"""
from __future__ import annotations

import pytest
import torch

from ._tiny import random_batch, tiny_model

ARCHS = ["AVRelScore", "VCAFE", "Conformer", "Audio", "Video"]


def _encode(model, batch, arch):
    video = None if arch == "Audio" else batch["video"]
    audio = None if arch == "Video" else batch["audio"]
    with torch.no_grad():
        feats, _ = model.encode(video, batch["video_lengths"], audio, batch["audio_lengths"])
    return feats


def _short_alone(arch, model, lengths=(12, 7)):
    batch = random_batch(lengths)
    n = lengths[1]
    alone = {k: v[1:] for k, v in batch.items()}
    alone["video"], alone["audio"] = alone["video"][:, :n], alone["audio"][:, :640 * n]
    # non-zero garbage in the padding must not matter either once the fixes are on
    batch["video"][1, n:] = 3.0
    batch["audio"][1, 640 * n:] = 0.5
    return _encode(model, batch, arch)[1, :n], _encode(model, alone, arch)[0]


FIXES = {"AVRelScore": dict(mask_padding=True, packed_positions=True)}


@pytest.mark.parametrize("arch", ARCHS)
def test_with_fixes_outputs_do_not_depend_on_the_batch(arch):
    model = tiny_model(arch, **FIXES.get(arch, dict(mask_padding=True))).eval()
    batched, alone = _short_alone(arch, model)
    torch.testing.assert_close(batched, alone, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("arch", ARCHS)
def test_reference_default_leaks_padding(arch):
    model = tiny_model(arch).eval()
    batched, alone = _short_alone(arch, model)
    assert (batched - alone).abs().max() > 1e-3


def test_avrelscore_mask_padding_alone_is_not_enough():
    """The padding-dependent video-audio distance (spec §8.14) needs ``packed_positions``."""
    model = tiny_model("AVRelScore", mask_padding=True).eval()
    batched, alone = _short_alone("AVRelScore", model)
    assert (batched - alone).abs().max() > 1e-3


def test_fixes_do_not_change_full_length_utterances_or_parameters():
    ref = tiny_model("AVRelScore").eval()
    fixed = tiny_model("AVRelScore", mask_padding=True, packed_positions=True).eval()
    assert list(ref.state_dict()) == list(fixed.state_dict())
    fixed.load_state_dict(ref.state_dict())
    batch = random_batch((9, 9))
    torch.testing.assert_close(_encode(ref, batch, "AVRelScore"), _encode(fixed, batch, "AVRelScore"))


def test_masked_batchnorm_training_statistics_ignore_padding():
    from avsr_lightning.models.masking import lengths_to_mask, masked_batch_norm

    bn = torch.nn.BatchNorm1d(3).train()
    x = torch.randn(2, 3, 6)
    valid = lengths_to_mask(torch.tensor([6, 4]), 6).unsqueeze(1)
    y = masked_batch_norm(bn, x.masked_fill(~valid, 100.0), valid)
    flat = torch.cat([x[0], x[1, :, :4]], dim=1)  # (C, 10) valid values only
    expected = (flat - flat.mean(1, keepdim=True)) / torch.sqrt(flat.var(1, unbiased=False, keepdim=True) + 1e-5)
    torch.testing.assert_close(torch.cat([y[0], y[1, :, :4]], dim=1), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(bn.running_mean, 0.1 * flat.mean(1))
    torch.testing.assert_close(bn.running_var, 0.9 + 0.1 * flat.var(1, unbiased=True))
