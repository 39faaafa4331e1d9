"""AVRelScore's opt-in ``merge_halves`` readout: video token t + audio token t of the Conformer output.

Off by default (the reference keeps the video half only, tests/models/test_golden.py); on, the audio half
reaches the heads directly, in both layouts, and the batch invariance of the padding fixes still holds.
"""
from __future__ import annotations

import torch

from ._tiny import random_batch, tiny_model
from .test_padding_fixes import _encode, _short_alone


def _blocks_output(model, batch):
    """The (B, 2T, C) Conformer output (the last block's), captured with a forward hook."""
    seen = {}
    last = model.encoders.encoders[-1]
    handle = last.register_forward_hook(lambda mod, args, out: seen.setdefault("x", out))
    try:
        _encode(model, batch, "AVRelScore")
    finally:
        handle.remove()
    return seen["x"]


def test_merge_halves_adds_the_audio_half_and_keeps_the_parameters():
    ref = tiny_model("AVRelScore").eval()
    merged = tiny_model("AVRelScore", merge_halves=True).eval()
    assert list(ref.state_dict()) == list(merged.state_dict())
    merged.load_state_dict(ref.state_dict())
    batch = random_batch((9, 6))
    x = _blocks_output(merged, batch)
    t = x.size(1) // 2
    expected = merged.encoders.after_norm(x[:, :t] + x[:, t:])
    torch.testing.assert_close(_encode(merged, batch, "AVRelScore"), expected)
    # the reference readout ignores the audio half: the two differ
    assert (_encode(ref, batch, "AVRelScore") - expected).abs().max() > 1e-3


def test_merge_halves_packed_layout_reads_each_utterances_own_audio_tokens():
    model = tiny_model("AVRelScore", mask_padding=True, packed_positions=True, merge_halves=True).eval()
    batch = random_batch((9, 6))
    x = _blocks_output(model, batch)
    out = _encode(model, batch, "AVRelScore")
    for b, n in enumerate(batch["video_lengths"].tolist()):  # packed: [video 0..n-1, audio 0..n-1, zeros]
        expected = model.encoders.after_norm(x[b, :n] + x[b, n:2 * n])
        torch.testing.assert_close(out[b, :n], expected)


def test_merge_halves_with_the_fixes_outputs_do_not_depend_on_the_batch():
    model = tiny_model("AVRelScore", mask_padding=True, packed_positions=True, merge_halves=True).eval()
    batched, alone = _short_alone("AVRelScore", model)
    torch.testing.assert_close(batched, alone, atol=2e-5, rtol=1e-4)

