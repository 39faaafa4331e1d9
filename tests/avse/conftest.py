"""AVSE test fixtures: generated signals and a generated weighting filter (no shared data needed)."""
from __future__ import annotations

import numpy as np
import scipy.signal


def generated_filter(taps: int = 512) -> np.ndarray:
    """A symmetric (type II) band-pass FIR like the challenge's speech weighting, designed here."""
    return scipy.signal.firwin(taps, [120.0, 1900.0], fs=16000, pass_zero=False).astype(np.float64)


def speech_like(rng: np.random.Generator, n: int, level: float = 0.3) -> np.ndarray:
    """int16 amplitude-modulated coloured noise (syllable-rate envelope), never all zero."""
    noise = scipy.signal.lfilter([1.0], [1.0, -0.9], rng.standard_normal(n))
    env = 0.55 + 0.45 * np.sin(2 * np.pi * rng.uniform(3, 6) * np.arange(n) / 16000 + rng.uniform(0, 6))
    x = noise * env
    x = level * x / np.abs(x).max()
    return np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def weight_filter() -> np.ndarray:
    return generated_filter()


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def make_speech():
    """``make_speech(rng, n, level)`` -> int16 speech-like signal."""
    return speech_like


def write_grey_mp4(path, frames: np.ndarray, fps: int = 25) -> None:
    """Tiny test video (mpeg4, grey frames (T, H, W) uint8) with PyAV."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="gray")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


WORDS = ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT", "GOLF", "HOTEL"]


def make_lrs_corpus(root, n_speakers: int = 3, per_speaker: int = 4, seed: int = 0, video_size: int = 96):
    """A tiny processed-LRS corpus: Audio/Video/Text under trainval/, train.txt, val.txt, noise/*.wav."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    train, val = [], []
    for s in range(n_speakers):
        for u in range(per_speaker):
            rel = f"trainval/spk{s:02d}/{u:05d}"
            frames = int(rng.integers(20, 45))  # 0.8-1.8 s
            audio = speech_like(rng, frames * 640, 0.5)
            (root / "Audio" / rel).parent.mkdir(parents=True, exist_ok=True)
            sf.write(root / "Audio" / f"{rel}.wav", audio, 16000, subtype="PCM_16")
            video = np.clip(rng.normal(120, 30, (frames, video_size, video_size)), 0, 255).astype(np.uint8)
            video[:, :, :8] = (np.arange(frames) * 9 % 256)[:, None, None]  # frame index visible in pixels
            write_grey_mp4(root / "Video" / f"{rel}.mp4", video)
            (root / "Text" / rel).parent.mkdir(parents=True, exist_ok=True)
            text = " ".join(rng.choice(WORDS, size=3))
            (root / "Text" / f"{rel}.txt").write_text(f"Text:  {text}\nConf:  4\n")
            (val if u == per_speaker - 1 else train).append(rel)
    (root / "train.txt").write_text("\n".join(train) + "\n")
    (root / "val.txt").write_text("\n".join(val) + "\n")
    (root / "noise").mkdir(exist_ok=True)
    sf.write(root / "noise" / "white.wav", (rng.standard_normal(16000 * 8) * 2000).astype(np.int16), 16000,
             subtype="PCM_16")
    sf.write(root / "noise" / "babble.wav", speech_like(rng, 16000 * 8, 0.4), 16000, subtype="PCM_16")
    return root


@pytest.fixture(scope="session")
def lrs_corpus(tmp_path_factory):
    return make_lrs_corpus(tmp_path_factory.mktemp("lrs"))


@pytest.fixture(scope="session")
def avse_root(tmp_path_factory, lrs_corpus):
    """An AVSE-style root (metadata, maskers, links) over the tiny corpus, with built scene lists."""
    from avsr_lightning.data.avse import DatasetSpec, build_challenge_scene_lists
    from avsr_lightning.data.avse.corpus import prepare_avse_root

    root = tmp_path_factory.mktemp("avse")
    meta = prepare_avse_root(lrs_corpus, root, min_masker_seconds=6.0)
    build_challenge_scene_lists(meta, [DatasetSpec("train", 12, 1), DatasetSpec("dev", 3, 13)], seed=0)
    return root
