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

from avsr_lightning.data.conditions import Condition
from avsr_lightning.data.corruption.acoustic import NoiseMixer
from avsr_lightning.data.corruption.seeding import generator_for
from avsr_lightning.data.corruption.visual import VisualCorruption
from avsr_lightning.data.errors import DataError
from avsr_lightning.data.landmarks import LandmarkError, Landmarks, interpolate_missing, read_landmarks
from avsr_lightning.data.manifest import Utterance, media_paths, read_transcript
from avsr_lightning.data.media import MediaError, read_audio, read_video
from avsr_lightning.data.transforms.audio import MatchAudioToVideo, audio_tensor
from avsr_lightning.data.transforms.base import Clip, Transform, run_pipeline
from avsr_lightning.data.transforms.defaults import prebound_pipeline
from avsr_lightning.data.transforms.functional import VideoTransform
from avsr_lightning.text import CharTokenizer, Tokenizer, normalize_transcript

MODALITIES = ("video", "audio")


@dataclass
class Sample:
    """One decoded utterance. ``video`` float (T, crop, crop) or None; ``audio`` float (640*T,) or None."""

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
        transforms: the bound pipeline (``avsr_lightning.data.transforms``, what a data module passes); when
            given, ``video_transform``/``noise``/``visual``/``speed_factors``/``normalize_audio`` are not used.
            None = the pipeline those arguments describe.
        cache_decoded: keep every utterance's decoded frames, audio and transcript in memory after its first
            read (per process: each DataLoader worker keeps its own, so use persistent workers), so later
            epochs decode no file. The cached arrays are read-only; outputs are identical with and without.

    ``dataset[i]`` or ``dataset[(i, epoch)]`` (the batch sampler passes the epoch so workers need no state).
    """

    def __init__(self, root: str | os.PathLike, utterances: Sequence[Utterance], tokenizer: Tokenizer | None = None,
                 video_transform: VideoTransform | None = None, modalities: Sequence[str] = MODALITIES,
                 train: bool = False, noise: NoiseMixer | None = None, visual: VisualCorruption | None = None,
                 condition: Condition | None = None, seed: int = 0, max_text_len: int | None = None,
                 max_video_frames: int | None = None, speed_factors: Sequence[float] | None = None,
                 normalize_audio: bool = True, transforms: Sequence[Transform] | None = None,
                 cache_decoded: bool = False) -> None:
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
        if transforms is None:
            transforms = prebound_pipeline(train, self.video_transform, noise, visual, self.condition, self.seed,
                                           self.speed_factors, normalize_audio)
        self.transforms = list(transforms)
        self.cache_decoded = bool(cache_decoded)
        self._cache: dict[str, tuple[str, np.ndarray | None, np.ndarray | None, list[str]]] = {}

    def __getstate__(self) -> dict:  # workers start with an empty cache (never ship decoded clips by pickling)
        state = dict(self.__dict__)
        state["_cache"] = {}
        return state

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
        except (DataError, FileNotFoundError) as err:
            # Only data problems become skips: the readers turn decoder failures of corrupt files into
            # DataError subclasses (MediaError, LandmarkError). Anything else - a ValueError or TypeError from
            # transform code on well-formed data - is a bug and propagates (docs/data.md, "Bad input").
            path = getattr(err, "path", None) or getattr(err, "filename", None) or str(err).split(": ", 1)[0]
            reason = getattr(err, "reason", None) or str(err).split(": ", 1)[-1]
            return BadItem(index, utt.id, str(path), reason)

    # ----------------------------------------------------------------------------------------------
    def _decode(self, utt: Utterance, paths: dict[str, Path]) -> tuple[str, np.ndarray | None, np.ndarray | None,
                                                                      list[str]]:
        """(transcript, uint8 frames or None, float audio or None, decoding notes), from the cache if enabled."""
        cached = self._cache.get(utt.id)
        if cached is not None:
            return cached[0], cached[1], cached[2], list(cached[3])
        notes: list[str] = []
        text = utt.text if utt.text is not None else read_transcript(paths["text"])
        frames = None
        if "video" in self.modalities:
            frames = read_video(paths["video"], max_frames=self.max_video_frames,
                                warn=lambda m: notes.append(f"video_truncated: {m}"))
            if self.max_video_frames is not None and len(frames) >= self.max_video_frames:
                notes.append(f"video_truncated: {paths['video']} read up to {self.max_video_frames} frames")
        audio = None
        if "audio" in self.modalities or frames is None:
            audio = read_audio(paths["audio"], warn=lambda m: notes.append(f"audio_format: {m}"))
        if self.cache_decoded:
            for array in (frames, audio):
                if array is not None:
                    array.flags.writeable = False  # a transform writing into a cached clip is a bug: fail loudly
            self._cache[utt.id] = (text, frames, audio, list(notes))
        return text, frames, audio, notes

    def _load(self, utt: Utterance, epoch: int) -> Sample:
        paths = media_paths(self.root, utt.id)
        text, frames, audio, decode_notes = self._decode(utt, paths)
        notes: list[str] = []
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
        notes += decode_notes

        rng = generator_for(self.seed, utt.id, f"train:{epoch}") if self.train else None
        clip = Clip(utt.id, frames, audio, {"snr": None, "noise": None, "visual": "clean"} if self.train else {},
                    notes, self.train, paths, load_landmarks=lambda: load_utterance_landmarks(paths),
                    epoch=int(epoch) if self.train else 0)
        clip = run_pipeline(self.transforms, clip, rng)
        if clip.num_frames is None:  # a hand-made pipeline without MatchAudioToVideo
            clip = MatchAudioToVideo()(clip, rng)

        video_t = None
        if clip.frames is not None and "video" in self.modalities:
            video_t = clip.frames if isinstance(clip.frames, torch.Tensor) else \
                torch.from_numpy(np.array(clip.frames, dtype=np.float32))  # no Normalize step: raw 0-255 grey
        audio_t = None
        if clip.audio is not None and "audio" in self.modalities:
            if not isinstance(clip.audio, torch.Tensor) and not np.any(clip.audio):
                notes.append(f"silent_audio: {paths['audio']} is silent")
            audio_t = audio_tensor(clip.audio)
        return Sample(utt.id, video_t, audio_t, clip.num_frames, torch.tensor(ids, dtype=torch.long), text,
                      clip.condition, clip.notes)


def load_utterance_landmarks(paths: dict[str, Path]) -> Landmarks:
    """The utterance's aligned landmarks (npz, else a reference pkl) with undetected frames interpolated."""
    path = paths["landmarks"] if paths["landmarks"].is_file() else paths["landmarks_pkl"]
    if not path.is_file():
        raise LandmarkError(f"{paths['landmarks']}: landmark file is missing (needed for occlusion)")
    landmarks = read_landmarks(path)
    landmarks.points = interpolate_missing(landmarks.points, path)
    return landmarks
