"""Length-sorted, frame-budget decoding of a whole "test set" gives the one-at-a-time answers.

- batch-invariant models (``mask_padding=True``, and ``packed_positions=True`` for AVRelScore): chunks of
  padded utterances;
- reference-numerics models (the defaults: encoding depends on padding): the padding-safe path
  encodes only equal-length utterances together and batches the search.
"""
from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import avsr_lightning
from avsr_lightning.decoding.api import chunks_by_frames, depends_on_padding
from avsr_lightning.models import ARCHITECTURES
from avsr_lightning.models.rnnlm import RNNLM

# tiny sizes (as tests/models/_tiny.py)
TINY = dict(d_model=32, heads=2, encoder_layers=2, ffn_dim=48, decoder_layers=2, decoder_ffn_dim=48, conv_kernel=5,
            frontend_widths=(4, 8, 8, 16), scorer_hidden=16)

LENGTHS = (12, 7, 12, 9, 7, 5, 9)


def random_batch(lengths, seed: int, size: int = 24) -> dict[str, torch.Tensor]:
    """Zero-padded batch as the collate produces it (audio = 640 samples per frame)."""
    g = torch.Generator().manual_seed(seed)
    t = max(lengths)
    video, audio = torch.randn(len(lengths), t, size, size, generator=g), torch.randn(len(lengths), 640 * t, generator=g)
    for i, n in enumerate(lengths):
        video[i, n:] = 0
        audio[i, 640 * n:] = 0
    vl = torch.tensor(lengths)
    return dict(video=video, video_lengths=vl, audio=audio, audio_lengths=vl * 640)


def _model(mask_padding: bool):
    torch.manual_seed(0)
    model = ARCHITECTURES["AVRelScore"](**TINY, mask_padding=mask_padding, packed_positions=mask_padding).eval()
    with torch.no_grad():  # peaked posteriors, so hypotheses are long and differ between utterances
        model.decoder.output_layer.weight.mul_(6.0)
        model.ctc.ctc_lo.weight.mul_(6.0)
    return model


def _one_at_a_time(model, b, kw):
    out = []
    for i, t in enumerate(LENGTHS):
        out.append(avsr_lightning.decode(model, b["video"][i:i + 1, :t], b["video_lengths"][i:i + 1],
                                         b["audio"][i:i + 1, :640 * t], b["audio_lengths"][i:i + 1], **kw)[0])
    return out


def _same(batched, alone):
    for u, (x, y) in enumerate(zip(batched, alone)):
        assert [h.tokens for h in x] == [h.tokens for h in y], f"utterance {u}"
        assert all(abs(h.score - g.score) < 1e-4 for h, g in zip(x, y))


@pytest.mark.parametrize("mask_padding", [True, False])
def test_frame_budget_batches_equal_one_at_a_time(mask_padding):
    model = _model(mask_padding)
    assert depends_on_padding(model) is (not mask_padding)
    b = random_batch(LENGTHS, seed=3)
    torch.manual_seed(9)
    lm = RNNLM(41, layers=1, units=16).eval()
    kw = dict(beam_size=4, ctc_weight=0.3, lm=lm, lm_weight=0.3, length_bonus=0.5, nbest=3)
    alone = _one_at_a_time(model, b, kw)
    batched = avsr_lightning.decode(model, b["video"], b["video_lengths"], b["audio"], b["audio_lengths"],
                                    max_frames=30, **kw)
    _same(batched, alone)
    assert any(len(h[0].tokens) >= 3 for h in alone)  # non-trivial hypotheses
    assert len({tuple(h[0].tokens) for h in alone}) > 1


@torch.no_grad()
def test_reference_numerics_needs_the_padding_safe_path():
    """Without it, the padded encoding of a reference-numerics model differs from its one-at-a-time
    encoding (what the padding-safe path exists for); with mask_padding=True it does not."""
    b = random_batch((12, 7), seed=3)
    for mask_padding, differs in ((False, True), (True, False)):
        model = _model(mask_padding)
        padded, _ = model.encode(b["video"], b["video_lengths"], b["audio"], b["audio_lengths"])
        alone, _ = model.encode(b["video"][1:, :7], b["video_lengths"][1:], b["audio"][1:, :640 * 7],
                                b["audio_lengths"][1:])
        gap = float((padded[1, :7] - alone[0]).abs().max())
        assert (gap > 1e-3) is differs, gap


def test_chunks_respect_the_frame_budget():
    lengths = [5, 30, 12, 12, 7, 3, 40]
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    groups = chunks_by_frames(order, lengths, 36)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    for g in groups:
        assert len(g) == 1 or len(g) * max(lengths[i] for i in g) <= 36
    assert chunks_by_frames(order, lengths, None) == [order]
    with pytest.raises(ValueError, match="max_frames"):
        avsr_lightning.decode(_model(True), None, torch.tensor([3]), torch.zeros(1, 1920), torch.tensor([1920]),
                              max_frames=0)


class _CountCasts(TorchDispatchMode):
    """Counts bf16 copies made of the tensor whose storage is ``watched`` (autocast's weight casts)."""

    def __init__(self, watched: torch.Tensor) -> None:
        super().__init__()
        self.ptr, self.casts = watched.data_ptr(), 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if (func is torch.ops.aten._to_copy.default and isinstance(args[0], torch.Tensor)
                and args[0].data_ptr() == self.ptr and kwargs.get("dtype") == torch.bfloat16):
            self.casts += 1
        return func(*args, **kwargs)


def test_bf16_encoder_weights_are_cast_once_per_decode():
    """The padding-safe path encodes each equal-length group under its own autocast context; the weights'
    bf16 copies must still be made once per ``decode`` call, not once per group (docs/decoding.md)."""
    model = _model(False)  # reference numerics: three equal-length groups below
    b = random_batch((12, 7, 12, 5), seed=3)
    weight = model.encoders.encoders[0].feed_forward.w_1.weight
    kw = dict(beam_size=2, ctc_weight=0.3, dtype="bf16", max_frames=100)
    with _CountCasts(weight) as counter:
        bf16 = avsr_lightning.decode(model, b["video"], b["video_lengths"], b["audio"], b["audio_lengths"], **kw)
    assert counter.casts == 1
    alone = [avsr_lightning.decode(model, b["video"][i:i + 1, :t], b["video_lengths"][i:i + 1],
                                   b["audio"][i:i + 1, :640 * t], b["audio_lengths"][i:i + 1], **kw)[0]
             for i, t in enumerate((12, 7, 12, 5))]
    _same(bf16, alone)  # the kept copies are the casts each group would make
