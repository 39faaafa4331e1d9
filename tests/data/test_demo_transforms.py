"""``Downsample`` and ``ModalityDropout``: the two pipeline steps the CPU demo adds."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from avsr_lightning.data.transforms import Clip, Downsample, ModalityDropout, Normalize


def _clip(frames, audio=None):
    return Clip(id="spk/utt", frames=frames, audio=audio)


def test_downsample_is_a_block_average():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(3, 8, 6), dtype=np.uint8)
    out = Downsample(2)(_clip(frames.copy()), None).frames
    assert out.dtype == np.uint8 and out.shape == (3, 4, 3)
    expected = frames.reshape(3, 4, 2, 3, 2).astype(np.float64).mean((2, 4))
    assert np.abs(out.astype(np.float64) - expected).max() <= 0.5
    # float input after Normalize stays float and exact
    video = Normalize(0.5, 0.25)(_clip(frames.copy()), None).frames
    pooled = Downsample(2)(_clip(video), None).frames
    assert pooled.dtype == torch.float32
    assert torch.allclose(pooled, video.reshape(3, 4, 2, 3, 2).mean((2, 4)), atol=1e-6)
    assert Downsample(1)(_clip(frames), None).frames is frames
    with pytest.raises(ValueError, match="factor"):
        Downsample(0)


def test_modality_dropout_blanks_one_stream_at_the_configured_rates():
    step = ModalityDropout(video_p=0.3, audio_p=0.2)
    rng = np.random.default_rng(1)
    dropped = {"video": 0, "audio": 0, None: 0}
    for _ in range(2000):
        clip = step(_clip(torch.ones(4, 5, 5), torch.ones(2560)), rng)
        kind = clip.condition.get("dropped")
        dropped[kind] += 1
        if kind == "video":
            assert not clip.frames.any() and clip.audio.all()
        elif kind == "audio":
            assert not clip.audio.any() and clip.frames.all()
        else:
            assert clip.frames.all() and clip.audio.all()
    assert abs(dropped["video"] / 2000 - 0.3) < 0.04 and abs(dropped["audio"] / 2000 - 0.2) < 0.04
    # one draw per utterance whatever the probabilities: the stream after it does not depend on them
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    ModalityDropout(0.0, 0.0)(_clip(torch.ones(2, 2, 2), torch.ones(4)), a)
    ModalityDropout(0.5, 0.5)(_clip(torch.ones(2, 2, 2), torch.ones(4)), b)
    assert a.random() == b.random()
    # single-stream clips are left alone; evaluation (rng None) is refused
    only_audio = _clip(None, torch.ones(4))
    assert ModalityDropout(1.0, 0.0)(only_audio, np.random.default_rng(0)).audio.all()
    with pytest.raises(ValueError, match="train_transforms"):
        ModalityDropout(0.5)(_clip(torch.ones(2, 2, 2), torch.ones(4)), None)
    with pytest.raises(ValueError):
        ModalityDropout(0.8, 0.5)
