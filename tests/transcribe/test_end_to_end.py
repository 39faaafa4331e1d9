"""End to end on the synthetic corpus: ``transcribe --already_cropped`` on a processed clip gives exactly the
hypothesis that ``decode`` (what ``test`` runs) gives for the same utterance with the same decoder."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from .conftest import save_tiny

BEAM = dict(beam_size=3, ctc_weight=0.3, lm_weight=0.0, length_bonus=0.5)


@pytest.fixture(scope="module")
def processed_clip(tmp_path_factory):
    from avsr_lightning.data.synthetic import generate_corpus

    root = generate_corpus(tmp_path_factory.mktemp("synthetic") / "corpus", utterances=3, seed=0, progress=False,
                           noise_seconds=1.0)
    video = sorted((root / "Video").rglob("*.mp4"))[0]
    rel = video.relative_to(root / "Video").with_suffix("")
    out = tmp_path_factory.mktemp("clip")
    shutil.copyfile(video, out / "utt.mp4")
    shutil.copyfile(root / "Audio" / f"{rel}.wav", out / "utt.wav")
    return out / "utt.mp4"


@pytest.mark.parametrize("arch", ["AVRelScore", "Video", "Audio"])
def test_transcribe_matches_decode_on_a_processed_clip(processed_clip, tmp_path, arch):
    from avsr_lightning import decode
    from avsr_lightning.data.media import read_audio, read_video
    from avsr_lightning.data.transforms import VideoTransform, fit_audio_to_frames, normalize_utterance
    from avsr_lightning.transcribe import main
    from avsr_lightning.weights import load_model

    ckpt = save_tiny(tmp_path / "model.ckpt", arch, seed=1)
    config = tmp_path / "beam.yaml"
    config.write_text("model:\n  test_decoder:\n    class_path: avsr_lightning.decoding.BeamSearchDecoder\n"
                      f"    init_args: {json.dumps(dict(BEAM, lm_path=None, nbest=1))}\n")
    rc = main([str(processed_clip), "--ckpt_path", str(ckpt), "--config", str(config), "--already_cropped",
               "--out", str(tmp_path), "--output_format", "json"])
    assert rc == 0
    got = json.loads((tmp_path / "utt.json").read_text())

    # what `test` decodes for this utterance: the data pipeline's transforms, then decode with the same settings
    crops = read_video(processed_clip)
    frames = len(crops)
    video = VideoTransform(train=False)(crops)[None] if arch != "Audio" else None
    audio = normalize_utterance(fit_audio_to_frames(read_audio(processed_clip.with_suffix(".wav")), frames))[None]
    audio = audio if arch != "Video" else None
    model = load_model(ckpt)
    lengths = torch.tensor([frames])
    expected = decode(model, video, lengths, audio, lengths * 640, **BEAM)[0][0]
    assert got["text"] == expected.text
    assert len(got["segments"]) == 1 and got["duration"] == frames / 25
    if expected.text.strip():
        assert " ".join(w["word"] for w in got["words"]) == " ".join(expected.text.split())
