"""Tiny generated corpora for the data tests (written with PyAV/soundfile/numpy in tmp dirs)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avsr_lightning.data.landmarks import Landmarks, write_landmarks
from avsr_lightning.data.media import write_audio, write_video

MOUTH_ROW, MOUTH_COL = 60, 48


def mouth_frames(num_frames: int, size: int = 96, rng: np.random.Generator | None = None,
                 centre: tuple[float, float] | None = None) -> np.ndarray:
    """Grey frames with a dark ellipse (the 'mouth') whose opening changes over time."""
    rng = rng or np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    cy, cx = centre or (MOUTH_ROW * size / 96, MOUTH_COL * size / 96)
    frames = np.empty((num_frames, size, size), np.uint8)
    for t in range(num_frames):
        opening = 3 + 6 * (0.5 + 0.5 * np.sin(t / 3.0))
        inside = ((yy - cy) / opening) ** 2 + ((xx - cx) / (14 * size / 96)) ** 2 <= 1
        frame = np.full((size, size), 170, np.float32) + rng.normal(0, 3, (size, size))
        frame[inside] = 40
        frames[t] = np.clip(frame, 0, 255).astype(np.uint8)
    return frames


def crop_landmarks(num_frames: int) -> Landmarks:
    """68 points in a 256x256 'aligned' frame whose mouth sits at (MOUTH_ROW, MOUTH_COL) of the crop."""
    yx_min = np.tile(np.array([[110.0, 81.0]], np.float32), (num_frames, 1))
    points = np.zeros((num_frames, 68, 2), np.float32)
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    points[:, :, 0] = 81 + MOUTH_COL + 30 * np.cos(angles)
    points[:, :, 1] = 110 + MOUTH_ROW - 40 + 30 * np.sin(angles)
    mouth_angles = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    points[:, 48:68, 0] = 81 + MOUTH_COL + 14 * np.cos(mouth_angles)
    points[:, 48:68, 1] = 110 + MOUTH_ROW + 5 * np.sin(mouth_angles)
    return Landmarks(points, yx_min)


def speech_like(num_samples: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(num_samples) / 16000
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    return (0.3 * envelope * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.standard_normal(num_samples)).astype(np.float32)


WORDS = ["HELLO", "WORLD", "LIPS", "MOVE", "SOUND", "VIDEO", "AUDIO", "TEST"]


def write_utterance(root: Path, uid: str, num_frames: int, rng: np.random.Generator, text: str | None = None,
                    audio_frames: float | None = None) -> None:
    write_video(root / "Video" / f"{uid}.mp4", mouth_frames(num_frames, rng=rng))
    n_audio = int((audio_frames if audio_frames is not None else num_frames) * 640)
    write_audio(root / "Audio" / f"{uid}.wav", speech_like(n_audio, rng))
    text = text if text is not None else " ".join(rng.choice(WORDS, size=2))
    (root / "Text" / f"{uid}.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "Text" / f"{uid}.txt").write_text(f"Text:  {text}\nConf:  4\n")
    write_landmarks(root / "Transformed_LM" / f"{uid}.npz", crop_landmarks(num_frames))


def write_occluders(directory: Path, count: int = 3, without_mask: int = 0) -> Path:
    import cv2

    rng = np.random.default_rng(7)
    (directory / "object_image_sr").mkdir(parents=True, exist_ok=True)
    (directory / "object_mask_x4").mkdir(parents=True, exist_ok=True)
    for i in range(count + without_mask):
        image = np.zeros((64, 64, 3), np.uint8)
        image[...] = rng.integers(0, 255, 3)
        cv2.imwrite(str(directory / "object_image_sr" / f"obj{i}.jpeg"), image)
        if i < count:
            mask = np.zeros((256, 256), np.uint8)
            cv2.circle(mask, (128, 128), 100, 255, -1)
            cv2.imwrite(str(directory / "object_mask_x4" / f"obj{i}.png"), mask)
    return directory


def make_corpus(root: Path, n_train: int = 8, n_val: int = 3, n_test: int = 3, seed: int = 0,
                lengths: tuple[int, int] = (20, 40)) -> Path:
    rng = np.random.default_rng(seed)
    train, val = [], []
    for i in range(n_train + n_val):
        uid = f"trainval/spk{i % 3}/{50000 + i:05d}"
        write_utterance(root, uid, int(rng.integers(*lengths)), rng)
        (train if i < n_train else val).append(uid)
    refs = []
    for i in range(n_test):
        uid = f"test/spk{i % 2}/{i:05d}"
        write_utterance(root, uid, int(rng.integers(*lengths)), rng)
        refs.append(f"{uid} {(root / 'Text' / f'{uid}.txt').read_text().splitlines()[0][7:]}")
    (root / "train.txt").write_text("\n".join(train) + "\n")
    (root / "val.txt").write_bytes("\r".join(v.split("/", 1)[1] for v in val).encode())  # LRS3 style: bare, CR-only
    (root / "test.ref").write_text("\n".join(refs) + "\n")
    write_audio(root / "noise" / "babble.wav", rng.standard_normal(16000 * 3).astype(np.float32) * 0.1)
    write_occluders(root / "occlusion_patch")
    return root


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """A shared read-only tiny corpus (tests that damage files make their own)."""
    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def gen():
    """The generators above, as a fixture (test modules cannot import conftest under importlib mode)."""
    import types

    return types.SimpleNamespace(mouth_frames=mouth_frames, crop_landmarks=crop_landmarks, speech_like=speech_like,
                                 write_utterance=write_utterance, write_occluders=write_occluders,
                                 make_corpus=make_corpus, MOUTH_ROW=MOUTH_ROW, MOUTH_COL=MOUTH_COL)
