"""decode() refuses inputs that used to decode to garbage without a word (issue 13, docs/decoding.md)."""
from __future__ import annotations

import pytest
import torch

from avsr_lightning.decoding import decode

from ._tiny import FeatureRecognizer


def _inputs(batch: int = 2, frames: int = 6, dim: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return torch.randn(batch, frames, dim), torch.tensor([frames, frames - 2])


def test_finite_float_input_decodes():
    model = FeatureRecognizer()
    x, lengths = _inputs()
    hyps = decode(model, x, lengths, None, None, beam_size=3, ctc_weight=0.3)
    assert len(hyps) == 2 and all(h and torch.isfinite(torch.tensor(h[0].score)) for h in hyps)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nan_or_inf_input_is_refused(value):
    model = FeatureRecognizer()
    x, lengths = _inputs()
    x[1, 2, 3] = value
    with pytest.raises(ValueError, match=r"video contains NaN or infinite values \(batch rows \[1\]\)"):
        decode(model, x, lengths, None, None, beam_size=3)


@pytest.mark.parametrize("lengths, words", [
    (torch.tensor([6, 7]), r"must be in \[0, 6\]"),
    (torch.tensor([6, -1]), r"must be in \[0, 6\]"),
    (torch.tensor([6]), "has 1 entries but video has batch size 2"),
    (torch.tensor([6.0, 4.0]), "must be a 1-D integer tensor"),
])
def test_lengths_that_do_not_match_the_tensors_are_refused(lengths, words):
    model = FeatureRecognizer()
    x, _ = _inputs()
    with pytest.raises(ValueError, match=words):
        decode(model, x, lengths, None, None, beam_size=3)


def test_uint8_video_is_refused_with_the_fix():
    model = FeatureRecognizer()
    x, lengths = _inputs()
    with pytest.raises(TypeError, match=r"dtype torch.uint8; the models take float input normalised"):
        decode(model, (x.abs() * 40).to(torch.uint8), lengths, None, None, beam_size=3)
