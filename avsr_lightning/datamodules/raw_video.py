"""``RawVideoDataModule``: ``predict`` on users' own clips.

``path`` is a video file or a folder (searched recursively for ``.mp4/.mov/.avi/.mkv/.webm``). Each clip is
either

- a **raw video** with landmarks beside it (``<stem>.npz`` or ``<stem>.pkl``, or under ``landmark_dir``
  with the same relative path), or without landmarks when a ``detector`` is given: it is aligned to the
  mean face and the 96x96 mouth crop is cut with the preprocessing functions of
  :mod:`avsr_lightning.data.preprocess` (the same as for the corpora); or
- an already **preprocessed clip** (96x96 grey mouth crops, as in ``<root>/Video/...``): used as is.

Audio comes from ``<stem>.wav`` beside the clip, else from the video's own audio track. A clip that cannot
be used (no landmarks and no detector, undecodable, alignment failure) is skipped with one warning naming
the file and the reason, and counted in :attr:`RawVideoDataModule.skipped`.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from avsr_lightning.batch import SAMPLES_PER_FRAME, AVBatch

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm")
PROCESSED_SIZE = 96


def find_clips(path: str | Path) -> tuple[Path, list[Path]]:
    """(base directory, sorted clip paths) for a file or a folder."""
    path = Path(path)
    if path.is_file():
        return path.parent, [path]
    if path.is_dir():
        clips = sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
        if not clips:
            raise FileNotFoundError(f"RawVideoDataModule: no video files ({', '.join(VIDEO_EXTENSIONS)}) under {path}")
        return path, clips
    raise FileNotFoundError(f"RawVideoDataModule: {path} does not exist")


class RawVideoDataset(Dataset):
    """Clips -> dict(id, video (T, 88, 88) float, audio (640 T,) float or None, text); None for a bad clip."""

    def __init__(self, base: Path, clips: list[Path], mean_face: Optional[np.ndarray], landmark_dir: Optional[Path],
                 detector: Any, modalities: str, preprocessed: Optional[bool]) -> None:
        self.base, self.clips, self.mean_face = base, clips, mean_face
        self.landmark_dir, self.detector, self.modalities, self.preprocessed = (
            landmark_dir, detector, modalities, preprocessed)

    def __len__(self) -> int:
        return len(self.clips)

    def _landmark_file(self, clip: Path) -> Optional[Path]:
        candidates = [clip.with_suffix(".npz"), clip.with_suffix(".pkl")]
        if self.landmark_dir is not None:
            rel = clip.relative_to(self.base).with_suffix("")
            candidates = [self.landmark_dir / f"{rel}.npz", self.landmark_dir / f"{rel}.pkl"] + candidates
        return next((c for c in candidates if c.is_file()), None)

    def _crops(self, clip: Path, frames: np.ndarray) -> np.ndarray:
        from avsr_lightning.data.landmarks import (
            frames_to_array,
            interpolate_missing,
            read_landmarks,
            smooth_landmarks,
        )

        is_processed = self.preprocessed
        if is_processed is None:
            is_processed = frames.shape[1:] == (PROCESSED_SIZE, PROCESSED_SIZE)
        if is_processed:
            return frames
        lm_file = self._landmark_file(clip)
        if lm_file is not None:
            raw = read_landmarks(lm_file).points
        elif self.detector is not None:
            raw = frames_to_array(self.detector(frames), f"detector output for {clip}")
        else:
            raise ValueError("no landmarks (<stem>.npz/.pkl) and no detector; give landmarks, a detector, or a "
                             "preprocessed 96x96 clip")
        if self.mean_face is None:
            raise ValueError("raw videos need mean_face (the reference 20words_mean_face.npy)")
        from avsr_lightning.data.preprocess import align_clip, crop_mouth

        points = smooth_landmarks(interpolate_missing(raw, lm_file or clip), half_window=6)
        aligned, transformed = align_clip(frames, points, self.mean_face)
        crops, _ = crop_mouth(aligned, transformed, PROCESSED_SIZE)
        return crops

    def _audio(self, clip: Path, frames: int) -> Optional[torch.Tensor]:
        from avsr_lightning.data.media import MediaError, extract_audio, read_audio
        from avsr_lightning.data.transforms import fit_audio_to_frames, normalize_utterance

        if self.modalities == "video":
            return None
        wav = clip.with_suffix(".wav")
        try:
            audio = read_audio(wav) if wav.is_file() else extract_audio(clip)
        except MediaError as err:
            raise ValueError(f"no usable audio ({err}); use modalities='video' for a video-only model") from err
        return normalize_utterance(fit_audio_to_frames(audio, frames, SAMPLES_PER_FRAME))

    def __getitem__(self, i: int) -> Optional[dict[str, Any]]:
        from avsr_lightning.data.media import read_video
        from avsr_lightning.data.transforms import VideoTransform

        clip = self.clips[i]
        utt = str(clip.relative_to(self.base).with_suffix(""))
        try:
            frames = read_video(clip)
            crops = self._crops(clip, frames)
            video = VideoTransform(train=False)(crops) if self.modalities != "audio" else None
            audio = self._audio(clip, len(crops))
        except Exception as err:  # noqa: BLE001 - one bad clip must not stop a folder run
            return {"id": utt, "error": f"{clip}: {type(err).__name__}: {err}"}
        text_file = clip.with_suffix(".txt")
        text = ""
        if text_file.is_file():
            first = text_file.read_text(encoding="utf-8", errors="replace").splitlines()[:1]
            text = first[0].removeprefix("Text:").strip() if first else ""
        return {"id": utt, "video": video, "audio": audio, "frames": len(crops), "text": text}


class RawVideoCollator:
    """Pads good items into an :class:`AVBatch`; bad items are warned about and counted by the module."""

    def __init__(self, module: "RawVideoDataModule") -> None:
        self.module = module

    def __call__(self, items: list[dict[str, Any]]) -> AVBatch:
        good = []
        for it in items:
            if "error" in it:
                self.module.record_skip(it["id"], it["error"])
            else:
                good.append(it)
        if not good:  # an empty batch: decoders return no hypotheses for it
            empty = torch.zeros(0, dtype=torch.long)
            return AVBatch(video=None, video_lengths=empty, audio=None, audio_lengths=empty,
                           targets=torch.zeros(0, 1, dtype=torch.long), target_lengths=empty)
        frames = torch.tensor([it["frames"] for it in good], dtype=torch.long)
        t, b = int(frames.max()), len(good)
        video = audio = None
        if good[0]["video"] is not None:
            video = torch.zeros(b, t, *good[0]["video"].shape[1:])
            for k, it in enumerate(good):
                video[k, :it["frames"]] = it["video"]
        if good[0]["audio"] is not None:
            audio = torch.zeros(b, t * SAMPLES_PER_FRAME)
            for k, it in enumerate(good):
                audio[k, :it["audio"].numel()] = it["audio"]
        return AVBatch(video=video, video_lengths=frames, audio=audio, audio_lengths=frames * SAMPLES_PER_FRAME,
                       targets=torch.full((b, 1), -1, dtype=torch.long), target_lengths=torch.zeros(b, dtype=torch.long),
                       ids=[it["id"] for it in good], texts=[it["text"] for it in good], conditions=[{} for _ in good])


class RawVideoDataModule(L.LightningDataModule):
    """Args:
        path: a clip or a folder of clips.
        mean_face: the reference mean face (``20words_mean_face.npy``), needed for raw (uncropped) videos.
        landmark_dir: landmarks mirrored under this folder (default: next to each clip).
        detector: ``package.module:factory`` building a landmark detector, for clips without landmarks.
        modalities: ``"av"``, ``"video"`` or ``"audio"`` (what the model reads).
        preprocessed: force (True) or forbid (False) treating clips as 96x96 crops; None = by frame size.
        batch_size, num_workers: loader settings.
    """

    def __init__(self, path: str, mean_face: Optional[str] = None, landmark_dir: Optional[str] = None,
                 detector: Optional[str] = None, modalities: str = "av", preprocessed: Optional[bool] = None,
                 batch_size: int = 4, num_workers: int = 0) -> None:
        super().__init__()
        if modalities not in ("av", "video", "audio"):
            raise ValueError(f"RawVideoDataModule: modalities must be 'av', 'video' or 'audio', got {modalities!r}")
        if batch_size < 1:
            raise ValueError(f"RawVideoDataModule: batch_size must be >= 1, got {batch_size}")
        if mean_face is not None and not Path(mean_face).is_file():
            raise FileNotFoundError(f"RawVideoDataModule: mean_face {mean_face} does not exist")
        self.path, self.mean_face_path, self.landmark_dir = path, mean_face, landmark_dir
        self.detector_spec, self.modalities, self.preprocessed = detector, modalities, preprocessed
        self.batch_size, self.num_workers = batch_size, num_workers
        self.skipped: dict[str, str] = {}
        self.dataset: Optional[RawVideoDataset] = None

    def record_skip(self, utt: str, reason: str) -> None:
        if utt not in self.skipped:
            self.skipped[utt] = reason
            log.warning("skipping %s", reason)

    def setup(self, stage: Optional[str] = None) -> None:
        if self.dataset is not None:
            return
        base, clips = find_clips(self.path)
        mean_face = np.load(self.mean_face_path, allow_pickle=False) if self.mean_face_path else None
        detector = None
        if self.detector_spec:
            from avsr_lightning.data.preprocess import load_detector

            detector = load_detector(self.detector_spec)
        self.dataset = RawVideoDataset(base, clips, mean_face, Path(self.landmark_dir) if self.landmark_dir else None,
                                       detector, self.modalities, self.preprocessed)

    def predict_dataloader(self) -> DataLoader:
        self.setup("predict")
        return DataLoader(self.dataset, batch_size=self.batch_size, shuffle=False, num_workers=self.num_workers,
                          collate_fn=RawVideoCollator(self))

    def teardown(self, stage: Optional[str] = None) -> None:
        if self.skipped:
            log.warning("%d of %d clips skipped: %s", len(self.skipped), len(self.dataset or []),
                        "; ".join(f"{k}: {v}" for k, v in list(self.skipped.items())[:5]))
