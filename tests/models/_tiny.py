"""Tiny model sizes and a variable-length random batch, shared by the model and weights tests."""
from __future__ import annotations

import torch

from avsr_lightning.models import ARCHITECTURES

TINY = dict(d_model=32, heads=2, encoder_layers=2, ffn_dim=48, decoder_layers=2, decoder_ffn_dim=48, conv_kernel=5,
            frontend_widths=(4, 8, 8, 16))
EXTRA = {"AVRelScore": dict(scorer_hidden=16), "Conformer": dict(fusion_hidden=16)}


def tiny_model(arch: str, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    return ARCHITECTURES[arch](**{**TINY, **EXTRA.get(arch, {}), **overrides})


def random_batch(lengths=(12, 7), label_lengths=(5, 3), size: int = 24, seed: int = 0) -> dict[str, torch.Tensor]:
    """Padded batch as the collate produces it: zero padding, audio = 640 samples per frame."""
    g = torch.Generator().manual_seed(seed)
    b, t = len(lengths), max(lengths)
    vl = torch.tensor(lengths)
    video = torch.randn(b, t, size, size, generator=g)
    audio = torch.randn(b, 640 * t, generator=g)
    for i, n in enumerate(lengths):
        video[i, n:] = 0
        audio[i, 640 * n:] = 0
    targets = torch.full((b, max(label_lengths)), -1, dtype=torch.long)
    for i, n in enumerate(label_lengths):
        targets[i, :n] = torch.randint(1, 40, (n,), generator=g)
    return dict(video=video, video_lengths=vl, audio=audio, audio_lengths=vl * 640, targets=targets,
                target_lengths=torch.tensor(label_lengths))
