"""``AVDataset``: one utterance of the processed layout → a :class:`Sample`, or a :class:`BadItem` that says
which file failed and why. Bad items are never ``None`` and never raised: the collate drops them and the
data module counts and reports them (spec §8.20: the reference returned None and crashed on all-None batches).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from avsr_lightning.batch import SAMPLES_PER_FRAME
from avsr_lightning.data.conditions import Condition, apply_condition
from avsr_lightning.data.corruption import functional as F
from avsr_lightning.data.corruption.acoustic import NoiseMixer
from avsr_lightning.data.corruption.seeding import generator_for
from avsr_lightning.data.corruption.visual import VisualCorruption
from avsr_lightning.data.landmarks import LandmarkError, Landmarks, interpolate_missing, read_landmarks
from avsr_lightning.data.manifest import Utterance, media_paths, read_transcript
from avsr_lightning.data.media import MediaError, read_audio, read_video
from avsr_lightning.data.transforms import VideoTransform, fit_audio_to_frames, normalize_utterance
from avsr_lightning.text import CharTokenizer, Tokenizer, normalize_transcript

MODALITIES = ("video", "audio")


@dataclass
class Sample:
    """One decoded utterance. ``video`` float (T, 88, 88) or None; ``audio`` float (640*T,) or None."""

    id: str
    video: torch.Tensor | None
    audio: torch.Tensor | None
    num_frames: int
    targets: torch.Tensor
    text: str
    condition: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # non-fatal issues (resampled, padded audio, unknown chars)


@dataclass
class BadItem:
    """An utterance that could not be loaded: ``path`` is the offending file, ``reason`` says why."""

    index: int
    id: str
    path: str
    reason: str

    def message(self) -> str:
        return f"skipping utterance {self.id}: {self.path}: {self.reason}"


class AVDataset(Dataset):
    """Processed-layout utterances → samples.

    Args:
        root: processed corpus root (``Video/``, ``Audio/``, ``Text/``, ``Transformed_LM/``).
        utterances: the split's rows.
        tokenizer: maps transcripts to ids (default: the reference :class:`CharTokenizer`).
        video_transform: crop/flip/normalise (train or eval variant).
        modalities: which streams to decode; the other is ``None`` in the sample.
        train: draw a fresh corruption per epoch (seeded by ``(seed, id, epoch)``); otherwise use ``condition``.
        noise, visual: on-the-fly corruption (training draws; test conditions use them with fixed settings).
        condition: fixed evaluation condition (None = clean).
        max_text_len: truncate token sequences (reference: 150 for train/val).
        max_video_frames: truncate video (a note is recorded); None = never.
        speed_factors: training speed perturbation, drawn uniformly (applied to both streams).
        normalize_audio: per-utterance zero-mean/unit-variance audio (safe on silence).

    ``dataset[i]`` or ``dataset[(i, epoch)]`` (the batch sampler passes the epoch so workers need no state).
    """

    def __init__(self, root: str | os.PathLike, utterances: Sequence[Utterance], tokenizer: Tokenizer | None = None,
                 video_transform: VideoTransform | None = None, modalities: Sequence[str] = MODALITIES,
                 train: bool = False, noise: NoiseMixer | None = None, visual: VisualCorruption | None = None,
                 condition: Condition | None = None, seed: int = 0, max_text_len: int | None = None,
                 max_video_frames: int | None = None, speed_factors: Sequence[float] | None = None,
                 normalize_audio: bool = True) -> None:
        unknown = set(modalities) - set(MODALITIES)
        if unknown or not modalities:
            raise ValueError(f"modalities must be a non-empty subset of {MODALITIES}, got {list(modalities)}")
        self.root = Path(root)
        self.utterances = list(utterances)
        self.tokenizer = tokenizer or CharTokenizer()
        self.video_transform = video_transform or VideoTransform(train=train)
        self.modalities = tuple(modalities)
        self.train = train
        self.noise = noise
        self.visual = visual
        self.condition = condition or Condition()
        self.seed = int(seed)
        self.max_text_len = max_text_len
        self.max_video_frames = max_video_frames
        self.speed_factors = list(speed_factors) if speed_factors else None
        self.normalize_audio = normalize_audio

    def __len__(self) -> int:
        return len(self.utterances)

    @property
    def ids(self) -> list[str]:
        return [u.id for u in self.utterances]

    def __getitem__(self, key: int | tuple[int, int]) -> Sample | BadItem:
        index, epoch = (key if isinstance(key, tuple) else (key, 0))
        utt = self.utterances[index]
        try:
            return self._load(utt, int(epoch))
        except (MediaError, LandmarkError, FileNotFoundError) as err:
            path = getattr(err, "path", None) or str(err).split(": ", 1)[0]
            reason = getattr(err, "reason", None) or str(err).split(": ", 1)[-1]
            return BadItem(index, utt.id, path, reason)
        except (ValueError, OSError, RuntimeError) as err:  # anything a corrupt file can provoke
            return BadItem(index, utt.id, str(self.root / "*" / utt.id), f"{type(err).__name__}: {err}")

    # ----------------------------------------------------------------------------------------------
    def _load(self, utt: Utterance, epoch: int) -> Sample:
        paths = media_paths(self.root, utt.id)
        notes: list[str] = []
        text = utt.text if utt.text is not None else read_transcript(paths["text"])
        text = normalize_transcript(text)
        if not text:
            raise MediaError(paths["text"], "transcript is empty")
        before = sum(self.tokenizer.unknown_counts.values()) if hasattr(self.tokenizer, "unknown_counts") else 0
        ids = self.tokenizer.encode(text)
        if hasattr(self.tokenizer, "unknown_counts"):
            n_unknown = sum(self.tokenizer.unknown_counts.values()) - before
            if n_unknown:
                notes.append(f"unknown_chars: {n_unknown} character(s) mapped to <unk> in {paths['text']}")
        if self.max_text_len is not None and len(ids) > self.max_text_len:
            ids = ids[: self.max_text_len]
            notes.append(f"text_truncated: {paths['text']} truncated to {self.max_text_len} tokens")

        frames = None
        if "video" in self.modalities:
            frames = read_video(paths["video"], max_frames=self.max_video_frames,
                                warn=lambda m: notes.append(f"video_truncated: {m}"))
            if self.max_video_frames is not None and len(frames) >= self.max_video_frames:
                notes.append(f"video_truncated: {paths['video']} read up to {self.max_video_frames} frames")
        audio = None
        if "audio" in self.modalities or frames is None:
            audio = read_audio(paths["audio"], warn=lambda m: notes.append(f"audio_format: {m}"))

        rng = generator_for(self.seed, utt.id, f"train:{epoch}") if self.train else None
        condition: dict[str, Any]
        needs_landmarks = frames is not None and self.visual is not None and self.visual.needs_landmarks and (
            self.train or self.condition.visual in ("occlusion", "occlusion_noise"))
        landmarks = load_utterance_landmarks(paths) if needs_landmarks else None

        if self.train:
            condition = {"snr": None, "noise": None, "visual": "clean"}
            if frames is not None and self.visual is not None:
                frames, info = self.visual(frames, landmarks, rng)
                condition["visual"] = info["visual"]
            if self.speed_factors:
                factor = float(self.speed_factors[int(rng.integers(0, len(self.speed_factors)))])
                audio, frames = F.speed_perturb(audio, frames, factor)
                condition["speed"] = factor
        else:
            condition = {}

        num_frames = len(frames) if frames is not None else max(1, int(round(len(audio) / SAMPLES_PER_FRAME)))
        if audio is not None:
            diff = len(audio) - num_frames * SAMPLES_PER_FRAME
            if abs(diff) > SAMPLES_PER_FRAME:
                kind = "shorter" if diff < 0 else "longer"
                notes.append(f"audio_length: {paths['audio']} is {abs(diff)} samples {kind} than the video "
                             f"({num_frames} frames); {'zero-padded' if diff < 0 else 'cut'}")
            audio = fit_audio_to_frames(audio, num_frames)
            if self.train and self.noise is not None:
                audio, info = self.noise(audio, rng)
                condition.update({"snr": info["snr"], "noise": info["noise"]})
                if info.get("partial"):
                    condition["partial"] = info["partial"]

        if not self.train:
            frames, audio, params = apply_condition(self.condition, utt.id, self.seed, frames, audio, landmarks,
                                                    self.noise, self.visual)
            condition = {"name": self.condition.name, "snr": self.condition.snr,
                         "noise": self.condition.noise if self.condition.snr is not None else None,
                         "visual": self.condition.visual}

        video_t = None
        if frames is not None and "video" in self.modalities:
            video_t = self.video_transform(frames, rng if self.train else None)
        audio_t = None
        if audio is not None and "audio" in self.modalities:
            if not np.any(audio):
                notes.append(f"silent_audio: {paths['audio']} is silent")
            audio_t = normalize_utterance(audio) if self.normalize_audio else torch.from_numpy(audio)
        return Sample(utt.id, video_t, audio_t, num_frames, torch.tensor(ids, dtype=torch.long), text, condition,
                      notes)


def load_utterance_landmarks(paths: dict[str, Path]) -> Landmarks:
    """The utterance's aligned landmarks (npz, else a reference pkl) with undetected frames interpolated."""
    path = paths["landmarks"] if paths["landmarks"].is_file() else paths["landmarks_pkl"]
    if not path.is_file():
        raise LandmarkError(f"{paths['landmarks']}: landmark file is missing (needed for occlusion)")
    landmarks = read_landmarks(path)
    landmarks.points = interpolate_missing(landmarks.points, path)
    return landmarks
