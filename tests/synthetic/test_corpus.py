"""The generated corpus has the processed-LRS layout and its streams agree with each other."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from avsr_lightning.batch import SAMPLES_PER_FRAME
from avsr_lightning.data.media import read_video
from avsr_lightning.data.synthetic import sentences, speakers
from avsr_lightning.text import CharTokenizer

from .conftest import TINY


def _split_ids(root: Path) -> dict[str, list[str]]:
    train = root.joinpath("train.txt").read_text().split()
    val = root.joinpath("val.txt").read_text().split()
    test = [line.split(maxsplit=1)[0] for line in root.joinpath("test.ref").read_text().splitlines()]
    return {"train": train, "val": val, "test": test}


def test_split_files_are_consistent(tiny_corpus):
    ids = _split_ids(tiny_corpus)
    meta = json.loads((tiny_corpus / "corpus.json").read_text())
    assert {k: len(v) for k, v in ids.items()} == meta["counts"] == {"train": 4, "val": 1, "test": 1}
    assert sum(meta["counts"].values()) == TINY["utterances"] and meta["seed"] == TINY["seed"]
    all_ids = [i for v in ids.values() for i in v]
    assert len(set(all_ids)) == len(all_ids)
    assert all(i.startswith("trainval/") for i in ids["train"] + ids["val"])
    assert all(i.startswith("test/") for i in ids["test"])
    held_out_speakers = {s.speaker_id for s in speakers.test_speakers(TINY["seed"])}
    assert {i.split("/")[1] for i in ids["test"]} <= held_out_speakers
    assert not {i.split("/")[1] for i in ids["train"] + ids["val"]} & held_out_speakers
    # test.ref transcripts equal the Text files; val/test sentences are never trained on
    train_sentences = set(sentences.training_sentences())
    for line in (tiny_corpus / "test.ref").read_text().splitlines():
        uid, transcript = line.split(maxsplit=1)
        assert (tiny_corpus / "Text" / f"{uid}.txt").read_text().splitlines()[0] == f"Text:  {transcript}"
    for uid in ids["val"] + ids["test"]:
        text = (tiny_corpus / "Text" / f"{uid}.txt").read_text().splitlines()[0][len("Text:  "):]
        assert text not in train_sentences and text in sentences.held_out_sentences()


def test_every_utterance_has_consistent_streams(tiny_corpus):
    tokenizer = CharTokenizer()
    for uid in [i for v in _split_ids(tiny_corpus).values() for i in v]:
        frames = read_video(tiny_corpus / "Video" / f"{uid}.mp4")
        audio, rate = sf.read(tiny_corpus / "Audio" / f"{uid}.wav", dtype="int16")
        info = sf.info(tiny_corpus / "Audio" / f"{uid}.wav")
        assert rate == 16000 and audio.ndim == 1 and info.subtype == "PCM_16"
        assert frames.shape[1:] == (96, 96) and frames.dtype == np.uint8
        assert 25 <= len(frames) <= 100  # 1-4 s
        assert abs(audio.shape[0] - SAMPLES_PER_FRAME * len(frames)) <= SAMPLES_PER_FRAME
        assert np.abs(audio).max() > 3000  # speech, not silence
        text_line = (tiny_corpus / "Text" / f"{uid}.txt").read_text().splitlines()[0]
        assert text_line.startswith("Text:  ") and text_line[7:] == text_line[7:].upper()
        tokenizer.encode(text_line[7:])
        with np.load(tiny_corpus / "Transformed_LM" / f"{uid}.npz") as npz:
            landmarks, yx_min = npz["landmarks"], npz["yx_min"]
        assert landmarks.shape == (len(frames), 68, 2) and landmarks.dtype == np.float32
        assert yx_min.shape == (len(frames), 2) and np.isfinite(landmarks).all()
        # mouth points lie inside the crop and around its centre; the rest is a face around it
        mouth = landmarks[:, 48:] - yx_min[:, None, ::-1]
        assert (mouth > 5).all() and (mouth < 91).all()
        assert np.abs(mouth.mean(axis=1) - 48).max() < 12
        assert (landmarks[:, 8, 1] > landmarks[:, 57, 1]).all()  # chin below the lower lip
        assert (landmarks[:, 33, 1] < landmarks[:, 51, 1]).all()  # nose above the upper lip
    assert not tokenizer.unknown_counts


def test_noise_files(tiny_corpus):
    for kind in ("babble", "white", "pink", "hum"):
        noise, rate = sf.read(tiny_corpus / "noise" / f"{kind}.wav", dtype="float32")
        assert rate == 16000 and noise.shape == (int(TINY["noise_seconds"] * 16000),)
        assert 0.05 < float(np.sqrt(np.mean(noise ** 2))) < 0.2
    babble, _ = sf.read(tiny_corpus / "noise" / "babble.wav", dtype="float32")
    white, _ = sf.read(tiny_corpus / "noise" / "white.wav", dtype="float32")
    # babble is speech: most energy below 4 kHz, unlike white noise
    def low_share(x):
        spectrum = np.abs(np.fft.rfft(x)) ** 2
        return spectrum[: len(spectrum) // 2].sum() / spectrum.sum()
    assert low_share(babble) > 0.9 and abs(low_share(white) - 0.5) < 0.05
