"""``AVSEDataset``: one AVSE scene → a training :class:`~avsr_lightning.data.dataset.Sample`.

Per item: the scene is mixed at full length by the shared exact mixer (spec §7.2 P1: gain, peak and ramps are
defined on the whole utterance), read back as the model sees the challenge files (``int16 / 32768``), then
optionally cropped; the video is the target's lip crops from the processed LRS3 tree and the label is its
transcript. Scenes come from a fixed list (challenge-comparable) or, in sampling mode, from
:class:`~avsr_lightning.data.avse.builder.SceneSampler`: item ``i`` is target ``i`` and its interferer, offset
and SNR are redrawn every epoch from ``(seed, epoch)``, identically in every worker and on every rank.

Bad scenes (missing files, offset past the masker's end, a target shorter than the ramp, a silent
interferer, NaN/inf, wrong sample rate) come back as :class:`BadItem` with the scene id and the reason; the
collate drops them and the data module counts and reports them.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from avsr_lightning.batch import SAMPLES_PER_FRAME
from avsr_lightning.data.corruption.seeding import generator_for
from avsr_lightning.data.corruption.visual import VisualCorruption
from avsr_lightning.data.dataset import BadItem, Sample
from avsr_lightning.data.errors import DataError
from avsr_lightning.data.landmarks import LandmarkError, interpolate_missing, read_landmarks
from avsr_lightning.data.manifest import Utterance, media_paths, read_transcript
from avsr_lightning.data.media import MediaError, read_video
from avsr_lightning.data.transforms import VideoTransform, fit_audio_to_frames, normalize_utterance
from avsr_lightning.text import CharTokenizer, Tokenizer, normalize_transcript

from .builder import SceneSampler
from .errors import SceneError
from .formats import Scene
from .scene_io import SceneMixer

__all__ = ["AVSEDataset"]


class AVSEDataset(Dataset):
    """Scenes → samples (mixture audio, target lip crops, target transcript).

    Args:
        lrs_root: processed LRS3 tree with ``Video/<target>.mp4``, ``Text/<target>.txt`` (and landmarks).
        mixer: reads and mixes scenes (layout, weighting filter, memory-mapped maskers).
        scenes: the fixed scene list; or None with ``sampler`` for fresh scenes every epoch.
        sampler: per-epoch scenes; item ``i`` is the ``i``-th target of ``targets``.
        targets: target names (sampling mode) in item order.
        num_frames: video frames per item (for the batch sampler), same order as the items.
        crop_frames: training crop (frames) applied *after* full-length mixing; None = whole utterance.
        normalize_audio: per-utterance zero-mean/unit-variance of ``int16 / 32768`` (the LRS pipeline's input).
        report_snr_step: evaluation items report ``snr`` as the centre of this band (dB), so test reports
            group scenes by interferer type and SNR band; None = the exact SNR (one group per scene).
    """

    def __init__(self, lrs_root: str | os.PathLike, mixer: SceneMixer, scenes: Sequence[Scene] | None = None,
                 sampler: SceneSampler | None = None, targets: Sequence[str] | None = None,
                 num_frames: Sequence[int | None] | None = None, tokenizer: Tokenizer | None = None,
                 video_transform: VideoTransform | None = None, modalities: Sequence[str] = ("video", "audio"),
                 train: bool = False, visual: VisualCorruption | None = None, seed: int = 0,
                 crop_frames: int | None = None, max_text_len: int | None = None, normalize_audio: bool = True,
                 report_snr_step: float | None = 5.0) -> None:
        if (scenes is None) == (sampler is None):
            raise ValueError("AVSEDataset: give either a fixed scene list or a SceneSampler (with targets)")
        if sampler is not None and targets is None:
            raise ValueError("AVSEDataset: sampling mode needs the target names in item order")
        if crop_frames is not None and crop_frames < 1:
            raise ValueError(f"AVSEDataset: crop_frames must be >= 1 or None, got {crop_frames}")
        self.lrs_root = Path(lrs_root)
        self.mixer = mixer
        self.scenes = list(scenes) if scenes is not None else None
        self.sampler = sampler
        self.targets = list(targets) if targets is not None else [s.target for s in self.scenes]
        counts = list(num_frames) if num_frames is not None else [None] * len(self.targets)
        if len(counts) != len(self.targets):
            raise ValueError(f"AVSEDataset: {len(counts)} frame counts for {len(self.targets)} items")
        #: one row per item, for the frame-budget batch sampler (``num_frames``) and reports (``id``).
        self.utterances = [Utterance(t, None, n) for t, n in zip(self.targets, counts)]
        self.tokenizer = tokenizer or CharTokenizer()
        self.video_transform = video_transform or VideoTransform(train=train)
        self.modalities = tuple(modalities)
        self.train, self.visual, self.seed = train, visual, int(seed)
        self.crop_frames, self.max_text_len, self.normalize_audio = crop_frames, max_text_len, normalize_audio
        self.report_snr_step = report_snr_step
        self._epoch_scenes: tuple[int, dict[str, Scene]] | None = None

    def snr_band(self, snr: float) -> float:
        """Centre of the ``report_snr_step``-dB band holding ``snr`` (e.g. -13.75 -> -12.5 for 5 dB bands)."""
        if not self.report_snr_step:
            return float(snr)
        step = float(self.report_snr_step)
        return float(np.floor(snr / step) * step + step / 2)

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def ids(self) -> list[str]:
        return [u.id for u in self.utterances]

    def scene_at(self, index: int, epoch: int = 0) -> Scene:
        """The scene of item ``index`` in ``epoch`` (fixed mode: the same every epoch)."""
        if self.scenes is not None:
            return self.scenes[index]
        if self._epoch_scenes is None or self._epoch_scenes[0] != epoch:
            by_target = {s.target: s for s in self.sampler.scenes_for_epoch(epoch)}
            self._epoch_scenes = (epoch, by_target)
        return self._epoch_scenes[1][self.targets[index]]

    def __getitem__(self, key: int | tuple[int, int]) -> Sample | BadItem:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        target = self.targets[index]
        try:
            scene = self.scene_at(index, int(epoch))
        except (KeyError, ValueError) as err:
            return BadItem(index, target, target, f"no scene for this target in epoch {epoch} ({err})")
        try:
            return self._load(scene, int(epoch))
        except SceneError as err:
            return BadItem(index, f"{scene.scene}/{scene.target}", err.detail, f"{err.reason} (scene {scene.scene})")
        except (DataError, FileNotFoundError) as err:
            # only data problems are skips; any other error is a bug and propagates (docs/data.md, "Bad input")
            path = getattr(err, "path", None) or str(err).split(": ", 1)[0]
            reason = getattr(err, "reason", None) or str(err).split(": ", 1)[-1]
            return BadItem(index, f"{scene.scene}/{scene.target}", str(path), f"{reason} (scene {scene.scene})")

    def _load(self, scene: Scene, epoch: int) -> Sample:
        paths = media_paths(self.lrs_root, scene.target)
        notes: list[str] = []
        text = normalize_transcript(read_transcript(paths["text"]))
        if not text:
            raise MediaError(paths["text"], "transcript is empty")
        ids = self.tokenizer.encode(text)
        if self.max_text_len is not None and len(ids) > self.max_text_len:
            ids = ids[: self.max_text_len]
            notes.append(f"text_truncated: {paths['text']} truncated to {self.max_text_len} tokens")

        frames = read_video(paths["video"]) if "video" in self.modalities else None
        signals = self.mixer.mix(scene, signals=("mixed",))  # full length first (P1), int16 as the challenge files
        mixed = signals["mixed"].astype(np.float32) / np.float32(32768.0)  # P8: float32(q) / 32768
        num_frames = len(frames) if frames is not None else max(1, int(round(len(mixed) / SAMPLES_PER_FRAME)))
        diff = len(mixed) - num_frames * SAMPLES_PER_FRAME
        if abs(diff) > SAMPLES_PER_FRAME:
            notes.append(f"audio_length: scene {scene.scene} audio is {abs(diff)} samples "
                         f"{'shorter' if diff < 0 else 'longer'} than its video ({num_frames} frames)")
        audio = fit_audio_to_frames(mixed, num_frames)

        rng = generator_for(self.seed, scene.scene, f"train:{epoch}") if self.train else None
        if self.train and self.crop_frames is not None and num_frames > self.crop_frames:
            start = int(rng.integers(0, num_frames - self.crop_frames + 1))
            audio = audio[start * SAMPLES_PER_FRAME:(start + self.crop_frames) * SAMPLES_PER_FRAME]
            frames = frames[start:start + self.crop_frames] if frames is not None else None
            num_frames = self.crop_frames
        else:
            start = 0

        kinds = "+".join(i.type for i in scene.interferers)
        if self.train:
            condition: dict[str, Any] = {
                "snr": float(scene.snr), "noise": "+".join(f"{i.type}:{i.name}" for i in scene.interferers),
                "interferer": kinds, "visual": "clean", "scene": scene.scene}
            if start:
                condition["crop_start"] = start
        else:  # evaluation reports group by condition: interferer type and SNR band (the scene id is in ``id``)
            condition = {"interferer": kinds, "snr": self.snr_band(scene.snr), "visual": "clean"}
        if frames is not None and self.train and self.visual is not None:
            landmarks = self._landmarks(paths, start, num_frames) if self.visual.needs_landmarks else None
            frames, info = self.visual(frames, landmarks, rng)
            condition["visual"] = info["visual"]
        video = self.video_transform(frames, rng) if frames is not None else None
        audio_t = None
        if "audio" in self.modalities:
            audio_t = normalize_utterance(audio) if self.normalize_audio else torch.from_numpy(np.ascontiguousarray(audio))
        return Sample(f"{scene.scene}/{scene.target}", video, audio_t, num_frames,
                      torch.tensor(ids, dtype=torch.long), text, condition, notes)

    def _landmarks(self, paths: dict[str, Path], start: int, length: int):
        path = paths["landmarks"] if paths["landmarks"].is_file() else paths["landmarks_pkl"]
        if not path.is_file():
            raise LandmarkError(f"{paths['landmarks']}: landmark file is missing (needed for occlusion)")
        landmarks = read_landmarks(path)
        landmarks.points = interpolate_missing(landmarks.points, path)
        if start or len(landmarks.points) > length:
            landmarks.points = landmarks.points[start:start + length]
            if getattr(landmarks, "yx_min", None) is not None:
                landmarks.yx_min = landmarks.yx_min[start:start + length]
        return landmarks
