"""``ModalityDropout``: the pipeline step that makes the demo AV model use both streams."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from avsr_lightning.data.transforms import Clip, ModalityDropout


def _clip(frames, audio=None):
    return Clip(id="spk/utt", frames=frames, audio=audio)


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
