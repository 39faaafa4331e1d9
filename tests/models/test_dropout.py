"""Packed-bit dropout masks (models/dropout.py): the drop rate, the scaling, every element's draw
independent and uniform, the identity in evaluation, and the opt-in switch."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from avsr_lightning.lightning_module import AVSRModule
from avsr_lightning.models.dropout import Dropout, packed_dropout, set_packed_dropout

from ._tiny import random_batch, tiny_model

N = 1 << 21


@pytest.mark.parametrize("p", [0.1, 0.5, 0.03])
def test_drop_rate_and_scale(p):
    torch.manual_seed(0)
    x = torch.rand(N) + 0.5
    out = packed_dropout(x, p)
    dropped = out == 0
    p_rounded = round(p * 65536) / 65536
    sigma = math.sqrt(p_rounded * (1 - p_rounded) / N)
    assert abs(float(dropped.float().mean()) - p_rounded) < 5 * sigma
    torch.testing.assert_close(out[~dropped], x[~dropped] / (1 - p_rounded))
    # every one of the four 16-bit fields of a 64-bit draw is uniform: the rate holds at each lane
    lanes = dropped.view(-1, 4).float().mean(0)
    assert (lanes - p_rounded).abs().max() < 5 * sigma * 2
    # neighbouring elements are not correlated
    pairs = (dropped[0::2] & dropped[1::2]).float().mean()
    assert abs(float(pairs) - p_rounded ** 2) < 5 * math.sqrt(p_rounded ** 2 / (N / 2))


def test_expectation_and_gradient():
    torch.manual_seed(1)
    x = torch.full((N,), 2.0, requires_grad=True)
    out = packed_dropout(x, 0.1)
    assert abs(float(out.detach().mean()) - 2.0) < 5 * 2.0 * math.sqrt(0.1 / 0.9 / N)
    out.sum().backward()
    torch.testing.assert_close(x.grad, out.detach() / 2.0)  # gradient = mask * scale


def test_bf16_and_shapes():
    torch.manual_seed(2)
    x = torch.randn(3, 5, 7, dtype=torch.bfloat16)
    out = packed_dropout(x, 0.2)
    assert out.shape == x.shape and out.dtype == torch.bfloat16
    assert packed_dropout(torch.empty(0, 4), 0.1).shape == (0, 4)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        packed_dropout(x, 1.0)


def test_module_is_nn_dropout_unless_packed():
    drop = Dropout(0.3)
    x = torch.randn(64, 64)
    torch.manual_seed(3)
    ref = nn.Dropout(0.3)(x)
    torch.manual_seed(3)
    assert torch.equal(drop(x), ref)  # off: nn.Dropout's masks, same random stream
    drop.packed = True
    torch.manual_seed(3)
    assert not torch.equal(drop(x), ref)
    assert torch.equal(drop.eval()(x), x)  # evaluation: identity either way


def test_the_switch_reaches_every_dropout_of_a_model():
    model = tiny_model("AVRelScore")
    module = AVSRModule(model, packed_dropout=True)
    drops = [m for m in module.model.modules() if isinstance(m, nn.Dropout)]
    assert drops and all(isinstance(m, Dropout) and m.packed for m in drops)
    assert set_packed_dropout(model, False) == len(drops)
    batch = random_batch()
    model.train()
    losses = []
    for packed in (False, True, True):
        set_packed_dropout(model, packed)
        torch.manual_seed(4)
        out = model.loss(batch["video"], batch["video_lengths"], batch["audio"], batch["audio_lengths"],
                         batch["targets"], batch["target_lengths"])
        losses.append(float(out["loss"]))
    assert losses[1] == losses[2] and losses[1] != losses[0]  # seeded, and really another mask
    assert abs(losses[1] - losses[0]) < 0.1 * abs(losses[0])
