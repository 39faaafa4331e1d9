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


def test_audio_noise_branch_replaces_the_audio_by_normalised_training_noise(tmp_path):
    import soundfile as sf

    from avsr_lightning.data.transforms import PipelineContext

    noise = np.random.default_rng(0).standard_normal(4000).astype(np.float32) * 0.1 + 0.5  # offset: not normalised
    sf.write(tmp_path / "babble.wav", noise, 16000, subtype="FLOAT")
    step = ModalityDropout(video_p=0.1, audio_p=0.2, audio_noise_p=0.3)
    step.bind(PipelineContext(noise_files=[tmp_path / "babble.wav"]))
    rng = np.random.default_rng(3)
    speech = torch.ones(640) * 3.0
    windows = torch.as_tensor(noise).unfold(0, 640, 1)  # every excerpt the step could cut, normalised
    windows = (windows - windows.mean(1, keepdim=True)) / windows.std(1, unbiased=False, keepdim=True)
    counts = {"video": 0, "audio": 0, "audio_noise": 0, None: 0}
    for _ in range(1000):
        clip = step(_clip(torch.ones(4, 5, 5), speech.clone()), rng)
        kind = clip.condition.get("dropped")
        counts[kind] += 1
        if kind == "audio_noise":
            assert clip.frames.all() and clip.audio.shape == speech.shape
            assert abs(float(clip.audio.mean())) < 1e-4 and abs(float(clip.audio.std(unbiased=False)) - 1) < 1e-3
            assert torch.isclose(windows, clip.audio, atol=1e-4).all(1).any()  # an excerpt of the noise file
    assert abs(counts["audio_noise"] / 1000 - 0.3) < 0.05 and abs(counts["audio"] / 1000 - 0.2) < 0.05
    # the branch needs noise: without any, binding says what to set
    with pytest.raises(ValueError, match="noise_files"):
        ModalityDropout(audio_noise_p=0.2).bind(PipelineContext(noise_files=[]))
    # an audio-only or video-only pipeline never loads noise
    single = ModalityDropout(audio_noise_p=0.2)
    single.bind(PipelineContext(modalities=("audio",), noise_files=[]))
    assert single(_clip(None, speech.clone()), rng).audio.eq(3.0).all()


def test_schedule_gives_the_first_epochs_their_own_probabilities():
    from avsr_lightning.data.transforms import DropoutStage

    step = ModalityDropout(video_p=0.1, audio_p=0.3,
                           schedule=[DropoutStage(until_epoch=2, audio_p=1.0), DropoutStage(until_epoch=3, audio_p=0.6)])
    assert step.probabilities(0) == step.probabilities(1) == (0.0, 1.0, 0.0)
    assert step.probabilities(2) == (0.0, 0.6, 0.0)
    assert step.probabilities(3) == step.probabilities(40) == (0.1, 0.3, 0.0)
    rng = np.random.default_rng(2)
    for epoch, (video, audio) in ((0, (0.0, 1.0)), (5, (0.1, 0.3))):
        kinds = []
        for _ in range(1000):
            clip = Clip(id="spk/utt", frames=torch.ones(4, 5, 5), audio=torch.ones(2560), epoch=epoch)
            kinds.append(step(clip, rng).condition.get("dropped"))
        assert abs(kinds.count("audio") / 1000 - audio) < 0.04
        assert abs(kinds.count("video") / 1000 - video) < 0.03
    with pytest.raises(ValueError, match="increase"):
        ModalityDropout(schedule=[DropoutStage(until_epoch=3), DropoutStage(until_epoch=2)])
    with pytest.raises(ValueError, match=r"schedule\[0\]"):
        ModalityDropout(schedule=[DropoutStage(until_epoch=3, video_p=0.6, audio_p=0.6)])

